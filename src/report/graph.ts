import type { ReportDoc, ReportNetwork } from './doc.js';
import { esc, svgOpen } from './svg.js';

/** A box of the topology graph. */
export interface GraphBox {
  /** 'node:NAME', 'pod:NODE/POD' or 'peer:NAME'. */
  id: string;
  /** What the box stands for (its colour). */
  kind: 'node' | 'pod' | 'peer';
  /** Left edge, px. */
  x: number;
  /** Top edge, px. */
  y: number;
  /** Width, px. */
  w: number;
  /** Height, px. */
  h: number;
  /** First line is the name; the rest addresses and decisions. */
  lines: string[];
}

/** A line between two boxes with its label lines (devices, addresses, rate). */
export interface GraphEdge {
  /** A pod on its node, a node-peer uplink, or a node-node link. */
  kind: 'pod' | 'uplink' | 'link';
  /** Box id at one end. */
  from: string;
  /** Box id at the other end. */
  to: string;
  /** SVG path data. */
  d: string;
  label: string[];
  /** Where the label starts. */
  lx: number;
  ly: number;
}

export interface GraphLayout {
  /** Size of the picture, px. */
  width: number;
  /** Size of the picture, px. */
  height: number;
  /** Nodes, pods and peers. */
  boxes: GraphBox[];
  /** Pods, uplinks and links. */
  edges: GraphEdge[];
}

type Decision = ReportDoc['datapath'][number];

const LINE = 15;
const PAD = 8;
const BOX_W = 250;
const COL = 320;
const MARGIN = 20;
/** Vertical room between rows for the edge labels. */
const GAP = 62;

const boxH = (lines: string[]) => PAD * 2 + lines.length * LINE;
const cidr = (a?: { addr: string; len: number }) => (a ? `${a.addr}/${a.len}` : undefined);

/**
 * Nodes in a row (in file order), each with its peer above and its pods below; links
 * between nodes next to each other are straight, the others arc through a lane of
 * their own above the nodes.
 */
export function topologyLayout(net: ReportNetwork, decisions: readonly Decision[]): GraphLayout {
  const col = new Map(net.nodes.map((n, i) => [n.name, i]));
  const far = net.links.filter((l) => Math.abs(col.get(l.a)! - col.get(l.b)!) > 1);
  const peerLines = net.nodes.map((n) =>
    n.uplink ? [`peer ${n.uplink.peer}`, ...[cidr(n.uplink.peer4), cidr(n.uplink.peer6)].filter((s): s is string => !!s)] : [],
  );
  const peerRowH = Math.max(0, ...peerLines.map((l) => (l.length ? boxH(l) : 0)));
  const nodeLines = net.nodes.map((n) => [
    `node ${n.name}`,
    ...[n.podCidr4, n.podCidr6].filter((s): s is string => !!s).map((s) => `pods ${s}`),
    ...decisions.filter((d) => d.node === n.name).map((d) => `${d.feature}: ${d.mode} (${d.status})`),
  ]);
  const nodeY = MARGIN + (peerRowH ? peerRowH + GAP : 0) + far.length * 14;
  const nodeRowH = Math.max(...nodeLines.map(boxH));
  const boxes: GraphBox[] = [];
  const edges: GraphEdge[] = [];
  net.nodes.forEach((n, i) => {
    const x = MARGIN + i * COL;
    const node: GraphBox = { id: `node:${n.name}`, kind: 'node', x, y: nodeY, w: BOX_W, h: nodeRowH, lines: nodeLines[i] };
    boxes.push(node);
    if (n.uplink) {
      const lines = peerLines[i];
      const peer: GraphBox = {
        id: `peer:${n.uplink.peer}`,
        kind: 'peer',
        x,
        y: MARGIN + peerRowH - boxH(lines),
        w: BOX_W,
        h: boxH(lines),
        lines,
      };
      boxes.push(peer);
      const cx = x + 24;
      edges.push({
        kind: 'uplink',
        from: node.id,
        to: peer.id,
        d: `M${cx} ${node.y} V${peer.y + peer.h}`,
        label: [
          `${n.uplink.nodeDev} ${[cidr(n.uplink.node4), cidr(n.uplink.node6)].filter(Boolean).join(' ')}`,
          n.uplink.rate ? `tbf ${n.uplink.rate}` : 'no rate limit',
        ],
        lx: cx + 8,
        ly: peer.y + peer.h + 20,
      });
    }
    let y = nodeY + nodeRowH + GAP;
    for (const p of n.pods) {
      const lines = [`pod ${p.name}`, ...[p.ipv4, p.ipv6].filter((s): s is string => !!s), `${p.dev} <-> ${p.hostDev}`];
      const pod: GraphBox = { id: `pod:${n.name}/${p.name}`, kind: 'pod', x: x + 30, y, w: BOX_W - 30, h: boxH(lines), lines };
      boxes.push(pod);
      edges.push({
        kind: 'pod',
        from: node.id,
        to: pod.id,
        d: `M${x + 14} ${node.y + node.h} V${y + pod.h / 2} H${pod.x}`,
        label: [],
        lx: 0,
        ly: 0,
      });
      y += pod.h + 12;
    }
  });
  net.links.forEach((l) => {
    const [ia, ib] = [col.get(l.a)!, col.get(l.b)!];
    const [left, right, lDev, rDev, lAddr, rAddr] =
      ia < ib ? [ia, ib, l.devA, l.devB, l.a4 ?? l.a6, l.b4 ?? l.b6] : [ib, ia, l.devB, l.devA, l.b4 ?? l.b6, l.a4 ?? l.a6];
    const x1 = MARGIN + left * COL + BOX_W;
    const x2 = MARGIN + right * COL;
    const lane = far.indexOf(l);
    const label = [`${lDev} ${cidr(lAddr) ?? ''}`.trim(), `${rDev} ${cidr(rAddr) ?? ''}`.trim(), ...(l.rate ? [`tbf ${l.rate}`] : [])];
    if (lane < 0) {
      const y = nodeY + nodeRowH - 12;
      edges.push({
        kind: 'link',
        from: `node:${l.a}`,
        to: `node:${l.b}`,
        d: `M${x1} ${y} H${x2}`,
        label,
        lx: x1 + 4,
        ly: y - 6 - LINE * label.length,
      });
    } else {
      const y = nodeY - 10 - lane * 14;
      const xa = x1 - BOX_W / 2;
      const xb = x2 + BOX_W / 2;
      edges.push({
        kind: 'link',
        from: `node:${l.a}`,
        to: `node:${l.b}`,
        d: `M${xa} ${nodeY} V${y} H${xb} V${nodeY}`,
        label: [label.join(', ')],
        lx: xa + 6,
        ly: y - 3,
      });
    }
  });
  // Room on the right for the last column's edge labels (an uplink's IPv6 address).
  const width = MARGIN * 2 + Math.max(1, net.nodes.length) * COL - (COL - BOX_W) + 140;
  const height = Math.max(...boxes.map((b) => b.y + b.h), nodeY + nodeRowH) + MARGIN;
  return { width, height, boxes, edges };
}

/** Do two boxes overlap (the layout's own test: no box may hide another)? */
export function overlaps(a: GraphBox, b: GraphBox): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/** The layout as an SVG element (inline in the report; styled by the page's CSS classes). */
export function topologySvg(g: GraphLayout): string {
  const text = (x: number, y: number, lines: string[], cls: string) =>
    lines.map((s, i) => `<text class="${cls}" x="${x}" y="${y + i * LINE}">${esc(s)}</text>`).join('');
  const parts = [
    ...g.edges.map((e) => `<path class="edge ${e.kind}" d="${e.d}"/>${e.label.length ? text(e.lx, e.ly, e.label, 'elabel') : ''}`),
    ...g.boxes.map(
      (b) =>
        `<g class="box ${b.kind}" data-id="${esc(b.id)}"><rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="6"/>` +
        text(b.x + PAD, b.y + PAD + 11, b.lines.slice(0, 1), 'name') +
        `${text(b.x + PAD, b.y + PAD + 11 + LINE, b.lines.slice(1), 'detail')}</g>`,
    ),
  ];
  return [
    svgOpen('topology', 'topology', g.width, g.height),
    '<title>topology: nodes, pods, peers and links with their addresses and datapath decisions</title>',
    ...parts,
    '</svg>',
  ].join('\n');
}

/** Styles of the topology graph, shared by report.html and the dashboard. */
export const GRAPH_CSS = `svg text { font: 12px monospace; fill: #222; }
svg .box rect { fill: #fff; stroke: #555; stroke-width: 1.2; }
svg .box.node rect { fill: #eef4fb; stroke: #1a4f8b; } svg .box.peer rect { fill: #fdf3e7; stroke: #b26a00; }
svg .box.pod rect { fill: #f3faf3; stroke: #2e7d32; }
svg .box .name { font-weight: bold; }
svg .edge { fill: none; stroke: #777; stroke-width: 1.5; } svg .edge.uplink { stroke: #b26a00; }
svg .edge.link { stroke: #1a4f8b; stroke-width: 2.5; }
svg .elabel { fill: #555; font-size: 11px; }`;

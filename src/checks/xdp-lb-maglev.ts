import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { servicePlan } from '../datapath/kpr/plan.js';
import { DEFAULT_MAGLEV_SIZE, lbNodePlan, xdpLbInputs, xdpLbPins } from '../datapath/xdp-lb/feature.js';
import { isMaglevSize, remapCount } from '../datapath/xdp-lb/maglev.js';
import { flow } from '../datapath/xdp-lb/packets.js';
import { type XlFrontend, xdpLbPlan } from '../datapath/xdp-lb/plan.js';
import type { LabContext } from '../lifecycle/context.js';
import { serviceAttempts } from '../measure/services.js';
import type { Lab, LabNode } from '../topology/model.js';
import { type Check, couldNotEstablish, skip } from './check.js';
import {
  judgeMaglevBalance,
  judgeMaglevConsistency,
  judgeWeightZero,
  type MaglevFlowRun,
  type MaglevRemovalRun,
  type TupleSeen,
  type MaglevTableRun,
  type WeightZeroRun,
  weightZeroFlowsNeeded,
} from './maglev-verdicts.js';
import { backendServers, serverName } from './svc-common.js';

/** Client flows per LB node for maglev-balance: each UDP attempt is a new socket, so a new source port and 5-tuple. */
const BALANCE_FLOWS = 150;

const lbNodes = (lab: Lab) => lab.nodes.filter((n) => n.loadBalancer && n.uplink?.peer4);
const label = (f: XlFrontend) => `${f.lbVip}:${f.port}/${f.protocol}`;
const sizeOf = (lab: Lab) => (lab.maglevSize !== undefined && isMaglevSize(lab.maglevSize) ? lab.maglevSize : DEFAULT_MAGLEV_SIZE);

const applies = (lab: Lab) =>
  !lab.services.some((s) => s.loadBalancer)
    ? { ok: false as const, reason: 'the topology has no service with a loadBalancer' }
    : lbNodes(lab).length
      ? { ok: true as const }
      : { ok: false as const, reason: 'no loadBalancer node has an IPv4 uplink (a client peer)' };

/** The table of a frontend as the kernel holds it on an LB node (xlctl get), or undefined when it has none. */
async function readTable(ctx: LabContext, node: LabNode, svc: number, m: number): Promise<number[] | undefined> {
  const r = await ctx.backend.root(node.name).run([join(ctx.objDir, 'xlctl'), xdpLbPins(ctx, node).maglev], {
    input: `get ${svc} ${m}\n`,
    nothrow: true,
    needsBpffs: true,
    signal: ctx.signal,
  });
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout.trim().split('\n')[0]) as { ids: number[] }).ids;
}

/** Backend names (node/pod) of a frontend's backends by id, in the frontend's order. */
function namesOf(lab: Lab, f: XlFrontend): string[] {
  const plan = servicePlan(lab);
  return f.backends.map((b) => {
    const be = plan.backends.find((x) => x.id === b.id)!;
    return serverName(be.node, be.pod);
  });
}

/** UDP flows from an LB node's client peer to a VIP: how many each server answered, and how many got no answer. */
async function flowsThrough(ctx: LabContext, node: LabNode, f: XlFrontend, n: number, names: readonly string[]) {
  const peer = ctx.lab.peers.find((p) => p.node === node.name)!;
  const attempts = await serviceAttempts(ctx.backend.exec(peer.netns), ctx.objDir, {
    op: 'udp',
    addr: f.lbVip,
    port: f.port,
    attempts: n,
    timeoutMs: 1000,
    signal: ctx.signal,
  });
  const by: Record<string, number> = {};
  let unanswered = 0;
  for (const a of attempts)
    if (a.errno === '' && a.reply && a.peer === f.lbVip) by[a.reply] = (by[a.reply] ?? 0) + 1;
    else unanswered++;
  for (const name of Object.keys(by)) if (!names.includes(name)) unanswered += by[name];
  return { by, unanswered, tried: attempts.length };
}

export const maglevBalance: Check = {
  id: 'maglev-balance',
  title: 'Maglev: tables as planned on every LB node, shares within 1% of the weights, client flows spread by them',
  proves:
    "each LB node's kernel table (read back) equals the table built in TypeScript and is the same on every LB node, " +
    'each backend owns its weighted share within 1%, and new UDP flows from the client land on backends within the binomial spread of those shares',
  requires: () => ({ ok: true }),
  applies,
  async run(ctx) {
    const m = sizeOf(ctx.lab);
    const f = xdpLbInputs(ctx.lab).frontends.find((x) => x.protocol === 'UDP' && x.backends.some((b) => b.weight > 0));
    if (!f) return skip('no loadBalancer UDP frontend with a backend of weight > 0');
    const names = namesOf(ctx.lab, f);
    const ids = f.backends.map((b) => b.id);
    const tables: MaglevTableRun[] = [];
    const flows: MaglevFlowRun[] = [];
    const evidence: string[] = [];
    const read = new Map<string, number[]>();
    for (const node of lbNodes(ctx.lab)) {
      const t = await readTable(ctx, node, f.svcId, m);
      if (!t) return { status: 'error', reason: couldNotEstablish(`${node.name} has no table for ${label(f)}`), metrics: {}, evidence };
      const planned = lbNodePlan(ctx, node).tables.get(f.svcId) ?? [];
      if (t.join(',') !== planned.join(','))
        return {
          status: 'fail',
          reason: `${label(f)} on ${node.name}: the kernel's table differs from the planned one in ${t.filter((x, i) => x !== planned[i]).length} of ${m} cells`,
          metrics: {},
          evidence,
        };
      read.set(node.name, t);
      const cells = ids.map((id) => t.filter((x) => x === id).length);
      tables.push({ node: node.name, frontend: label(f), backends: names, weights: f.backends.map((b) => b.weight), cells });
      evidence.push(`${node.name}: ${label(f)} table (M=${m}) read back by xlctl: ${names.map((b, i) => `${b} ${cells[i]}`).join(', ')}`);
    }
    const [first, ...rest] = [...read];
    const differ = rest.find(([, t]) => t.join(',') !== first[1].join(','));
    if (differ) return { status: 'fail', reason: `${label(f)}: the tables of ${first[0]} and ${differ[0]} differ`, metrics: {}, evidence };
    const servers = await backendServers(ctx);
    try {
      for (const node of lbNodes(ctx.lab)) {
        const r = await flowsThrough(ctx, node, f, BALANCE_FLOWS, names);
        const cells = tables.find((t) => t.node === node.name)!.cells;
        flows.push({
          node: node.name,
          frontend: label(f),
          backends: names,
          cells,
          flows: names.map((b) => r.by[b] ?? 0),
          unanswered: r.unanswered,
        });
        evidence.push(
          `${node.name}: ${r.tried} UDP flows to ${label(f)}: ${names.map((b) => `${b} ${r.by[b] ?? 0}`).join(', ')}, ${r.unanswered} unanswered`,
        );
      }
    } finally {
      await servers.stop();
    }
    return { ...judgeMaglevBalance(tables, flows), evidence };
  },
};

export const xdpLbWeightZero: Check = {
  id: 'xdp-lb-weight-zero',
  title: 'XDP load balancer: a backend at weight 0 owns no Maglev cell and gets no new flow',
  proves:
    'for each loadBalancer UDP frontend with a weight-0 backend, the table read back on each LB node gives it no cell and no new client flow ' +
    'reaches it, over enough flows that it would have been reached (at the share it would own at weight 1) with chance 99.9%',
  requires: () => ({ ok: true }),
  applies: (lab) => {
    const a = applies(lab);
    if (!a.ok) return a;
    return lab.services.some((s) => s.loadBalancer && s.backends.some((b) => b.weight === 0))
      ? { ok: true }
      : { ok: false, reason: 'no loadBalancer service has a backend of weight 0' };
  },
  async run(ctx) {
    const m = sizeOf(ctx.lab);
    const { frontends, backends } = xdpLbInputs(ctx.lab);
    const fs = frontends.filter((f) => f.protocol === 'UDP' && f.backends.some((b) => b.weight === 0));
    if (!fs.length) return skip('no loadBalancer UDP frontend has a backend of weight 0');
    const runs: WeightZeroRun[] = [];
    const evidence: string[] = [];
    const servers = await backendServers(ctx);
    try {
      for (const f of fs) {
        const names = namesOf(ctx.lab, f);
        const zeroIds = f.backends.filter((b) => b.weight === 0).map((b) => b.id);
        const zeroed = names.filter((_, i) => f.backends[i].weight === 0);
        // The share the zeroed backends would own at the default weight 1: what weight 0 takes away.
        const atOne = { ...f, backends: f.backends.map((b) => ({ ...b, weight: b.weight || 1 })) };
        const before = xdpLbPlan({ cfg: '', backends: '', vips: '' }, [atOne], backends, m, {}).tables.get(f.svcId) ?? [];
        const shareBefore = before.filter((id) => zeroIds.includes(id)).length / m;
        const n = Math.max(2 * weightZeroFlowsNeeded(shareBefore), 40);
        for (const node of lbNodes(ctx.lab)) {
          const t = (await readTable(ctx, node, f.svcId, m)) ?? [];
          const cells = t.filter((id) => zeroIds.includes(id)).length;
          const r = await flowsThrough(ctx, node, f, n, names);
          runs.push({ node: node.name, frontend: label(f), zeroed, backends: names, shareBefore, cells, tried: r.tried, answeredBy: r.by });
          evidence.push(
            `${node.name}: ${label(f)}: ${zeroed.join(', ')} at weight 0 own ${cells} of ${t.length} cells (${(100 * shareBefore).toFixed(1)}% at weight 1); ` +
              `${r.tried} UDP flows: ${Object.entries(r.by)
                .map(([b, k]) => `${b} ${k}`)
                .join(', ')}, ${r.unanswered} unanswered`,
          );
        }
      }
    } finally {
      await servers.stop();
    }
    return { ...judgeWeightZero(runs), evidence };
  },
};

/** Crafted client ports per LB node for the same-5-tuple part (a TEST-NET-1 client, RFC 5737: no real flow has it). */
const TUPLE_PORTS = Array.from({ length: 20 }, (_, i) => 41000 + i);
const TUPLE_CLIENT = '192.0.2.1';

/**
 * The pod each crafted packet goes to through one LB node's xl_xdp, under BPF_PROG_TEST_RUN in the node's namespace
 * (its fib): SNAT rewrites the destination to the chosen pod. Local backend only (the packet files are on this host).
 */
async function tupleRoutes(ctx: LabContext, node: LabNode, f: XlFrontend, dir: string): Promise<(string | undefined)[]> {
  const prog = join(xdpLbPins(ctx, node).progs, 'xl_xdp');
  const lines = TUPLE_PORTS.map((port) => {
    writeFileSync(join(dir, `in${port}`), flow(TUPLE_CLIENT, f.lbVip, { proto: f.protocol, sport: port, dport: f.port }));
    return `prog run pinned ${prog} data_in ${join(dir, `in${port}`)} data_out ${join(dir, `${node.name}-${port}`)} data_size_out 1024`;
  });
  await ctx.backend
    .exec(node.netns)
    .run(['bpftool', 'batch', 'file', '-'], { input: `${lines.join('\n')}\n`, signal: ctx.signal, needsBpffs: true });
  return TUPLE_PORTS.map((port) => {
    const o = readFileSync(join(dir, `${node.name}-${port}`));
    return o.length >= 34 ? Array.from(o.subarray(30, 34)).join('.') : undefined;
  });
}

export const maglevConsistency: Check = {
  id: 'maglev-consistency',
  title: 'Maglev: removing a backend remaps at most 1% of the others’ cells; a 5-tuple picks the same backend through both LB nodes',
  proves:
    "on each LB node a table without one backend, swapped in by xlctl and read back, differs from the kernel's table in at most 1% of the " +
    "other backends' cells (then the original is swapped back and read back equal); 20 crafted 5-tuples run through each LB node's xl_xdp " +
    '(BPF_PROG_TEST_RUN in its namespace) go to the same pod through both',
  requires: () => ({ ok: true }),
  applies: (lab) => {
    const a = applies(lab);
    if (!a.ok) return a;
    return lbNodes(lab).length >= 2 ? { ok: true } : { ok: false, reason: 'fewer than two LB nodes with a client peer' };
  },
  async run(ctx) {
    if (ctx.backend.kind !== 'local') return skip('the crafted packets are files on this host: local backend only');
    const m = sizeOf(ctx.lab);
    const { frontends, backends } = xdpLbInputs(ctx.lab);
    const f = frontends.find((x) => x.protocol === 'UDP' && x.backends.filter((b) => b.weight > 0).length >= 2);
    if (!f) return skip('no loadBalancer UDP frontend with two backends of weight > 0');
    const names = namesOf(ctx.lab, f);
    const victim = f.backends.find((b) => b.weight > 0)!;
    const pins = { cfg: '', backends: '', vips: '' };
    const table = (fr: XlFrontend) => xdpLbPlan(pins, [fr], backends, m, {}).tableLines[0];
    const removals: MaglevRemovalRun[] = [];
    const evidence: string[] = [];
    const [a, b] = lbNodes(ctx.lab);
    for (const node of [a, b]) {
      const xlctl = (line: string) =>
        ctx.backend
          .root(node.name)
          .run([join(ctx.objDir, 'xlctl'), xdpLbPins(ctx, node).maglev], { input: `${line}\n`, needsBpffs: true, signal: ctx.signal });
      const t0 = await readTable(ctx, node, f.svcId, m);
      if (!t0) return { status: 'error', reason: couldNotEstablish(`${node.name} has no table for ${label(f)}`), metrics: {}, evidence };
      let t1: number[] | undefined;
      try {
        await xlctl(table({ ...f, backends: f.backends.filter((x) => x.id !== victim.id) }));
        t1 = await readTable(ctx, node, f.svcId, m);
      } finally {
        await xlctl(table(f));
      }
      const t2 = await readTable(ctx, node, f.svcId, m);
      if (!t1 || t2?.join(',') !== t0.join(','))
        return { status: 'error', reason: couldNotEstablish(`${node.name}: the swapped tables did not read back`), metrics: {}, evidence };
      const r = remapCount(Int32Array.from(t0), Int32Array.from(t1), victim.id);
      const left = t1.filter((id) => id === victim.id).length;
      const removed = names[f.backends.indexOf(victim)];
      removals.push({ node: node.name, frontend: label(f), removed, survivorCells: r.cells, changed: r.changed, leftToRemoved: left });
      evidence.push(
        `${node.name}: ${label(f)} without ${removed} (M=${m}): ${r.changed} of ${r.cells} other cells changed owner, ${left} left to it`,
      );
    }
    const dir = mkdtempSync(join(tmpdir(), 'dpl-maglev-'));
    const pods = new Map(ctx.lab.nodes.flatMap((n) => n.pods.map((p) => [p.ipv4 ?? '', serverName(n.name, p.name)] as const)));
    const tuples: TupleSeen[] = [];
    try {
      const [ra, rb] = [await tupleRoutes(ctx, a, f, dir), await tupleRoutes(ctx, b, f, dir)];
      tuples.push(
        ...TUPLE_PORTS.map((port, i) => ({
          tuple: `${TUPLE_CLIENT}:${port} > ${f.lbVip}:${f.port}/${f.protocol}`,
          first: pods.get(ra[i] ?? ''),
          second: pods.get(rb[i] ?? ''),
        })),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    evidence.push(...tuples.map((t) => `${t.tuple}: ${a.name} -> ${t.first ?? 'none'}, ${b.name} -> ${t.second ?? 'none'}`));
    return { ...judgeMaglevConsistency(removals, tuples, [a.name, b.name]), evidence };
  },
};

export const XDP_LB_MAGLEV_CHECKS = [maglevBalance, xdpLbWeightZero, maglevConsistency];

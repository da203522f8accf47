import { z } from 'zod';
import type { ReportCheck } from './doc.js';
import { type CdfCurve, type CdfPlot, showUs } from './cdf-svg.js';
import { quantileOf } from '../measure/cdf.js';

/** One line or bar series of a plot. */
export interface Series {
  /** Legend text: what was measured and by what. */
  label: string;
  /** One value per x (lines) or per category (bars); null where nothing was measured. */
  values: (number | null)[];
  /** Stroke or fill, a CSS colour (#rrggbb). */
  color: string;
}

/** A time series drawn by uPlot in the page. */
export interface LinePlot {
  /** Drawn by uPlot in the page. */
  kind: 'lines';
  /** Unique in the page: the check id and what is plotted. */
  id: string;
  /** Heading above the plot. */
  title: string;
  /** x axis label. */
  xLabel: string;
  /** y axis label. */
  yLabel: string;
  /** Unit of y, for axis and legend values ('B' formats as KB/MB). */
  yUnit: 'B' | 'Mbit/s';
  /** x values, ascending (seconds). */
  x: number[];
  /** One line each, a value per x. */
  series: Series[];
  /** Shared top of the y axis, so plots meant to be compared use one scale. */
  yMax?: number;
  /** What the plot shows and why the kernel does it, in a sentence or two. */
  caption: string;
}

/** Categories with a bar per series, drawn as static SVG (no script needed). */
export interface BarPlot {
  /** Drawn as static SVG. */
  kind: 'bars';
  /** Unique in the page: the check id and what is plotted. */
  id: string;
  /** Heading above the chart. */
  title: string;
  /** Unit written after each value. */
  unit: string;
  /** One row each (a run, a path). */
  categories: string[];
  /** Bars per category: side by side, or stacked. */
  series: Series[];
  /** Series stacked into one bar per category (parts of a whole), else side by side. */
  stacked?: boolean;
  /** Logarithmic length (values spanning orders of magnitude, e.g. shaped vs open throughput). */
  log?: boolean;
  /** What the chart shows, in a sentence or two. */
  caption: string;
}

export type Plot = LinePlot | BarPlot | CdfPlot;

export const COLORS = { owned: '#1f77b4', queued: '#d62728', big: '#2ca02c', small: '#b0b0b0', rate: '#9467bd', open: '#ff7f0e' };

const Series = z.object({ t: z.array(z.number()), wmem: z.array(z.number().nullable()), backlog: z.array(z.number().nullable()) });
const BpRun = z.object({ series: Series, mbps: z.number(), openMbps: z.number().optional(), shapedMbps: z.number().optional() });
const BpMetrics = z.object({ bpf: BpRun.optional(), legacy: BpRun.optional() });
const BigRun = z.object({
  family: z.enum(['ipv4', 'ipv6']),
  bigTcp: z.enum(['on', 'off']),
  counts: z.object({ v4Big: z.number(), v6Big: z.number(), v4All: z.number(), v6All: z.number() }),
  mbps: z.number(),
});
const BigMetrics = z.object({ runs: z.array(BigRun) });
const NkMetrics = z.object({ mbps: z.object({ netkit: z.number(), veth: z.number(), host: z.number() }) });

/** The largest value of some series, or undefined when none holds a number (never Math.max of nothing). */
export function seriesMax(series: (number | null)[][]): number | undefined {
  const xs = series.flat().filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return xs.length ? xs.reduce((a, b) => Math.max(a, b)) : undefined;
}

/** Socket-owned bytes against the bottleneck's backlog over time, one plot per host-routing mode on one y scale. */
export function backpressurePlots(c: ReportCheck): Plot[] {
  const m = BpMetrics.safeParse(c.metrics);
  if (!m.success) return [];
  const modes = (['bpf', 'legacy'] as const).flatMap((mode) => (m.data[mode] ? [[mode, m.data[mode]] as const] : []));
  if (!modes.length) return [];
  const yMax = seriesMax(modes.flatMap(([, r]) => [r.series.wmem, r.series.backlog]));
  const lines: Plot[] = modes.map(([mode, r]) => ({
    kind: 'lines',
    id: `${c.id}-${mode}`,
    title: `${mode === 'bpf' ? 'BPF host routing' : 'legacy host routing (the node stack forwards)'}: socket-owned bytes vs qdisc backlog`,
    xLabel: 'time in the flow (s, node clock)',
    yLabel: 'bytes',
    yUnit: 'B',
    x: r.series.t.map((t) => t / 1000),
    series: [
      { label: "sender's sk_wmem_alloc (ss skmem t)", values: r.series.wmem, color: COLORS.owned },
      { label: 'bottleneck qdisc backlog (tc -s)', values: r.series.backlog, color: COLORS.queued },
    ],
    yMax,
    caption:
      mode === 'bpf'
        ? 'With BPF host routing the skb keeps its socket while it waits in the qdisc: the socket owns about what the queue ' +
          'holds, so TCP small queues throttle the sender.'
        : 'With legacy routing ip_rcv_core orphans the skb when the node stack receives it: the queue fills while the ' +
          'socket owns next to nothing, so the sender gets no backpressure from it.',
  }));
  const runs = modes.flatMap(([mode, r]) => [
    ...(r.openMbps !== undefined ? [[`${mode}: tbf lifted (probe)`, r.openMbps] as const] : []),
    [`${mode}: shaped${r.shapedMbps !== undefined ? ` to ${r.shapedMbps} Mbit/s` : ''}`, r.mbps] as const,
  ]);
  return [
    ...lines,
    throughputBars(c.id, runs, 'Throughput of each flow: the unshaped probe sets the shaped rate below what the path carries.'),
  ];
}

/** skbs over 64 KiB against the rest, per family and BIG TCP setting, and each run's throughput. */
export function bigtcpPlots(c: ReportCheck): Plot[] {
  const m = BigMetrics.safeParse(c.metrics);
  if (!m.success || !m.data.runs.length) return [];
  const runs = m.data.runs;
  const label = (r: z.infer<typeof BigRun>) => `${r.family}, BIG TCP ${r.bigTcp}`;
  const big = runs.map((r) => (r.family === 'ipv4' ? r.counts.v4Big : r.counts.v6Big));
  const all = runs.map((r) => (r.family === 'ipv4' ? r.counts.v4All : r.counts.v6All));
  return [
    {
      kind: 'bars',
      id: `${c.id}-skbs`,
      title: 'skbs the sending pod put on its device, by length',
      unit: 'skbs',
      categories: runs.map(label),
      series: [
        { label: 'longer than 65535 B (BIG TCP)', values: big, color: COLORS.big },
        { label: 'up to 65535 B', values: all.map((a, i) => a - big[i]), color: COLORS.small },
      ],
      stacked: true,
      caption:
        'Counted by a BPF program on the pod device’s egress. With the gso/gro sizes at 196608 the stack builds skbs ' +
        'longer than the 65535 B a 16-bit IP length field holds; with them at 65536, none.',
    },
    throughputBars(
      c.id,
      runs.map((r) => [label(r), r.mbps]),
      'Throughput of each counted flow.',
    ),
  ];
}

/** Throughput through netkit, veth and from the node itself. */
export function netkitThroughputPlots(c: ReportCheck): Plot[] {
  const m = NkMetrics.safeParse(c.metrics);
  if (!m.success) return [];
  const { netkit, veth, host } = m.data.mbps;
  return [
    throughputBars(
      c.id,
      [
        ['netkit pod', netkit],
        ['veth pod', veth],
        ['node itself', host],
      ],
      'The same bulk flow to the peer from a netkit pod, a veth pod beside it and the node’s own namespace.',
    ),
  ];
}

function throughputBars(check: string, runs: (readonly [string, number])[], caption: string): BarPlot {
  const values = runs.map(([, v]) => v);
  const max = seriesMax([values]) ?? 0;
  const min = values.filter((v) => v > 0).reduce((a, b) => Math.min(a, b), max);
  return {
    kind: 'bars',
    id: `${check}-throughput`,
    title: 'throughput per run',
    unit: 'Mbit/s',
    categories: runs.map(([k]) => k),
    series: [{ label: 'Mbit/s (iperf3, receiver)', values, color: COLORS.rate }],
    // Shaped (hundreds) beside open (tens of thousands): a linear bar would hide the small ones.
    log: min > 0 && max / min >= 20,
    caption,
  };
}

const BwmRun = z.object({ limitBps: z.number(), goodputBps: z.number(), expectedGoodputBps: z.number() });
const BwmMetrics = z.object({ runs: z.array(BwmRun), free: z.object({ goodputBps: z.number() }).optional() });
const mbit = (bps: number) => bps / 1e6;

/** bwm-rate: each limit's goodput beside what the limit allows after headers, and the unlimited pod beside the limited one. */
export function bwmRatePlots(c: ReportCheck): Plot[] {
  const m = BwmMetrics.safeParse(c.metrics);
  if (!m.success || !m.data.runs.length) return [];
  const { runs, free } = m.data;
  const label = (r: z.infer<typeof BwmRun>) => `limit ${mbit(r.limitBps)} Mbit/s`;
  return [
    {
      kind: 'bars',
      id: `${c.id}-goodput`,
      title: 'goodput of the limited pod at each limit',
      unit: 'Mbit/s',
      categories: runs.map(label),
      series: [
        { label: 'measured (iperf3, receiver)', values: runs.map((r) => mbit(r.goodputBps)), color: COLORS.rate },
        { label: 'what the limit allows after headers', values: runs.map((r) => mbit(r.expectedGoodputBps)), color: COLORS.small },
      ],
      caption: 'EDT stamps the limit on the wire rate; TCP/IP headers take their share of it, so the goodput sits just below.',
    },
    ...(free
      ? [
          throughputBars(
            c.id,
            [...runs.map((r) => [label(r), mbit(r.goodputBps)] as const), ['unlimited pod', mbit(free.goodputBps)] as const],
            'The unlimited pod on the same node and uplink is not stamped: it runs at what the path carries.',
          ),
        ]
      : []),
  ];
}

/** svc-backpressure's two flows: socket-LB with BPF host routing, and kube-proxy's iptables with the stack forwarding. */
export function svcBackpressurePlots(c: ReportCheck): Plot[] {
  const { bpf, iptables } = c.metrics as { bpf?: unknown; iptables?: unknown };
  return backpressurePlots({ ...c, metrics: { bpf, legacy: iptables } });
}

const CdfZ = z.object({ us: z.array(z.number()), p: z.array(z.number()), n: z.number() });
const LatencyRunZ = z.object({ p50Us: z.number().nullable().optional(), p99Us: z.number().nullable().optional(), cdf: CdfZ.optional() });
const LatencyMetrics = z.object({
  runs: z.object({ edt: LatencyRunZ.optional(), htb: LatencyRunZ.optional(), tbf: LatencyRunZ.optional() }),
  idle: LatencyRunZ.optional(),
});
const LATENCY_CURVES = [
  ['edt', 'EDT + fq', '#2ca02c'],
  ['htb', 'HTB class per pod', '#d62728'],
  ['tbf', 'tbf', '#ff7f0e'],
] as const;

/** A finite number, else undefined (JSON turns NaN into null). */
const num = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The curves of bwm-latency's runs that kept every round trip: EDT, HTB, tbf, and the idle floor. */
export function latencyCurves(c: ReportCheck): CdfCurve[] {
  const m = LatencyMetrics.safeParse(c.metrics);
  if (!m.success) return [];
  const runs: [string, string, z.infer<typeof LatencyRunZ> | undefined][] = [
    ...LATENCY_CURVES.map(
      ([k, label, color]) => [label, color, m.data.runs[k]] as [string, string, z.infer<typeof LatencyRunZ> | undefined],
    ),
    ['idle (no bulk flow): the floor', '#7f7f7f', m.data.idle],
  ];
  return runs.flatMap(([label, color, r]) => {
    if (!(r?.cdf?.us.length && r.cdf.us.length === r.cdf.p.length)) return [];
    const cdf = { us: r.cdf.us, p: r.cdf.p, n: r.cdf.n };
    // The marks sit on the curve (its nearest-rank quantiles); the tool's own p99, which the verdict used, is named beside when it differs.
    const p99 = quantileOf(cdf, 0.99);
    const tool = num(r.p99Us);
    const differs = tool !== undefined && p99 !== undefined && Math.abs(tool - p99) > 0.01 * p99;
    return [
      { label: differs ? `${label} (sockperf's p99 ${showUs(tool)})` : label, color, ...cdf, p50Us: quantileOf(cdf, 0.5), p99Us: p99 },
    ];
  });
}

/** bwm-latency: each shaper's round trips as a CDF, whole and its tail, p50 and p99 marked. */
export function bwmLatencyPlots(c: ReportCheck): Plot[] {
  const curves = latencyCurves(c);
  if (!curves.length) return [];
  return [
    {
      kind: 'cdf',
      id: `${c.id}-cdf`,
      title: 'round trips beside the pod’s own bulk flow: CDF per shaper',
      yMin: 0,
      curves,
      caption:
        'Each line is every round trip of one run (sockperf --full-log), sorted: how many took at most x. With EDT the ' +
        'pod’s packets wait in fq by their departure time and the round trips skip the bulk flow’s queue; an HTB class ' +
        'holds both in one queue, so a round trip waits behind the bulk it shares it with.',
    },
    {
      kind: 'cdf',
      id: `${c.id}-tail`,
      title: 'the tail: the slowest 10% of round trips',
      yMin: 0.9,
      curves,
      caption: 'The same runs from the 90th percentile up, where the verdict’s p99 sits.',
    },
  ];
}

const BY_CHECK: Record<string, (c: ReportCheck) => Plot[]> = {
  'bwm-latency': bwmLatencyPlots,
  backpressure: backpressurePlots,
  'svc-backpressure': svcBackpressurePlots,
  'bwm-rate': bwmRatePlots,
  bigtcp: bigtcpPlots,
  'netkit-throughput': netkitThroughputPlots,
};

/** The plots of one check's result: none for a check whose numbers say it all, or a skip that measured nothing. */
export function plotsFor(c: ReportCheck): Plot[] {
  // A skip can still carry figures (throughput under TCG: measured, not judged).
  return c.status === 'skip' && !Object.keys(c.metrics).length ? [] : (BY_CHECK[c.id]?.(c) ?? []);
}

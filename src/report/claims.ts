import { CHECK_IDS } from '../topology/ids.js';
import type { ReportCheck, ReportDoc } from './doc.js';

/**
 * holds: the checks behind the claim passed; refuted: one failed (the kernel went against it);
 * no answer: one could not establish its condition; not judged: measured where the claim is
 * not judged (emulated CPUs); not measured: no report ran its checks; not built yet: the lab
 * has no check for it.
 */
export type ClaimVerdict = 'holds' | 'refuted' | 'no answer' | 'not judged' | 'not measured' | 'not built yet';

/** One of the seed's claims and the checks that measure it. */
export interface Claim {
  /** Short name, the row key of the table and the JSON. */
  id: string;
  /** The claim as the seed makes it. */
  text: string;
  /** Check ids whose results decide it (all must have run). */
  checks: string[];
  /** What a person runs to measure it here. */
  howTo: string;
  /** The figures that matter, from the checks' results (default: their reasons). */
  measured?(by: Record<string, ReportCheck>): string;
  /** A condition beyond the checks passing, read from their metrics: true, or the verdict instead and why. */
  also?(by: Record<string, ReportCheck>): true | { verdict: ClaimVerdict; why: string };
}

/** Where a claim's measurement came from. */
export interface ClaimSource {
  /** Lab name of the run. */
  lab: string;
  /** Path of its report.json. */
  report: string;
  /** local or qemu. */
  backend: string;
  /** Kernel release the checks ran on. */
  kernel: string;
  /** KVM, TCG, or 'no VM' for namespaces on this machine's own kernel. */
  accelerator: string;
  /** When the report was written. */
  generatedAt: string;
}

/** A claim with what the lab measured for it. */
export interface ClaimResult {
  /** The claim id. */
  id: string;
  /** The claim as the seed makes it. */
  claim: string;
  /** What the measurements say about it. */
  verdict: ClaimVerdict;
  /** The figures behind the verdict (or what was missing). */
  measured: string;
  /** Where it was measured; none without a measurement. */
  where?: ClaimSource;
  /** The checks read, with their status and reason. */
  checks: { id: string; status: ReportCheck['status']; reason: string }[];
  /** What a person runs to measure it here. */
  howTo: string;
}

type Devices = { devices?: { tso_max_size?: number; expected?: number; mtu?: number; dev?: string; netns?: string }[] };
type Runs = { runs?: { family: string; bigTcp: string; counts: Record<string, number> }[] };
type Bp = Record<'bpf' | 'legacy', { wmemMedian?: number; backlogMedian?: number; ownedMedian?: number } | undefined>;

/** The standard Ethernet MTU a BIG TCP path keeps. */
const ETH_MTU = 1500;

const sizes = (c?: ReportCheck) => {
  const pairs = new Set(((c?.metrics as Devices)?.devices ?? []).map((d) => `tso_max_size ${d.tso_max_size} -> ${d.expected}`));
  return [...pairs].join(', ');
};
const bigRuns = (c?: ReportCheck) =>
  ((c?.metrics as Runs)?.runs ?? [])
    .map((r) => {
      const big = r.family === 'ipv4' ? r.counts.v4Big : r.counts.v6Big;
      const all = r.family === 'ipv4' ? r.counts.v4All : r.counts.v6All;
      return `${r.family} ${r.bigTcp}: ${big}/${all} skbs > 64 KiB`;
    })
    .join(', ');

/** The seed's claims, in its order. Claims whose checks do not exist yet say so. */
export const CLAIMS: readonly Claim[] = [
  {
    id: 'backpressure',
    text: 'host-stack forwarding loses TCP backpressure (the skb is orphaned); BPF host routing keeps it',
    checks: ['backpressure'],
    howTo: './lab demo (needs a rate-limited uplink: topologies/quickstart.yaml)',
    measured: ({ backpressure: c }) => {
      const m = c.metrics as Partial<Bp>;
      const one = (k: 'bpf' | 'legacy') =>
        m[k] ? `${k}: socket owned ${m[k].wmemMedian} B of ${m[k].backlogMedian} B queued (${m[k].ownedMedian})` : `${k}: no run`;
      return m.bpf || m.legacy ? `${one('bpf')}; ${one('legacy')}` : c.reason;
    },
  },
  {
    id: 'netkit-throughput',
    text: "netkit pods reach the host namespace's throughput",
    checks: ['netkit-throughput'],
    howTo:
      'a kernel with netkit (6.7+) where the CPUs are not emulated: ' +
      './lab kernels fetch 6.12 && ./lab run topologies/vm-quickstart.yaml (judged under KVM only)',
  },
  {
    id: 'netkit-blackhole',
    text: 'netkit drops everything while no program is attached, and a pod cannot detach the program',
    checks: ['netkit'],
    howTo: 'a kernel with netkit (6.7+): ./lab kernels fetch 6.12 && ./lab run topologies/vm-quickstart.yaml --only netkit',
  },
  {
    id: 'bigtcp-192k',
    text: 'BIG TCP at 192k, with TSO probing clamping each device to what its driver takes (the seed: ice at 128k)',
    checks: ['tso-probe', 'bigtcp'],
    howTo: './lab demo (veth takes 524280); ./lab run topologies/vm-quickstart.yaml for a driver that clamps (virtio-net: 65536)',
    measured: (by) => `${sizes(by['tso-probe'])}; ${bigRuns(by.bigtcp)}`,
  },
  {
    id: 'bigtcp-mtu',
    text: 'BIG TCP needs no MTU change',
    checks: ['tso-probe', 'bigtcp'],
    howTo: './lab demo',
    measured: (by) => {
      const mtus = [...new Set(((by['tso-probe'].metrics as Devices).devices ?? []).map((d) => d.mtu))];
      return `device MTUs: ${mtus.join(', ') || 'not in the report'}; ${bigRuns(by.bigtcp)}`;
    },
    also: (by) => {
      const devices = (by['tso-probe'].metrics as Devices).devices ?? [];
      if (!devices.length || devices.some((d) => d.mtu === undefined))
        return { verdict: 'not measured', why: 'the report has no MTU for every device (written before tso-probe recorded it)' };
      // Big skbs over a jumbo MTU would say nothing about whether BIG TCP needs one.
      const big = devices.filter((d) => d.mtu! > ETH_MTU);
      const list = big.map((d) => `${d.netns}/${d.dev} ${d.mtu}`).join(', ');
      return big.length ? { verdict: 'no answer', why: `${big.length} devices had an MTU above ${ETH_MTU}: ${list}` } : true;
    },
  },
  {
    id: 'kube-proxy-free',
    text: 'services without kube-proxy (socket-level load balancing in BPF)',
    checks: ['kube-proxy-free'],
    howTo: './lab run topologies/services.yaml (in guests: topologies/vm-kpr.yaml --kernel 6.1,6.12,7.3)',
  },
  {
    id: 'xdp-lb',
    text: 'an XDP load balancer answers before the stack sees the packet',
    checks: ['xdp-lb-reachable', 'xdp-lb-in-xdp'],
    howTo: './lab run topologies/xdp-lb.yaml (SNAT and DSR to pod backends)',
  },
  {
    id: 'edt',
    text: "EDT rate limiting (the Bandwidth Manager) gives a 4.2x better p99 latency than a tbf at the node's uplink",
    checks: ['bwm-latency'],
    howTo:
      'sch_fq (here: a VM kernel) on a CPU that is not emulated: ./lab kernels fetch 7.3 && ' +
      './lab run topologies/vm-bandwidth.yaml --only bwm-latency (reported, not judged, under TCG)',
  },
];

/** Which accelerator timed the run: a VM's from its backend's timing, none for the host's own kernel. */
export function acceleratorOf(doc: Pick<ReportDoc, 'backend' | 'timing'>): string {
  if (doc.backend === 'local') return 'no VM';
  if (doc.timing === 'emulated') return 'TCG';
  return doc.timing === 'native' ? 'KVM' : 'unknown';
}

/** A report read from disk, with its path. */
export interface LoadedReport {
  /** Where the report was read from. */
  path: string;
  /** The report. */
  doc: ReportDoc;
}

/**
 * For each check id, the newest report that ran it (not skipped), else the newest that
 * skipped it: the measurement a claim reads.
 */
export function newestRuns(reports: readonly LoadedReport[]): Map<string, { check: ReportCheck; report: LoadedReport }> {
  const out = new Map<string, { check: ReportCheck; report: LoadedReport }>();
  const byAge = [...reports].sort((a, b) => b.doc.generatedAt.localeCompare(a.doc.generatedAt));
  for (const report of byAge)
    for (const check of report.doc.checks) {
      const had = out.get(check.id);
      if (!had || (had.check.status === 'skip' && check.status !== 'skip')) out.set(check.id, { check, report });
    }
  return out;
}

/** Judge every claim from the reports given (pure: the CLI reads the files). */
export function evaluateClaims(reports: readonly LoadedReport[], known: readonly string[] = CHECK_IDS): ClaimResult[] {
  const runs = newestRuns(reports);
  return CLAIMS.map((claim) => {
    const base = { id: claim.id, claim: claim.text, howTo: claim.howTo };
    if (!claim.checks.every((id) => known.includes(id)))
      return { ...base, verdict: 'not built yet', measured: `no check yet (${claim.checks.join(', ')})`, checks: [] };
    const found = claim.checks.map((id) => runs.get(id));
    const checks = found.flatMap((f) => (f ? [{ id: f.check.id, status: f.check.status, reason: f.check.reason }] : []));
    if (found.some((f) => !f))
      return { ...base, verdict: 'not measured', measured: `no report ran ${claim.checks.filter((_, i) => !found[i]).join(', ')}`, checks };
    const by = Object.fromEntries(found.map((f) => [f!.check.id, f!.check]));
    // Where: the report of the claim's first check (a claim read from several reports names the first).
    const r = found[0]!.report;
    const where: ClaimSource = {
      lab: r.doc.lab,
      report: r.path,
      backend: r.doc.backend,
      kernel: r.doc.kernel.release,
      accelerator: acceleratorOf(r.doc),
      generatedAt: r.doc.generatedAt,
    };
    const statuses = found.map((f) => f!.check.status);
    const skipped = found.filter((f) => f!.check.status === 'skip').map((f) => f!.check);
    if (statuses.includes('fail')) return { ...base, verdict: 'refuted', measured: reasons(found), where, checks };
    if (statuses.includes('error')) return { ...base, verdict: 'no answer', measured: reasons(found), where, checks };
    if (skipped.length) {
      // A skip that still measured (throughput under TCG) reports its figures; a bare skip names what was missing.
      const judged = skipped.every((c) => Object.keys(c.metrics).length > 0);
      return { ...base, verdict: judged ? 'not judged' : 'not measured', measured: skipped.map((c) => c.reason).join('; '), where, checks };
    }
    const extra = claim.also?.(by) ?? true;
    const measured = claim.measured?.(by) ?? reasons(found);
    if (extra !== true) return { ...base, verdict: extra.verdict, measured: `${measured}; ${extra.why}`, where, checks };
    return { ...base, verdict: 'holds', measured, where, checks };
  });
}

const reasons = (found: ({ check: ReportCheck } | undefined)[]) => found.map((f) => `${f!.check.id}: ${f!.check.reason}`).join('; ');

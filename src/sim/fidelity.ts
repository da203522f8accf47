import type { CheckResult } from '../checks/check.js';

/** One metric of one check, measured and predicted. */
export interface MetricPair {
  check: string;
  metric: string;
  kernel?: number;
  sim?: number;
  /** |sim - kernel| / |kernel|; undefined when either is missing or the kernel's is 0 and the model's is not. */
  relErr?: number;
}

/** One check's verdict both ways. */
export interface VerdictPair {
  check: string;
  kernel?: string;
  sim?: string;
  agree: boolean;
  /** Why a side skipped ("kernel: no sch_fq ..."): then nothing was compared, and the disagreement is not a finding. */
  skipped?: string;
}

export interface Fidelity {
  verdicts: VerdictPair[];
  metrics: MetricPair[];
}

type M = Record<string, unknown>;
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const mbps = (v: unknown) => (num(v) === undefined ? undefined : Math.round(num(v)! / 1e4) / 100);

/**
 * The figures a check's verdict rests on, by name, from its metrics (both runs have the
 * same shape: the same check code wrote them).
 */
export function keyMetrics(r: CheckResult): Record<string, number | undefined> {
  const m = r.metrics as M;
  switch (r.id) {
    case 'tso-probe': {
      const devs = (m.devices as M[] | undefined) ?? [];
      return { devices: devs.length, devicesOk: devs.filter((d) => d.ok).length };
    }
    case 'connectivity':
      return { attempts: num(m.attempts), reached: num(m.reached) };
    case 'backpressure': {
      const out: Record<string, number | undefined> = {};
      for (const mode of ['bpf', 'legacy'] as const) {
        const x = (m[mode] as M | undefined) ?? {};
        for (const k of ['mbps', 'backlogMedian', 'wmemMedian', 'ownedMedian', 'openMbps']) out[`${mode}.${k}`] = num(x[k]);
      }
      return out;
    }
    case 'bigtcp': {
      const out: Record<string, number | undefined> = {};
      for (const run of (m.runs as M[] | undefined) ?? []) {
        const c = run.counts as Record<string, number>;
        const v4 = run.family === 'ipv4';
        const all = v4 ? c.v4All : c.v6All;
        const big = v4 ? c.v4Big : c.v6Big;
        out[`${run.family}.${run.bigTcp}.mbps`] = num(run.mbps);
        out[`${run.family}.${run.bigTcp}.bigShare`] = all ? Math.round((big / all) * 1000) / 1000 : undefined;
      }
      return out;
    }
    case 'svc-clusterip': {
      const fs = (m.frontends as M[] | undefined) ?? [];
      return { attempts: fs.reduce((a, f) => a + (num(f.attempts) ?? 0), 0), failed: fs.reduce((a, f) => a + (num(f.failed) ?? 0), 0) };
    }
    case 'bwm-rate': {
      const out: Record<string, number | undefined> = { 'free.mbps': mbps((m.free as M | undefined)?.goodputBps) };
      for (const r of (m.runs as M[] | undefined) ?? []) out[`${(num(r.limitBps) ?? 0) / 1e6}M.mbps`] = mbps(r.goodputBps);
      return out;
    }
    case 'bwm-horizon':
      return {
        receivedKbps: num(m.receivedBps) === undefined ? undefined : Math.round(num(m.receivedBps)! / 10) / 100,
        dropHorizon: num(m.dropHorizon),
      };
    case 'bwm-backpressure': {
      const out: Record<string, number | undefined> = {};
      for (const mode of ['bpf', 'legacy'] as const) {
        const x = (m[mode] as M | undefined) ?? {};
        out[`${mode}.mbps`] = mbps(x.goodputBps);
        for (const k of ['backlogMedian', 'wmemMedian', 'ownedMedian']) out[`${mode}.${k}`] = num(x[k]);
      }
      return out;
    }
    case 'svc-no-backend':
      return { attempts: num(m.attempts), maxUs: num(m.maxUs) };
    default:
      return {};
  }
}

export function relErr(kernel?: number, sim?: number): number | undefined {
  if (kernel === undefined || sim === undefined) return undefined;
  if (kernel === 0) return sim === 0 ? 0 : undefined;
  return Math.round((Math.abs(sim - kernel) / Math.abs(kernel)) * 1000) / 1000;
}

/** Side by side: every check either run has, its verdicts, and its key metrics with the relative error. */
export function compare(kernel: readonly CheckResult[], sim: readonly CheckResult[]): Fidelity {
  const ids = [...new Set([...kernel.map((r) => r.id), ...sim.map((r) => r.id)])];
  const verdicts: VerdictPair[] = [];
  const metrics: MetricPair[] = [];
  for (const id of ids) {
    const k = kernel.find((r) => r.id === id);
    const s = sim.find((r) => r.id === id);
    const skips = [k && k.status === 'skip' ? `kernel: ${k.reason}` : '', s && s.status === 'skip' ? `sim: ${s.reason}` : ''].filter(
      Boolean,
    );
    const agree = !!k && !!s && k.status === s.status;
    verdicts.push({
      check: id,
      kernel: k?.status,
      sim: s?.status,
      agree,
      ...(skips.length && !agree ? { skipped: skips.join('; ') } : {}),
    });
    const km = k ? keyMetrics(k) : {};
    const sm = s ? keyMetrics(s) : {};
    for (const name of [...new Set([...Object.keys(km), ...Object.keys(sm)])])
      metrics.push({ check: id, metric: name, kernel: km[name], sim: sm[name], relErr: relErr(km[name], sm[name]) });
  }
  return { verdicts, metrics };
}

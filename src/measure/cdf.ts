/** An empirical CDF, reduced to the points a plot needs: latency `us[i]` is the `p[i]` quantile. */
export interface Cdf {
  /** Latency, µs, non-decreasing. */
  us: number[];
  /** Fraction of the samples at or below `us[i]`, (0, 1], increasing; the last is 1 (the largest sample). */
  p: number[];
  /** How many samples it was made from. */
  n: number;
}

/**
 * sockperf's --full-log CSV ("packet, txTime(sec), rxTime(sec), rtt(usec)", one line per
 * observation of the valid duration, after a copy of its summary): the round trips, µs.
 */
export function parseFullLog(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/^\s*\d+,\s*[\d.]+,\s*[\d.]+,\s*([\d.]+)\s*$/gm)) out.push(Number(m[1]));
  return out;
}

/**
 * The quantiles a CDF plot shows: every percentile, then the tail (99.1 .. 99.9, 99.99) and
 * the largest sample, so p99 and beyond keep their shape. Nearest rank: the p quantile is
 * the ceil(p*n)-th smallest sample. Undefined for no samples (a CDF of nothing is no CDF).
 */
export function cdfOf(samples: readonly number[]): Cdf | undefined {
  const xs = samples.filter(Number.isFinite).sort((a, b) => a - b);
  const n = xs.length;
  if (!n) return undefined;
  const ps = [...Array.from({ length: 100 }, (_, i) => (i + 1) / 100), ...Array.from({ length: 9 }, (_, i) => 0.991 + i / 1000), 0.9999, 1];
  const ranks = new Set<number>();
  for (const p of ps) ranks.add(Math.min(n, Math.max(1, Math.ceil(Math.round(p * n * 1e6) / 1e6))));
  const sorted = [...ranks].sort((a, b) => a - b);
  return { us: sorted.map((r) => xs[r - 1]), p: sorted.map((r) => r / n), n };
}

/** The p quantile of a CDF (the smallest latency whose fraction reaches p); undefined for p outside (0, 1]. */
export function quantileOf(cdf: Cdf, p: number): number | undefined {
  if (!(p > 0 && p <= 1)) return undefined;
  const i = cdf.p.findIndex((x) => x >= p - 1e-12);
  return i < 0 ? undefined : cdf.us[i];
}

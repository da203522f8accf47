import type { CheckResult, CheckStatus } from '../checks/check.js';
import { table } from './table.js';

/** The spread of one numeric metric over the runs that reported it. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Runs that reported the metric as a number. */
  n: number;
}

/** One check over N runs of `--repeat`. */
export interface FlakeStats {
  id: CheckResult['id'];
  title: string;
  runs: number;
  counts: Record<CheckStatus, number>;
  /** pass / (pass + fail + error): skips are no verdict; null when every run skipped. */
  passRate: number | null;
  /** Each numeric metric (nested ones as a.b.c) and the check's time `ms`, over the runs. */
  metrics: Record<string, Spread>;
  /** Each distinct reason of a fail or error, with the runs (1-based) that gave it. */
  problems: { status: 'fail' | 'error'; reason: string; runs: number[] }[];
  /** Repetitions the check made by design to establish its condition, over all runs, and the runs that made any. */
  retries: { count: number; runs: number[]; why: string[] };
}

/** Nested objects are walked this deep: deeper values are evidence, not metrics. */
const MAX_DEPTH = 3;

/** Numeric leaves of a check's metrics, keyed by their dotted path; arrays (matrices, samples) are not metrics. */
export function numericMetrics(m: Record<string, unknown>, prefix = '', depth = 0): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'number' && Number.isFinite(v)) out[key] = v;
    else if (v && typeof v === 'object' && !Array.isArray(v) && depth + 1 < MAX_DEPTH)
      Object.assign(out, numericMetrics(v as Record<string, unknown>, key, depth + 1));
  }
  return out;
}

/** Median, min and max of a non-empty list; the median of an even count is the mean of the middle two. */
export function spread(values: readonly number[]): Spread {
  if (!values.length) throw new RangeError('spread of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s[s.length - 1], n: s.length };
}

/** Per check, over the runs (each run: the results of one pass over the checks), in first-seen order. */
export function flakeStats(runs: readonly (readonly CheckResult[])[]): FlakeStats[] {
  const ids = [...new Set(runs.flatMap((r) => r.map((c) => c.id)))];
  return ids.map((id) => {
    const mine = runs.flatMap((r, i) => r.filter((c) => c.id === id).map((c) => ({ run: i + 1, c })));
    const counts = { pass: 0, fail: 0, error: 0, skip: 0 };
    for (const { c } of mine) counts[c.status]++;
    const judged = counts.pass + counts.fail + counts.error;
    const values = new Map<string, number[]>();
    for (const { c } of mine) {
      if (c.status === 'skip') continue;
      for (const [k, v] of Object.entries({ ...numericMetrics(c.metrics), ms: c.ms })) values.set(k, [...(values.get(k) ?? []), v]);
    }
    const problems: FlakeStats['problems'] = [];
    for (const { run, c } of mine) {
      if (c.status !== 'fail' && c.status !== 'error') continue;
      const same = problems.find((p) => p.status === c.status && p.reason === c.reason);
      if (same) same.runs.push(run);
      else problems.push({ status: c.status, reason: c.reason, runs: [run] });
    }
    const retried = mine.filter(({ c }) => c.retries?.count);
    const retries = {
      count: retried.reduce((n, { c }) => n + c.retries!.count, 0),
      runs: retried.map(({ run }) => run),
      why: [...new Set(retried.map(({ c }) => c.retries!.why))],
    };
    return {
      id,
      title: mine[0].c.title,
      runs: mine.length,
      counts,
      passRate: judged ? counts.pass / judged : null,
      metrics: Object.fromEntries([...values].map(([k, v]) => [k, spread(v)])),
      problems,
      retries,
    };
  });
}

const pct = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(0)}%`);
const num = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2));

/** The check's time and up to `max` other metrics, those that varied first, as "name median [min..max]". */
function metricSummary(s: FlakeStats, max = 3): string {
  const others = Object.keys(s.metrics).filter((k) => k !== 'ms');
  const varied = (k: string) => s.metrics[k].min !== s.metrics[k].max;
  const shown = ['ms', ...others.filter(varied), ...others.filter((k) => !varied(k))].filter((k) => s.metrics[k]).slice(0, max + 1);
  return shown.map((k) => `${k} ${num(s.metrics[k].median)} [${num(s.metrics[k].min)}..${num(s.metrics[k].max)}]`).join(', ');
}

/** By-design repetitions, counted apart from the verdicts: "3 retries by design in runs 1,4 (why)". */
const retriesText = (s: FlakeStats) =>
  s.retries.count
    ? `${s.retries.count} retr${s.retries.count > 1 ? 'ies' : 'y'} by design in run${s.retries.runs.length > 1 ? 's' : ''} ${s.retries.runs.join(',')} (${s.retries.why.join('; ')})`
    : '';

/** The checks of a repeated run, for a person at a terminal: counts, pass rate, first problem, metric spreads. */
export function flakeTable(stats: readonly FlakeStats[]): string {
  return table(
    ['CHECK', 'RUNS', 'PASS', 'FAIL', 'ERROR', 'SKIP', 'RATE', 'NOTES'],
    stats.map((s) => {
      const p = s.problems[0];
      const why = p ? `${p.status} in run${p.runs.length > 1 ? 's' : ''} ${p.runs.join(',')}: ${p.reason}` : '';
      return [
        s.id,
        String(s.runs),
        String(s.counts.pass),
        String(s.counts.fail),
        String(s.counts.error),
        String(s.counts.skip),
        pct(s.passRate),
        [why, retriesText(s), metricSummary(s)].filter(Boolean).join('; '),
      ];
    }),
  );
}

const esc = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/**
 * JUnit XML of a repeated run: one testcase per check, its counts, pass rate and metric spreads
 * as properties; a check that failed or errored in any run is a <failure> or <error> naming the runs.
 */
export function flakeJunit(lab: string, stats: readonly FlakeStats[], totalMs: number): string {
  const secs = (ms: number) => (ms / 1000).toFixed(3);
  const failed = stats.filter((s) => s.counts.fail).length;
  const errored = stats.filter((s) => !s.counts.fail && s.counts.error).length;
  const skipped = stats.filter((s) => s.counts.skip === s.runs).length;
  const cases = stats.map((s) => {
    const props = [
      ['runs', String(s.runs)],
      ...Object.entries(s.counts),
      ['passRate', s.passRate === null ? 'n/a' : s.passRate.toFixed(4)],
      ['retriesByDesign', String(s.retries.count)],
      ...Object.entries(s.metrics).map(([k, v]) => [`metric.${k}`, `median=${num(v.median)} min=${num(v.min)} max=${num(v.max)} n=${v.n}`]),
    ].map(([k, v]) => `        <property name="${esc(String(k))}" value="${esc(String(v))}"/>`);
    const ms = s.metrics.ms ? s.metrics.ms.median * s.metrics.ms.n : 0;
    const detail = s.problems.map((p) => `${p.status} in runs ${p.runs.join(',')} of ${s.runs}: ${p.reason}`).join('\n');
    const head = `passed ${s.counts.pass} of ${s.runs} runs (${pct(s.passRate)})`;
    const verdict = s.counts.fail
      ? `      <failure message="${esc(head)}">${esc(detail)}</failure>`
      : s.counts.error
        ? `      <error message="${esc(head)}">${esc(detail)}</error>`
        : s.counts.skip === s.runs
          ? `      <skipped message="skipped in every run"/>`
          : `      <system-out>${esc(head)}</system-out>`;
    return [
      `    <testcase classname="datapath-lab.${esc(lab)}" name="${esc(s.id)}" time="${secs(ms)}">`,
      '      <properties>',
      ...props,
      '      </properties>',
      verdict,
      '    </testcase>',
    ].join('\n');
  });
  const attrs = `tests="${stats.length}" failures="${failed}" errors="${errored}" skipped="${skipped}" time="${secs(totalMs)}"`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="datapath-lab" ${attrs}>`,
    `  <testsuite name="${esc(lab)}" ${attrs}>`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

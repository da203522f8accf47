import { readFileSync } from 'node:fs';
import { HtmlValidate } from 'html-validate';
import { describe, expect, it } from 'vitest';
import { pageAssets } from '../../src/report/assets.js';
import { ReportDoc } from '../../src/report/doc.js';
import { reportHtml } from '../../src/report/html.js';
import { cdfOf, parseFullLog, quantileOf } from '../../src/measure/cdf.js';
import { cdfRange, cdfSvg, logTicks, showUs } from '../../src/report/cdf-svg.js';
import type { ReportCheck } from '../../src/report/doc.js';
import { bwmLatencyPlots, latencyCurves } from '../../src/report/plots.js';

/** sockperf --full-log as it writes it: a copy of the summary, then one CSV line per observation. */
const FULL_LOG = `------------------------------
sockperf: [2;35mTotal 4 observations[0m; each percentile contains 0.04 observations
sockperf: ---> percentile 50.000 =   17.473
------------------------------
packet, txTime(sec), rxTime(sec), rtt(usec)
0, 2.739266267, 2.739283489, 17.222
1, 2.739283499, 2.739302435, 18.936
2, 2.739302445, 2.739319858, 917.413
3, 2.739319868, 2.739337191, 17.323
------------------------------
`;

describe('latency CDF data', () => {
  it("reads every round trip of sockperf's full log, and nothing of its summary", () => {
    expect(parseFullLog(FULL_LOG)).toEqual([17.222, 18.936, 917.413, 17.323]);
    expect(parseFullLog('sockperf: ---> percentile 99.000 =  847.659\n')).toEqual([]);
  });

  it('is the nearest-rank quantile at every percentile and through the tail, ending at the largest sample', () => {
    const xs = Array.from({ length: 10_000 }, (_, i) => 10_000 - i); // 1..10000 in reverse
    const c = cdfOf(xs)!;
    expect(c.n).toBe(10_000);
    expect(quantileOf(c, 0.5)).toBe(5000);
    expect(quantileOf(c, 0.99)).toBe(9900);
    expect(quantileOf(c, 0.999)).toBe(9990);
    expect(quantileOf(c, 0.9999)).toBe(9999);
    expect(c.us.at(-1)).toBe(10_000);
    expect(c.p.at(-1)).toBe(1);
    expect(c.us.length).toBe(110); // 100 percentiles, 99.1..99.9, 99.99 (100 is the largest)
    for (let i = 1; i < c.us.length; i++) {
      expect(c.us[i]).toBeGreaterThanOrEqual(c.us[i - 1]);
      expect(c.p[i]).toBeGreaterThan(c.p[i - 1]);
    }
  });

  it('keeps a small sample whole (each rank once) and has no CDF of nothing', () => {
    const c = cdfOf([30, 10, 20, Number.NaN])!;
    expect(c).toEqual({ us: [10, 20, 30], p: [1 / 3, 2 / 3, 1], n: 3 });
    expect(quantileOf(c, 0.5)).toBe(20);
    expect(quantileOf(c, 0)).toBeUndefined();
    expect(cdfOf([])).toBeUndefined();
    expect(cdfOf([Number.NaN])).toBeUndefined();
  });
});

const run = (shift: number, n = 1000) => {
  const cdf = cdfOf(Array.from({ length: n }, (_, i) => 100 + shift * (i / n) ** 8))!;
  return { shaper: 'x', observations: n, p50Us: quantileOf(cdf, 0.5)!, p99Us: quantileOf(cdf, 0.99)!, cdf };
};
const check = (metrics: Record<string, unknown>): ReportCheck =>
  ({ id: 'bwm-latency', title: 't', status: 'pass', reason: 'r', metrics, evidence: [], ms: 1 }) as unknown as ReportCheck;

describe('bwm-latency CDF plots', () => {
  it('draws EDT, HTB, tbf and the idle floor with p50 and p99 marked, whole and tail', () => {
    const c = check({ runs: { edt: run(200), htb: run(5000), tbf: run(3000) }, idle: run(10) });
    const curves = latencyCurves(c);
    expect(curves.map((x) => x.label)).toEqual(['EDT + fq', 'HTB class per pod', 'tbf', 'idle (no bulk flow): the floor']);
    const plots = bwmLatencyPlots(c);
    expect(plots.map((p) => [p.kind, p.id])).toEqual([
      ['cdf', 'bwm-latency-cdf'],
      ['cdf', 'bwm-latency-tail'],
    ]);
    const svg = cdfSvg(plots[0] as Parameters<typeof cdfSvg>[0]);
    expect(svg.match(/<path class="curve"/g)).toHaveLength(4);
    expect(svg.match(/data-mark="p50"/g)).toHaveLength(4);
    expect(svg.match(/data-mark="p99"/g)).toHaveLength(4);
    expect(svg).toContain(`EDT + fq: p50 ${showUs(run(200).p50Us)}, p99 ${showUs(run(200).p99Us)} (1000 round trips)`);
    // The tail starts at 0.9: p50 is below it and not marked there.
    const tail = cdfSvg(plots[1] as Parameters<typeof cdfSvg>[0]);
    expect(tail).not.toContain('data-mark="p50"');
    expect(tail.match(/data-mark="p99"/g)).toHaveLength(4);
  });

  it('plots nothing for a report without full logs (percentiles only) or a run that measured nothing', () => {
    const { cdf: _, ...noCdf } = run(200);
    expect(bwmLatencyPlots(check({ runs: { edt: noCdf, htb: noCdf } }))).toEqual([]);
    expect(bwmLatencyPlots(check({}))).toEqual([]);
    expect(latencyCurves(check({ runs: { edt: { ...noCdf, cdf: { us: [], p: [], n: 0 } } } }))).toEqual([]);
    // JSON turns a NaN percentile into null: the curve stays, marked at its own quantiles.
    const nulls = latencyCurves(check({ runs: { edt: { ...run(200), p99Us: null } } }));
    expect(nulls.map((c) => [c.label, c.p99Us])).toEqual([['EDT + fq', run(200).p99Us]]);
  });

  it("marks the curve's own quantiles, and names the tool's p99 beside when it differs (sockperf interpolates)", () => {
    const [c] = latencyCurves(check({ runs: { htb: { ...run(5000), p99Us: 327_008 } } }));
    expect(c.p99Us).toBe(run(5000).p99Us);
    expect(c.label).toBe("HTB class per pod (sockperf's p99 327 ms)");
  });

  it('puts latency on a log axis with 1-2-5 ticks over the samples', () => {
    expect(logTicks(15, 1200)).toEqual([20, 50, 100, 200, 500, 1000]);
    expect(logTicks(0, 10)).toEqual([]);
    expect(cdfRange([])).toBeUndefined();
    const [lo, hi] = cdfRange(latencyCurves(check({ runs: { edt: run(200) } })))!;
    expect(lo).toBeLessThan(100);
    expect(hi).toBeGreaterThan(300);
    expect([showUs(850), showUs(12_345), showUs(1500), showUs(2.25)]).toEqual(['850 µs', '12 ms', '1.5 ms', '2.3 µs']);
  });
});

describe('report.html with latency CDFs', () => {
  it('validates, holds both CDF plots inline as SVG, and fetches nothing', async () => {
    const base = JSON.parse(readFileSync(new URL('./fixtures/report-quickstart.json', import.meta.url), 'utf8'));
    const lat = {
      ...base.checks[0],
      id: 'bwm-latency',
      status: 'pass',
      metrics: { runs: { edt: run(200), htb: run(5000) }, idle: run(10) },
    };
    const doc = ReportDoc.parse({ ...base, checks: [...base.checks, lat] });
    const html = reportHtml(doc, await pageAssets());
    const res = await new HtmlValidate({ extends: ['html-validate:recommended'] }).validateString(html);
    expect(res.results.flatMap((r) => r.messages.map((m) => `${m.line}:${m.column} ${m.ruleId}: ${m.message}`))).toEqual([]);
    expect(html).toContain('id="plot-bwm-latency-cdf"');
    expect(html).toContain('id="plot-bwm-latency-tail"');
    // The samples are drawn, not dumped into the metrics table.
    expect(html.match(/<th scope="row">cdf<\/th><td><em>plotted above/g)).toHaveLength(3);
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
  }, 30_000);
});

describe('bwm-latency of a real VM run (kernel 7.3 under TCG, a loaded machine)', () => {
  /** report.json of `lab run` of topologies/vm-bandwidth.yaml (renamed uivbw) --only bwm-latency. */
  const vm = ReportDoc.parse(JSON.parse(readFileSync(new URL('./fixtures/report-vm-bwm-latency.json', import.meta.url), 'utf8')));
  const lat = vm.checks.find((c) => c.id === 'bwm-latency')!;

  it("holds every round trip sockperf counted: the full log's CDF has its observations, for each shaper", () => {
    const runs = (lat.metrics as { runs: Record<string, { observations: number; cdf: { n: number } }> }).runs;
    expect(Object.keys(runs).sort()).toEqual(['edt', 'htb', 'tbf']);
    for (const r of Object.values(runs)) expect(r.cdf.n).toBe(r.observations);
    expect(latencyCurves(lat)).toHaveLength(4);
  });

  it('renders both CDFs into a page that validates', async () => {
    const html = reportHtml(vm, await pageAssets());
    const res = await new HtmlValidate({ extends: ['html-validate:recommended'] }).validateString(html);
    expect(res.results.flatMap((r) => r.messages.map((m) => `${m.line}:${m.column} ${m.ruleId}: ${m.message}`))).toEqual([]);
    expect(html.match(/<path class="curve"/g)).toHaveLength(8);
  }, 30_000);
});

import { readFileSync } from 'node:fs';
import { HtmlValidate } from 'html-validate';
import { describe, expect, it } from 'vitest';
import { pageAssets } from '../../src/report/assets.js';
import { demoHtml } from '../../src/report/demo-page.js';
import { DEMO_IDS, DEMOS, vmNotice } from '../../src/report/demos.js';
import { ReportDoc, type ReportCheck } from '../../src/report/doc.js';
import { type BarPlot, backpressurePlots, bwmRatePlots, svcBackpressurePlots, type LinePlot } from '../../src/report/plots.js';
import { CHECK_IDS } from '../../src/topology/ids.js';

/** report.json of a real `lab run` of topologies/quickstart.yaml on this machine (renamed rep-qs). */
const doc = ReportDoc.parse(JSON.parse(readFileSync(new URL('./fixtures/report-quickstart.json', import.meta.url), 'utf8')));
const check = (id: string) => doc.checks.find((c) => c.id === id)!;
const hv = new HtmlValidate({ extends: ['html-validate:recommended'] });

async function problems(html: string): Promise<string[]> {
  const res = await hv.validateString(html);
  return res.results.flatMap((r) => r.messages.map((m) => `${m.line}:${m.column} ${m.ruleId}: ${m.message}`));
}

/** The data the page hands uPlot. */
const plotData = (html: string): LinePlot[] =>
  JSON.parse(/<script type="application\/json" id="plot-data">(.*?)<\/script>/s.exec(html)![1]);

describe('demo catalogue', () => {
  it('each demo runs a known check on a shipped topology and explains it', () => {
    for (const id of DEMO_IDS) {
      const d = DEMOS[id];
      expect(d.id).toBe(id);
      expect(CHECK_IDS).toContain(d.check);
      expect(readFileSync(new URL(`../../topologies/${d.topology}`, import.meta.url), 'utf8')).toMatch(/^name: /m);
      expect(d.explain.length).toBeGreaterThan(0);
    }
  });
  it('the VM demos say up front that they boot a VM under TCG, the local ones say nothing', () => {
    expect(vmNotice(DEMOS.netkit)).toMatch(/QEMU VM with kernel 6\.12.*TCG/s);
    expect(vmNotice(DEMOS.bandwidth)).toMatch(/kernel 7\.3/);
    expect(vmNotice(DEMOS.backpressure)).toBeUndefined();
  });
});

describe('demo.html', () => {
  it('backpressure: validates, explains, carries both modes on one scale and the verdict', async () => {
    const html = demoHtml(DEMOS.backpressure, doc, await pageAssets());
    expect(await problems(html)).toEqual([]);
    // The control: a duplicated id is refused, so the validator reads this page.
    expect(await problems(html.replace('id="explain"', `id="check-backpressure"`))).not.toEqual([]);
    expect(html).toContain('ip_rcv_core');
    expect(html).toContain(`<span class="badge ${check('backpressure').status}">`);
    const lines = plotData(html);
    expect(lines.map((p) => p.id)).toEqual(['backpressure-bpf', 'backpressure-legacy']);
    expect(lines[0].yMax).toBe(lines[1].yMax);
    expect(html).toContain('id="plot-backpressure-throughput"');
    // Only the demo's check: no other check of the report.
    expect(html).not.toContain('data-check="bigtcp"');
  });
  it('bigtcp: the skb bars as static SVG, no line plot', async () => {
    const html = demoHtml(DEMOS.bigtcp, doc, await pageAssets());
    expect(await problems(html)).toEqual([]);
    expect(html).toContain('id="plot-bigtcp-skbs"');
    expect(plotData(html)).toEqual([]);
  });
  it('a check without plots shows its numbers; a report without the check says so', async () => {
    const bwm: ReportCheck = { ...check('bigtcp'), id: 'bwm-rate', metrics: { runs: [{ limitBps: 10e6, goodputBps: 9.4e6 }] } };
    const withBwm = demoHtml(DEMOS.bandwidth, { ...doc, checks: [bwm] }, await pageAssets());
    expect(await problems(withBwm)).toEqual([]);
    expect(withBwm).toContain('<summary>Measured</summary>');
    expect(withBwm).toContain('goodputBps');
    const none = demoHtml(DEMOS.services, doc, await pageAssets());
    expect(await problems(none)).toEqual([]);
    expect(none).toContain('the check svc-backpressure has no result in this report');
  });
  it('services: svc-backpressure plots its socket-LB and iptables flows like backpressure', () => {
    const bp = check('backpressure');
    const { bpf, legacy } = bp.metrics as { bpf: unknown; legacy: unknown };
    const svc: ReportCheck = { ...bp, id: 'svc-backpressure', metrics: { bpf, iptables: legacy } };
    const plots = svcBackpressurePlots(svc);
    expect(plots.map((p) => p.id)).toEqual(['svc-backpressure-bpf', 'svc-backpressure-legacy', 'svc-backpressure-throughput']);
    const mine = plots.filter((p): p is LinePlot => p.kind === 'lines').map((p) => p.series.map((s) => s.values));
    const ref = backpressurePlots(bp)
      .filter((p): p is LinePlot => p.kind === 'lines')
      .map((p) => p.series.map((s) => s.values));
    expect(mine).toEqual(ref);
  });
  it('bandwidth: goodput beside what each limit allows, and the unlimited pod beside the limited one', () => {
    // bwm-rate's metrics from lab demo bandwidth (7.3 guest, TCG).
    const runs = [
      { limitBps: 10e6, goodputBps: 9488315, expectedGoodputBps: 9564069, stamped: 267 },
      { limitBps: 5e6, goodputBps: 4692726, expectedGoodputBps: 4782034, stamped: 113 },
    ];
    const c: ReportCheck = { ...check('bigtcp'), id: 'bwm-rate', metrics: { runs, free: { goodputBps: 171983278, stamped: 0 } } };
    const [goodput, both] = bwmRatePlots(c) as BarPlot[];
    expect(goodput.categories).toEqual(['limit 10 Mbit/s', 'limit 5 Mbit/s']);
    expect(goodput.series.map((s) => s.values)).toEqual([
      [9.488315, 4.692726],
      [9.564069, 4.782034],
    ]);
    expect(both.categories).toEqual(['limit 10 Mbit/s', 'limit 5 Mbit/s', 'unlimited pod']);
    expect(both.log).toBe(true); // 172 Mbit/s beside 4.7
    expect(bwmRatePlots({ ...c, metrics: { runs: [] } })).toEqual([]);
  });
});

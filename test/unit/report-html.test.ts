import { readFileSync } from 'node:fs';
import { HtmlValidate } from 'html-validate';
import { describe, expect, it } from 'vitest';
import { pageAssets } from '../../src/report/assets.js';
import { evaluateClaims } from '../../src/report/claims.js';
import { claimsHtml } from '../../src/report/claims-view.js';
import { ReportDoc, type ReportCheck, type ReportNetwork } from '../../src/report/doc.js';
import { overlaps, topologyLayout, topologySvg } from '../../src/report/graph.js';
import { metricsHtml, reportHtml, scriptJson } from '../../src/report/html.js';
import type { MatrixRow } from '../../src/report/matrix.js';
import { matrixHtml } from '../../src/report/matrix-html.js';
import type { CheckId } from '../../src/topology/ids.js';
import { backpressurePlots, bigtcpPlots, plotsFor, seriesMax, type BarPlot, type LinePlot } from '../../src/report/plots.js';
import { barLength, barSvg } from '../../src/report/svg.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';

/** report.json of a real `lab run` of topologies/quickstart.yaml on this machine (renamed rep-qs). */
const doc = ReportDoc.parse(JSON.parse(readFileSync(new URL('./fixtures/report-quickstart.json', import.meta.url), 'utf8')));
const check = (id: string) => doc.checks.find((c) => c.id === id)!;

/** The resolved network of a shipped topology, as report.json carries it. */
function network(file: string, extra = ''): ReportNetwork {
  const text = readFileSync(new URL(`../../topologies/${file}.yaml`, import.meta.url), 'utf8') + extra;
  const loaded = parseTopology(text, `${file}.yaml`);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  const lab = resolve(loaded.value);
  if (!lab.ok) throw new Error(JSON.stringify(lab.errors));
  return lab.value;
}

describe('plot shaping', () => {
  it('backpressure: a socket-vs-backlog time series per host-routing mode on one scale, and throughput per run', () => {
    const plots = backpressurePlots(check('backpressure'));
    const lines = plots.filter((p): p is LinePlot => p.kind === 'lines');
    expect(lines.map((p) => p.id)).toEqual(['backpressure-bpf', 'backpressure-legacy']);
    const bp = check('backpressure').metrics as { bpf: { series: { t: number[]; wmem: (number | null)[]; backlog: number[] } } };
    expect(lines[0].x).toEqual(bp.bpf.series.t.map((t) => t / 1000));
    expect(lines[0].series.map((s) => s.values)).toEqual([bp.bpf.series.wmem, bp.bpf.series.backlog]);
    // One y scale for both modes: the top is the largest reading of either.
    expect(lines[0].yMax).toBe(lines[1].yMax);
    expect(lines[0].yMax).toBe(seriesMax(lines.flatMap((p) => p.series.map((s) => s.values))));
    const bars = plots.find((p): p is BarPlot => p.kind === 'bars')!;
    expect(bars.categories).toHaveLength(4);
    expect(bars.log).toBe(true); // 200 Mbit/s shaped beside tens of Gbit/s open
  });
  it('bigtcp: skbs over 64 KiB stacked on the rest make up every skb the counter saw', () => {
    const [skbs] = bigtcpPlots(check('bigtcp')) as BarPlot[];
    const runs = (check('bigtcp').metrics as { runs: { family: string; counts: Record<string, number> }[] }).runs;
    expect(skbs.stacked).toBe(true);
    expect(runs.length).toBeGreaterThan(0);
    runs.forEach((r, i) => {
      const all = r.family === 'ipv4' ? r.counts.v4All : r.counts.v6All;
      expect(skbs.series[0].values[i]! + skbs.series[1].values[i]!).toBe(all);
    });
  });
  it('skipped checks and metrics of another shape give no plot rather than a broken one', () => {
    expect(plotsFor(check('netkit'))).toEqual([]);
    const odd: ReportCheck = { ...check('backpressure'), metrics: { bpf: { series: 'nope' } } };
    expect(plotsFor(odd)).toEqual([]);
    expect(seriesMax([[], [null]])).toBeUndefined();
  });
  it('bar lengths: linear from 0, logarithmic from 1, nothing for 0 or an empty scale', () => {
    expect(barLength(50, 100)).toBeCloseTo(190);
    expect(barLength(10, 1000, true)).toBeCloseTo(380 / 3);
    expect(barLength(0, 100)).toBe(0);
    expect(barLength(5, 0)).toBe(0);
    expect(barSvg(bigtcpPlots(check('bigtcp'))[0] as BarPlot)).toContain('<rect class="bar"');
  });
});

describe('topology graph', () => {
  const cases: [string, ReportNetwork, number][] = [
    ['quickstart', network('quickstart'), 0],
    ['three-node line', network('three-node'), 2],
    ['three-node ring', network('three-node', '  - endpoints: [left, right]\n'), 3],
  ];
  it.each(cases)('%s: a box per node, pod and peer, none overlapping, all inside the picture', (_, net, links) => {
    const g = topologyLayout(net, doc.datapath);
    const pods = net.nodes.reduce((a, n) => a + n.pods.length, 0);
    const peers = net.nodes.filter((n) => n.uplink).length;
    expect(g.boxes).toHaveLength(net.nodes.length + pods + peers);
    expect(g.edges.filter((e) => e.kind === 'link')).toHaveLength(links);
    const pairs = g.boxes.flatMap((a, i) => g.boxes.slice(i + 1).map((b) => [a, b] as const));
    expect(pairs.length).toBeGreaterThan(0);
    expect(pairs.filter(([a, b]) => overlaps(a, b)).map(([a, b]) => `${a.id} ${b.id}`)).toEqual([]);
    for (const b of g.boxes) expect(b.x >= 0 && b.y >= 0 && b.x + b.w <= g.width && b.y + b.h <= g.height).toBe(true);
  });
  it('a ring link between nodes that are not neighbours arcs above the nodes instead of crossing the middle one', () => {
    const g = topologyLayout(network('three-node', '  - endpoints: [left, right]\n'), []);
    const arc = g.edges.find((e) => e.kind === 'link' && e.from === 'node:left' && e.to === 'node:right')!;
    const nodeTop = g.boxes.find((b) => b.id === 'node:mid')!.y;
    const ys = [...arc.d.matchAll(/V(\d+(?:\.\d+)?)/g)].map((m) => Number(m[1]));
    expect(Math.min(...ys)).toBeLessThan(nodeTop);
  });
  it("names addresses and each node's datapath decisions", () => {
    const svg = topologySvg(topologyLayout(doc.network!, doc.datapath));
    for (const s of [
      '10.244.1.2',
      'fd00:244:1::3',
      '10.255.1.2/30',
      'host-routing: bpf (applied)',
      'pod-device: veth (fallback)',
      'tbf 200mbit',
    ])
      expect(svg).toContain(s);
  });
});

describe('report.html', () => {
  it('validates (html-validate, recommended rules) and holds every check, its plots and the topology', async () => {
    const claims = { id: 'claims', title: "The seed's claims", html: claimsHtml(evaluateClaims([{ path: 'report.json', doc }])) };
    const html = reportHtml(doc, await pageAssets(), [claims]);
    const hv = new HtmlValidate({ extends: ['html-validate:recommended'] });
    const res = await hv.validateString(html);
    const messages = res.results.flatMap((r) => r.messages.map((m) => `${m.line}:${m.column} ${m.ruleId}: ${m.message}`));
    expect(messages).toEqual([]);
    expect(res.valid).toBe(true);
    // The control: the same page with two sections of one id is refused, so the validator reads this page.
    const broken = await hv.validateString(html.replace('id="topology"', 'id="check-backpressure"'));
    expect(broken.valid).toBe(false);
    for (const c of doc.checks) expect(html).toContain(`data-check="${c.id}"`);
    for (const id of ['backpressure-bpf', 'backpressure-legacy', 'backpressure-throughput', 'bigtcp-skbs', 'bigtcp-throughput'])
      expect(html).toContain(`id="plot-${id}"`);
    expect(html).toContain('<svg class="topology"');
    expect(html).toContain('data-claim="backpressure"');
    // Self-contained: nothing is fetched when it opens.
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
  });
  it('of a VM run (kernel 6.12 under TCG): validates, and plots the netkit throughput it measured but did not judge', async () => {
    const vm = ReportDoc.parse(JSON.parse(readFileSync(new URL('./fixtures/report-vm-quickstart.json', import.meta.url), 'utf8')));
    const nk = vm.checks.find((c) => c.id === 'netkit-throughput')!;
    expect(nk.status).toBe('skip');
    expect(plotsFor(nk).map((p) => p.id)).toEqual(['netkit-throughput-throughput']);
    const html = reportHtml(vm, await pageAssets());
    const res = await new HtmlValidate({ extends: ['html-validate:recommended'] }).validateString(html);
    expect(res.results.flatMap((r) => r.messages.map((m) => `${m.line}:${m.column} ${m.ruleId}: ${m.message}`))).toEqual([]);
    expect(html).toContain('id="plot-netkit-throughput-throughput"');
    expect(html).toContain('pod-device: netkit (applied)');
  });
  it('keeps data inside its script element whatever the evidence says', () => {
    const s = scriptJson({ e: '</script><script>alert(1)</script>' });
    expect(s).not.toContain('</script');
    expect(JSON.parse(s)).toEqual({ e: '</script><script>alert(1)</script>' });
  });
  it('shows metrics as tables and leaves plotted series out', () => {
    const m = metricsHtml({ bpf: { series: { t: [1, 2] }, mbps: 191.4 }, runs: [{ a: 1 }, { a: 2, b: 'x' }] });
    expect(m).toContain('plotted above');
    expect(m).not.toContain('"t"');
    expect(m).toContain('<th scope="col">b</th>');
  });
});

describe('matrix.html', () => {
  it('a row per kernel, features and checks as badges, each check linking into that kernel’s report; validates', async () => {
    const vm = ReportDoc.parse(JSON.parse(readFileSync(new URL('./fixtures/report-vm-quickstart.json', import.meta.url), 'utf8')));
    const row = (kernel: string, d: ReportDoc): MatrixRow => ({
      kernel,
      release: d.kernel.release,
      code: 0,
      features: d.datapath.map((x) => ({ ...x, status: x.status as MatrixRow['features'][number]['status'] })),
      checks: d.checks.map(({ id, status, reason }) => ({ id: id as CheckId, status, reason })),
      reportDir: `/r/lab/${kernel}`,
    });
    const html = matrixHtml([row('6.12', vm), { ...row('7.3', vm), checks: [], error: 'the guest did not boot' }], '/r/lab');
    const res = await new HtmlValidate({ extends: ['html-validate:recommended'] }).validateString(html);
    expect(res.results.flatMap((r) => r.messages.map((m) => `${m.line}:${m.column} ${m.ruleId}: ${m.message}`))).toEqual([]);
    expect(html).toContain('<a href="6.12/report.html#check-netkit"');
    expect(html).toContain('netkit (applied)');
    expect(html).toMatch(/<tr data-kernel="7.3">.*<span class="badge error">ERROR<\/span>.*the guest did not boot/s);
  });
});

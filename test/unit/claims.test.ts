import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLAIMS, acceleratorOf, evaluateClaims, newestRuns, type LoadedReport } from '../../src/report/claims.js';
import { claimsHtml, claimsTable } from '../../src/report/claims-view.js';
import { ReportDoc, type ReportCheck } from '../../src/report/doc.js';
import { CHECK_IDS } from '../../src/topology/ids.js';

/** report.json of a real `lab run` of topologies/quickstart.yaml (renamed rep-qs) on this machine. */
const real = ReportDoc.parse(JSON.parse(readFileSync(new URL('./fixtures/report-quickstart.json', import.meta.url), 'utf8')));

type Devices = { devices: Record<string, unknown>[] };
/** The real report with every device's MTU set (null: left out) (tso-probe records it since the claims read it), and changes. */
function report(change: (c: ReportCheck) => ReportCheck = (c) => c, mtu: number | null = 1500, at = real.generatedAt): LoadedReport {
  const checks = real.checks.map((c) => {
    const withMtu =
      c.id === 'tso-probe'
        ? { ...c, metrics: { ...c.metrics, devices: (c.metrics as Devices).devices.map((d) => ({ ...d, mtu: mtu ?? undefined })) } }
        : c;
    return change(structuredClone(withMtu));
  });
  return { path: `/r/${at}/report.json`, doc: { ...real, generatedAt: at, checks } };
}
const verdict = (reports: LoadedReport[], id: string) => evaluateClaims(reports).find((c) => c.id === id)!;
const setStatus = (id: string, status: ReportCheck['status'], metrics?: Record<string, unknown>) => (c: ReportCheck) =>
  c.id === id ? { ...c, status, reason: `${status} here`, metrics: metrics ?? c.metrics } : c;

describe('lab claims', () => {
  it('a claim holds when its checks passed, and says where it was measured', () => {
    const c = verdict([report()], 'backpressure');
    expect(c.verdict).toBe('holds');
    expect(c.measured).toMatch(/^bpf: socket owned \d+ B of \d+ B queued .*; legacy: socket owned 0 B/);
    expect(c.where).toMatchObject({ backend: 'local', kernel: real.kernel.release, accelerator: 'no VM', lab: 'rep-qs' });
    expect(verdict([report()], 'bigtcp-192k').verdict).toBe('holds');
    expect(verdict([report()], 'bigtcp-mtu').verdict).toBe('holds');
  });
  it('a failed check refutes its claim; an error gives no answer', () => {
    expect(verdict([report(setStatus('backpressure', 'fail'))], 'backpressure').verdict).toBe('refuted');
    expect(verdict([report(setStatus('bigtcp', 'fail'))], 'bigtcp-192k').verdict).toBe('refuted');
    expect(verdict([report(setStatus('backpressure', 'error'))], 'backpressure').verdict).toBe('no answer');
  });
  it('a skip is no measurement and says how to get one; a skip that measured (TCG) is not judged', () => {
    const nk = verdict([report()], 'netkit-blackhole');
    expect(nk).toMatchObject({ verdict: 'not measured', measured: 'kernel lacks CONFIG_NETKIT' });
    expect(claimsTable([nk], 200)).toContain('to measure: a kernel with netkit');
    const tcg = report(setStatus('netkit-throughput', 'skip', { mbps: { netkit: 900, veth: 800, host: 1000 } }));
    expect(verdict([tcg], 'netkit-throughput').verdict).toBe('not judged');
  });
  it('of a real VM run (6.12 under TCG): the netkit claims hold or are not judged, and say TCG', () => {
    const vm = ReportDoc.parse(JSON.parse(readFileSync(new URL('./fixtures/report-vm-quickstart.json', import.meta.url), 'utf8')));
    const all = evaluateClaims([{ path: 'vm/report.json', doc: vm }, report()]);
    const by = (id: string) => all.find((c) => c.id === id)!;
    expect(by('netkit-blackhole')).toMatchObject({ verdict: 'holds', where: { backend: 'qemu', accelerator: 'TCG' } });
    expect(by('netkit-throughput').verdict).toBe('not judged');
    expect(by('bigtcp-mtu')).toMatchObject({ verdict: 'holds', measured: expect.stringMatching(/^device MTUs: 1500;/) });
  });
  it("BIG TCP's no-MTU-change claim reads the devices' MTU: missing is not measured, a jumbo MTU gives no answer", () => {
    expect(verdict([report(undefined, null)], 'bigtcp-mtu').verdict).toBe('not measured');
    const jumbo = verdict([report(undefined, 9000)], 'bigtcp-mtu');
    expect(jumbo.verdict).toBe('no answer');
    expect(jumbo.measured).toContain('MTU above 1500');
  });
  it('claims without a check in the lab say not built yet; with no report at all, not measured', () => {
    const built = evaluateClaims([report()], ['backpressure', 'tso-probe', 'bigtcp', 'netkit', 'netkit-throughput']);
    expect(built.find((c) => c.id === 'kube-proxy-free')!.verdict).toBe('not built yet');
    expect(evaluateClaims([]).filter((c) => c.verdict === 'holds')).toEqual([]);
    expect(evaluateClaims([]).find((c) => c.id === 'backpressure')!.measured).toBe('no report ran backpressure');
    expect(CLAIMS.map((c) => c.id)).toHaveLength(8);
  });
  it('each claim reads checks the lab has (the XDP load balancer: its registered checks)', () => {
    const unbuilt = CLAIMS.filter((c) => !c.checks.every((id) => (CHECK_IDS as readonly string[]).includes(id))).map((c) => c.id);
    expect(unbuilt).toEqual([]);
    expect(CLAIMS.find((c) => c.id === 'xdp-lb')!.checks).toEqual(['xdp-lb-reachable', 'xdp-lb-in-xdp']);
    expect(CLAIMS.find((c) => c.id === 'edt')!.checks).toEqual(['bwm-latency']);
  });
  it('reads the newest run of each check, preferring a run over a newer skip', () => {
    const old = report(setStatus('bigtcp', 'pass'), 1500, '2026-01-01T00:00:00.000Z');
    const newer = report(setStatus('bigtcp', 'skip', {}), 1500, '2026-02-01T00:00:00.000Z');
    const newest = report((c) => setStatus('bigtcp', 'skip', {})(setStatus('backpressure', 'fail')(c)), 1500, '2026-03-01T00:00:00.000Z');
    const runs = newestRuns([old, newest, newer]);
    expect(runs.get('bigtcp')!.report.doc.generatedAt).toBe('2026-01-01T00:00:00.000Z');
    expect(runs.get('backpressure')!.report.doc.generatedAt).toBe('2026-03-01T00:00:00.000Z');
    expect(verdict([old, newest, newer], 'backpressure').verdict).toBe('refuted');
  });
  it('names the accelerator: TCG when a VM was emulated, KVM when native, none on the host kernel', () => {
    expect(acceleratorOf({ backend: 'qemu', timing: 'emulated' })).toBe('TCG');
    expect(acceleratorOf({ backend: 'qemu', timing: 'native' })).toBe('KVM');
    expect(acceleratorOf({ backend: 'local', timing: 'native' })).toBe('no VM');
  });
  it('renders a row per claim in the page', () => {
    const html = claimsHtml(evaluateClaims([report()]));
    for (const c of CLAIMS) expect(html).toContain(`data-claim="${c.id}"`);
  });
});

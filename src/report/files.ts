import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { LabContext } from '../lifecycle/context.js';
import type { CheckResult } from '../checks/check.js';
import { pageAssets } from './assets.js';
import { evaluateClaims } from './claims.js';
import { claimsHtml } from './claims-view.js';
import { ReportDoc } from './doc.js';
import { reportHtml } from './html.js';
import { junitXml } from './junit.js';
import { flakeJunit, flakeStats } from './repeat.js';
import { kernelIdentity } from './kernel-id.js';
import { defaultReportDir } from './where.js';

export interface ReportPaths {
  dir: string;
  json: string;
  junit: string;
  /** The same report as one self-contained page (plots, topology graph); none for a lab that failed before its checks. */
  html?: string;
}

/** The report as report.json holds it: the lab, where it ran, the kernel, and every check. */
export function reportJson(ctx: Pick<LabContext, 'lab' | 'backend' | 'facts' | 'decisions'>, results: CheckResult[]) {
  const f = ctx.facts;
  return {
    lab: ctx.lab.name,
    topology: ctx.lab.file,
    backend: ctx.lab.backend,
    generatedAt: new Date().toISOString(),
    kernel: {
      release: f.release,
      identity: kernelIdentity(ctx.lab, f.release),
      arch: f.arch,
      configSource: f.configSource,
      btf: f.btf,
      tools: Object.fromEntries(Object.entries(f.tools).map(([k, v]) => [k, v.version?.join('.') ?? (v.path ? 'present' : 'missing')])),
      config: Object.fromEntries(
        [
          'CONFIG_NETKIT',
          'CONFIG_NET_XGRESS',
          'CONFIG_NET_SCH_FQ',
          'CONFIG_NET_SCH_TBF',
          'CONFIG_BPF_JIT',
          'CONFIG_DEBUG_INFO_BTF',
          'CONFIG_VETH',
        ].map((k) => [k, f.config[k] ?? 'n']),
      ),
    },
    timing: ctx.backend.timing(),
    datapath: ctx.decisions,
    summary: Object.fromEntries((['pass', 'fail', 'error', 'skip'] as const).map((s) => [s, results.filter((r) => r.status === s).length])),
    checks: results,
    network: { families: ctx.lab.families, nodes: ctx.lab.nodes, peers: ctx.lab.peers, links: ctx.lab.links },
  };
}

/** `runs`: each run's results with --repeat; more than one adds flake rates (report.json `repeat`, one JUnit case per check). */
export async function writeReports(ctx: LabContext, results: CheckResult[], dir?: string, runs?: CheckResult[][]): Promise<ReportPaths> {
  const out = resolve(dir ?? defaultReportDir(ctx.lab.name));
  await mkdir(out, { recursive: true });
  const paths = { dir: out, json: join(out, 'report.json'), junit: join(out, 'junit.xml'), html: join(out, 'report.html') };
  // The backend's logs (a VM's console) go with the report: the lab's own copies are removed at teardown.
  const logs: string[] = [];
  for (const log of ctx.backend.logs(ctx.lab)) {
    const dst = join(out, log.name);
    await copyFile(log.path, dst);
    logs.push(dst);
  }
  const repeat = runs && runs.length > 1 ? { runs: runs.length, checks: flakeStats(runs) } : undefined;
  const doc = { ...reportJson(ctx, results), ...(repeat ? { repeat } : {}), ...(logs.length ? { logs } : {}) };
  await writeFile(paths.json, JSON.stringify(doc, null, 2) + '\n');
  const totalMs = results.reduce((a, r) => a + r.ms, 0);
  await writeFile(paths.junit, repeat ? flakeJunit(ctx.lab.name, repeat.checks, totalMs) : junitXml(ctx.lab.name, results));
  // Read back through the schema the page and `lab claims` use, as a saved report.json would be.
  const saved = ReportDoc.parse(JSON.parse(JSON.stringify(doc)));
  const claims = { id: 'claims', title: "The seed's claims", html: claimsHtml(evaluateClaims([{ path: paths.json, doc: saved }])) };
  await writeFile(paths.html, reportHtml(saved, await pageAssets(), [claims]));
  return paths;
}

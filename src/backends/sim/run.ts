import { mkdirSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CHECKS } from '../../checks/registry.js';
import type { CheckResult } from '../../checks/check.js';
import { FEATURES } from '../../datapath/registry.js';
import { LabError } from '../../errors.js';
import type { LabContext } from '../../lifecycle/context.js';
import { Journal, knownLabs, labDir } from '../../lifecycle/journal.js';
import { runChecks } from '../../lifecycle/steps.js';
import { reportJson } from '../../report/files.js';
import { junitXml } from '../../report/junit.js';
import { simulatedSection, writeReportHtml } from '../../sim/report-html.js';
import { MODEL_VERSION } from '../../sim/version.js';
import type { Lab } from '../../topology/model.js';
import type { CheckId } from '../../topology/schema.js';
import { SimBackend } from './sim.js';
import { simStateRoot } from './state.js';
import { defaultReportDir } from '../../report/where.js';

/** The checks whose measurements the model answers; the others are skipped without running, saying why. */
export const MODELLED: readonly CheckId[] = ['tso-probe', 'connectivity', 'backpressure', 'bigtcp'];

/** Why a check is not simulated yet (default: no model of what it measures). */
const UNMODELLED: Partial<Record<CheckId, string>> = {
  netkit: 'the model runs no BPF programs, so netkit peer hooks and their policy have nothing to judge (pods are modelled as veth)',
  'netkit-throughput':
    'netkit and veth differ in the kernel by one backlog hop and its CPU cost; the model has no netkit path yet, so it predicts no ratio',
  ...Object.fromEntries(
    (['svc-clusterip', 'svc-getpeername', 'svc-no-backend', 'svc-affinity', 'svc-backend-removal'] as const).map((id) => [
      id,
      'no socket-LB model yet (the connect-time lookup of cgroup/connect4 and its reverse for getpeername); ' +
        'the check probes services with measure/services.ts serviceAttempts, which the Measurer seam does not carry',
    ]),
  ),
  'svc-backpressure':
    'no socket-LB or iptables DNAT model on the flow path yet; the check runs bulkFlow and Bottleneck directly, not through the Measurer',
  'kube-proxy-free':
    "no netfilter model: the check reads the nodes' iptables/nft rules (measure/netfilter.ts), which the model has none of",
  'bwm-rate':
    'no EDT stamping model on the flow path yet (the fq + horizon model exists in src/sim/qdisc.ts); the check reads the BPF ' +
    'EDT counters and the uplink qdisc directly, not through the Measurer',
  'bwm-latency':
    'no request/response latency model (the htb class and fq models exist in src/sim); the check runs requestResponse and ' +
    'the shaper swap directly, not through the Measurer',
  'bwm-horizon': 'no UDP sender model (the fq horizon drop exists in src/sim/qdisc.ts); the check runs udpFlow directly',
};

export interface SimRun {
  results: CheckResult[];
  /** The report as written (byte-identical for one seed). */
  report: Record<string, unknown>;
  reportDir: string;
}

/**
 * Run a lab's checks in the simulator: the same topology, feature decisions, check
 * runner and verdict functions as a kernel run; the measurement API answered by the model.
 * Nothing is created on the machine but a journal under simStateRoot() (removed at the end)
 * and the report files. Each check's `ms` is the virtual time it measured for.
 */
export async function runSimulated(
  lab0: Lab,
  opts: { only?: CheckId[]; reportDir?: string; seed?: number; progress?: (m: string) => void },
): Promise<SimRun> {
  const lab: Lab = { ...lab0, backend: 'sim' };
  const seed = opts.seed ?? 1;
  // The journal goes under the simulator's own state root (journal.ts reads DPL_STATE_DIR), for this run only.
  const before = process.env.DPL_STATE_DIR;
  process.env.DPL_STATE_DIR = simStateRoot();
  let journal: Journal | undefined;
  try {
    mkdirSync(process.env.DPL_STATE_DIR, { recursive: true, mode: 0o700 });
    if (knownLabs().includes(lab.name))
      throw new LabError(
        'E_LAB_EXISTS',
        `a simulated lab named '${lab.name}' is running (or was left by a crash)`,
        `rm -r ${labDir(lab.name)}`,
      );
    const backend = new SimBackend(seed);
    const facts = await backend.probe();
    const decisions = lab.nodes.flatMap((n) => FEATURES.map((f) => f.decide(facts, n.datapath, n.name)));
    journal = Journal.create(lab.name);
    const ctx: LabContext = {
      lab,
      backend,
      facts,
      decisions,
      journal,
      signal: new AbortController().signal,
      progress: opts.progress ?? (() => {}),
      bpfDir: '(simulated)',
      objDir: backend.objDir,
    };
    await backend.provision(ctx);
    const model = backend.model!;
    const wanted = opts.only ?? lab.checks.map((c) => c.id);
    const results: CheckResult[] = [];
    for (const check of CHECKS.filter((c) => wanted.includes(c.id))) {
      if (!MODELLED.includes(check.id)) {
        const why = UNMODELLED[check.id] ?? 'the model does not answer what this check measures yet';
        results.push({ id: check.id, title: check.title, status: 'skip', reason: `simulated: ${why}`, metrics: {}, evidence: [], ms: 0 });
        continue;
      }
      const t0 = model.virtualNs;
      const [r] = await runChecks(ctx, [check.id]);
      results.push({ ...r, ms: Math.round((model.virtualNs - t0) / 1e6) });
    }
    const report = {
      ...reportJson(ctx, results),
      // A simulated report has no wall-clock time: the same seed gives the same bytes.
      generatedAt: new Date(0).toISOString(),
      simulated: {
        model: MODEL_VERSION,
        seed,
        cpu: model.cpu.name,
        virtualMs: Math.round(model.virtualNs / 1e6),
        events: model.events,
      },
    };
    const dir = resolve(opts.reportDir ?? defaultReportDir(`${lab.name}-sim`));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(join(dir, 'junit.xml'), junitXml(`${lab.name} (simulated)`, results));
    // report.html through the same page code as a kernel run, marked as a prediction.
    await writeReportHtml(join(dir, 'report.json'), join(dir, 'report.html'), [simulatedSection(report.simulated)]);
    return { results, report, reportDir: dir };
  } finally {
    if (journal) {
      journal.close();
      rmSync(labDir(lab.name), { recursive: true, force: true });
    }
    if (before === undefined) delete process.env.DPL_STATE_DIR;
    else process.env.DPL_STATE_DIR = before;
  }
}

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
export const MODELLED: readonly CheckId[] = [
  'tso-probe',
  'connectivity',
  'backpressure',
  'bigtcp',
  'svc-clusterip',
  'svc-getpeername',
  'svc-no-backend',
  'svc-affinity',
  'svc-backend-removal',
  'bwm-rate',
  'bwm-horizon',
  'bwm-backpressure',
];

/** The service checks the socket-LB model answers; under kube-proxy's iptables rules they would need a netfilter model. */
const SOCKET_LB_CHECKS: readonly CheckId[] = ['svc-clusterip', 'svc-getpeername', 'svc-no-backend', 'svc-affinity', 'svc-backend-removal'];

/** Why a modelled check still cannot run on this lab in the model, if so. */
function unmodelledHere(lab: Lab, id: CheckId): string | undefined {
  const ipt = lab.nodes.filter((n) => n.datapath.kubeProxy === 'iptables').map((n) => n.name);
  if (SOCKET_LB_CHECKS.includes(id) && ipt.length)
    return (
      `no netfilter model (kube-proxy's iptables DNAT with its statistic match and conntrack's reverse NAT): ` +
      `node${ipt.length > 1 ? 's' : ''} ${ipt.join(', ')} ask${ipt.length > 1 ? '' : 's'} for kubeProxy iptables`
    );
  return undefined;
}

/** Why a check is not simulated yet (default: no model of what it measures). */
const UNMODELLED: Partial<Record<CheckId, string>> = {
  netkit: 'the model runs no BPF programs, so netkit peer hooks and their policy have nothing to judge (pods are modelled as veth)',
  'netkit-throughput':
    'netkit and veth differ in the kernel by one backlog hop and its CPU cost; the model has no netkit path yet, so it predicts no ratio',
  'svc-backpressure':
    'no socket-LB or iptables DNAT model on the flow path yet; the check runs bulkFlow and Bottleneck directly, not through the Measurer',
  'svc-nodeport':
    "no NodePort model: bpf/nodeport.c's DNAT at the node's tc ingress and its reverse at egress run per packet, on traffic " +
    'from a peer; the model has socket-LB lookups only',
  'kube-proxy-free':
    "no netfilter model: the check reads the nodes' iptables/nft rules (measure/netfilter.ts), which the model has none of",
  'bwm-latency':
    'no latency probe model (sockperf ping-pong beside the bulk flow) and no htb/tbf control on the EDT path: the check compares ' +
    'round-trip p99 under EDT + fq with an htb class per pod, and the model has the fq, htb and tbf qdiscs but no request/response sender',
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
    const backend = new SimBackend(
      seed,
      lab.nodes.some((n) => n.datapath.podDevice === 'netkit'),
    );
    const facts = await backend.probe();
    const decisions = lab.nodes.flatMap((n) => FEATURES.map((f) => f.decide(facts, n.datapath, n.name, lab)));
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
      const here = unmodelledHere(lab, check.id);
      if (!MODELLED.includes(check.id) || here) {
        const why = here ?? UNMODELLED[check.id] ?? 'the model does not answer what this check measures yet';
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

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BPF_OBJ_DIR, REPO_ROOT } from '../paths.js';
import { LabError, TopologyError } from '../errors.js';
import { createBackend } from '../backends/registry.js';
import type { Backend } from '../backends/backend.js';
import type { KernelFacts } from '../kernel/facts.js';
import { FEATURES } from '../datapath/registry.js';
import { impairDecisions, netemEnds, netemJournal } from '../datapath/impair/netem.js';
import { decisionOf, type Decision, type Feature } from '../datapath/feature.js';
import { CHECKS, checkById } from '../checks/registry.js';
import type { LabContext } from './context.js';
import { tagProcesses } from '../exec/process.js';
import type { CheckResult } from '../checks/check.js';
import { loadTopologyFile } from '../topology/loader.js';
import { resolve } from '../topology/resolver.js';
import { labNetnsPrefix, type Lab, type LabNode } from '../topology/model.js';
import type { CheckId } from '../topology/schema.js';
import { Journal, knownLabs } from './journal.js';
import { readLabState, writeLabState, type LabState } from './labstate.js';
import { captureSnapshot, type SnapshotRef } from './snapshot.js';
import { withPreRestore } from './pre-restore.js';

export { REPO_ROOT };

export const BPFFS_ROOT = process.env.DPL_BPFFS ?? '/sys/fs/bpf/dpl';

/** validate: read, check and resolve the topology. Throws TopologyError (exit 2). */
export async function validate(file: string, kernel?: string): Promise<Lab> {
  const loaded = await loadTopologyFile(file);
  if (!loaded.ok) throw new TopologyError(loaded.errors);
  const lab = resolve(loaded.value);
  if (!lab.ok) throw new TopologyError(lab.errors);
  if (kernel && lab.value.backend !== 'qemu')
    throw new LabError(
      'E_USAGE',
      `--kernel applies to the qemu backend; ${file} uses ${lab.value.backend}`,
      'set backend: qemu in the topology',
    );
  return kernel ? { ...lab.value, kernel } : lab.value;
}

export interface Probed {
  backend: Backend;
  facts: KernelFacts;
  decisions: Decision[];
}

/** probe: read the target and decide every feature per node; refuses (exit 2) before anything is created. */
export async function probe(lab: Lab, signal?: AbortSignal): Promise<Probed> {
  if (lab.backend === 'sim')
    throw new LabError('E_USAGE', 'a simulated lab runs in one go: lab up, check and down are for kernel labs', `lab run ${lab.file}`);
  const simOnly = lab.nodes.find((n) => n.sim)?.sim;
  if (simOnly)
    throw new LabError(
      'E_USAGE',
      `${simOnly.at}: applies to the simulator only (NIC profiles and congestion control are model settings); this lab's backend is ${lab.backend}`,
      `lab run ${lab.file} --backend sim, or remove sim: for a kernel run`,
    );
  ensureFree(lab.name);
  const backend = createBackend(lab.backend);
  const facts = await backend.probe(lab, signal);
  if (!facts.root)
    throw new LabError(
      'E_REQUIREMENT',
      'the lab creates namespaces and loads BPF programs: run it as root',
      'sudo ./lab ...; or, without root, the simulator: lab run FILE --backend sim',
    );
  if (!facts.bpffs) throw new LabError('E_REQUIREMENT', 'bpffs is not mounted at /sys/fs/bpf', 'mount -t bpf bpf /sys/fs/bpf');
  for (const t of ['ip', 'tc', 'bpftool', 'nsenter'] as const)
    if (!facts.tools[t].path)
      throw new LabError('E_REQUIREMENT', `${t} is not installed`, 'run ./lab once as root: it installs what is missing');
  for (const obj of ['host_routing.o', 'host_routing_tc.o', 'bigtcp_count.o', 'bigtcp_count_tc.o'])
    if (!existsSync(join(BPF_OBJ_DIR, obj)))
      throw new LabError('E_REQUIREMENT', `BPF object ${obj} is not built`, 'run bpf/build.sh (./lab does it when sources change)');
  const decisions = decideAll(lab, facts, (n) => backend.nodeFacts?.(n));
  const declined = decisions.filter((d) => d.status === 'declined');
  if (declined.length)
    throw new LabError(
      'E_REQUIREMENT',
      declined.map((d) => `node ${d.node}: ${d.feature}: ${d.detail}`).join('\n'),
      declined.every((d) => d.feature === 'impair')
        ? 'remove impair from the links, or run the lab in VMs whose kernel has netem (backend: qemu; see lab kernels list)'
        : 'change the datapath profile (for example podDevice: auto, hostRouting: legacy) or use a kernel that has it (see lab doctor)',
    );
  return { backend, facts, decisions };
}

/** Every feature decided per node, by the node's own kernel where nodes differ (ssh targets), else the probe's facts. */
export function decideAll(
  lab: Lab,
  facts: KernelFacts,
  nodeFacts: (node: string) => KernelFacts | undefined = () => undefined,
): Decision[] {
  return [
    ...lab.nodes.flatMap((n) => FEATURES.map((f) => f.decide(nodeFacts(n.name) ?? facts, n.datapath, n.name, lab))),
    ...impairDecisions(lab, facts),
  ];
}

/** Refuse (exit 2) when a lab of this name already holds anything on the machine. */
export function ensureFree(lab: string): void {
  if (knownLabs().includes(lab))
    throw new LabError('E_LAB_EXISTS', `a lab named '${lab}' is already up (or was left by a crash)`, `lab down ${lab}`);
  if (existsSync(join(BPFFS_ROOT, lab)))
    throw new LabError(
      'E_LAB_EXISTS',
      `a pin dir named like lab '${lab}' exists but no journal owns it: ${join(BPFFS_ROOT, lab)}`,
      'remove it by hand (rm -r DIR) if it is yours',
    );
  const prefix = labNetnsPrefix(lab);
  const stray = existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(prefix)) : [];
  if (stray.length)
    throw new LabError(
      'E_LAB_EXISTS',
      `namespaces named like lab '${lab}' exist but no journal owns them: ${stray.slice(0, 5).join(', ')}`,
      'remove them by hand (ip netns del NAME) if they are yours',
    );
}

/** provision: start the journal and the lab state, then create namespaces and devices. */
export async function provision(lab: Lab, probed: Probed, signal: AbortSignal, progress: (m: string) => void): Promise<LabContext> {
  let journal: Journal;
  try {
    journal = Journal.create(lab.name);
  } catch (e) {
    // Another process took the name between probe and now: its objects are not ours to remove.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      throw new LabError('E_LAB_EXISTS', `a lab named '${lab.name}' was just brought up by another process`, `lab down ${lab.name}`);
    throw e;
  }
  tagProcesses(lab.name);
  const ctx: LabContext = {
    lab,
    backend: probed.backend,
    facts: probed.facts,
    decisions: probed.decisions,
    journal,
    signal,
    progress,
    bpfDir: join(BPFFS_ROOT, lab.name),
    objDir: probed.backend.objDir,
  };
  writeLabState({
    name: lab.name,
    file: lab.file,
    backend: lab.backend,
    pid: process.pid,
    createdAt: new Date().toISOString(),
    phase: 'provisioning',
    lab,
    decisions: probed.decisions,
    bpfDir: ctx.bpfDir,
    objDir: ctx.objDir,
  });
  await probed.backend.provision(ctx);
  return ctx;
}

/** wire: addresses, routes, bottlenecks of one node. */
export async function wireNode(ctx: LabContext, node: LabNode): Promise<void> {
  ctx.journal.record({ backend: ctx.backend.kind, node: node.name }, netemJournal(netemEnds(ctx.lab, node)));
  await ctx.backend.wireNode(ctx, node);
}

/** deploy: every registered feature on one node, in registry order, as decided at probe. */
export async function deployNode(ctx: LabContext, node: LabNode, features: readonly Feature[] = FEATURES): Promise<void> {
  for (const f of features) {
    const d = decisionOf(ctx.decisions, f, node.name);
    if (!d || d.status === 'declined' || !f.apply) continue;
    ctx.progress(`node ${node.name}: ${f.id} (${d.mode})`);
    await f.apply(ctx, node, d);
  }
}

/**
 * check: run the lab's checks (or only some), each isolated so one failure does not stop the rest.
 * A check that fails or errors leaves a snapshot of the nodes in `snapshotDir`/<check>, taken before the next check runs;
 * one whose measurement threw under a changed bottleneck also `snapshotDir`/<check>.before-restore, taken before its finally.
 */
export async function runChecks(ctx: LabContext, only?: CheckId[], snapshotDir?: string): Promise<CheckResult[]> {
  // --only runs what it names, listed in the topology or not (with the topology's options if listed).
  const specs = only ? only.map((id) => ctx.lab.checks.find((c) => c.id === id) ?? { id }) : ctx.lab.checks;
  const ordered = CHECKS.flatMap((c) => specs.filter((s) => s.id === c.id));
  const results: CheckResult[] = [];
  for (const spec of ordered) {
    const check = checkById(spec.id);
    const t0 = performance.now();
    const base = { id: check.id, title: check.title };
    const req = check.requires(ctx);
    const app = check.applies(ctx.lab, spec);
    if (!req.ok || !app.ok) {
      results.push({
        ...base,
        status: 'skip',
        reason: !req.ok ? req.reason : (app as { reason: string }).reason,
        metrics: {},
        evidence: [],
        ms: 0,
      });
      continue;
    }
    ctx.progress(`check ${check.id}: ${check.title}`);
    let pre: SnapshotRef | undefined;
    const capture = async (why: string) => {
      pre = await captureSnapshot(ctx, join(snapshotDir!, `${check.id}.before-restore`));
      ctx.progress(`check ${check.id}: snapshot before it restores (${why}) in ${pre.dir} (${pre.ms} ms)`);
    };
    try {
      const r = snapshotDir ? await withPreRestore(capture, () => check.run(ctx, spec)) : await check.run(ctx, spec);
      results.push({ ...base, ...r, ms: Math.round(performance.now() - t0) });
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      // A check that threw never got the kernel's answer: that is an error, not a failed claim.
      const message = e instanceof Error ? e.message : String(e);
      results.push({
        ...base,
        status: 'error',
        reason: `check could not run: ${message}`,
        metrics: {},
        evidence: [],
        ms: Math.round(performance.now() - t0),
      });
    }
    const last = results.at(-1)!;
    if (pre && (last.status === 'fail' || last.status === 'error')) last.snapshotBeforeRestore = pre;
    ctx.progress(`check ${check.id}: ${last.status.toUpperCase()} ${last.reason}`);
    if (snapshotDir && (last.status === 'fail' || last.status === 'error')) {
      last.snapshot = await captureSnapshot(ctx, join(snapshotDir, check.id));
      ctx.progress(`check ${check.id}: snapshot of ${ctx.lab.nodes.length} node(s) in ${last.snapshot.dir} (${last.snapshot.ms} ms)`);
    }
  }
  return results;
}

/** Rebuild the context of a lab that is up (for `lab check` from another process). */
export async function attach(
  name: string,
  signal: AbortSignal,
  progress: (m: string) => void,
): Promise<{ ctx: LabContext; state: LabState }> {
  const state = readLabState(name);
  const journal = Journal.open(name);
  if (!state || !journal) throw new LabError('E_LAB_UNKNOWN', `no lab named '${name}' is up`, `lab status lists the labs that are up`);
  if (state.phase !== 'up')
    throw new LabError('E_LAB_UNKNOWN', `lab '${name}' is ${state.phase}, not up`, `lab down ${name} and bring it up again`);
  tagProcesses(name);
  const backend = createBackend(state.backend);
  const facts = await backend.probe(state.lab, signal);
  const ctx: LabContext = {
    lab: state.lab,
    backend,
    facts,
    decisions: state.decisions,
    journal,
    signal,
    progress,
    bpfDir: state.bpfDir,
    objDir: state.objDir,
  };
  await backend.reattach?.(ctx);
  return { ctx, state };
}

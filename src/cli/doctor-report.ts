import { HostExec } from '../exec/exec.js';
import { backendNames, createBackend } from '../backends/registry.js';
import { probeLocal, type KernelFacts } from '../kernel/facts.js';
import { FEATURES } from '../datapath/registry.js';
import { impairDoctor } from '../datapath/impair/netem.js';
import { CHECKS } from '../checks/registry.js';
import { DEFAULT_DATAPATH } from '../topology/schema.js';

/** What this machine supports: kernel and tool facts, every feature and every check with its reason. */
export function doctorReport(facts: KernelFacts) {
  return {
    kernel: {
      release: facts.release,
      arch: facts.arch,
      config: facts.configSource ?? 'unreadable',
      btf: facts.btf,
      bpffs: facts.bpffs,
      root: facts.root,
    },
    tools: Object.fromEntries(Object.entries(facts.tools).map(([k, v]) => [k, v.path ? (v.version?.join('.') ?? 'present') : 'missing'])),
    features: FEATURES.map((f) => {
      const v = f.requires(facts);
      const d = f.decide(facts, { ...DEFAULT_DATAPATH, podDevice: 'auto' }, '-');
      return { id: f.id, title: f.title, supported: v.ok, reason: v.ok ? undefined : v.reason, withDefaults: `${d.status}: ${d.detail}` };
    }).concat(impairDoctor(facts)),
    checks: CHECKS.map((c) => {
      const v = c.requires({ facts });
      return { id: c.id, title: c.title, supported: v.ok, reason: v.ok ? undefined : v.reason, proves: c.proves };
    }),
  };
}

export async function doctorHere() {
  const backends = await Promise.all(backendNames().map((k) => createBackend(k).doctor()));
  return { ...doctorReport(await probeLocal(new HostExec(), { allVersions: true })), backends };
}

import type { Backend, DestroyResult, DoctorSection, NodeStatus } from '../backend.js';
import type { LabContext } from '../../lifecycle/context.js';
import type { JournalEntry } from '../../lifecycle/journal.js';
import type { Measurer } from '../../measure/measurer.js';
import { MODEL_VERSION } from '../../sim/version.js';
import type { KernelFacts } from '../../kernel/facts.js';
import { SimExec } from './exec.js';
import { simFacts } from './facts.js';
import { SimMeasurer } from './measurer.js';
import { SimLab } from './model.js';
import { LabError } from '../../errors.js';

/**
 * The simulator as a backend: nodes are model objects, nothing is created on the machine,
 * and the measurement API is answered by src/sim (SimMeasurer). Runs without root.
 */
export class SimBackend implements Backend {
  readonly kind = 'sim';
  readonly objDir = '(simulated: no BPF objects)';
  model?: SimLab;
  constructor(
    readonly seed = 1,
    /** The modelled kernel has netkit (a node asked for podDevice: netkit). */
    readonly netkit = false,
  ) {}
  root(node: string) {
    return new SimExec(`node ${node}`);
  }
  exec(netns: string) {
    return new SimExec(netns);
  }
  async probe(): Promise<KernelFacts> {
    return simFacts({ netkit: this.netkit });
  }
  async provision(ctx: LabContext): Promise<void> {
    this.model = new SimLab(ctx.lab, ctx.decisions, this.seed);
  }
  async wireNode(): Promise<void> {}
  async destroy(entries: JournalEntry[]): Promise<DestroyResult> {
    return { gone: entries.map((e) => e.seq), left: [] };
  }
  status(): NodeStatus[] {
    return [];
  }
  async doctor(): Promise<DoctorSection> {
    return {
      backend: 'sim',
      facts: { model: MODEL_VERSION, needs: 'Node.js 20+ and npm ci; no root, no kernel tools, no Debian packages' },
    };
  }
  logs() {
    return [];
  }
  timing() {
    return 'native' as const;
  }
  measurer(): Measurer {
    if (!this.model) throw new LabError('E_INTERNAL', 'the simulated lab was measured before it was provisioned');
    return new SimMeasurer(this.model);
  }
}

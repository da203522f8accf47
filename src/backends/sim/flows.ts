import { type FlowRunResult, type PathSpec, runFlows } from '../../sim/path.js';
import type { SimLab } from './model.js';

/** A path as the measurer builds it; the CPU profile comes from the lab model. */
export type RunFlowsPath = Omit<PathSpec, 'cpu'>;

/** The sampler's interval (src/measure/sampler.ts default: 100 ms). */
export const SAMPLE_EVERY_NS = 100e6;

/** Run one bulk flow in the model, on the lab's RNG stream and clock. */
export function simulateFlow(m: SimLab, path: RunFlowsPath, seconds: number, sample: boolean, streams = 1): FlowRunResult {
  const r = runFlows({
    path: { ...path, cpu: m.cpu },
    flows: streams,
    seconds,
    sampleEveryNs: sample ? SAMPLE_EVERY_NS : 0,
    rng: m.rng.fork(),
  });
  m.virtualNs += r.virtualNs;
  m.events += r.events;
  return r;
}

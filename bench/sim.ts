/**
 * Simulator benchmark: wall time and events per second for 10 s (virtual) of 4 bulk TCP
 * flows through one node to a 10 Gbit/s bottleneck (tbf 10gbit on a 100G mlx5 profile),
 * beside a baseline in the same process: the bare engine running as many no-op events
 * (a ring of timers, each rescheduling itself). The ratio says what the models cost on
 * top of the event queue.
 *   node dist/bench/sim.js [--seconds 10] [--flows 4] [--repeat 3] [--cc bbr|cubic|reno]
 */
import { parseArgs } from 'node:util';
import { LabError } from '../src/errors.js';
import { CC_NAMES, type CcName } from '../src/sim/cc.js';
import { FAST_HOST } from '../src/sim/cpu.js';
import { PROFILES } from '../src/sim/devices.js';
import { Engine } from '../src/sim/engine.js';
import { runFlows } from '../src/sim/path.js';
import { Rng } from '../src/sim/rng.js';
import { timed } from './common.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    flows: { type: 'string', default: '4' },
    repeat: { type: 'string', default: '3' },
    cc: { type: 'string', default: 'bbr' },
  },
});
const cc = values.cc as CcName;
if (!CC_NAMES.includes(cc)) throw new LabError('E_USAGE', `--cc takes ${CC_NAMES.join(', ')}`);
const seconds = Number(values.seconds);
const flows = Number(values.flows);
const repeat = Number(values.repeat);

function model() {
  const { r, ms, cpuMs } = timed(() =>
    runFlows({
      path: {
        family: 'ipv6',
        gsoMax: 65536,
        mtu: PROFILES.mlx5.mtu,
        hostRouting: 'bpf',
        tbf: { rateBps: 10e9, burst: 262144, latencyNs: 5e6 },
        lineBps: PROFILES.mlx5.lineBps,
        delayNs: 10_000,
        cpu: FAST_HOST,
        cc,
      },
      flows,
      seconds,
      sampleEveryNs: 100e6,
      rng: new Rng(1),
    }),
  );
  return { ms, cpuMs, events: r.events, gbps: r.bitsPerSecond / 1e9, skbs: r.skbs };
}

/** The engine alone: `events` no-op events, 64 timers pending at a time (about the model's queue depth). */
function baseline(events: number) {
  const e = new Engine();
  const rng = new Rng(2);
  let left = events;
  const tick = () => {
    if (--left > 0) e.after(1 + (rng.u32() % 10_000), tick);
  };
  for (let i = 0; i < 64; i++) e.after(i, tick);
  const { ms, cpuMs } = timed(() => e.run());
  return { ms, cpuMs, events: e.events };
}

const best = <T extends { ms: number }>(runs: T[]) => runs.reduce((a, b) => (b.ms < a.ms ? b : a));
const m = best(Array.from({ length: repeat }, model));
const b = best(Array.from({ length: repeat }, () => baseline(m.events)));
const mRate = m.events / (m.ms / 1000);
const bRate = b.events / (b.ms / 1000);
const perCpu = (x: { events: number; cpuMs: number }) => `${(x.events / x.cpuMs / 1000).toFixed(2)} M events per CPU-second`;
process.stdout.write(
  `model:    ${seconds} s virtual, ${flows} ${cc} flows at ${m.gbps.toFixed(2)} Gbit/s, ${m.skbs} skbs, ${m.events} events in ${m.ms.toFixed(0)} ms wall: ${(mRate / 1e6).toFixed(2)} M events/s (${perCpu(m)})\n` +
    `baseline: the bare engine, ${b.events} no-op events in ${b.ms.toFixed(0)} ms: ${(bRate / 1e6).toFixed(2)} M events/s (${perCpu(b)})\n` +
    `ratio:    model / baseline events/s = ${(mRate / bRate).toFixed(2)}; virtual / wall time = ${((seconds * 1000) / m.ms).toFixed(1)}x (best of ${repeat})\n`,
);

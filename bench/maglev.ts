/**
 * Maglev build benchmark: buildMaglev (src/datapath/xdp-lb/maglev.ts) for M = 16381 and 65521 with 100 and 1000
 * backends, equal weights and random lab weights 1..100, beside two baselines in the same process: a bare walk
 * over M cells (fill with -1, then one stride walk writing every cell: the least any fill must do) and the
 * M = 251 x 10 build. Cold = the first build of that size in the process (what one `lab` command pays);
 * best and median of --repeat warm builds; CPU ms (user + system) beside wall, the steadier figure on a shared box;
 * the ratios are of the best runs (the least disturbed by other load).
 * Aim (issue 9): under 50 ms for 16381 x 100.
 *   node dist/bench/maglev.js [--repeat 20]
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { buildMaglev, MAGLEV_SIZES, type MaglevBackend, type MaglevSize, maglevKey, tableShares } from '../src/datapath/xdp-lb/maglev.js';
import { LabError } from '../src/errors.js';
import { timed } from './common.js';

const { values } = parseArgs({ options: { repeat: { type: 'string', default: '20' } } });
const repeat = Number(values.repeat);
if (!(repeat >= 1)) throw new LabError('E_USAGE', '--repeat takes a number >= 1');

/** Pod-like backends 10.244.x.y:8080/TCP; weights 1 or, with a seed, 1..100 from a fixed LCG. */
function backends(n: number, weighted: boolean): MaglevBackend[] {
  let s = 12345;
  const next = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s;
  };
  return Array.from({ length: n }, (_, i) => ({
    key: maglevKey({ addr: `10.244.${(i >> 8) + 1}.${i & 255}`, port: 8080, proto: 'tcp' }),
    weight: weighted ? 1 + (next() % 100) : 1,
  }));
}

/** The least a fill of M cells does: preset them, then write each once along a stride. */
function bareWalk(m: number): Int32Array {
  const t = new Int32Array(m).fill(-1);
  let c = 0;
  for (let i = 0; i < m; i++) {
    t[c] = i;
    c += 7919;
    if (c >= m) c -= m;
  }
  return t;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const row = (label: string, runs: { ms: number; cpuMs: number }[]) => ({
  label,
  best: Math.min(...runs.map((r) => r.ms)),
  median: median(runs.map((r) => r.ms)),
  cpu: median(runs.map((r) => r.cpuMs)),
});

const cases: { m: MaglevSize; n: number; weighted: boolean }[] = [];
for (const m of [16381, 65521] as const) for (const n of [100, 1000]) for (const weighted of [false, true]) cases.push({ m, n, weighted });

const results: { label: string; m: number; cold: number; coldCpu: number; runs: { ms: number; cpuMs: number }[] }[] = [];
for (const c of cases) {
  const bs = backends(c.n, c.weighted);
  const label = `M=${c.m} N=${c.n} ${c.weighted ? 'weights 1..100' : 'equal'}`;
  const first = timed(() => buildMaglev(bs, c.m));
  // A table that is not a table would make every figure meaningless.
  if (tableShares(first.r, c.n).some((s) => s === 0)) throw new LabError('E_INTERNAL', `${label}: a backend got no cell`);
  results.push({
    label,
    m: c.m,
    cold: first.ms,
    coldCpu: first.cpuMs,
    runs: Array.from({ length: repeat }, () => timed(() => buildMaglev(bs, c.m))),
  });
}
const small = backends(10, false);
const smallRow = row(
  'M=251 N=10 equal',
  Array.from({ length: repeat }, () => timed(() => buildMaglev(small, 251))),
);
const walkRows = Object.fromEntries(
  [16381, 65521].map((m) => [
    m,
    row(
      `bare walk M=${m}`,
      Array.from({ length: repeat }, () => timed(() => bareWalk(m))),
    ),
  ]),
);

const f = (x: number) => x.toFixed(2).padStart(8);
const out = [
  `Maglev build, ${repeat} warm runs each (ms wall; cpu = median CPU ms); baselines in the same process; ` +
    `load average ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs at the start`,
  `${'case'.padEnd(30)} ${'cold'.padStart(8)} ${'best'.padStart(8)} ${'median'.padStart(8)} ${'cpu'.padStart(8)}  x bare walk  x M=251xN=10`,
];
for (const res of results) {
  const r = row(res.label, res.runs);
  out.push(
    `${res.label.padEnd(30)} ${f(res.cold)} ${f(r.best)} ${f(r.median)} ${f(r.cpu)}  ` +
      `${(r.best / walkRows[res.m].best).toFixed(1).padStart(10)}  ${(r.best / smallRow.best).toFixed(1).padStart(11)}`,
  );
}
for (const r of [...Object.values(walkRows), smallRow])
  out.push(`${r.label.padEnd(30)} ${''.padStart(8)} ${f(r.best)} ${f(r.median)} ${f(r.cpu)}`);
const aim = results[0];
out.push(
  `aim: ${aim.label} under 50 ms: cold ${aim.cold.toFixed(1)} ms (${aim.coldCpu.toFixed(1)} CPU ms), warm median ${median(aim.runs.map((r) => r.ms)).toFixed(1)} ms` +
    ` (sizes Cilium allows: ${MAGLEV_SIZES.join(', ')})`,
);
process.stdout.write(`${out.join('\n')}\n`);

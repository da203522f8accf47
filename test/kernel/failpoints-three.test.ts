import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { LabState } from '../../src/lifecycle/labstate.js';
import { fullResidue, labCli, rootNetSnapshot, seeded } from './rel-harness.js';

/**
 * The three-node topology under fail points (issue 15): a seeded sample of its `lab up`
 * operations fails, one per step at least. DPL_FAILPOINT_SAMPLE=all walks every one;
 * DPL_FAILPOINT_SEED replays a sample (the seed is printed).
 */
const STATE = mkdtempSync(join(tmpdir(), 'dpl-rel-fp3-'));
const LAB = 'rel-fp3';
const SEED = Number(process.env.DPL_FAILPOINT_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Operations failed beyond one per step. */
const EXTRA = process.env.DPL_FAILPOINT_SAMPLE === 'all' ? Number.POSITIVE_INFINITY : 3;
const TRACE = /^\s+at .+:\d+:\d+\)?$/m;

const shipped = readFileSync(fileURLToPath(new URL('../../topologies/three-node.yaml', import.meta.url)), 'utf8');
const file = join(mkdtempSync(join(tmpdir(), 'dpl-rel-fp3-t-')), 'three-node.yaml');
writeFileSync(file, shipped.replace(/^name: .*$/m, `name: ${LAB}`));
const up = (failpoint: string) => labCli(STATE, ['up', '-q', file], { env: { DPL_FAILPOINT: failpoint } });

afterAll(async () => {
  await labCli(STATE, ['down', LAB, '-q']);
  rmSync(STATE, { recursive: true, force: true });
});

describe('fail points: the three-node topology', () => {
  it(
    `a sample of its operations fails: each ends in exit 3 naming the step, nothing left (seed ${SEED})`,
    async () => {
      const baseline = await rootNetSnapshot();
      // The plan: how many operations each step starts (DPL_FAILPOINT=count fails none).
      const counted = await up('count');
      expect(counted.code, counted.stderr).toBe(0);
      const counts = Object.fromEntries(
        [...(counted.stderr.match(/DPL_FAILPOINT count: (.*)/)?.[1] ?? '').matchAll(/([a-z-]+)=(\d+)/g)].map((m) => [m[1], Number(m[2])]),
      );
      const s = JSON.parse(readFileSync(join(STATE, LAB, 'lab.json'), 'utf8')) as LabState;
      const devs = s.lab.nodes.flatMap((n) => [
        ...n.pods.flatMap((p) => [p.hostDev, p.dev]),
        ...(n.uplink ? [n.uplink.nodeDev, n.uplink.peerDev] : []),
      ]);
      expect((await labCli(STATE, ['down', LAB, '-q'])).code).toBe(0);
      // provision, wire and deploy of three nodes start processes: a plan without them would walk nothing.
      for (const step of ['provision', 'wire', 'deploy']) expect(counts[step], `${step} in ${counted.stderr}`).toBeGreaterThan(0);

      const all = Object.entries(counts).flatMap(([step, n]) => Array.from({ length: n }, (_, i) => `${step}:${i + 1}`));
      const rand = seeded(SEED);
      const pick = (xs: string[]) => xs.splice(Math.floor(rand() * xs.length), 1)[0];
      const pool = [...all];
      const sample = Object.keys(counts).map((step) => pick(pool.filter((p) => p.startsWith(`${step}:`))));
      for (const p of sample) pool.splice(pool.indexOf(p), 1);
      while (pool.length && sample.length < Object.keys(counts).length + EXTRA) sample.push(pick(pool));
      process.stdout.write(
        `fail points, three-node: seed ${SEED}, ${all.length} operations (${JSON.stringify(counts)}), trying ${sample.join(' ')}\n`,
      );

      const leaks: string[] = [];
      let failed = 0;
      let tolerated = 0;
      for (const fp of sample) {
        const step = fp.split(':')[0];
        const r = await up(fp);
        expect(r.stderr, fp).not.toMatch(TRACE);
        expect(r.stderr, fp).toContain(`DPL_FAILPOINT ${fp}: hit`);
        if (r.code === 0) {
          // A probe of an optional tool tolerates its failure: the lab came up.
          tolerated++;
          expect((await labCli(STATE, ['down', LAB, '-q'])).code).toBe(0);
        } else {
          expect(r.code, `${fp}: ${r.stderr}`).toBe(3);
          expect(r.stderr, fp).toMatch(new RegExp(`the lab failed at step ${step}\\b`));
          failed++;
        }
        leaks.push(...(await fullResidue(LAB, STATE, baseline, devs)).map((o) => `${fp}: ${o}`));
      }
      expect(leaks).toEqual([]);
      expect(failed).toBeGreaterThan(0);
      process.stdout.write(`fail points, three-node: ${failed} failed, ${tolerated} tolerated, leaked: ${leaks.length}\n`);
    },
    Number.isFinite(EXTRA) ? 120_000 : 900_000,
  );
});

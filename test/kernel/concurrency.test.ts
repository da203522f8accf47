import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { quickstart, topo } from './helpers.js';
import { fullResidue, labCli, rootNetSnapshot } from './rel-harness.js';

/** Four labs side by side, and two `lab down` of one lab at once (issue 15). */
const STATE = mkdtempSync(join(tmpdir(), 'dpl-rel-par-'));
const LABS = ['rel-p1', 'rel-p2', 'rel-p3', 'rel-p4'];
const DEVS = ['lxc-client', 'lxc-server', 'uplink', 'eth0'];
/** A Node stack frame in the CLI's output. */
const TRACE = /^\s+at .+:\d+:\d+\)?$/m;
const lab = (args: string[]) => labCli(STATE, args);
const reportDir = mkdtempSync(join(tmpdir(), 'dpl-rel-par-r-'));

afterAll(async () => {
  await lab(['down', '--all', '-q']);
  rmSync(STATE, { recursive: true, force: true });
});

/** The lab's namespaces on this machine. */
const namespaces = (name: string) =>
  existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`dpl-${name}.`)) : [];

/** Two `lab down` of the same lab at once: both end in exit 0 without a trace. */
async function downTwice(name: string): Promise<void> {
  const rs = await Promise.all([lab(['down', name]), lab(['down', name])]);
  for (const r of rs) {
    expect(r.code, `${name}: ${r.stderr}`).toBe(0);
    expect(r.stderr, name).not.toMatch(TRACE);
    expect(r.stdout, name).toMatch(new RegExp(`lab ${name} is (down|not up)`));
  }
}

describe('labs side by side', () => {
  it('four labs come up, are checked and go down at once, each isolated; two downs of one lab at once both end cleanly', async () => {
    const baseline = await rootNetSnapshot();
    const t0 = performance.now();
    const ups = await Promise.all(LABS.map((l) => lab(['up', '-q', topo(quickstart(l))])));
    for (const [i, r] of ups.entries()) expect(r.code, `${LABS[i]}: ${r.stderr}`).toBe(0);
    const checks = await Promise.all(
      LABS.map((l) => lab(['check', l, '-q', '--only', 'connectivity,tso-probe', '--report-dir', join(reportDir, l)])),
    );
    for (const [i, r] of checks.entries()) expect(r.code, `${LABS[i]}: ${r.stdout}${r.stderr}`).toBe(0);

    // Isolation: each journal names its own lab's objects only, and each lab has its four namespaces.
    for (const l of LABS) {
      expect(namespaces(l), l).toHaveLength(4);
      const journal = readFileSync(join(STATE, l, 'journal.jsonl'), 'utf8');
      for (const other of LABS.filter((o) => o !== l)) expect(journal, `${l}'s journal`).not.toContain(other);
    }

    // One lab down (twice at once): the others keep everything.
    await downTwice(LABS[0]);
    expect(await fullResidue(LABS[0], STATE, baseline, DEVS)).toEqual([]);
    for (const l of LABS.slice(1)) {
      expect(namespaces(l), l).toHaveLength(4);
      expect(existsSync(`/sys/fs/bpf/dpl/${l}`), l).toBe(true);
    }
    // The rest at once, each twice.
    await Promise.all(LABS.slice(1).map(downTwice));
    const left = (await Promise.all(LABS.map((l) => fullResidue(l, STATE, baseline, DEVS)))).flat();
    expect(left).toEqual([]);
    process.stdout.write(
      `concurrency: ${LABS.length} labs up, checked and down at once (each down twice) in ${(performance.now() - t0).toFixed(0)} ms, leaked: ${left.length}\n`,
    );
  }, 90_000);
});

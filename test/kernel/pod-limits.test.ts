import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NETNS_KIB } from '../../src/backends/netns-memory.js';
import { CLI, residue, topo } from './helpers.js';
import { labCli } from './rel-harness.js';

/**
 * Pod counts against the machine's limits (issue 15). Measured: the lab's processes and fds do not
 * grow with pods (one `ip -batch` for all namespaces, one nsconf per node, fixed pools), so a
 * 300-pod lab comes up under a 64-fd RLIMIT_NOFILE and a pids cgroup of 24 tasks. Its kernel
 * memory does grow (NETNS_KIB per namespace): past MemAvailable the lab is refused at probe.
 */
const STATE = mkdtempSync(join(tmpdir(), 'dpl-r4-lim-'));
afterAll(() => rmSync(STATE, { recursive: true, force: true }));

const pods = (name: string, perNode: number) =>
  `name: ${name}\nfamilies: [ipv4]\nnodes:\n${[0, 1]
    .map(
      (n) =>
        `  - name: n${n}\n    podCidr: 10.${150 + n}.0.0/23\n    pods:\n${Array.from({ length: perNode }, (_, i) => `      - name: p${i}\n`).join('')}`,
    )
    .join('')}links:\n  - endpoints: [n0, n1]\n`;

/** The cgroup v1 pids hierarchy (this machine's), or v2's root when it delegates pids; undefined without one. */
function pidsRoot(): string | undefined {
  if (existsSync('/sys/fs/cgroup/pids/cgroup.procs')) return '/sys/fs/cgroup/pids';
  const v2 = '/sys/fs/cgroup/cgroup.subtree_control';
  return existsSync(v2) && readFileSync(v2, 'utf8').includes('pids') ? '/sys/fs/cgroup' : undefined;
}

/** Runs the CLI in a fresh pids cgroup capped at `max` tasks, with RLIMIT_NOFILE `nofile`; the cgroup's peak too. */
function limited(args: string[], max: number, nofile: number, cg: string) {
  writeFileSync(join(cg, 'pids.max'), String(max));
  const argv = ['-c', `echo $$ > ${cg}/cgroup.procs && exec prlimit --nofile=${nofile} "$0" "$@"`, process.execPath, CLI, ...args];
  const r = spawnSync('sh', argv, { env: { ...process.env, DPL_STATE_DIR: STATE }, encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr, peak: Number(readFileSync(join(cg, 'pids.peak'), 'utf8')) };
}

describe('pod counts against the machine', () => {
  const root = pidsRoot();
  it.skipIf(!root)(
    '300 pods come up and down under 64 fds and 24 tasks: the lab does not fan out per pod',
    () => {
      const cg = join(root!, `r4-pods-${process.pid}`);
      mkdirSync(cg);
      try {
        const up = limited(['up', topo(pods('r4-pods', 150)), '-q'], 24, 64, cg);
        expect(up.code, up.stderr).toBe(0);
        expect(readdirSync('/run/netns').filter((n) => n.startsWith('dpl-r4-pods.')).length).toBe(302);
        const down = limited(['down', 'r4-pods', '-q'], 24, 64, cg);
        expect(down.code, down.stderr).toBe(0);
        expect(up.peak).toBeGreaterThan(1);
        expect(up.peak).toBeLessThanOrEqual(24);
      } finally {
        spawnSync(process.execPath, [CLI, 'down', 'r4-pods', '-q'], { env: { ...process.env, DPL_STATE_DIR: STATE } });
        rmdirSync(cg);
      }
    },
    60_000,
  );

  it('a soft RLIMIT_NOFILE below what the CLI keeps open: exit 2 naming it, before anything is created', () => {
    const r = spawnSync('prlimit', ['--nofile=32', process.execPath, CLI, 'up', topo(pods('r4-fds', 2))], {
      env: { ...process.env, DPL_STATE_DIR: STATE },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain('the soft limit on open files (RLIMIT_NOFILE) is 32');
    expect(existsSync(join(STATE, 'r4-fds'))).toBe(false);
  });

  it('namespaces needing more kernel memory than MemAvailable: exit 2 naming the figures, nothing created', async () => {
    // 302 namespaces need 76 MiB; the fake MemAvailable leaves 64.
    const fake = join(STATE, 'meminfo');
    writeFileSync(fake, 'MemTotal:  131072 kB\nMemAvailable:  65536 kB\n');
    const r = await labCli(STATE, ['up', topo(pods('r4-mem', 150))], { env: { DPL_TEST_MEMINFO: fake } });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(
      `the lab needs 302 network namespaces of at least ${NETNS_KIB} KiB of kernel memory each (76 MiB); this machine has 64 MiB available`,
    );
    expect(await residue('r4-mem')).toEqual([]);
    expect(existsSync(join(STATE, 'r4-mem'))).toBe(false);
  }, 30_000);
});

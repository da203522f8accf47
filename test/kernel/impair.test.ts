import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, labProcesses, quickstart, residue, topo, until } from './helpers.js';

const LAB = 'imphost';

describe('impairments on this kernel (no sch_netem)', () => {
  it('refuses a lab with impair before creating anything: exit 2, the reason and the fix', async () => {
    const file = topo(quickstart(LAB).replace('      rate: 200mbit\n', '      rate: 200mbit\n      impair: {delay: 20ms, loss: 1%}\n'));
    const r = await cli(['up', file]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /node node1: impair: cannot impair node1:remote \(delay 20ms, loss 1%\): no sch_netem: kernel lacks CONFIG_NET_SCH_NETEM/,
    );
    expect(r.stderr).toMatch(/run the lab in VMs whose kernel has netem \(backend: qemu/);
    expect(await residue(LAB)).toEqual([]);
    expect(existsSync(`/run/datapath-lab/${LAB}`)).toBe(false);
  });

  it('lab impair and lab link on a lab that is not up: exit 2', async () => {
    const r = await cli(['impair', LAB, 'node1:remote', '--delay', '5ms']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no lab named 'imphost' is up/);
    expect((await cli(['link', LAB, 'node1:remote', 'down'])).code).toBe(2);
  });
});

describe('lab node on a local lab', () => {
  const NODE_LAB = 'impnode';
  it('kill: the lab processes in the node and pod namespaces die, the namespaces stay; restart clears it; status says so', async () => {
    const up = await cli(['up', topo(quickstart(NODE_LAB)), '-q']);
    expect(up.code, up.stderr).toBe(0);
    try {
      // A lab process in a pod (tagged as the lab tags its own) and one of another lab's beside it, which must live.
      const mine = spawn('ip', ['netns', 'exec', `dpl-${NODE_LAB}.node1.client`, 'sleep', '300'], {
        env: { ...process.env, DPL_LAB: NODE_LAB },
        stdio: 'ignore',
      });
      const other = spawn('ip', ['netns', 'exec', `dpl-${NODE_LAB}.node1.client`, 'sleep', '301'], {
        env: { ...process.env, DPL_LAB: 'someone-else' },
        stdio: 'ignore',
      });
      const exited = new Promise<NodeJS.Signals | null>((r) => mine.on('exit', (_c, s) => r(s)));
      expect(await until(async () => (await labProcesses(NODE_LAB, 'sleep')).length === 1)).toBe(true);
      const kill = await cli(['node', NODE_LAB, 'node1', 'kill', '-q']);
      expect(kill.code, kill.stderr).toBe(0);
      expect(kill.stdout).toMatch(/node node1: namespaces kept, 1 lab process\(es\) killed/);
      expect(await exited).toBe('SIGKILL');
      expect(other.exitCode).toBe(null);
      other.kill('SIGKILL');
      expect(existsSync(`/run/netns/dpl-${NODE_LAB}.node1`)).toBe(true);
      expect(JSON.parse((await cli(['status', NODE_LAB, '--json'])).stdout).nodesKilled).toEqual(['node1']);
      expect((await cli(['node', NODE_LAB, 'node1', 'restart', '-q'])).code).toBe(0);
      expect(JSON.parse((await cli(['status', NODE_LAB, '--json'])).stdout).nodesKilled).toEqual([]);
      expect((await cli(['node', NODE_LAB, 'nope', 'kill', '-q'])).code).toBe(2);
      expect((await cli(['node', NODE_LAB, 'node1', 'explode', '-q'])).code).toBe(2);
    } finally {
      await cli(['down', NODE_LAB, '-q']);
    }
    expect(await residue(NODE_LAB)).toEqual([]);
  });
});

describe('lab link on a local lab', () => {
  const LINK_LAB = 'implink';
  const TWO = `name: ${LINK_LAB}
families: [ipv4, ipv6]
nodes:
  - name: a
    pods:
      - name: p
  - name: b
    pods:
      - name: q
links:
  - endpoints: [a, b]
checks:
  - connectivity
`;
  const connectivity = async () => {
    const r = await cli(['check', LINK_LAB, '-q', '--only', 'connectivity', '--report-dir', mkdtempSync(join(tmpdir(), 'imp-link-'))]);
    return /connectivity\s+(PASS|FAIL|ERROR)\s+\S+\s+(.*)/.exec(r.stdout)?.slice(1) ?? [r.stdout, r.stderr];
  };
  it('down: pods across the link cannot reach each other; up: both families reach again (routes and link-local put back)', async () => {
    expect((await cli(['up', topo(TWO), '-q'])).code).toBe(0);
    try {
      expect((await cli(['link', LINK_LAB, 'a:b', 'down', '-q'])).code).toBe(0);
      const down = await connectivity();
      expect(down[0], down[1]).toBe('FAIL');
      expect(down[1]).toMatch(/4 of 4 attempts did not reach/);
      expect(JSON.parse((await cli(['status', LINK_LAB, '--json'])).stdout).links).toEqual([{ name: 'a:b', state: 'down' }]);
      expect((await cli(['link', LINK_LAB, 'b:a', 'up', '-q'])).code).toBe(0);
      const up = await connectivity();
      expect(up[0], up[1]).toBe('PASS');
      expect(up[1]).toMatch(/all 4 attempts \(ipv4 2, ipv6 2\)/);
    } finally {
      await cli(['down', LINK_LAB, '-q']);
    }
    expect(await residue(LINK_LAB)).toEqual([]);
  });
});

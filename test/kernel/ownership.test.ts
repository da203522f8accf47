import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runArgv, spawnArgv } from '../../src/exec/exec.js';
import { processStartTime } from '../../src/exec/process.js';
import { CLI, quickstart, residue, topo, until, type CliResult } from './helpers.js';

/** The CLI with its own state root: `lab down --all` sees this test's labs only, never another test's beside it. */
const STATE = mkdtempSync(join(tmpdir(), 'dpl-rel-own-'));
function lab(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DPL_STATE_DIR: STATE },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const OWN = 'rel-own';
/** A namespace named like lab rel-c's, which no journal knows. */
const CANARY_NS = 'dpl-rel-c.node1';
/** A pin dir under the labs' bpffs root for a lab that does not exist, with a pinned map in it. */
const BPFFS = '/sys/fs/bpf/dpl';
const CANARY_PINS = join(BPFFS, 'rel-ghost');
const CANARY_MAP = join(CANARY_PINS, 'canary');
const CANARY_PORT = '5291';

const iperf = spawnArgv(['iperf3', '-s', '-p', CANARY_PORT], { env: { ...process.env, DPL_LAB: OWN } });

afterAll(async () => {
  // A lab that adopted a canary (the failure this test is for) must not outlive its state dir.
  await lab(['down', '--all', '-q']);
  iperf.kill('SIGKILL');
  await iperf.done;
  await runArgv(['ip', 'netns', 'del', CANARY_NS], { nothrow: true });
  rmSync(CANARY_PINS, { recursive: true, force: true });
  // The shared root goes when nothing else is in it (another lab may be using it).
  if (existsSync(BPFFS) && readdirSync(BPFFS).length === 0) rmdirSync(BPFFS);
  rmSync(STATE, { recursive: true, force: true });
});

describe("ownership: objects named like the lab's but not created by it", () => {
  it('survive lab down --all, and lab up refuses to adopt them', async () => {
    await runArgv(['ip', 'netns', 'add', CANARY_NS]);
    mkdirSync(CANARY_PINS, { recursive: true });
    await runArgv(['bpftool', 'map', 'create', CANARY_MAP, 'type', 'array', 'key', '4', 'value', '4', 'entries', '1', 'name', 'relcanary']);
    expect(await until(() => processStartTime(iperf.pid) !== '')).toBe(true);
    const iperfStart = processStartTime(iperf.pid);

    // A real lab beside the canaries, so that down --all has something of its own to remove.
    const up = await lab(['up', '-q', topo(quickstart(OWN))]);
    expect(up.code, up.stderr).toBe(0);
    const down = await lab(['down', '--all']);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toContain(`lab ${OWN} is down`);
    expect((await residue(OWN)).filter((o) => !o.startsWith(`process ${iperf.pid} `))).toEqual([]);
    expect(existsSync(join(STATE, OWN))).toBe(false);

    const canariesAlive = () => {
      expect(existsSync(`/run/netns/${CANARY_NS}`), CANARY_NS).toBe(true);
      expect(existsSync(CANARY_MAP), CANARY_MAP).toBe(true);
      expect(processStartTime(iperf.pid), 'canary iperf3').toBe(iperfStart);
    };
    canariesAlive();

    // A lab whose namespaces would be the canary's.
    const ns = await lab(['up', '-q', topo(quickstart('rel-c'))]);
    expect(ns.code, ns.stderr).toBe(2);
    expect(ns.stderr).toContain(`namespaces named like lab 'rel-c' exist but no journal owns them: ${CANARY_NS}`);
    expect(existsSync(join(STATE, 'rel-c'))).toBe(false);
    canariesAlive();

    // A lab whose pin dir would be the canary's.
    const pins = await lab(['up', '-q', topo(quickstart('rel-ghost'))]);
    expect(pins.code, pins.stderr).toBe(2);
    expect(pins.stderr).toContain(`a pin dir named like lab 'rel-ghost' exists but no journal owns it: ${CANARY_PINS}`);
    expect(existsSync(join(STATE, 'rel-ghost'))).toBe(false);
    expect(await residue('rel-ghost')).toEqual([`pin dir ${CANARY_PINS}`]);
    canariesAlive();
  }, 60_000);
});

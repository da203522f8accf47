import { existsSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runArgv } from '../../src/exec/exec.js';
import { cli, residue, topo } from './helpers.js';

/**
 * A DSR backend added live on a node that played no part at `lab up` (w3: no link to an LB node, no backend of a
 * loadBalancer service, so its xdp-lb decision was off): `lab svc backend add` loads xl_decap there (it used to skip
 * the node, and flows Maglev sent to the pod timed out), xdp-lb-reachable passes with the pod seeing the client
 * itself, and `lab down` removes the pins that live load made.
 */
const LAB = 'lcdsr';
const text = readFileSync(new URL('../../topologies/xdp-lb.yaml', import.meta.url), 'utf8')
  .replace(/^name: xdp-lb$/m, `name: ${LAB}`)
  .replace('links:\n', '  - name: w3\n    pods: [{ name: other }]\nlinks:\n  - endpoints: [w1, w3]\n')
  .replace(/^checks: .*$/m, 'checks: [xdp-lb-reachable]');

interface Report {
  checks: { id: string; status: string; reason: string; metrics: { runs: { frontend: string; seen: string[] }[] } }[];
}

describe('lab svc: a DSR backend on a node that had no part in the XDP LB', () => {
  afterAll(async () => {
    await cli(['down', LAB, '-q']);
  });

  it('loads xl_decap there, the pod answers with the client seen as itself, and lab down leaves no pin', async () => {
    const up = await cli(['up', topo(text), '-q']);
    expect(up.code, up.stderr).toBe(0);
    const st = JSON.parse((await cli(['status', LAB, '--json'])).stdout) as {
      datapath: { feature: string; node: string; status: string }[];
    };
    expect(st.datapath.find((d) => d.feature === 'xdp-lb' && d.node === 'w3')?.status).toBe('off');
    const add = await cli(['svc', 'backend', 'add', LAB, 'webdsr', 'other', '-q']);
    expect(add.code, add.stderr).toBe(0);
    const tc = await runArgv(['ip', 'netns', 'exec', `dpl-${LAB}.w3`, 'bpftool', '-j', 'net', 'show']);
    const progs = (JSON.parse(tc.stdout) as { tc?: { devname: string; name: string }[] }[]).flatMap((x) => x.tc ?? []);
    expect(progs.filter((p) => p.name === 'xl_decap').map((p) => p.devname)).toEqual(['n-w1']);
    const dir = `/tmp/dpl-${LAB}`;
    await cli(['check', LAB, '-q', '--only', 'xdp-lb-reachable', '--report-dir', dir]);
    const c = (JSON.parse(readFileSync(`${dir}/report.json`, 'utf8')) as Report).checks[0];
    expect(c.status, c.reason).toBe('pass');
    // The DSR runs' pods saw the client's own addresses toward lb1 and lb2, in both families (the topology is dual-stack).
    const dsr = c.metrics.runs.filter((r) => r.frontend.endsWith('(dsr)')).flatMap((r) => r.seen);
    expect(new Set(dsr)).toEqual(new Set(['10.255.1.2', '10.255.2.2', 'fd00:255:1::2', 'fd00:255:2::2']));
    const pins = await runArgv(['find', `/sys/fs/bpf/dpl/${LAB}/w3`, '-name', 'xl_dsr']);
    expect(pins.stdout.trim()).not.toBe('');
    const down = await cli(['down', LAB, '-q']);
    expect(down.code, down.stderr).toBe(0);
    expect(existsSync(`/sys/fs/bpf/dpl/${LAB}`)).toBe(false);
    expect(await residue(LAB)).toEqual([]);
  }, 90_000);
});

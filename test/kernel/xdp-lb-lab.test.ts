import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runArgv } from '../../src/exec/exec.js';
import { cli, labProcesses, residue, topo } from './helpers.js';

/**
 * topologies/xdp-lb.yaml as a user runs it: `lab up` puts xl_xdp natively (not generic XDP) on both LB nodes'
 * uplinks, `lab check` passes xdp-lb-reachable, xdp-lb-in-xdp, maglev-balance,
 * xdp-lb-weight-zero and maglev-consistency, `lab down` leaves no namespace, pin or process.
 */
const LAB = 'x2lb';
const text = readFileSync(new URL('../../topologies/xdp-lb.yaml', import.meta.url), 'utf8').replace(/^name: xdp-lb$/m, `name: ${LAB}`);

interface Report {
  checks: { id: string; status: string; reason: string; metrics: Record<string, unknown>; evidence: string[] }[];
}

describe('lab: XDP load balancer (topologies/xdp-lb.yaml)', () => {
  afterAll(async () => {
    await cli(['down', LAB, '-q']);
  });

  it('attaches natively on the LB uplinks, passes its checks, and leaves nothing behind', async () => {
    const up = await cli(['up', topo(text), '-q']);
    expect(up.code, up.stderr).toBe(0);
    for (const node of ['lb1', 'lb2']) {
      const r = await runArgv(['ip', '-n', `dpl-${LAB}.${node}`, '-j', '-d', 'link', 'show']);
      const links = JSON.parse(r.stdout) as { ifname: string; xdp?: { mode: number; prog?: { name: string } } }[];
      // XDP_ATTACHED_DRV = 1 (include/uapi/linux/if_link.h): native, not generic (2).
      const xdp = links.filter((l) => l.xdp).map((l) => `${l.ifname}:${l.xdp!.mode}:${l.xdp!.prog?.name}`);
      expect(xdp).toEqual(['uplink:1:xl_xdp']);
    }
    const dir = `/tmp/dpl-${LAB}`;
    const chk = await cli([
      'check',
      LAB,
      '-q',
      '--only',
      'xdp-lb-reachable,xdp-lb-in-xdp,maglev-balance,xdp-lb-weight-zero,maglev-consistency',
      '--report-dir',
      dir,
    ]);
    const rep = JSON.parse(readFileSync(`${dir}/report.json`, 'utf8')) as Report;
    const by = (id: string) => rep.checks.find((c) => c.id === id);
    expect(by('xdp-lb-reachable')?.status, by('xdp-lb-reachable')?.reason).toBe('pass');
    expect(by('xdp-lb-in-xdp')?.status, `${by('xdp-lb-in-xdp')?.reason}\n${by('xdp-lb-in-xdp')?.evidence.join('\n')}`).toBe('pass');
    for (const id of ['maglev-balance', 'xdp-lb-weight-zero', 'maglev-consistency'])
      expect(by(id)?.status, `${id}: ${by(id)?.reason}`).toBe('pass');
    expect(chk.code, chk.stderr).toBe(0);
    const runs = (by('xdp-lb-in-xdp')!.metrics.runs as { node: string; xdpCounted: number; sent: number }[]).map((r) => r.node);
    expect(runs).toEqual(['lb1', 'lb2']);
    // A live change reaches the XDP tables: web2 removed from `web` with `lab svc` owns no cell on either LB node
    // (maglev-balance compares the kernel's tables with the new plan) and answers no client (xdp-lb-reachable).
    const del = await cli(['svc', 'backend', 'del', LAB, 'web', 'web2', '-q']);
    expect(del.code, del.stderr).toBe(0);
    const dir2 = `/tmp/dpl-${LAB}-after`;
    await cli(['check', LAB, '-q', '--only', 'xdp-lb-reachable,maglev-balance', '--report-dir', dir2]);
    const after = JSON.parse(readFileSync(`${dir2}/report.json`, 'utf8')) as Report;
    for (const c of after.checks) expect(c.status, `${c.id} after lab svc: ${c.reason}`).toBe('pass');
    const cells = (after.checks.find((c) => c.id === 'maglev-balance')!.metrics.tables as { cells: Record<string, number> }[]).map((t) =>
      Object.keys(t.cells).sort(),
    );
    expect(cells).toEqual([
      ['w1/web1', 'w2/web3'],
      ['w1/web1', 'w2/web3'],
    ]);
    const down = await cli(['down', LAB, '-q']);
    expect(down.code, down.stderr).toBe(0);
    expect(await residue(LAB)).toEqual([]);
    expect(await labProcesses(LAB, 'svcprobe')).toEqual([]);
  }, 90_000);
});

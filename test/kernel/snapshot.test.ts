import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runArgv } from '../../src/exec/exec.js';
import { cli, quickstart, residue, topo } from './helpers.js';

const LAB = 'rpt-snap';
const json = (dir: string, file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8'));

describe('snapshot at the moment of failure', () => {
  it('tso-probe failing on a size changed behind the lab leaves a snapshot that shows the changed size', async () => {
    const up = await cli(['up', topo(quickstart(LAB)), '-q']);
    expect(up.code, up.stderr).toBe(0);
    try {
      await runArgv(['ip', '-n', `dpl-${LAB}.node1.server`, 'link', 'set', 'dev', 'eth0', 'gso_max_size', '65536']);
      const dir = mkdtempSync(join(tmpdir(), 'dpl-rpt-'));
      const r = await cli(['check', LAB, '--only', 'tso-probe', '--report-dir', dir, '-q']);
      expect(r.code, r.stderr + r.stdout).toBe(1);
      const [check] = json(dir, 'report.json').checks;
      expect(check.status).toBe('fail');
      const snap = join(dir, 'snapshots', 'tso-probe');
      expect(check.snapshot.dir).toBe(snap);
      // The device the check complained about, as the kernel showed it at the failure.
      const server = json(snap, 'node1/pod-server/ip-link.json');
      expect(server.find((l: { ifname: string }) => l.ifname === 'eth0').gso_max_size).toBe(65536);
      // The uplink's 200mbit bottleneck in the node namespace, with its counters.
      const qdiscs = json(snap, 'node1/node/tc-qdisc.json') as { kind: string; bytes?: number }[];
      expect(qdiscs.some((q) => q.kind === 'tbf' || q.kind === 'htb' || q.kind === 'fq')).toBe(true);
      expect(json(snap, 'node1/bpftool-prog.json').length).toBeGreaterThan(0);
      expect(Object.keys(json(snap, 'node1/pod-client/nstat.json').kernel)).toContain('TcpActiveOpens');
      expect(readFileSync(join(snap, 'node1/node/ip-route4.json'), 'utf8')).toContain('"dst"');
      expect(existsSync(join(snap, 'node1/pod-client/ss-tmi.txt'))).toBe(true);
      // The lab's pinned maps, dumped: host routing's per-CPU counters, its endpoint map and the DSR reply maps.
      expect(readdirSync(join(snap, 'node1/maps')).sort()).toEqual([
        'node1_maps_counters.json',
        'node1_maps_dsr_ct.json',
        'node1_maps_dsr_ct6.json',
        'node1_maps_endpoints.json',
      ]);
      expect(json(snap, 'node1/maps/node1_maps_endpoints.json').length).toBeGreaterThan(0);
      expect(check.snapshot.files).toContain('node1/pod-server/ip-link.json');
      expect(check.snapshot.missing).toEqual([]);
    } finally {
      expect((await cli(['down', LAB, '-q'])).code).toBe(0);
    }
    expect(await residue(LAB)).toEqual([]);
  });
});

import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cli, quickstart, residue, topo } from './helpers.js';

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

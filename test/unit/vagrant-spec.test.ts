import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { domainDriver } from '../../src/backends/vagrant/daemons.js';
import { libvirtNames, VAGRANTFILE_TEMPLATE, vagrantSpec } from '../../src/backends/vagrant/vagrantfile.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';

const two = `name: vg-two\nfamilies: [ipv4]\nnodes:\n  - name: n1\n    pods: [{ name: a }]\n  - name: n2\n    pods: [{ name: b }]\nlinks:\n  - endpoints: [n1, n2]\n`;

function lab(text: string) {
  const p = parseTopology(text, 'lab.yaml');
  if (!p.ok) throw new Error('parse');
  const r = resolve(p.value);
  if (!r.ok) throw new Error('resolve');
  return r.value;
}

const box = { name: 'dpl/6.12', version: '1.0.5', url: 'file:///c/metadata.json' };
const kernel = { vmlinuz: '/k/vmlinuz', initrd: '/b/initrd.img', cmdline: 'root=/dev/vda' };

describe('vagrant lab.json', () => {
  it('a link is a UDP tunnel whose two ends point at each other, with distinct MACs', () => {
    const s = vagrantSpec(lab(two), box, kernel, 'qemu', [4001, 4002]);
    expect(s.nodes.map((n) => n.name)).toEqual(['n1', 'n2']);
    const [a, b] = [s.nodes[0].links[0], s.nodes[1].links[0]];
    expect([a.localPort, a.remotePort, b.localPort, b.remotePort]).toEqual([4001, 4002, 4002, 4001]);
    expect(a.mac).not.toBe(b.mac);
    expect(a.ip).not.toBe(b.ip);
  });

  it('TCG asks for a named CPU model, kvm does not', () => {
    expect(vagrantSpec(lab(two), box, kernel, 'qemu', [1, 2]).libvirt.cpuModel).toBe('qemu64');
    expect(vagrantSpec(lab(two), box, kernel, 'kvm', [1, 2]).libvirt.cpuModel).toBeUndefined();
  });

  it("libvirt names carry the lab's name; the management subnet is clear of libvirt's and vagrant-libvirt's defaults", () => {
    const n = libvirtNames('vg-two');
    expect(n.prefix).toBe('dpl-vg-two_');
    expect(n.network).toBe('dpl-vg-two');
    const third = Number(n.subnet.split('.')[2]);
    expect(third).toBeGreaterThanOrEqual(200);
    expect(third).toBeLessThan(250);
  });

  it('the template reads every key lab.json has at the top level', () => {
    const t = readFileSync(VAGRANTFILE_TEMPLATE, 'utf8');
    for (const k of Object.keys(vagrantSpec(lab(two), box, kernel, 'qemu', [1, 2]))) expect(t).toContain(`spec["${k}"]`);
  });

  it('the driver follows what libvirt offers', () => {
    expect(domainDriver("<guest><arch name='x86_64'><domain type='qemu'/></arch></guest>")).toBe('qemu');
    expect(domainDriver("<guest><arch name='x86_64'><domain type='qemu'/><domain type='kvm'/></arch></guest>")).toBe('kvm');
  });
});

import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../paths.js';
import type { Lab } from '../../topology/model.js';

/** The Vagrantfile every vagrant lab runs (it reads lab.json beside it). */
export const VAGRANTFILE_TEMPLATE = join(REPO_ROOT, 'vms', 'Vagrantfile');

/** Memory of a node's VM: the qemu backend's guests run the same checks in this much. */
export const NODE_MEMORY_MB = 1024;
export const NODE_CPUS = 2;

/** One end of a link as the Vagrantfile's private_network gets it. */
export interface LinkEnd {
  /** Device name the NIC gets in the node's namespace. */
  dev: string;
  mac: string;
  /** Address given to Vagrant (auto_config is off: the lab addresses the NIC itself). */
  ip: string;
  localPort: number;
  remotePort: number;
}

/** lab.json: everything of one lab that the Vagrantfile reads. */
export interface VagrantSpec {
  /** Domain name prefix (vagrant-libvirt's default_prefix): `<prefix><machine>`. */
  prefix: string;
  box: { name: string; version: string; url: string };
  kernel: { vmlinuz: string; initrd: string; cmdline: string };
  libvirt: {
    /** `qemu` (TCG) where libvirt offers no kvm domain type; `kvm` otherwise (virsh capabilities). */
    driver: 'kvm' | 'qemu';
    /** A named CPU model under TCG (qemu64); unset with kvm (host-model). */
    cpuModel?: string;
    /** The lab's own management network (NAT + DHCP, from which Vagrant learns each machine's address). */
    managementNetwork: string;
    managementSubnet: string;
  };
  nodes: { name: string; memoryMb: number; cpus: number; links: LinkEnd[] }[];
}

/** Libvirt names of one lab: its domains' prefix and its management network, unique per lab name. */
export function libvirtNames(lab: string): { prefix: string; network: string; subnet: string } {
  const h = createHash('sha256').update(lab).digest();
  // 192.168.200-249: clear of vagrant-libvirt's default 192.168.121.0/24 and libvirt's default 192.168.122.0/24.
  return { prefix: `dpl-${lab}_`, network: `dpl-${lab}`, subnet: `192.168.${200 + (h[0] % 50)}.0/24` };
}

/** lab.json of a lab; `ports` gives two free UDP ports per link (link k: ports[2k], ports[2k+1]). */
export function vagrantSpec(
  lab: Lab,
  box: VagrantSpec['box'],
  kernel: VagrantSpec['kernel'],
  driver: VagrantSpec['libvirt']['driver'],
  ports: number[],
): VagrantSpec {
  const names = libvirtNames(lab.name);
  const ends = new Map<string, LinkEnd[]>();
  lab.links.forEach((l, k) => {
    const [pa, pb] = [ports[2 * k], ports[2 * k + 1]];
    const mac = (side: number) => `52:54:00:d2:${(k + 1).toString(16).padStart(2, '0')}:0${side}`;
    // Addresses Vagrant validates but never configures (auto_config: false): a /30 per link in 172.31.0.0/16.
    // (.1 draws Vagrant's warning that it may clash with a host's bridge address).
    const ip = (side: number) => `172.31.${k}.${side + 1}`;
    ends.set(l.a, [...(ends.get(l.a) ?? []), { dev: l.devA, mac: mac(1), ip: ip(1), localPort: pa, remotePort: pb }]);
    ends.set(l.b, [...(ends.get(l.b) ?? []), { dev: l.devB, mac: mac(2), ip: ip(2), localPort: pb, remotePort: pa }]);
  });
  return {
    prefix: names.prefix,
    box,
    kernel,
    libvirt: {
      driver,
      ...(driver === 'qemu' ? { cpuModel: 'qemu64' } : {}),
      managementNetwork: names.network,
      managementSubnet: names.subnet,
    },
    nodes: lab.nodes.map((n) => ({ name: n.name, memoryMb: NODE_MEMORY_MB, cpus: NODE_CPUS, links: ends.get(n.name) ?? [] })),
  };
}

/** Write the Vagrantfile and lab.json into the lab's Vagrant dir. */
export function writeProject(dir: string, spec: VagrantSpec): void {
  mkdirSync(dir, { recursive: true });
  copyFileSync(VAGRANTFILE_TEMPLATE, join(dir, 'Vagrantfile'));
  writeFileSync(join(dir, 'lab.json'), `${JSON.stringify(spec, null, 2)}\n`);
}

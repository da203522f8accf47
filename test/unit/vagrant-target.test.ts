import { describe, expect, it } from 'vitest';
import { parseSshConfig } from '../../src/backends/vagrant/machine-readable.js';
import { LINK_NIC, machineTarget, nodeSsh } from '../../src/backends/vagrant/target.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';

const text = `name: vg-t\nfamilies: [ipv4]\nnodes:\n  - name: n1\n    pods: [{ name: a }]\n  - name: n2\n    pods: [{ name: b }]\n  - name: n3\n    pods: [{ name: c }]\nlinks:\n  - endpoints: [n1, n2]\n`;

function lab() {
  const p = parseTopology(text, 'lab.yaml');
  if (!p.ok) throw new Error('parse');
  const r = resolve(p.value);
  if (!r.ok) throw new Error('resolve');
  return r.value;
}

/** `vagrant ssh-config n1` as vagrant-libvirt prints it (--machine-readable wraps the same text). */
const printed = `Host n1
  HostName 192.168.121.17
  User vagrant
  Port 22
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /var/lib/datapath-lab/labs/vg-t/vagrant/home/insecure_private_key
  IdentitiesOnly yes
  LogLevel FATAL
`;

describe('vagrant machine ssh settings (the same at lab up and at re-attach)', () => {
  const [c] = parseSshConfig(printed);

  it("takes host, user, port and key from ssh-config and checks the box key, never Vagrant's /dev/null known_hosts", () => {
    const s = nodeSsh(lab(), 'n1', machineTarget('vg-t', 'n1', c, '/l/known_hosts'));
    expect(s).toMatchObject({ host: '192.168.121.17', user: 'vagrant', port: 22, knownHosts: '/l/known_hosts', nic: LINK_NIC });
    expect(s.identityFile).toMatch(/insecure_private_key$/);
  });

  it('a node without a link gets no link NIC', () => {
    expect(nodeSsh(lab(), 'n3', machineTarget('vg-t', 'n3', c, '/l/known_hosts')).nic).toBeUndefined();
  });
});

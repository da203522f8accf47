import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ipToNsconf, nodeConf, podBatch, podConf } from '../../src/backends/wiring.js';
import { LabError } from '../../src/errors.js';
import type { LabNode, Pod } from '../../src/topology/model.js';

const NSCONF = fileURLToPath(new URL('../../build/bpf/nsconf', import.meta.url));

const pod: Pod = { name: 'a', node: 'n', netns: 'dpl-t.n.a', hostDev: 'lxc-a', dev: 'eth0', ipv4: '10.244.1.2', ipv6: 'fd00:244:1::2' };
const node = { name: 'n', netns: 'dpl-t.n', gw4: '10.244.1.1', gw6: 'fd00:244:1::1', pods: [pod] } as unknown as LabNode;

/** podBatch's iproute2 lines in nsconf's words: the two must say the same. */
const asNsconf = (l: string) =>
  l.replace(/^link set (\S+) up$/, 'link up $1').replace(/^link set (\S+) addrgenmode none$/, 'addrgenmode none $1');

describe('nsconf input', () => {
  for (const kind of ['veth', 'netkit'] as const)
    it(`a ${kind} pod: the same steps as its ip -batch, after entering its namespace`, () => {
      const ip = podBatch(node, pod, kind).trimEnd().split('\n').map(asNsconf);
      expect(podConf(node, pod, kind)).toEqual([`ns ${pod.netns}`, ...ip]);
    });

  it('a node: forwarding on in the node namespace, then each pod', () => {
    const lines = nodeConf(node, 'veth').trimEnd().split('\n');
    expect(lines.slice(0, 3)).toEqual(['ns dpl-t.n', 'sysctl net.ipv4.ip_forward 1', 'sysctl net.ipv6.conf.all.forwarding 1']);
    expect(lines.slice(3)).toEqual(podConf(node, pod, 'veth'));
  });
});

describe('iproute2 lines in nsconf words', () => {
  it('maps the forms the wiring writes and keeps addr/route lines as they are', () => {
    const batch = 'link set lo up\nlink set up0 addrgenmode none\naddr add 10.0.0.1/30 dev up0\nroute add default via 10.0.0.2 dev up0\n';
    expect(ipToNsconf(batch)).toEqual([
      'link up lo',
      'addrgenmode none up0',
      'addr add 10.0.0.1/30 dev up0',
      'route add default via 10.0.0.2 dev up0',
    ]);
  });

  it('turns provisionBatch netkit pairs into nsconf netkit lines with their sizes', () => {
    const sz = ' gso_max_size 196608 gro_max_size 196608 gso_ipv4_max_size 196608 gro_ipv4_max_size 196608';
    const l = `link add lxc-a netns n1${sz} type netkit mode l3 forward peer blackhole name eth0 netns n1.a${sz}`;
    expect(ipToNsconf(l)).toEqual(['netkit add lxc-a netns n1 peer eth0 netns n1.a size 196608 size4 196608']);
    const v6only =
      'link add lxc-a netns n1 gso_max_size 65536 gro_max_size 65536 type netkit mode l3 forward peer blackhole name eth0 netns n1.a';
    expect(ipToNsconf(v6only)).toEqual(['netkit add lxc-a netns n1 peer eth0 netns n1.a size 65536']);
    expect(ipToNsconf('link add lxc-a netns n1 type netkit mode l3 forward peer blackhole name eth0 netns n1.a')).toEqual([
      'netkit add lxc-a netns n1 peer eth0 netns n1.a',
    ]);
  });

  it('refuses a line it has no form for instead of passing it on', () => {
    expect(() => ipToNsconf('link set up0 mtu 9000\n')).toThrow(LabError);
    expect(() => ipToNsconf('neigh add 10.0.0.2 lladdr 02:00:00:00:00:01 dev up0\n')).toThrow(/no form/);
  });
});

describe('nsconf errors (build/bpf/nsconf; no privileges, nothing changed)', () => {
  it('names each failed line with its number and errno, runs the rest, exits 1', () => {
    const r = spawnSync(NSCONF, { input: '# comment\nlink up dpl-no-such-dev\n\naddrgenmode none dpl-no-such-dev\n', encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(r.stderr).toContain('nsconf: line 2: errno 19 (No such device)');
    expect(r.stderr).toContain('nsconf: line 4: errno 19');
    expect(r.status).toBe(1);
  });

  it('a line it cannot parse is named and makes the exit status 2', () => {
    const r = spawnSync(NSCONF, { input: 'link up\nroute add 10.0.0.0/8 via\nfrobnicate x\n', encoding: 'utf8' });
    expect(
      r.stderr
        .split('\n')
        .filter((l) => l.includes('cannot parse'))
        .map((l) => l.split(':')[1]),
    ).toEqual([' line 1', ' line 2', ' line 3']);
    expect(r.status).toBe(2);
  });

  it('a namespace that does not exist: ENOENT on that line', () => {
    const r = spawnSync(NSCONF, { input: 'ns dpl-no-such-netns\n', encoding: 'utf8' });
    expect(r.stderr).toContain('nsconf: line 1: errno 2 (No such file or directory): ns dpl-no-such-netns');
    expect(r.status).toBe(1);
  });
});

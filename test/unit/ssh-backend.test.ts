import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { failureText, remoteCommand, shq, sshArgv, sshFailure } from '../../src/backends/ssh/args.js';
import type { NicFacts } from '../../src/backends/ssh/nic.js';
import { parseChannels, parseFeatures, parsePrivFlags } from '../../src/backends/ssh/nic.js';
import { parseProbe, probeScript } from '../../src/backends/ssh/probe.js';
import { MLX5_MTU, planProfile, settingArgv } from '../../src/backends/ssh/profile.js';
import { asRemote, undoArgv } from '../../src/backends/ssh/restore.js';
import { cpuSecondsPerGb, parseTcpMmap } from '../../src/backends/ssh/tcp-mmap.js';
import { formatIssue } from '../../src/errors.js';
import type { JournalEntry } from '../../src/lifecycle/journal.js';
import type { RemoteTarget } from '../../src/lifecycle/remote.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';

const shipped = readFileSync(new URL('../../topologies/ssh-back-to-back.yaml', import.meta.url), 'utf8');
const load = (text: string) => {
  const p = parseTopology(text, 'lab.yaml');
  return p.ok ? resolve(p.value) : p;
};
const errorsOf = (text: string) => {
  const r = load(text);
  if (r.ok) throw new Error('expected errors');
  return r.errors.map(formatIssue);
};

const target: RemoteTarget = {
  node: 'left',
  host: 'h1.example',
  user: 'root',
  port: 2221,
  identityFile: '/k/id',
  knownHosts: '/k/kh',
  jump: 'bastion',
  control: '/run/datapath-lab/.ssh/lab.left.sock',
};

describe('ssh topology', () => {
  it('the shipped topology resolves, targets with absolute key paths', () => {
    const r = load(shipped);
    if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
    expect(r.value.backend).toBe('ssh');
    expect(r.value.nodes.map((n) => [n.ssh?.host, n.ssh?.port, n.ssh?.nic, n.ssh?.allowHostChanges])).toEqual([
      ['127.0.0.1', 2221, 'b2b0', true],
      ['127.0.0.1', 2222, 'b2b0', true],
    ]);
  });

  it('refuses with file:line: a node without ssh, ssh on another backend, a profile or a link without allowHostChanges', () => {
    expect(errorsOf(shipped.replace(/ {4}ssh:\n( {6}.*\n)+/, ''))).toEqual([
      expect.stringMatching(/^lab\.yaml:\d+:\d+: nodes\[0\]\.name: backend ssh: every node needs ssh/),
    ]);
    expect(errorsOf(shipped.replace('backend: ssh', 'backend: local'))).toEqual([
      expect.stringMatching(/^lab\.yaml:19:\d+: nodes\[0\]\.ssh: ssh applies to the ssh backend only/),
      expect.stringMatching(/^lab\.yaml:\d+:\d+: nodes\[1\]\.ssh: ssh applies to the ssh backend only/),
    ]);
    const noChanges = errorsOf(shipped.replace('allowHostChanges: true', 'allowHostChanges: false'));
    expect(noChanges).toEqual([
      expect.stringMatching(
        /^lab\.yaml:\d+:\d+: nodes\[0\]\.ssh\.profile: profile mlx5-back-to-back changes the host's NIC: it needs allowHostChanges/,
      ),
      expect.stringMatching(
        /^lab\.yaml:\d+:\d+: links\[0\]\.endpoints\[0\]: node left: the link moves NIC b2b0 .* set nodes\[0\]\.ssh\.allowHostChanges: true/,
      ),
    ]);
    expect(errorsOf(shipped.replace('port: 2221', 'port: 70000'))).toEqual([
      expect.stringMatching(/^lab\.yaml:20:\d+: nodes\[0\]\.ssh\.port: /),
    ]);
    expect(errorsOf(shipped.replace('profile: mlx5-back-to-back', 'profile: cx7'))).toEqual([
      expect.stringMatching(/nodes\[0\]\.ssh\.profile: unknown NIC profile 'cx7'; NIC profiles are: mlx5-back-to-back/),
    ]);
    expect(errorsOf(shipped.replace('port: 2222', 'port: 2221'))).toEqual([
      expect.stringMatching(/nodes\[1\]\.ssh\.host: root@127\.0\.0\.1:2221 is already node left's target/),
    ]);
  });
});

describe('ssh client arguments', () => {
  it('every command goes over the control socket in batch mode, with only what the topology sets', () => {
    const argv = sshArgv(target, ['ip', '-j', 'link', 'show'], false);
    expect(argv.slice(0, 1)).toEqual(['ssh']);
    expect(argv.join(' ')).toContain('-o BatchMode=yes -o ControlPath=/run/datapath-lab/.ssh/lab.left.sock -o ControlMaster=no');
    expect(argv.join(' ')).toContain('-p 2221 -l root -i /k/id -o IdentitiesOnly=yes -J bastion -o UserKnownHostsFile=/k/kh');
    expect(argv.slice(-3, -1)).toEqual(['h1.example', '--']);
    expect(argv.at(-1)).toMatch(/; exec ip -j link show$/);
    const bare = sshArgv({ node: 'n', host: 'h', control: '/c' }, ['true'], false).join(' ');
    expect(bare).not.toMatch(/ -p | -l | -i | -J |UserKnownHostsFile|StrictHostKeyChecking/);
  });

  it('quotes each word for the remote shell and goes through sudo -n when the login is not root', () => {
    expect(shq("it's")).toBe(`'it'\\''s'`);
    expect(shq('a b')).toBe(`'a b'`);
    expect(shq('dpl-lab.node')).toBe('dpl-lab.node');
    expect(remoteCommand(['sh', '-c', 'echo $1 > "$2"'], true)).toMatch(/exec sudo -n -- sh -c 'echo \$1 > "\$2"'$/);
  });

  it('reads why ssh failed from its own messages, and names the target', () => {
    expect(sshFailure('@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.')).toBe('hostkey');
    expect(sshFailure('root@h: Permission denied (publickey).')).toBe('auth');
    expect(sshFailure('ssh: connect to host 127.0.0.1 port 1: Connection refused')).toBe('unreachable');
    expect(sshFailure('ssh: Could not resolve hostname nope: Name or service not known')).toBe('unreachable');
    expect(sshFailure('something else')).toBe('other');
    expect(failureText('hostkey', target, 'Host key verification failed.').message).toMatch(
      /^target left \(root@h1\.example:2221\): host key mismatch/,
    );
    expect(failureText('hostkey', target, '').hint).toMatch(
      /ssh-keygen -R '\[h1\.example\]:2221' -f \/k\/kh\); the lab never accepts keys itself/,
    );
  });
});

const virtio: NicFacts = {
  name: 'b2b0',
  driver: 'virtio_net',
  up: true,
  mtu: 1500,
  tsoMaxSize: 65536,
  gsoMaxSize: 32768,
  groMaxSize: 65536,
  gsoIpv4MaxSize: 65536,
  groIpv4MaxSize: 65536,
  channels: {},
  privFlags: {},
  features: { 'large-receive-offload': { on: false, fixed: true } },
  irqs: [
    { irq: 29, cpus: '0-1' },
    { irq: 30, cpus: '0-1' },
  ],
};
const mlx5: NicFacts = {
  ...virtio,
  name: 'enp1s0f0np0',
  driver: 'mlx5_core',
  tsoMaxSize: 524280,
  gsoMaxSize: 65536,
  privFlags: { rx_striding_rq: false, rx_cqe_compress: false },
  features: { 'large-receive-offload': { on: true, fixed: false } },
};

describe('NIC profile mlx5-back-to-back', () => {
  it('on mlx5: MTU 8264, LRO off, striding RQ on, BIG TCP 196608 (tso_max_size allows it), IRQs on core 0 and the application apart', () => {
    const p = planProfile('mlx5-back-to-back', mlx5, 8, true);
    expect(p.changes.map((c) => `${c.key} ${c.old} -> ${c.value}`)).toEqual([
      `mtu 1500 -> ${MLX5_MTU}`,
      'lro on -> off',
      'rx_striding_rq off -> on',
      'gso_max_size 65536 -> 196608',
      'gro_max_size 65536 -> 196608',
      'gso_ipv4_max_size 65536 -> 196608',
      'gro_ipv4_max_size 65536 -> 196608',
      '/proc/irq/29/smp_affinity_list 0-1 -> 0',
      '/proc/irq/30/smp_affinity_list 0-1 -> 0',
    ]);
    expect(p.skips).toEqual([]);
    expect([p.irqCore, p.appCore]).toEqual([0, 7]);
  });

  it('on virtio_net: the mlx5 private flag is skipped with the reason, LRO fixed off is kept, BIG TCP clamped to tso_max_size', () => {
    const p = planProfile('mlx5-back-to-back', virtio, 2, false);
    expect(p.skips).toEqual([
      { what: 'rx_striding_rq on', reason: 'b2b0 is driven by virtio_net, not mlx5_core: rx_striding_rq is an mlx5 private flag' },
    ]);
    expect(p.kept).toEqual(['lro off', 'gro_max_size 65536']);
    expect(p.changes.map((c) => `${c.key} ${c.old} -> ${c.value}`)).toContain('gso_max_size 32768 -> 65536');
  });

  it('skips what it cannot read or keep apart rather than guessing an old value', () => {
    const p = planProfile('mlx5-back-to-back', { ...mlx5, mtu: undefined, irqs: [], privFlags: {} }, 1, false);
    expect(p.changes.map((c) => c.key)).not.toContain('mtu');
    expect(p.skips.map((s) => s.what)).toEqual(['mtu 8264', 'rx_striding_rq on', 'IRQs apart from the application']);
  });
});

describe('journal restore of remote objects', () => {
  it('puts each setting back with the tool that changed it, to its old value', () => {
    expect(undoArgv({ what: 'setting', dev: 'b2b0', tool: 'ip', key: 'mtu', old: '1500' })).toEqual([
      ['ip', 'link', 'set', 'dev', 'b2b0', 'mtu', '1500'],
    ]);
    expect(undoArgv({ what: 'setting', dev: 'e0', tool: 'ethtool-features', key: 'lro', old: 'on' })).toEqual([
      ['ethtool', '-K', 'e0', 'lro', 'on'],
    ]);
    expect(undoArgv({ what: 'setting', dev: 'e0', tool: 'ethtool-priv-flags', key: 'rx_striding_rq', old: 'off' })).toEqual([
      ['ethtool', '--set-priv-flags', 'e0', 'rx_striding_rq', 'off'],
    ]);
    expect(settingArgv('proc', 'e0', '/proc/irq/29/smp_affinity_list', '0-1')).toEqual([
      'sh',
      '-c',
      'echo "$1" > "$2"',
      'sh',
      '0-1',
      '/proc/irq/29/smp_affinity_list',
    ]);
  });

  it('brings the NIC back by name or MAC with its addresses and state, kills namespace processes before deleting them', () => {
    const [nic] = undoArgv({
      what: 'nic',
      dev: 'b2b0',
      netns: 'dpl-l.left',
      name: 'n-right',
      mac: '52:54:00:b2:b2:01',
      addrs: ['10.9.0.1/24'],
      up: true,
    });
    expect(nic.slice(3)).toEqual(['sh', 'dpl-l.left', 'n-right', 'b2b0', '52:54:00:b2:b2:01', 'up', '10.9.0.1/24']);
    expect(nic[2]).toMatch(/netns 1 name "\$dev"/);
    const [ns] = undoArgv({ what: 'netns', names: ['dpl-l.left', 'dpl-l.left.a'] });
    expect(ns[2]).toMatch(/ip netns pids "\$n".*kill -9.*ip netns del "\$n"/s);
    expect(undoArgv({ what: 'connection' })).toEqual([]);
  });

  it("finds the target of a feature's pin or cgroup from its node's own entries; an unknown node is left, not guessed", () => {
    const conn: JournalEntry = {
      seq: 1,
      owner: { backend: 'ssh', node: 'left' },
      obj: { kind: 'remote', target, item: { what: 'connection' } },
    };
    const pin: JournalEntry = { seq: 5, owner: { backend: 'ssh', node: 'left' }, obj: { kind: 'pin', path: '/sys/fs/bpf/dpl/l/left' } };
    const other: JournalEntry = { seq: 6, owner: { backend: 'ssh', node: 'right' }, obj: { kind: 'pin', path: '/sys/fs/bpf/dpl/l/right' } };
    const targets = new Map([['left', target]]);
    expect(asRemote(pin, targets)).toEqual({ target, item: { what: 'dir', path: '/sys/fs/bpf/dpl/l/left' } });
    expect(asRemote(other, targets)).toBeUndefined();
    expect(asRemote(conn, targets)?.item).toEqual({ what: 'connection' });
  });
});

describe('target probe', () => {
  it('reads kernel, tools and NICs from the probe script output', () => {
    const out = [
      '@@release',
      '6.12.95+deb12-cloud-amd64',
      '@@arch',
      'x86_64',
      '@@uid',
      '1000',
      '@@cpus',
      '2',
      '@@cpumodel',
      'model name\t: QEMU TCG CPU version 2.5+',
      '@@config',
      '/boot/config-6.12.95+deb12-cloud-amd64',
      'CONFIG_NETKIT=y',
      '@@modules',
      '/veth.ko',
      '@@btf',
      'yes',
      '@@mounts',
      'bpf /sys/fs/bpf bpf rw 0 0',
      '@@tool ip',
      'ip utility, iproute2-6.15.0, libbpf 1.5',
      '@@tool nsenter',
      '@@missing',
      '@@links',
      '[{"ifname":"b2b0","flags":["UP"],"mtu":1500,"tso_max_size":65536,"gso_max_size":65536,"gro_max_size":65536}]',
      '@@nic b2b0',
      '@@ethtool-i',
      'driver: virtio_net',
      'firmware-version: ',
      '@@ethtool-k',
      'large-receive-offload: off [fixed]',
      'generic-receive-offload: on',
      '@@irqs',
      '29:0-1 30:0-1 ',
      '@@digest',
      'abc',
      '@@sudo',
      'yes',
      '@@end',
    ].join('\n');
    const f = parseProbe(out);
    expect(f.kernel.release).toBe('6.12.95+deb12-cloud-amd64');
    expect(f.kernel.version).toEqual([6, 12]);
    expect(f.kernel.config.CONFIG_NETKIT).toBe('y');
    expect(f.kernel.tools.ip.version).toEqual([6, 15]);
    expect(f.kernel.tools.nsenter.path).toBeUndefined();
    expect([f.uid, f.sudo, f.kernel.root, f.emulated, f.objDigest]).toEqual([1000, true, true, true, 'abc']);
    expect(f.nics).toHaveLength(1);
    expect(f.nics[0]).toMatchObject({ name: 'b2b0', driver: 'virtio_net', mtu: 1500, tsoMaxSize: 65536, up: true, firmware: undefined });
    expect(f.nics[0].features['large-receive-offload']).toEqual({ on: false, fixed: true });
    expect(f.nics[0].irqs).toEqual([
      { irq: 29, cpus: '0-1' },
      { irq: 30, cpus: '0-1' },
    ]);
    expect(probeScript()).toContain('ethtool --show-priv-flags');
  });

  it('parses ethtool channels and private flags', () => {
    expect(
      parseChannels(
        'Channel parameters for e:\nPre-set maximums:\nRX:\tn/a\nCombined:\t63\nCurrent hardware settings:\nRX:\tn/a\nCombined:\t8\n',
      ),
    ).toEqual({ rx: [undefined, undefined], combined: [63, 8] });
    expect(parsePrivFlags('Private flags for e:\nrx_cqe_moder       : on\nrx_striding_rq     : off\n')).toEqual({
      rx_cqe_moder: true,
      rx_striding_rq: false,
    });
    expect(parsePrivFlags('netlink error: Operation not supported')).toEqual({});
    expect(parseFeatures('rx-lro: off\nlarge-receive-offload: on')['large-receive-offload']).toEqual({ on: true, fixed: false });
  });
});

describe('tcp_mmap results', () => {
  const out =
    "received 32768 MB (99.9939 % mmap'ed) in 6.73792 s, 40.7956 Gbit\n  cpu usage user:0.045 sys:2.827, 87.6465 usec per MB, 65532 c-switches\n";
  it("parses the receiver's report (the example in tcp_mmap.c's header)", () => {
    expect(parseTcpMmap(out)).toEqual({ mb: 32768, mmapPct: 99.9939, seconds: 6.73792, gbps: 40.7956, usecPerMb: 87.6465 });
    expect(cpuSecondsPerGb(87.6465)).toBeCloseTo(0.0897, 3);
    expect(parseTcpMmap('Error fetching TCP_INFO')).toBeUndefined();
  });
});

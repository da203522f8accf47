import { describe, expect, it } from 'vitest';
import type { NicFacts } from '../../src/backends/ssh/nic.js';
import { planChannels, settingArgv } from '../../src/backends/ssh/profile.js';
import { undoArgv } from '../../src/backends/ssh/restore.js';
import { parseTcpMmap } from '../../src/backends/ssh/tcp-mmap.js';
import { figures, judgeTcpMmap, TCP_MMAP_MIN_RATIO, type TcpMmapFigures } from '../../src/checks/tcp-mmap.js';
import type { Decision } from '../../src/datapath/feature.js';
import type { KernelFacts } from '../../src/kernel/facts.js';
import { decideAll, validate } from '../../src/lifecycle/steps.js';
import type { LabContext } from '../../src/lifecycle/context.js';
import { nodeHook } from '../../src/datapath/hook.js';
import { pageMss } from '../../src/measure/tcp-mmap.js';

const host: TcpMmapFigures = { gbps: 40, cpuSecPerGb: 0.09, mmapPct: 99.9, rcvMss: 8192, mb: 32768 };

describe('tcp-mmap verdict', () => {
  it('passes when pods reach the hosts within the tolerance on native CPUs', () => {
    expect(judgeTcpMmap(host, { ...host, gbps: 40 * TCP_MMAP_MIN_RATIO }, 'native').status).toBe('pass');
    expect(judgeTcpMmap(host, { ...host, gbps: 41 }, 'native').status).toBe('pass');
  });
  it('fails when pods are slower than the tolerance', () => {
    const v = judgeTcpMmap(host, { ...host, gbps: 30 }, 'native');
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/pod\/host 0\.75: pods below 0\.9x the hosts/);
  });
  it('fails when pods moved nothing while the hosts did, on any timing', () => {
    for (const t of ['native', 'emulated'] as const) {
      expect(judgeTcpMmap(host, undefined, t).status).toBe('fail');
      expect(judgeTcpMmap(host, { ...host, gbps: 0 }, t).status).toBe('fail');
    }
  });
  it('fails when pods get smaller segments (their devices lack the link MTU), even under TCG', () => {
    const v = judgeTcpMmap(host, { ...host, rcvMss: 1448 }, 'emulated');
    expect(v.status).toBe('fail');
    expect(v.reason).toMatch(/smaller segments/);
  });
  it('fails when pods lose zerocopy receive the hosts have', () => {
    expect(judgeTcpMmap(host, { ...host, mmapPct: 90 }, 'native').status).toBe('fail');
    expect(judgeTcpMmap(host, { ...host, mmapPct: 96 }, 'native').status).toBe('pass');
  });
  it('errors without a host baseline: no report, or nothing moved', () => {
    expect(judgeTcpMmap(undefined, host, 'native')).toMatchObject({ status: 'error', reason: /^could not establish: .*printed no report/ });
    expect(judgeTcpMmap({ ...host, gbps: 0 }, host, 'native')).toMatchObject({ status: 'error', reason: /moved nothing/ });
  });
  it('does not judge the ratio on emulated CPUs: skip naming what is missing, with the figures', () => {
    const v = judgeTcpMmap(host, { ...host, gbps: 10 }, 'emulated');
    expect(v.status).toBe('skip');
    expect(v.reason).toMatch(/^needs native CPUs.*pod\/host 0\.25/);
  });
  it("figures: CPU seconds per GB and rcv_mss from the receiver's report", () => {
    const r = parseTcpMmap(
      "received 48.1 MB (0 % mmap'ed) in 8.01 s, 0.0503 Gbit\n  cpu usage user:0.01 sys:1.02, 21484.4 usec per MB, 812 c-switches, rcv_mss 8192\n",
    )!;
    expect(figures(r)).toEqual({ gbps: 0.05, cpuSecPerGb: 22, mmapPct: 0, rcvMss: 8192, mb: 48 });
  });
});

describe('tcp_mmap page-filling segments', () => {
  it("clamps the MSS to whole pages: the seed's 8264 gives 8192 bytes over IPv6 and over IPv4", () => {
    expect(pageMss(8264, 6)).toBe(8192 + 12);
    expect(pageMss(8264, 4)).toBe(8192 + 12);
    expect(pageMss(9000, 4)).toBe(8192 + 12);
    expect(pageMss(1500, 4)).toBeUndefined();
  });
});

describe('channels', () => {
  const nic: NicFacts = {
    name: 'eth1',
    driver: 'mlx5_core',
    up: true,
    channels: { combined: [63, 8] },
    privFlags: {},
    features: {},
    irqs: [],
  };
  it('changes combined channels with the old value, keeps equal ones, leaves them alone when not asked', () => {
    expect(planChannels(nic, 4).changes).toEqual([
      expect.objectContaining({ tool: 'ethtool-channels', key: 'combined', value: '4', old: '8' }),
    ]);
    expect(planChannels(nic, 8)).toMatchObject({ changes: [], kept: ['combined channels 8'] });
    expect(planChannels(nic, undefined)).toEqual({ changes: [], skips: [], kept: [] });
    expect(settingArgv('ethtool-channels', 'eth1', 'combined', '8')).toEqual(['ethtool', '-L', 'eth1', 'combined', '8']);
  });
  it('skips with the reason when the NIC has fewer channels or reports none (virtio-net with one queue)', () => {
    expect(planChannels({ ...nic, driver: 'virtio_net', channels: { combined: [1, 1] } }, 2).skips).toEqual([
      { what: 'combined channels 2', reason: 'eth1 (virtio_net) has at most 1 combined channel(s)' },
    ]);
    expect(planChannels({ ...nic, channels: {} }, 2).skips[0].reason).toMatch(/reports no combined channels/);
  });
  it('a journaled process is killed only while its pid still runs the same command', () => {
    const [argv] = undoArgv({ what: 'process', pid: 4242, comm: 'tcp_mmap' });
    expect(argv.slice(-2)).toEqual(['4242', 'tcp_mmap']);
    expect(argv[2]).toMatch(/comm.*= "\$2" \] && kill -9 "\$1"/);
  });
});

describe('per-target datapath decisions', () => {
  const facts = (version: [number, number], config: Record<string, string>) =>
    ({
      version,
      release: `${version.join('.')}.0`,
      root: true,
      bpffs: true,
      btf: true,
      config: { CONFIG_NET_XGRESS: 'y', CONFIG_NET_CLS_BPF: 'm', CONFIG_NET_SCH_INGRESS: 'm', ...config },
      configSource: '/proc/config.gz',
      modules: ['sch_fq', 'cls_bpf'],
      tools: { ip: { path: 'ip', version: [6, 12] }, tc: { path: 'tc' }, bpftool: { path: 'bpftool', version: [7, 5] } },
    }) as unknown as KernelFacts;
  it("each node's own kernel decides its pods' device: netkit on 6.12, veth (fallback, with the reason) on 6.1", async () => {
    const lab = await validate(new URL('../../topologies/ssh-back-to-back.yaml', import.meta.url).pathname);
    const k612 = facts([6, 12], { CONFIG_NETKIT: 'y' });
    const k61 = facts([6, 1], {});
    const dev = (ds: Decision[], n: string) => ds.find((d) => d.feature === 'pod-device' && d.node === n);
    const mixed = decideAll(lab, k612, (n) => (n === 'right' ? k61 : undefined));
    expect(dev(mixed, 'left')).toMatchObject({ mode: 'netkit', status: 'applied' });
    expect(dev(mixed, 'right')).toMatchObject({ mode: 'veth', status: 'fallback', detail: /netkit arrived in 6\.7/ });
    expect(dev(decideAll(lab, k612), 'right')?.mode).toBe('netkit');
  });
  it("each node's programs attach on its own kernel's hook: tcx on 6.12, tc clsact on 6.1", () => {
    const k612 = facts([6, 12], { CONFIG_NETKIT: 'y' });
    const k61 = { ...facts([6, 1], {}), modules: ['cls_bpf', 'sch_ingress'] } as KernelFacts;
    const ctx = { facts: k612, backend: { nodeFacts: (n: string) => (n === 'right' ? k61 : undefined) } } as unknown as LabContext;
    expect(nodeHook(ctx, 'left')).toBe('tcx');
    expect(nodeHook(ctx, 'right')).toBe('tc');
    expect(nodeHook({ ...ctx, backend: {} } as unknown as LabContext, 'right')).toBe('tcx');
  });
});

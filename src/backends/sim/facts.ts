import type { KernelFacts, ToolName } from '../../kernel/facts.js';
import { MODEL_VERSION } from '../../sim/version.js';

const TOOLS: ToolName[] = ['ip', 'tc', 'bpftool', 'clang', 'iperf3', 'ethtool', 'ss', 'nsenter'];

/**
 * The kernel the model stands for: 6.18 with tcx, veth, tbf, fq and cgroup BPF (socket-LB); netkit only when
 * a node asks for `podDevice: netkit` (this host has none, so `auto` models veth as the kernel here picks) (the
 * model runs no BPF programs, so a netkit pod has nothing to model; pods are veth). The
 * tools "exist" because the model answers what each would have measured.
 */
export function simFacts(opts: { netkit?: boolean } = {}): KernelFacts {
  const version: Record<string, [number, number]> = { bpftool: [7, 6] };
  return {
    release: `6.18 (simulated, ${MODEL_VERSION})`,
    version: [6, 18],
    arch: 'x86_64',
    root: false,
    config: {
      CONFIG_BPF_SYSCALL: 'y',
      CONFIG_BPF_JIT: 'y',
      CONFIG_DEBUG_INFO_BTF: 'y',
      CONFIG_NET_XGRESS: 'y',
      CONFIG_NET_SCH_TBF: 'y',
      CONFIG_NET_CLS_BPF: 'y',
      CONFIG_VETH: 'y',
      // Socket-LB's cgroup sock_addr hooks: modelled as lookups (src/sim/socklb.ts).
      CONFIG_CGROUP_BPF: 'y',
      // The Bandwidth Manager: fq with EDT (src/sim/qdisc.ts Fq) and BBR (src/sim/cc.ts).
      CONFIG_NET_SCH_FQ: 'y',
      CONFIG_TCP_CONG_BBR: 'y',
      // netkit only when a topology asks for it by name: with podDevice auto the model stays this host's veth.
      ...(opts.netkit ? { CONFIG_NETKIT: 'y' } : {}),
    },
    configSource: `model (${MODEL_VERSION})`,
    modules: ['veth', 'sch_tbf', 'cls_bpf', 'sch_fq', 'tcp_bbr'],
    btf: true,
    bpffs: true,
    // A name only: socket-LB's pod cgroups are joined from it (kpr.ts podCgroup); nothing is created.
    cgroup2: '/sys/fs/cgroup',
    tools: Object.fromEntries(
      TOOLS.map((t) => [t, { path: 'model', version: version[t] ?? [6, 18], raw: 'simulated' }]),
    ) as KernelFacts['tools'],
  };
}

import { parseConfig, MODULES_OF_INTEREST, TOOL_VERSION, type KernelFacts, type ToolFact, type ToolName } from '../../kernel/facts.js';
import type { SshExec } from './exec.js';
import { parseNics, type NicFacts } from './nic.js';

/** Facts of one target: its kernel and tools as KernelFacts, its physical NICs, and how commands get root. */
export interface TargetFacts {
  kernel: KernelFacts;
  nics: NicFacts[];
  /** uid of the login. */
  uid: number;
  /** The login is not root but sudo -n works. */
  sudo: boolean;
  /** Online CPUs (taskset picks application cores among them). */
  cpus: number;
  /** Digest of the lab objects a prepared target holds (copy.ts), if any. */
  objDigest?: string;
  /** The target is a QEMU guest under TCG (its CPU model says so): timing there is emulated. */
  emulated: boolean;
}

/** Tools whose version is read on the target (clang stays on this machine: the BPF objects are built here). */
const REMOTE_TOOLS: ToolName[] = ['ip', 'tc', 'bpftool', 'iperf3', 'ethtool', 'ss', 'nsenter'];

/**
 * One shell script, one round trip: kernel, config, modules, mounts, tool versions, and per
 * physical NIC (one with a /sys/class/net/X/device) its ethtool views, NUMA node and IRQs.
 * Sections start with @@ lines.
 */
export function probeScript(): string {
  const mods = MODULES_OF_INTEREST.join('|');
  const tools = REMOTE_TOOLS.map((t) => {
    const argv = TOOL_VERSION[t].argv.join(' ');
    return `echo '@@tool ${t}'; if command -v ${t} >/dev/null 2>&1; then ${argv} 2>&1; else echo '@@missing'; fi`;
  });
  return [
    'r=$(uname -r)',
    'echo \'@@release\'; echo "$r"',
    "echo '@@arch'; uname -m",
    "echo '@@uid'; id -u",
    "echo '@@cpus'; grep -c ^processor /proc/cpuinfo",
    "echo '@@cpumodel'; grep -m1 '^model name' /proc/cpuinfo",
    "echo '@@config'; if [ -r /proc/config.gz ]; then echo /proc/config.gz; zcat /proc/config.gz; " +
      'elif [ -r "/boot/config-$r" ]; then echo "/boot/config-$r"; cat "/boot/config-$r"; fi',
    `echo '@@modules'; cat "/lib/modules/$r/modules.dep" "/lib/modules/$r/modules.builtin" 2>/dev/null | grep -oE '/(${mods})\\.ko' | sort -u`,
    "echo '@@btf'; [ -e /sys/kernel/btf/vmlinux ] && echo yes",
    "echo '@@mounts'; cat /proc/mounts",
    ...tools,
    "echo '@@links'; ip -d -j link show",
    'for d in /sys/class/net/*; do n=$(basename "$d"); [ -e "$d/device" ] || continue; echo "@@nic $n"',
    '  echo \'@@ethtool-i\'; ethtool -i "$n" 2>&1',
    '  echo \'@@ethtool-l\'; ethtool -l "$n" 2>&1',
    '  echo \'@@ethtool-k\'; ethtool -k "$n" 2>&1',
    '  echo \'@@priv\'; ethtool --show-priv-flags "$n" 2>&1',
    // A virtio NIC's device is the virtio device; its PCI function (IRQs, NUMA node) is the parent.
    '  p="$d/device"; [ -e "$p/msi_irqs" ] || p="$d/device/.."',
    '  echo \'@@numa\'; cat "$p/numa_node" 2>/dev/null',
    '  echo \'@@irqs\'; for i in $(ls "$p/msi_irqs" 2>/dev/null); do printf \'%s:%s \' "$i" "$(cat /proc/irq/$i/smp_affinity_list 2>/dev/null)"; done; echo',
    'done',
    'echo \'@@sudo\'; if [ "$(id -u)" != 0 ]; then sudo -n true 2>/dev/null && echo yes; fi',
    "echo '@@end'",
  ].join('\n');
}

/** The script's output as sections: name → text. A NIC's sections are keyed "nic NAME/section". */
export function sections(out: string): Map<string, string> {
  const m = new Map<string, string>();
  let key = '';
  let nic = '';
  for (const line of out.split('\n')) {
    const h = /^@@(\S+)(?: (\S+))?$/.exec(line);
    if (h && h[1] !== 'missing') {
      if (h[1] === 'nic') nic = h[2];
      key =
        h[1] === 'nic'
          ? `nic ${h[2]}`
          : h[1] === 'tool'
            ? `tool ${h[2]}`
            : nic && !['digest', 'sudo', 'end'].includes(h[1])
              ? `nic ${nic}/${h[1]}`
              : h[1];
      if (h[1] === 'digest') nic = '';
      m.set(key, '');
      continue;
    }
    if (key) m.set(key, `${m.get(key)}${line}\n`);
  }
  return m;
}

/** KernelFacts and NIC facts from the probe script's output (pure: unit-tested). */
export function parseProbe(out: string): TargetFacts {
  const s = sections(out);
  const get = (k: string) => (s.get(k) ?? '').trim();
  const release = get('release');
  const v = /^(\d+)\.(\d+)/.exec(release);
  const cfgText = s.get('config') ?? '';
  const configSource = cfgText.split('\n')[0].trim() || undefined;
  const tools = Object.fromEntries(
    REMOTE_TOOLS.map((t): [ToolName, ToolFact] => {
      const raw = s.get(`tool ${t}`);
      if (raw === undefined || /@@missing/.test(raw) || raw.trim() === '') return [t, {}];
      const m = TOOL_VERSION[t].re.exec(raw);
      return [t, { path: t, raw: raw.trim().split('\n')[0], version: m ? [Number(m[1]), Number(m[2])] : undefined }];
    }),
  ) as Record<ToolName, ToolFact>;
  const mounts = get('mounts')
    .split('\n')
    .map((l) => l.split(' '));
  const uid = Number(get('uid'));
  return {
    kernel: {
      release,
      version: v ? [Number(v[1]), Number(v[2])] : [0, 0],
      arch: get('arch'),
      root: uid === 0 || get('sudo') === 'yes',
      config: configSource ? parseConfig(cfgText) : {},
      configSource,
      modules: [...new Set([...get('modules').matchAll(/\/([\w-]+)\.ko/g)].map((m) => m[1]))],
      btf: get('btf') === 'yes',
      bpffs: mounts.some((f) => f[2] === 'bpf'),
      cgroup2: mounts.find((f) => f[2] === 'cgroup2')?.[1],
      tools: { ...tools, clang: {} },
    },
    nics: parseNics(s),
    uid,
    sudo: uid !== 0 && get('sudo') === 'yes',
    cpus: Number(get('cpus')) || 1,
    emulated: /QEMU TCG/.test(get('cpumodel')),
    objDigest: get('digest') || undefined,
  };
}

/** Probe a target in one round trip (as its login: sudo is what the script tests, not what it needs). */
export async function probeTarget(exec: SshExec, signal?: AbortSignal): Promise<TargetFacts> {
  const r = await exec.run(['sh', '-c', probeScript()], { signal, nothrow: true });
  return parseProbe(r.stdout);
}

import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { Exec } from '../exec/exec.js';
import { spawnFailure } from './spawn-failure.js';

/** What a target's kernel and tools can do, read from the target itself. */
export interface KernelFacts {
  release: string;
  /** [major, minor] of the kernel. */
  version: [number, number];
  arch: string;
  root: boolean;
  /** CONFIG_* options: 'y', 'm', or absent. */
  config: Record<string, string>;
  /** Where the config was read from, or undefined if it could not be. */
  configSource?: string;
  /** Modules the lab asks about that modules.dep / modules.builtin list (basename without .ko*). */
  modules: string[];
  btf: boolean;
  bpffs: boolean;
  /** Where cgroup v2 is mounted (socket-LB attaches there); undefined when it is not. */
  cgroup2?: string;
  tools: Record<ToolName, ToolFact>;
}

export type ToolName = 'ip' | 'tc' | 'bpftool' | 'clang' | 'iperf3' | 'ethtool' | 'ss' | 'nsenter';

export interface ToolFact {
  path?: string;
  /** Parsed [major, minor], when the tool printed one. */
  version?: [number, number];
  raw?: string;
}

export const TOOL_VERSION: Record<ToolName, { argv: string[]; re: RegExp }> = {
  ip: { argv: ['ip', '-V'], re: /iproute2-v?(\d+)\.(\d+)/ },
  tc: { argv: ['tc', '-V'], re: /iproute2-v?(\d+)\.(\d+)/ },
  bpftool: { argv: ['bpftool', 'version'], re: /v(\d+)\.(\d+)/ },
  clang: {
    argv: ['sh', '-c', 'command -v clang-19 >/dev/null && exec clang-19 --version || exec clang --version'],
    re: /clang version (\d+)\.(\d+)/,
  },
  iperf3: { argv: ['iperf3', '-v'], re: /iperf (\d+)\.(\d+)/ },
  ethtool: { argv: ['ethtool', '--version'], re: /version (\d+)\.(\d+)/ },
  ss: { argv: ['ss', '-V'], re: /iproute2-v?(\d+)\.(\d+)/ },
  nsenter: { argv: ['nsenter', '--version'], re: /util-linux (\d+)\.(\d+)/ },
};

/** Modules whose presence a feature or check asks about (hasConfig's `module`). */
export const MODULES_OF_INTEREST = [
  'netkit',
  'veth',
  'sch_fq',
  'sch_tbf',
  'sch_htb',
  'cls_bpf',
  'act_bpf',
  'tcp_bbr',
  'ipvlan',
  'sch_netem',
  'virtio_net',
];

export function parseConfig(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^(CONFIG_[A-Z0-9_]+)=(\S+)$/gm)) out[m[1]] = m[2];
  return out;
}

/** Tools whose version decides what the lab can do (netkit, IPv4 BIG TCP, tcx); the rest only need to exist. */
const VERSION_MATTERS: ToolName[] = ['ip', 'bpftool'];

/** Find an executable on PATH without starting a process. */
function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = `${dir}/${cmd}`;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/**
 * Probe this machine (the local backend's target). Reads files directly; runs the tools
 * whose version matters (all of them with allVersions, for doctor).
 */
export async function probeLocal(exec: Exec, opts: { allVersions?: boolean } = {}): Promise<KernelFacts> {
  const release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const m = /^(\d+)\.(\d+)/.exec(release);
  let config: Record<string, string> = {};
  let configSource: string | undefined;
  for (const src of ['/proc/config.gz', `/boot/config-${release}`]) {
    try {
      const raw = readFileSync(src);
      config = parseConfig((src.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8'));
      configSource = src;
      break;
    } catch {
      /* try the next place */
    }
  }
  const moduleIndex = ['modules.dep', 'modules.builtin']
    .map((f) => {
      try {
        return readFileSync(`/lib/modules/${release}/${f}`, 'utf8');
      } catch {
        return '';
      }
    })
    .join('\n');
  const modules = MODULES_OF_INTEREST.filter((m) => new RegExp(`/${m}\\.ko`).test(moduleIndex));
  const tools = Object.fromEntries(
    await Promise.all(
      (Object.keys(TOOL_VERSION) as ToolName[]).map(async (t) => {
        if (!opts.allVersions && !VERSION_MATTERS.includes(t)) {
          const path = t === 'clang' ? (onPath('clang-19') ?? onPath('clang')) : onPath(t);
          return [t, path ? { path } : {}];
        }
        const { argv, re } = TOOL_VERSION[t];
        const r = await exec.run(argv, { nothrow: true });
        const out = `${r.stdout}\n${r.stderr}`;
        const cannot = spawnFailure(t, r);
        if (cannot) throw cannot;
        if (r.code === 127) return [t, {}];
        const v = re.exec(out);
        return [t, { path: t, raw: out.trim().split('\n')[0], version: v ? [Number(v[1]), Number(v[2])] : undefined }];
      }),
    ),
  ) as Record<ToolName, ToolFact>;
  return {
    release,
    version: m ? [Number(m[1]), Number(m[2])] : [0, 0],
    arch: process.arch,
    root: process.getuid?.() === 0,
    config,
    configSource,
    modules,
    btf: existsSync('/sys/kernel/btf/vmlinux'),
    bpffs: readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[2] === 'bpf'),
    cgroup2: readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .find((f) => f[2] === 'cgroup2')?.[1],
    tools,
  };
}

export const atLeast = (v: [number, number] | undefined, major: number, minor: number) =>
  !!v && (v[0] > major || (v[0] === major && v[1] >= minor));

/** A requirement met, or the reason it is not. */
export type Verdict = { ok: true } | { ok: false; reason: string };

/** Is a kernel option built in, or a module that exists on the target? */
export function hasConfig(f: KernelFacts, opt: string, module?: string): Verdict {
  const v = f.config[opt];
  if (!f.configSource)
    return { ok: false, reason: `kernel config unreadable (no /proc/config.gz or /boot/config-${f.release}); cannot tell ${opt}` };
  if (v === 'y') return { ok: true };
  if (v === 'm' && (!module || f.modules.includes(module))) return { ok: true };
  if (v === 'm') return { ok: false, reason: `kernel builds ${opt} as module ${module} but it is not installed` };
  return { ok: false, reason: `kernel lacks ${opt}` };
}

export function needTool(f: KernelFacts, tool: ToolName, min?: [number, number], why?: string): Verdict {
  const t = f.tools[tool];
  if (!t?.path) return { ok: false, reason: `${tool} is not installed` };
  if (min && !atLeast(t.version, ...min))
    return { ok: false, reason: `${tool} ${t.version?.join('.') ?? '?'} is older than ${min.join('.')}${why ? ` (${why})` : ''}` };
  return { ok: true };
}

export function needKernel(f: KernelFacts, major: number, minor: number, why: string): Verdict {
  return atLeast(f.version, major, minor)
    ? { ok: true }
    : { ok: false, reason: `kernel ${f.release} is older than ${major}.${minor} (${why})` };
}

/** All verdicts must hold; the first failing one is the reason. */
export function all(...vs: Verdict[]): Verdict {
  return vs.find((v) => !v.ok) ?? { ok: true };
}

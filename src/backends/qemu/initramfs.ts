import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CommandError, LabError } from '../../errors.js';
import type { Exec } from '../../exec/exec.js';

/** What a guest root is built from: a kernel's modules, and the lab's BPF objects. */
export interface InitramfsInput {
  /** `uname -r` of the guest kernel. */
  release: string;
  /** lib/modules/<release> of that kernel. */
  modulesDir: string;
  /** Directory of the built BPF objects (copied to /opt/dpl/bpf). */
  bpfDir: string;
  /** Where built images are cached. */
  cacheDir: string;
  /** The modules dir is the lab's own cache (depmod may write there); a user's is only read. */
  ownModules?: boolean;
}

/** This machine's tools that the guest runs, by absolute path (FACTS: busybox sh prefers its applets). */
export const GUEST_TOOLS = [
  '/usr/sbin/ip',
  '/usr/sbin/tc',
  '/usr/bin/ss',
  '/usr/sbin/bpftool',
  '/usr/bin/iperf3',
  '/usr/sbin/ethtool',
  '/usr/bin/nsenter',
  '/usr/sbin/sysctl',
  '/usr/bin/kmod',
  '/usr/sbin/qemu-ga',
  '/usr/bin/nstat',
  '/usr/bin/sockperf',
  // kube-proxy-free reads the guest's netfilter rules with it (src/measure/netfilter.ts).
  '/usr/sbin/nft',
  // kube-proxy's rules (kubeProxy: iptables, the control of svc-backpressure and svc-nodeport):
  // iptables-nft is one binary answering to its name (iptables/xtables-nft-multi.c), see IPTABLES_NAMES.
  '/usr/sbin/xtables-nft-multi',
];

/** bpf/build.sh's static helpers the datapath and checks run in a guest (xlctl: the XDP LB's Maglev tables). */
const GUEST_HELPERS = ['nkctl', 'nsconf', 'svcprobe', 'xlctl'];

/** Names xtables-nft-multi answers to in the guest (linked to it, as Debian's alternatives do). */
const IPTABLES_NAMES = ['iptables', 'iptables-restore', 'iptables-save', 'ip6tables', 'ip6tables-restore', 'ip6tables-save'];

/** iptables' match and target extensions, dlopen()ed at run time (so ldd of the binary does not name them). */
const XTABLES_DIR = '/usr/lib/x86_64-linux-gnu/xtables';

/** Modules the datapath and the checks use (loaded at boot when the kernel has them as modules). */
// virtio_pci first: 6.1's cloud kernel has it (and virtio_console) as modules, 6.12 built in.
// inet_diag/tcp_diag: ss reads socket memory (skmem) through sock_diag; without them it shows nothing.
export const GUEST_MODULES = [
  'virtio_pci',
  'virtio_net',
  'virtio_console',
  'veth',
  'netkit',
  'sch_fq',
  'sch_tbf',
  'sch_ingress',
  'sch_htb',
  // links[].impair and uplink.impair (src/datapath/impair/netem.ts).
  'sch_netem',
  'tcp_bbr',
  'cls_bpf',
  'ipv6',
  'inet_diag',
  'tcp_diag',
  'udp_diag',
  // nf_tables (with nfnetlink): without it nft cannot open its netlink socket, and kube-proxy-free cannot read the rules.
  'nf_tables',
  // kube-proxy's rules through iptables-nft: the xt matches and targets it writes (src/datapath/kpr/iptables.ts)
  // run in nf_tables through nft_compat; the nat table's chains need nft_chain_nat.
  'nft_compat',
  'nft_chain_nat',
  'xt_tcpudp',
  'xt_comment',
  'xt_conntrack',
  'xt_mark',
  'xt_recent',
  'xt_statistic',
  'xt_addrtype',
  'xt_nat',
  'xt_MASQUERADE',
  'ipt_REJECT',
  'ip6t_REJECT',
];

/** busybox applets the init script and the lab use; no applet shadows a real tool above. */
const APPLETS = [
  'sh',
  'mount',
  'mkdir',
  'cat',
  'echo',
  'ls',
  'sleep',
  'seq',
  'ln',
  'kill',
  'ps',
  'grep',
  'basename',
  'rm',
  'uname',
  'true',
  'dmesg',
  // Round trips over impaired links (the guest has no iputils).
  'ping',
  // tc NodePort asks whether its pins exist (src/datapath/kpr/nodeport.ts).
  'test',
];

/**
 * /init: mount the pseudo filesystems, load modules, find the agent's virtio port
 * (the port named org.qemu.guest_agent.0 under /sys/class/virtio-ports), start qemu-ga, reap children.
 */
export const INIT = `#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /run /tmp /dev/pts
mount -t tmpfs run /run
mkdir -p /run/netns /run/qga
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup || echo 'dpl-init: cannot mount cgroup2 (socket-LB needs it)'
# The agent first (it needs only the virtio console), the rest while it starts: the
# lab waits for /run/dpl-ready before it creates anything (bench/boot.ts: ~0.8 s).
/usr/sbin/modprobe -q -a virtio_pci virtio_console
# The port appears once virtio_console has probed, which may be after modprobe returns.
port=
for i in $(seq 1 100); do
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/$(basename "$p")
  done
  [ -n "$port" ] && [ -e "$port" ] && break
  sleep 0.1
done
echo "dpl-init: kernel $(uname -r), agent on \${port:-none}" > /dev/console
/usr/sbin/qemu-ga -m virtio-serial -p "$port" -t /run/qga >/dev/console 2>&1 &
/usr/sbin/modprobe -q -a $(cat /etc/dpl-modules)
/usr/sbin/ip link set lo up
echo ready > /run/dpl-ready
while true; do wait; sleep 1; done
`;

/**
 * Shared libraries of binaries, as the dynamic loader resolves them here: one ldd for all of them
 * (one per binary was ~185 processes per VM `lab up`). A static binary has none (ldd says "not a
 * dynamic executable" on stderr and exits 1); any other complaint, or a library ldd cannot find,
 * would cache an image that lacks libraries.
 */
async function libsOf(exec: Exec, bins: string[]): Promise<string[]> {
  const argv = ['ldd', ...bins];
  const r = await exec.run(argv, { nothrow: true });
  const complaints = r.stderr.split('\n').filter((l) => l.trim() && l.trim() !== 'not a dynamic executable');
  if ((r.code !== 0 && complaints.length) || /=>\s*not found/.test(r.stdout)) throw new CommandError(argv, r.code, r.stdout, r.stderr);
  return [...new Set([...r.stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]))];
}

/** Modules to ship: the wanted ones present as modules, with their dependencies (modules.dep). */
export function moduleClosure(depText: string, wanted: string[]): string[] {
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of depText.split('\n')) {
    const [mod, rest] = line.split(':');
    if (!mod) continue;
    deps.set(mod, (rest ?? '').trim().split(/\s+/).filter(Boolean));
    byName.set(
      basename(mod)
        .replace(/\.ko(\.\w+)?$/, '')
        .replace(/-/g, '_'),
      mod,
    );
  }
  const out = new Set<string>();
  const visit = (m: string) => {
    if (out.has(m)) return;
    out.add(m);
    for (const d of deps.get(m) ?? []) visit(d);
  };
  for (const w of wanted) {
    const m = byName.get(w);
    if (m) visit(m);
  }
  return [...out];
}

function fingerprint(input: InitramfsInput, files: string[]): string {
  const h = createHash('sha256').update(INIT).update(input.release).update(GUEST_MODULES.join(','));
  // The links made inside the image, too: an applet added must give a new image.
  h.update(APPLETS.join(',')).update(IPTABLES_NAMES.join(','));
  for (const f of files) {
    const s = statSync(f);
    h.update(`${f}\0${s.size}\0${s.mtimeMs}\n`);
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Build (or reuse) the guest's initramfs: busybox, this machine's tools and their
 * libraries, the kernel's modules for the datapath (depmod'ed), the BPF objects.
 * Cached by content: rebuilt only when an input changed. Returns its path.
 */
export async function buildInitramfs(exec: Exec, input: InitramfsInput, progress: (m: string) => void = () => {}): Promise<string> {
  const missing = GUEST_TOOLS.filter((t) => !existsSync(t));
  if (missing.length)
    throw new LabError(
      'E_REQUIREMENT',
      `guest tools missing on this machine: ${missing.join(', ')}`,
      'run ./lab once as root: it installs them',
    );
  const busybox = ['/usr/bin/busybox', '/bin/busybox'].find(
    (b) => existsSync(b) && readFileSync(b).subarray(0, 4).toString('latin1') === '\x7fELF',
  );
  if (!busybox) throw new LabError('E_REQUIREMENT', 'busybox is not installed', 'apt-get install busybox-static');
  const bpfObjs = existsSync(input.bpfDir)
    ? readdirSync(input.bpfDir)
        .filter((f) => f.endsWith('.o') || GUEST_HELPERS.includes(f))
        .map((f) => join(input.bpfDir, f))
    : [];
  // Debian's kernel packages ship no modules.dep (depmod runs at install): make it.
  if (!existsSync(join(input.modulesDir, 'modules.dep'))) {
    if (!input.ownModules)
      throw new LabError(
        'E_REQUIREMENT',
        `${input.modulesDir} has no modules.dep`,
        `run depmod -b ROOT ${input.release} on your kernel's modules`,
      );
    const m = /^(.*)\/lib\/modules\/[^/]+\/?$/.exec(input.modulesDir);
    if (!m)
      throw new LabError(
        'E_REQUIREMENT',
        `${input.modulesDir} has no modules.dep and is not a <root>/lib/modules/<release> directory`,
        `run depmod -b ROOT ${input.release}`,
      );
    await exec.run(['depmod', '-b', m[1] || '/', input.release]);
  }
  const depText = readFileSync(join(input.modulesDir, 'modules.dep'), 'utf8');
  const modules = moduleClosure(depText, GUEST_MODULES);
  const xtables = existsSync(XTABLES_DIR)
    ? readdirSync(XTABLES_DIR)
        .filter((f) => f.endsWith('.so'))
        .map((f) => join(XTABLES_DIR, f))
    : [];
  const libs = await libsOf(exec, [...GUEST_TOOLS, ...xtables]);
  const files = [busybox, ...GUEST_TOOLS, ...xtables, ...libs, ...bpfObjs, ...modules.map((m) => join(input.modulesDir, m))];
  const out = join(input.cacheDir, `initramfs-${input.release}-${fingerprint(input, files)}.cpio.gz`);
  if (existsSync(out)) return out;
  // Older images of this release are stale: inputs changed (they are 10 MB each).
  for (const f of existsSync(input.cacheDir) ? readdirSync(input.cacheDir) : [])
    if (f.startsWith(`initramfs-${input.release}-`) && f.endsWith('.cpio.gz')) rmSync(join(input.cacheDir, f), { force: true });

  progress(
    `building the guest initramfs for ${input.release} (${GUEST_TOOLS.length} tools, ${libs.length} libraries, ${modules.length} modules)`,
  );
  mkdirSync(input.cacheDir, { recursive: true });
  const root = mkdtempSync(join(input.cacheDir, '.root-'));
  try {
    const put = (src: string, dst = src) => {
      mkdirSync(join(root, dirname(dst)), { recursive: true });
      copyFileSync(src, join(root, dst));
      chmodSync(join(root, dst), statSync(src).mode & 0o777);
    };
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev', 'run', 'tmp', 'etc', 'opt/dpl/bpf', 'var'])
      mkdirSync(join(root, d), { recursive: true });
    put(busybox, '/bin/busybox');
    for (const a of APPLETS) symlinkSync('busybox', join(root, 'bin', a));
    for (const t of [...GUEST_TOOLS, ...xtables, ...libs]) put(t);
    for (const n of IPTABLES_NAMES) symlinkSync('xtables-nft-multi', join(root, 'usr/sbin', n));
    // kmod is one binary answering to its name.
    for (const n of ['modprobe', 'depmod', 'lsmod']) symlinkSync('../bin/kmod', join(root, 'usr/sbin', n));
    for (const o of bpfObjs) put(o, join('/opt/dpl/bpf', basename(o)));
    const modRoot = `/lib/modules/${input.release}`;
    for (const m of modules) put(join(input.modulesDir, m), join(modRoot, m));
    for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo'])
      if (existsSync(join(input.modulesDir, f))) put(join(input.modulesDir, f), join(modRoot, f));
    await exec.run(['depmod', '-b', root, input.release]);
    writeFileSync(join(root, 'etc/dpl-modules'), GUEST_MODULES.join('\n') + '\n');
    writeFileSync(join(root, 'init'), INIT, { mode: 0o755 });
    const tmp = `${out}.tmp`;
    await exec.run(['sh', '-c', `cd "$1" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1 > "$2"`, 'sh', root, tmp]);
    renameSync(tmp, out);
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
    // A failed or interrupted cpio leaves half an image: never in the cache.
    rmSync(`${out}.tmp`, { force: true });
  }
}

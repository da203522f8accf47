import { createHash } from 'node:crypto';
import { freeUdpPort } from '../qemu/nics.js';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { LabError } from '../../errors.js';
import { HostExec, runArgv } from '../../exec/exec.js';
import { cachedKernel, cacheRoot } from '../../kernels/cache.js';
import { stateRoot } from '../../lifecycle/journal.js';
import { BPF_OBJ_DIR } from '../../paths.js';
import { sleep } from '../../sleep.js';
import { buildInitramfs, INIT } from '../qemu/initramfs.js';
import { bootVm, runningPid, stopVm } from '../qemu/vm.js';
import type { RemoteTarget } from '../../lifecycle/remote.js';
import { openMaster, closeMaster } from './connection.js';
import { DIGEST_FILE, objectsDigest, PREPARED_OBJ_DIR } from './copy.js';

/**
 * Test targets for the ssh backend: two QEMU guests (the qemu backend's kernel, initramfs
 * and boot) with dropbear in the initramfs, each reached over a forwarded port on
 * 127.0.0.1, and joined back to back by a NIC each on one QEMU dgram wire (the qemu
 * backend's link). `lab targets up|down` starts and stops them; the shipped
 * topologies/ssh-back-to-back.yaml points at them.
 */
export const TARGETS = [
  { name: 'left', port: 2221, index: 1 },
  { name: 'right', port: 2222, index: 2 },
] as const;

/** The guests' NIC of the back-to-back wire is renamed to this by their /init (the topology's ssh.nic). */
export const TARGET_NIC = 'b2b0';
/** The kernel the guests boot (a catalogue kernel: lab kernels fetch 6.12). */
export const TARGET_KERNEL = '6.12';

/** Keys and known_hosts of the test guests (kept: the topology names them). */
export const targetKeyDir = () => join(cacheRoot(), 'ssh-targets');
/** Running guests' directories (pidfile, console, agent socket). */
export const targetVmDir = (name: string) => join(stateRoot(), '.ssh-targets', name);

const mgmtMac = (i: number) => `52:54:00:5e:00:0${i}`;
const wireMac = (i: number) => `52:54:00:b2:b2:0${i}`;

/** Lines /init runs before it says ready: the management NIC on QEMU's user network, the wire NIC named b2b0, dropbear. */
const TARGET_INIT = `for i in $(seq 1 50); do
  for d in /sys/class/net/*; do
    case "$(cat "$d/address")" in
      52:54:00:5e:00:0?) /usr/sbin/ip addr add 10.0.2.15/24 dev "\${d##*/}" && /usr/sbin/ip link set "\${d##*/}" up && mg=1 ;;
      52:54:00:b2:b2:0?) /usr/sbin/ip link set dev "\${d##*/}" name ${TARGET_NIC} && /usr/sbin/ip link set ${TARGET_NIC} up ;;
    esac
  done
  [ -n "$mg" ] && break
  sleep 0.1
done
/usr/sbin/dropbear -r /etc/dropbear/hostkey -p 22 -s -F -E >/dev/console 2>&1 &
`;

/** busybox applets a shell command on a target may use (the base image's /bin has fewer). */
const APPLETS = [
  'base64',
  'tar',
  'id',
  'chmod',
  'cp',
  'mv',
  'zcat',
  'gzip',
  'head',
  'tr',
  'wc',
  'sed',
  'env',
  'sort',
  'xargs',
  'cut',
  'taskset',
  'nproc',
  'sha256sum',
];

async function libsOf(bin: string): Promise<string[]> {
  const r = await runArgv(['ldd', bin], { nothrow: true });
  return [...r.stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]);
}

/** A client key and a host key for the guests, made once; known_hosts names both forwarded ports. */
async function ensureKeys(): Promise<{ dir: string; hostKey: string }> {
  const dir = targetKeyDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const id = join(dir, 'id_ed25519');
  const hostKey = join(dir, 'host_ed25519');
  if (!existsSync(id)) await runArgv(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'datapath-lab test targets', '-f', id]);
  if (!existsSync(hostKey)) await runArgv(['dropbearkey', '-t', 'ed25519', '-f', hostKey]);
  const pub = (await runArgv(['dropbearkey', '-y', '-f', hostKey])).stdout
    .split('\n')
    .find((l) => l.startsWith('ssh-ed25519 '))!
    .split(' ')
    .slice(0, 2)
    .join(' ');
  writeFileSync(join(dir, 'known_hosts'), TARGETS.map((t) => `[127.0.0.1]:${t.port} ${pub}\n`).join(''));
  return { dir, hostKey };
}

/** The second archive of the guests' initramfs (the kernel unpacks concatenated cpio archives in order, later files win). */
async function overlay(keys: { dir: string; hostKey: string }, release: string, config: string | undefined): Promise<string> {
  for (const [bin, pkg] of [
    ['/usr/sbin/dropbear', 'dropbear-bin'],
    ['/usr/bin/dash', 'dash'],
  ])
    if (!existsSync(bin)) throw new LabError('E_REQUIREMENT', `${bin} is missing`, `apt-get install ${pkg}`);
  const root = mkdtempSync(join(keys.dir, '.root-'));
  // mkdtemp makes it 0700, and the archive's "." sets the guest's / to that: a login other than root could not enter it.
  chmodSync(root, 0o755);
  try {
    const put = (src: string, dst = src, mode?: number) => {
      mkdirSync(join(root, dirname(dst)), { recursive: true });
      copyFileSync(src, join(root, dst));
      chmodSync(join(root, dst), mode ?? statSync(src).mode & 0o777);
    };
    const write = (dst: string, text: string, mode = 0o644) => {
      mkdirSync(join(root, dirname(dst)), { recursive: true });
      writeFileSync(join(root, dst), text, { mode });
    };
    for (const b of ['/usr/sbin/dropbear', '/usr/bin/dash', ...(await libsOf('/usr/sbin/dropbear')), ...(await libsOf('/usr/bin/dash'))])
      put(b);
    put(keys.hostKey, '/etc/dropbear/hostkey', 0o600);
    // dash, not busybox sh: busybox runs its own applets (ip, tc) before PATH.
    write('/etc/shells', '/usr/bin/dash\n/bin/sh\n');
    mkdirSync(join(root, 'root/.ssh'), { recursive: true, mode: 0o700 });
    chmodSync(join(root, 'root'), 0o700);
    chmodSync(join(root, 'root/.ssh'), 0o700);
    write('/root/.ssh/authorized_keys', readFileSync(join(keys.dir, 'id_ed25519.pub'), 'utf8'), 0o600);
    if (config) put(config, `/boot/config-${release}`);
    // The base image already holds this build's objects at /opt/dpl/bpf: say which build, so the lab uses them as they are.
    write(`${PREPARED_OBJ_DIR}/${DIGEST_FILE}`, `${objectsDigest()}\n`);
    // A login without root (and no sudo): what the lab must refuse.
    write('/etc/passwd', 'root:x:0:0:root:/root:/usr/bin/dash\nlab:x:1000:1000:lab:/home/lab:/usr/bin/dash\n');
    write('/etc/group', 'root:x:0:\nlab:x:1000:\n');
    // Owned by root (cpio -R 0:0), so readable by all: dropbear accepts root-owned files that only root can write.
    mkdirSync(join(root, 'home/lab/.ssh'), { recursive: true, mode: 0o755 });
    for (const d of ['home', 'home/lab', 'home/lab/.ssh']) chmodSync(join(root, d), 0o755);
    write('/home/lab/.ssh/authorized_keys', readFileSync(join(keys.dir, 'id_ed25519.pub'), 'utf8'), 0o644);
    mkdirSync(join(root, 'bin'), { recursive: true });
    for (const a of APPLETS) symlinkSync('busybox', join(root, 'bin', a));
    // The lab runs `sh -c` on targets: busybox's sh would run its own ip/tc applets first.
    symlinkSync('/usr/bin/dash', join(root, 'bin', 'sh'));
    write('/init', INIT.replace('echo ready > /run/dpl-ready', `${TARGET_INIT}echo ready > /run/dpl-ready`), 0o755);
    const out = join(keys.dir, 'overlay.cpio.gz');
    await runArgv(['sh', '-c', `cd "$1" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1 > "$2"`, 'sh', root, out]);
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** How the ssh backend reaches a test guest (what topologies/ssh-back-to-back.yaml says). */
export function targetOf(t: (typeof TARGETS)[number]): RemoteTarget {
  const dir = targetKeyDir();
  return {
    node: t.name,
    host: '127.0.0.1',
    port: t.port,
    user: 'root',
    identityFile: join(dir, 'id_ed25519'),
    knownHosts: join(dir, 'known_hosts'),
    control: join(targetVmDir(t.name), 'ready.sock'),
  };
}

/** Boot both guests (or leave running ones) and wait until each answers over ssh. */
export async function targetsUp(progress: (m: string) => void, signal?: AbortSignal): Promise<void> {
  if (TARGETS.every((t) => runningPid(targetVmDir(t.name)) !== undefined)) return progress('test targets are already up');
  await targetsDown(() => {});
  const k = cachedKernel(TARGET_KERNEL);
  if (!k) throw new LabError('E_REQUIREMENT', `kernel ${TARGET_KERNEL} is not cached`, `lab kernels fetch ${TARGET_KERNEL}`);
  const keys = await ensureKeys();
  const base = await buildInitramfs(
    new HostExec(),
    { release: k.release, modulesDir: k.modulesDir, bpfDir: BPF_OBJ_DIR, cacheDir: join(cacheRoot(), 'initramfs'), ownModules: true },
    progress,
  );
  const over = await overlay(keys, k.release, k.config);
  const initramfs = join(
    keys.dir,
    `initramfs-${createHash('sha256')
      .update(base + readFileSync(over))
      .digest('hex')
      .slice(0, 12)}.cpio.gz`,
  );
  await runArgv(['sh', '-c', 'cat "$1" "$2" > "$3"', 'sh', base, over, initramfs]);
  const [pa, pb] = [await freeUdpPort(), await freeUdpPort()];
  const wire = (id: string, local: number, remote: number) =>
    `dgram,id=${id},local.type=inet,local.host=127.0.0.1,local.port=${local},remote.type=inet,remote.host=127.0.0.1,remote.port=${remote}`;
  const t0 = performance.now();
  progress(`booting test targets ${TARGETS.map((t) => `${t.name} (ssh 127.0.0.1:${t.port})`).join(', ')} with kernel ${k.release}`);
  try {
    await Promise.all(
      TARGETS.map(async (t, i) => {
        const dir = targetVmDir(t.name);
        mkdirSync(dir, { recursive: true });
        const [local, remote] = i === 0 ? [pa, pb] : [pb, pa];
        const extra = [
          '-netdev',
          `user,id=mg,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:${t.port}-:22`,
          '-device',
          `virtio-net-pci,netdev=mg,mac=${mgmtMac(t.index)}`,
          '-netdev',
          wire('lk', local, remote),
          '-device',
          `virtio-net-pci,netdev=lk,mac=${wireMac(t.index)}`,
        ];
        const vm = await bootVm(
          { name: `ssh-target.${t.name}`, vmlinuz: k.vmlinuz, initramfs, dir, accel: 'tcg', extra, memoryMb: 768 },
          signal,
        );
        vm.qga.close();
        await waitSsh(targetOf(t), signal);
        progress(
          `test target ${t.name} answers on ssh 127.0.0.1:${t.port} (${((performance.now() - t0) / 1000).toFixed(1)} s after boot began)`,
        );
      }),
    );
  } catch (e) {
    await targetsDown(() => {});
    throw e;
  }
}

/** Poll until dropbear accepts the key (the guest's /init starts it last). */
async function waitSsh(t: RemoteTarget, signal?: AbortSignal): Promise<void> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    try {
      await openMaster(t, signal);
      await closeMaster(t);
      return;
    } catch (e) {
      if (performance.now() > deadline || signal?.aborted) throw e;
    }
    await sleep(250, signal);
  }
}

export async function targetsDown(progress: (m: string) => void): Promise<void> {
  for (const t of TARGETS) {
    const dir = targetVmDir(t.name);
    if (runningPid(dir) !== undefined) progress(`stopping test target ${t.name}`);
    await stopVm(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function targetsRunning(): { name: string; port: number; running: boolean }[] {
  return TARGETS.map((t) => ({ name: t.name, port: t.port, running: runningPid(targetVmDir(t.name)) !== undefined }));
}

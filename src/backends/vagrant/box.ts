import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { LabError } from '../../errors.js';
import { HostExec, type Exec } from '../../exec/exec.js';
import { cacheRoot, type CachedKernel, type KernelRecord } from '../../kernels/cache.js';

/** Bump when the recipe below changes what a box holds: it is part of the cache key. */
export const BOX_RECIPE = 2;

/** Bump when debootstrap's inputs change (the cached Debian root under boxes/roots/). */
export const ROOT_RECIPE = 1;

/** Debian release the box's root is, and the suite its newer iproute2/bpftool come from (netkit, tcx need them). */
const SUITE = 'bookworm';
const BACKPORTS = 'bookworm-backports';

/** Packages of the box's root from the release: boot, sshd, sudo for Vagrant, and what the lab runs in a guest. */
export const BOX_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'udev',
  'openssh-server',
  'sudo',
  'initramfs-tools',
  'kmod',
  'procps',
  'iperf3',
  'ethtool',
  'sockperf',
  'nftables',
  'iptables',
];
/** From backports: iproute2 >= 6.7 creates netkit and sets gso_ipv4_max_size; bpftool >= 7.3 attaches tcx (as ./lab requires on the host). */
export const BOX_BACKPORTS = ['iproute2', 'bpftool'];

/** Modules the initrd needs to find the root disk on virtio (FACTS of vagrant-libvirt boxes: virtio_blk, virtio_net, virtio_pci). */
const INITRD_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net', 'ext4'];

/** Image size: mkfs.ext4 -d fills a sparse file; Vagrant's box metadata states it in GB (vagrant-libvirt: virtual_size). */
const DISK_GB = 2;

/** box.json beside a built box. */
export interface BoxRecord {
  /** Box name as Vagrant knows it (`dpl/<kernel>`). */
  name: string;
  /** Box version in its metadata (Vagrant compares it like a gem version). */
  version: string;
  /** Cache key: a digest of the recipe, the kernel's packages and the mirror. */
  key: string;
  kernel: { name: string; release: string; version: string };
  /** Files in the box dir. */
  files: { box: string; metadata: string; initrd: string };
  /** SHA256 of the .box file (also in metadata.json). */
  sha256: string;
  /** Host key of the box's sshd, as a known_hosts key (`ssh-ed25519 AAAA...`): the lab checks it, never accepts blindly. */
  hostKey: string;
  /** Kernel command line the box boots with (root on the whole virtio disk). */
  cmdline: string;
  /** Debian mirror the root came from. */
  mirror: string;
  builtAt: string;
}

export interface BoxResult {
  status: 'cached' | 'built';
  dir: string;
  record: BoxRecord;
  seconds: number;
}

/** Kernel command line of a box: whole-disk ext4 root, eth0 naming (Vagrant's management NIC is the first). */
export const BOX_CMDLINE = 'root=/dev/vda rw console=ttyS0 net.ifnames=0 biosdevname=0';

export function boxesDir(root = cacheRoot()): string {
  return join(root, 'boxes');
}

/** The Debian mirror this machine's apt uses for `suite` (deb822 .sources or one-line sources.list); deb.debian.org otherwise. */
export function systemMirror(files: { path: string; text: string }[], suite = SUITE): string {
  for (const { path, text } of files) {
    if (path.endsWith('.sources'))
      for (const stanza of text.split(/\n\s*\n/)) {
        const uris = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
        const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1].split(/\s+/) ?? [];
        if (uris && suites.includes(suite) && /^Types:.*\bdeb\b/m.test(stanza)) return uris;
      }
    else
      for (const line of text.split('\n')) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
        if (m && m[2] === suite) return m[1];
      }
  }
  return 'http://deb.debian.org/debian';
}

function readSources(): { path: string; text: string }[] {
  const d = '/etc/apt/sources.list.d';
  const listed = existsSync(d)
    ? readdirSync(d)
        .filter((f) => /\.(list|sources)$/.test(f))
        .map((f) => join(d, f))
    : [];
  const paths = ['/etc/apt/sources.list', ...listed];
  return paths.filter((p) => existsSync(p)).map((p) => ({ path: p, text: readFileSync(p, 'utf8') }));
}

/** Cache key of a box: what goes into it (recipe, package lists, kernel packages by hash, mirror). */
export function boxKey(kernel: KernelRecord, mirror: string): string {
  const what = {
    recipe: BOX_RECIPE,
    SUITE,
    BOX_PACKAGES,
    BOX_BACKPORTS,
    INITRD_MODULES,
    DISK_GB,
    BOX_CMDLINE,
    mirror,
    kernel: kernel.packages,
  };
  return createHash('sha256').update(JSON.stringify(what)).digest('hex').slice(0, 16);
}

/** Cache key of the Debian root alone (debootstrap's inputs). */
export function rootKey(mirror: string): string {
  return createHash('sha256')
    .update(JSON.stringify({ recipe: ROOT_RECIPE, SUITE, BOX_PACKAGES, mirror }))
    .digest('hex')
    .slice(0, 16);
}

/** Versioned box metadata (Vagrant docs, "Box File Format": the catalog `vagrant box add` reads). */
export function boxCatalog(name: string, version: string, boxFile: string, sha256: string, description: string): object {
  return {
    name,
    description,
    versions: [{ version, providers: [{ name: 'libvirt', url: `file://${boxFile}`, checksum_type: 'sha256', checksum: sha256 }] }],
  };
}

/** Vagrant's insecure public key as Debian's vagrant package ships it: the box's authorized key (Vagrant docs, "Creating a Base Box"). */
export function insecureKey(): string {
  const gems = '/usr/share/rubygems-integration/all/gems';
  const found = (existsSync(gems) ? readdirSync(gems) : [])
    .filter((g) => /^vagrant-\d/.test(g))
    .map((g) => join(gems, g, 'keys/vagrant.pub'))
    .find((p) => existsSync(p));
  if (!found)
    throw new LabError('E_REQUIREMENT', "Vagrant's insecure public key (keys/vagrant.pub) was not found", 'apt-get install vagrant');
  return readFileSync(found, 'utf8').trim();
}

const sh = (script: string) => ['/bin/sh', '-euc', script];

/**
 * Build (or find cached) the box of one catalogue kernel: a Debian root by debootstrap from
 * the system's mirror, the kernel's modules and an initrd made in it, user `vagrant` with
 * Vagrant's insecure key, one ext4 disk as qcow2, packed as a libvirt box with metadata.
 * Debootstrap and chroot steps run in a private mount namespace (unshare -m) so an
 * interrupted build leaves no mount behind; the box dir appears by rename, whole or not at all.
 */
export async function buildBox(
  kernel: CachedKernel,
  record: KernelRecord,
  opts: { root?: string; exec?: Exec; log?: (m: string) => void; signal?: AbortSignal } = {},
): Promise<BoxResult> {
  const t0 = performance.now();
  const root = opts.root ?? cacheRoot();
  const exec = opts.exec ?? new HostExec();
  const log = opts.log ?? (() => {});
  const signal = opts.signal;
  const mirror = systemMirror(readSources());
  const key = boxKey(record, mirror);
  const dir = join(boxesDir(root), `${record.name}-${key}`);
  const secs = () => (performance.now() - t0) / 1000;
  if (existsSync(join(dir, 'box.json')))
    return { status: 'cached', dir, record: JSON.parse(readFileSync(join(dir, 'box.json'), 'utf8')) as BoxRecord, seconds: secs() };
  for (const tool of ['debootstrap', 'mkfs.ext4', 'qemu-img', 'unshare'])
    if ((await exec.run(['sh', '-c', `command -v ${tool}`], { nothrow: true })).code !== 0)
      throw new LabError(
        'E_REQUIREMENT',
        `${tool} is not installed: the box is built with it`,
        'apt-get install debootstrap e2fsprogs qemu-utils util-linux',
      );
  const pub = insecureKey();
  mkdirSync(boxesDir(root), { recursive: true });
  const tmp = mkdtempSync(join(boxesDir(root), `.build-${record.name}-`));
  const rootfs = join(tmp, 'root');
  const run = (argv: string[], timeoutMs = 900_000) => exec.run(argv, { signal, timeoutMs });
  try {
    // The Debian root does not depend on the kernel: one debootstrap serves every catalogue kernel's box.
    const base = join(boxesDir(root), 'roots', rootKey(mirror));
    if (!existsSync(base)) {
      log(`debootstrap ${SUITE} (minbase + ${BOX_PACKAGES.length} packages) from ${mirror}`);
      const stage = join(tmp, 'debootstrap');
      await run([
        'unshare',
        '-m',
        '--propagation',
        'private',
        'debootstrap',
        '--variant=minbase',
        `--include=${BOX_PACKAGES.join(',')}`,
        SUITE,
        stage,
        mirror,
      ]);
      mkdirSync(dirname(base), { recursive: true });
      renameSync(stage, base);
    } else log(`Debian root from the cache (${base})`);
    await run(['cp', '-a', base, rootfs]);
    log(`${BACKPORTS}: ${BOX_BACKPORTS.join(', ')}`);
    writeFileSync(join(rootfs, 'etc/apt/sources.list.d/backports.list'), `deb ${mirror} ${BACKPORTS} main\n`);
    const modules = join(rootfs, 'lib/modules', kernel.release);
    cpSync(kernel.modulesDir, modules, { recursive: true });
    writeFileSync(join(rootfs, 'etc/initramfs-tools/modules'), `${INITRD_MODULES.join('\n')}\n`);
    // mkinitramfs reads the kernel's config to pick the initrd's compression (CONFIG_RD_*).
    if (kernel.config) cpSync(kernel.config, join(rootfs, 'boot', `config-${kernel.release}`));
    const initrd = `/boot/initrd.img-${kernel.release}`;
    await run([
      'unshare',
      '-m',
      '--propagation',
      'private',
      'chroot',
      rootfs,
      ...sh(
        [
          'mount -t proc proc /proc',
          'export DEBIAN_FRONTEND=noninteractive',
          'apt-get update -q',
          `apt-get install -y -q --no-install-recommends -t ${BACKPORTS} ${BOX_BACKPORTS.join(' ')}`,
          'apt-get clean',
          'rm -rf /var/lib/apt/lists/*',
          `depmod ${kernel.release}`,
          `mkinitramfs -o ${initrd} ${kernel.release}`,
          'useradd -m -s /bin/bash vagrant',
          'echo "vagrant ALL=(ALL) NOPASSWD: ALL" > /etc/sudoers.d/vagrant && chmod 0440 /etc/sudoers.d/vagrant',
          'install -d -m 700 -o vagrant -g vagrant /home/vagrant/.ssh',
          'systemctl enable systemd-networkd ssh',
          'umount /proc',
        ].join('\n'),
      ),
    ]);
    log('user vagrant, network (DHCP on eth0 only), fstab');
    writeFileSync(join(rootfs, 'home/vagrant/.ssh/authorized_keys'), `${pub}\n`, { mode: 0o600 });
    await run(['chroot', rootfs, 'chown', '-R', 'vagrant:vagrant', '/home/vagrant/.ssh']);
    // Only eth0 (Vagrant's management network): a catch-all .network would also take the links Vagrant configures.
    writeFileSync(join(rootfs, 'etc/systemd/network/10-eth0.network'), '[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n');
    writeFileSync(join(rootfs, 'etc/fstab'), '/dev/vda / ext4 rw,relatime 0 1\n');
    writeFileSync(join(rootfs, 'etc/hostname'), 'dpl\n');
    // Empty: systemd makes a new machine-id at first boot (machine-id(5)). A shared one gives every machine
    // the same DHCP client id (systemd-networkd derives its DUID from it), so dnsmasq leases them one address.
    writeFileSync(join(rootfs, 'etc/machine-id'), '');
    rmSync(join(rootfs, 'var/lib/dbus/machine-id'), { force: true });
    const hostKey = readFileSync(join(rootfs, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const out = join(tmp, 'out');
    mkdirSync(out);
    cpSync(join(rootfs, initrd.slice(1)), join(out, 'initrd.img'));
    log(`ext4 image (${DISK_GB} GB sparse) -> qcow2`);
    await run(['mkfs.ext4', '-q', '-L', 'root', '-d', rootfs, join(tmp, 'root.raw'), `${DISK_GB}G`]);
    await run(['qemu-img', 'convert', '-O', 'qcow2', join(tmp, 'root.raw'), join(tmp, 'box.img')]);
    rmSync(join(tmp, 'root.raw'));
    writeFileSync(join(tmp, 'metadata.json'), JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: DISK_GB }));
    log('packing the box');
    await run(['tar', '-C', tmp, '-cf', join(out, 'dpl.box'), 'metadata.json', 'box.img']);
    const sha256 = (await run(['sha256sum', join(out, 'dpl.box')])).stdout.split(/\s+/)[0];
    const name = `dpl/${record.name}`;
    // Newer builds compare greater (Vagrant orders box versions like gem versions).
    const version = `${BOX_RECIPE}.0.${Math.floor(Date.now() / 1000)}`;
    const box: BoxRecord = {
      name,
      version,
      key,
      kernel: { name: record.name, release: record.release, version: record.version },
      files: { box: 'dpl.box', metadata: 'metadata.json', initrd: 'initrd.img' },
      sha256,
      hostKey,
      cmdline: BOX_CMDLINE,
      mirror,
      builtAt: new Date().toISOString(),
    };
    const catalog = boxCatalog(name, version, join(dir, 'dpl.box'), sha256, `datapath-lab box: Debian ${SUITE}, kernel ${record.release}`);
    writeFileSync(join(out, 'metadata.json'), `${JSON.stringify(catalog, null, 2)}\n`);
    writeFileSync(join(out, 'box.json'), `${JSON.stringify(box, null, 2)}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(out, dir);
    log(`box ${name} ${version}: ${(statSync(join(dir, 'dpl.box')).size / 1e6).toFixed(0)} MB in ${dir}`);
    return { status: 'built', dir, record: box, seconds: secs() };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

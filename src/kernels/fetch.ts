import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../errors.js';
import { HostExec, type Exec, type ExecResult } from '../exec/exec.js';
import {
  cachedKernel,
  cacheRoot,
  kernelDir,
  kernelsDir,
  KERNEL_RECORD,
  readRecord,
  type CachedKernel,
  type FetchedPackage,
  type KernelRecord,
} from './cache.js';
import type { KernelEntry } from './catalogue.js';

/** The keyring apt checks the suite's signed Release (InRelease) file against. */
export const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

export interface FetchOptions {
  /** Cache root (default: cacheRoot()). */
  root?: string;
  exec?: Exec;
  /** Progress lines (stderr in the CLI). */
  log?: (msg: string) => void;
  signal?: AbortSignal;
}

export interface FetchResult {
  /** 'cached': it was there already and nothing was done. */
  status: 'cached' | 'fetched';
  kernel: CachedKernel;
  record: KernelRecord;
  /** Bytes downloaded (0 when cached). */
  bytes: number;
}

/** Private apt dir of one suite: its own sources, lists and archives; the system's are never read or changed. */
export function aptDir(suite: string, root = cacheRoot()): string {
  return join(root, 'apt', suite);
}

export function privateSources(entry: KernelEntry): string {
  return `Types: deb\nURIs: ${entry.mirror}\nSuites: ${entry.suite}\nComponents: main\nSigned-By: ${KEYRING}\n`;
}

/**
 * The -o options that point apt at the private dir. Preferences are emptied too, so that
 * the system's pins (preferences.d) cannot change which version is the candidate.
 */
export function aptOptions(dir: string): string[] {
  const o = {
    'Dir::Etc::SourceList': join(dir, 'private.sources'),
    'Dir::Etc::SourceParts': '/nonexistent',
    'Dir::Etc::Preferences': join(dir, 'preferences'),
    'Dir::Etc::PreferencesParts': join(dir, 'preferences.d'),
    'Dir::State': join(dir, 'state'),
    'Dir::Cache': join(dir, 'cache'),
    'Dir::State::status': '/var/lib/dpkg/status',
    'Acquire::Languages': 'none',
    // As root, apt drops to _apt for downloads, which cannot write into the 0700 temp dir.
    ...(process.getuid?.() === 0 ? { 'APT::Sandbox::User': 'root' } : {}),
  };
  return Object.entries(o).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
}

function prepareAptDir(entry: KernelEntry, root: string): string {
  const dir = aptDir(entry.suite, root);
  for (const d of ['state/lists/partial', 'cache/archives/partial', 'preferences.d']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'private.sources'), privateSources(entry));
  return dir;
}

/** When a suite verified before, apt reports a bad signature only as a warning, keeps the old index and exits 0. */
const SIGNATURE_TROUBLE = /^W: .*(GPG error|NO_PUBKEY|EXPKEYSIG|not signed|signature)/m;

async function apt(exec: Exec, argv: string[], what: string, signal?: AbortSignal): Promise<ExecResult> {
  const r = await exec.run(argv, { nothrow: true, signal });
  if (signal?.aborted) throw new LabError('E_INTERRUPTED', `${what} interrupted`);
  if (r.code !== 0 || SIGNATURE_TROUBLE.test(r.stderr)) {
    const tail = r.stderr.trim().split('\n').slice(-6).join('\n  ');
    const hint = /NO_PUBKEY|EXPKEYSIG|not signed|signature/.test(r.stderr)
      ? `the suite's Release signature did not verify against ${KEYRING}: update debian-archive-keyring (apt-get install debian-archive-keyring)`
      : /no candidate|Unable to locate|No packages found/.test(r.stderr)
        ? 'the mirror no longer has this package: update its name in vms/kernels.yaml'
        : /does not have a Release file/.test(r.stderr)
          ? 'no such suite on the mirror: check the suite in vms/kernels.yaml'
          : 'check that the mirror is reachable through apt (apt-get update)';
    throw new LabError('E_REQUIREMENT', `${what} failed (exit ${r.code})${tail ? `:\n  ${tail}` : ''}`, hint);
  }
  return r;
}

/** Records of `apt-cache show`: one field map per package version. */
export function parseAptRecords(text: string): Record<string, string>[] {
  return text
    .split(/\n\s*\n/)
    .map((block) => Object.fromEntries([...block.matchAll(/^([A-Za-z0-9-]+): ?(.*)$/gm)].map((m) => [m[1], m[2]])))
    .filter((r) => r.Package);
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** apt's own progress lines worth relaying (the Get:/Fetched lines). */
function relay(log: (m: string) => void, r: ExecResult): void {
  for (const l of r.stdout.split('\n')) if (/^(Get|Hit|Ign|Err):|^Fetched /.test(l)) log(`  ${l.trim()}`);
}

/**
 * Remove a temp dir, retrying while a killed download's helper processes (apt's http
 * method) still write into it; what remains is removed by the next fetch.
 */
function removeQuietly(dir: string, log: (m: string) => void): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  } catch (e) {
    log(`warning: could not remove ${dir} (${(e as Error).message}); the next fetch removes it`);
  }
}

/** Remove temp dirs that an interrupted fetch left (their owner pid is gone). */
function removeStalePartials(dir: string, name: string): void {
  if (!existsSync(dir)) return;
  for (const d of readdirSync(dir)) {
    const m = new RegExp(`^\\.${name.replace(/\./g, '\\.')}\\.partial-(\\d+)$`).exec(d);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      removeQuietly(join(dir, d), () => {});
    }
  }
}

/** Where an unpacked kernel package tree keeps its parts: Debian's old layout (boot/) or the split one (usr/lib/modules/<release>/). */
function locate(tree: string): { release: string; vmlinuz: string; config: string; modules: string[] } {
  const modRoots = ['lib/modules', 'usr/lib/modules'].map((d) => join(tree, d)).filter((d) => existsSync(d));
  const releases = [...new Set(modRoots.flatMap((d) => readdirSync(d)))];
  if (releases.length !== 1)
    throw new LabError(
      'E_REQUIREMENT',
      `the packages hold ${releases.length} kernel releases (${releases.join(', ') || 'none'}), expected one`,
      'list one kernel build per catalogue entry',
    );
  const release = releases[0];
  const modules = modRoots.map((d) => join(d, release));
  const first = (cands: string[], what: string) => {
    const hit = cands.find((c) => existsSync(c));
    if (!hit)
      throw new LabError(
        'E_REQUIREMENT',
        `no ${what} in the packages (looked for ${cands.map((c) => c.slice(tree.length + 1)).join(', ')})`,
        'the catalogue entry must list the packages holding the image, config and modules',
      );
    return hit;
  };
  const vmlinuz = first(
    [join(tree, 'boot', `vmlinuz-${release}`), ...modules.flatMap((m) => ['vmlinuz', 'vmlinuz.unsigned'].map((f) => join(m, f)))],
    'vmlinuz',
  );
  const config = first([join(tree, 'boot', `config-${release}`), ...modules.map((m) => join(m, 'config'))], 'config');
  return { release, vmlinuz, config, modules };
}

/** Move the parts into the cache layout: vmlinuz, config, lib/modules/<release>/. */
function assemble(tree: string, out: string): { release: string } {
  const { release, vmlinuz, config, modules } = locate(tree);
  const modulesDir = join(out, 'lib', 'modules', release);
  mkdirSync(join(out, 'lib', 'modules'), { recursive: true });
  renameSync(vmlinuz, join(out, 'vmlinuz'));
  renameSync(config, join(out, 'config'));
  renameSync(modules[0], modulesDir);
  for (const extra of modules.slice(1)) for (const e of readdirSync(extra)) renameSync(join(extra, e), join(modulesDir, e));
  return { release };
}

/**
 * Download a catalogue kernel with apt under a private config, verify it, unpack it into
 * the cache. The Release file's signature and the .deb hashes are checked by apt; the
 * .deb's SHA256 is checked once more against the Packages index. Unpacks into a temp dir
 * beside the final one and renames it, so an interrupted fetch leaves no half cache.
 */
export async function fetchKernel(entry: KernelEntry, opts: FetchOptions = {}): Promise<FetchResult> {
  const root = opts.root ?? cacheRoot();
  const exec = opts.exec ?? new HostExec();
  const log = opts.log ?? (() => {});
  const final = kernelDir(entry.name, root);
  const existing = readRecord(entry.name, root);
  if (existing) return { status: 'cached', kernel: cachedKernel(entry.name, root)!, record: existing, bytes: 0 };
  if (!existsSync(KEYRING))
    throw new LabError(
      'E_REQUIREMENT',
      `${KEYRING} is missing: apt cannot verify the Debian suite's signed Release file`,
      'apt-get install debian-archive-keyring',
    );

  const dir = prepareAptDir(entry, root);
  const o = aptOptions(dir);
  log(`apt-get update: suite ${entry.suite} under the private config ${dir}`);
  relay(log, await apt(exec, ['apt-get', ...o, 'update'], `apt-get update (${entry.suite})`, opts.signal));

  const shown = await apt(
    exec,
    ['apt-cache', ...o, 'show', ...entry.packages],
    `apt-cache show ${entry.packages.join(' ')} (${entry.suite})`,
    opts.signal,
  );
  const records = parseAptRecords(shown.stdout);

  mkdirSync(kernelsDir(root), { recursive: true });
  removeStalePartials(kernelsDir(root), entry.name);
  const tmp = join(kernelsDir(root), `.${entry.name}.partial-${process.pid}`);
  removeQuietly(tmp, log);
  const debs = join(tmp, 'debs');
  mkdirSync(debs, { recursive: true });
  try {
    log(`downloading ${entry.packages.join(', ')}`);
    relay(
      log,
      await apt(
        exec,
        ['env', '-C', debs, 'apt-get', ...o, 'download', ...entry.packages],
        `apt-get download (${entry.suite})`,
        opts.signal,
      ),
    );

    const fetched: FetchedPackage[] = [];
    for (const pkg of entry.packages) {
      const file = readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
      if (!file) throw new LabError('E_REQUIREMENT', `apt-get download left no .deb for ${pkg}`);
      const version = decodeURIComponent(file.slice(pkg.length + 1).replace(/_[^_]+\.deb$/, ''));
      const rec = records.find((r) => r.Package === pkg && r.Version === version);
      const sha256 = await sha256File(join(debs, file));
      if (!rec?.SHA256 || rec.SHA256 !== sha256) {
        throw new LabError(
          'E_REQUIREMENT',
          `${file}: SHA256 ${sha256} does not match the ${entry.suite} Packages index (${rec?.SHA256 ?? 'no entry for this version'})`,
          'fetch again; if it persists the mirror is inconsistent',
        );
      }
      const size = statSync(join(debs, file)).size;
      fetched.push({ name: pkg, version, sha256, size });
      log(`verified ${file} (${mb(size)}): SHA256 ${sha256.slice(0, 16)}… matches the Packages index of the signed ${entry.suite} Release`);
    }

    const tree = join(tmp, 'tree');
    log(`unpacking with dpkg -x`);
    // Not aborted midway: dpkg -x forks dpkg-deb and tar, which would go on writing after dpkg is killed.
    for (const f of readdirSync(debs)) await apt(exec, ['dpkg', '-x', join(debs, f), tree], `dpkg -x ${f}`);
    if (opts.signal?.aborted) throw new LabError('E_INTERRUPTED', 'interrupted while unpacking');
    const out = join(tmp, 'kernel');
    const { release } = assemble(tree, out);
    // modules.dep lets modprobe in a guest resolve dependencies (virtio_net needs net_failover).
    const dep = await exec.run(['depmod', '-b', out, release], { nothrow: true });
    if (dep.code !== 0) log(`warning: depmod failed (${dep.stderr.trim().split('\n').at(-1)}); a guest must run depmod itself`);

    const record: KernelRecord = {
      name: entry.name,
      suite: entry.suite,
      packages: fetched,
      version: fetched[0].version,
      release,
      paths: { vmlinuz: 'vmlinuz', config: 'config', modulesDir: join('lib', 'modules', release) },
      fetchedAt: new Date().toISOString(),
    };
    writeFileSync(join(out, KERNEL_RECORD), JSON.stringify(record, null, 2) + '\n');
    rmSync(final, { recursive: true, force: true });
    renameSync(out, final);
    log(`cached kernel ${entry.name} (${release}) in ${final}`);
    return { status: 'fetched', kernel: cachedKernel(entry.name, root)!, record, bytes: fetched.reduce((a, p) => a + p.size, 0) };
  } finally {
    removeQuietly(tmp, log);
  }
}

/** Size of a kernel's cache dir in bytes (for messages). */
export function treeBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size;
  return n;
}

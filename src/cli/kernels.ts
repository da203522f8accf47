import type { Command } from 'commander';
import { EXIT, exitCodeFor, LabError } from '../errors.js';
import { table } from '../report/table.js';
import { printError, progressLogger } from './output.js';

const HELP_AFTER = `
The catalogue is vms/kernels.yaml: each kernel is a set of Debian packages from one suite
(6.1 from bookworm, 6.12 from bookworm-backports, 7.x from trixie-backports).

fetch runs apt-get under a private sources list and state dir (in the cache's apt/<suite>/),
so the system's apt sources and lists never change. apt verifies the suite's Release
signature against /usr/share/keyrings/debian-archive-keyring.gpg and the .deb hashes; fetch
then checks each .deb's SHA256 against the Packages index once more, unpacks it with
dpkg -x into a temp dir and renames that into place, so an interrupted fetch leaves nothing.

Cache: /var/cache/datapath-lab/kernels/<name>/ (DPL_CACHE_DIR replaces /var/cache/datapath-lab),
holding vmlinuz, config, lib/modules/<release>/ and kernel.json.

list reads what each kernel supports from its own config once it is cached:
  netkit        CONFIG_NETKIT (netkit pod devices)
  bigtcp4       IPv4 BIG TCP (kernel >= 6.3)
  tcx           CONFIG_NET_XGRESS
  fq            CONFIG_NET_SCH_FQ (EDT Bandwidth Manager)

Examples:
  lab kernels list
  lab kernels fetch 6.12
  lab kernels fetch --all`;

const yn = (b: boolean) => (b ? 'yes' : 'no');

async function list(opts: { json?: boolean }): Promise<number> {
  const { loadCatalogue } = await import('../kernels/catalogue.js');
  const { kernelStatus } = await import('../kernels/cache.js');
  const rows = loadCatalogue().map((k) => kernelStatus(k));
  if (opts.json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return EXIT.ok;
  }
  const cells = rows.map((k) => {
    const s = k.supports;
    const sup = s ? [yn(s.netkit), yn(s.bigTcpIpv4), yn(s.tcx), yn(s.fq)] : ['-', '-', '-', '-'];
    return [k.name, k.suite, k.cached ? 'yes' : 'not cached', k.release ?? '-', ...sup, k.description];
  });
  process.stdout.write(table(['KERNEL', 'SUITE', 'CACHED', 'RELEASE', 'NETKIT', 'BIGTCP4', 'TCX', 'FQ', 'DESCRIPTION'], cells) + '\n');
  if (rows.some((k) => !k.cached))
    process.stdout.write(`\nnot cached: what a kernel supports is read from its config once fetched (lab kernels fetch NAME)\n`);
  return EXIT.ok;
}

async function fetch(names: string[], opts: { all?: boolean; quiet?: boolean }): Promise<number> {
  const { findKernel, loadCatalogue } = await import('../kernels/catalogue.js');
  const { fetchKernel, treeBytes } = await import('../kernels/fetch.js');
  const catalogue = loadCatalogue();
  if (!opts.all && !names.length)
    throw new LabError('E_USAGE', 'name a kernel to fetch, or pass --all', `known kernels: ${catalogue.map((k) => k.name).join(', ')}`);
  const entries = opts.all ? catalogue : names.map((n) => findKernel(catalogue, n));
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    for (const entry of entries) {
      const log = progressLogger(opts.quiet);
      const t0 = performance.now();
      const r = await fetchKernel(entry, { log: (m) => log(`kernel ${entry.name}: ${m}`), signal: ac.signal }).finally(log.end);
      const dir = r.kernel.vmlinuz.replace(/\/vmlinuz$/, '');
      if (r.status === 'cached')
        process.stdout.write(
          `kernel ${entry.name} is already cached (${r.record.release}, fetched ${r.record.fetchedAt}) in ${dir}: nothing to do\n`,
        );
      else {
        const secs = ((performance.now() - t0) / 1000).toFixed(1);
        process.stdout.write(
          `kernel ${entry.name}: ${r.record.release} (${r.record.version}) verified and cached in ${dir}: ${(r.bytes / 1e6).toFixed(1)} MB downloaded, ${(treeBytes(dir) / 1e6).toFixed(1)} MB unpacked, ${secs}s\n`,
        );
      }
    }
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
  }
  return EXIT.ok;
}

async function box(name: string, opts: { quiet?: boolean }): Promise<number> {
  const { findKernel, loadCatalogue } = await import('../kernels/catalogue.js');
  const { fetchKernel } = await import('../kernels/fetch.js');
  const { buildBox } = await import('../backends/vagrant/box.js');
  const entry = findKernel(loadCatalogue(), name);
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop).once('SIGTERM', stop);
  const log = progressLogger(opts.quiet);
  try {
    const k = await fetchKernel(entry, { log: (m) => log(`kernel ${name}: ${m}`), signal: ac.signal });
    const r = await buildBox(k.kernel, k.record, { log: (m) => log(`box ${name}: ${m}`), signal: ac.signal }).finally(log.end);
    const b = r.record;
    process.stdout.write(
      r.status === 'cached'
        ? `box ${b.name} ${b.version} (kernel ${b.kernel.release}) is already cached in ${r.dir}: nothing to do\n`
        : `box ${b.name} ${b.version} (kernel ${b.kernel.release}) built in ${r.seconds.toFixed(1)}s: ${r.dir}\n`,
    );
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
  }
  return EXIT.ok;
}

export function register(program: Command, exit: (code: number) => void): void {
  const kernels = program
    .command('kernels')
    .description(
      'the kernels the qemu backend boots: list the catalogue (vms/kernels.yaml) and what each supports, fetch one into the cache',
    )
    .addHelpText('after', HELP_AFTER);
  const guard = (f: () => Promise<number>) =>
    f().then(exit, (e) => {
      printError(e);
      exit(exitCodeFor(e));
    });
  kernels
    .command('list')
    .description(
      'each catalogue kernel, whether it is cached, and (once cached) netkit, IPv4 BIG TCP, tcx and fq support read from its config',
    )
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => guard(() => list(opts)));
  kernels
    .command('fetch')
    .description(
      'download a catalogue kernel with apt (private sources, signed Release, SHA256 checked), unpack vmlinuz, config and modules into the cache; does nothing when cached',
    )
    .argument('[names...]', 'kernel names from the catalogue (lab kernels list)')
    .option('--all', 'every kernel in the catalogue')
    .option('-q, --quiet', 'no progress lines')
    .action((names: string[], opts: { all?: boolean; quiet?: boolean }) => guard(() => fetch(names, opts)));
  kernels
    .command('box')
    .description(
      "build the vagrant backend's box of a catalogue kernel: a Debian root (debootstrap from this machine's mirror), the kernel's modules and initrd, user vagrant; cached by content under boxes/",
    )
    .argument('<name>', 'kernel name from the catalogue (lab kernels list)')
    .option('-q, --quiet', 'no progress lines')
    .action((name: string, opts: { quiet?: boolean }) => guard(() => box(name, opts)));
}

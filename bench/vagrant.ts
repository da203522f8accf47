/**
 * Time to a deployed node: backend vagrant vs backend qemu, same kernel, same topology.
 *
 *   The topology is topologies/vagrant-quickstart.yaml (one node, two pods, a remote peer,
 *   kernel 6.12); the qemu row runs the same text with `backend: qemu`. Each row is the wall
 *   clock of `node dist/cli/main.js up FILE -q`, which returns once every node is wired and
 *   deployed and the lab is marked up (for vagrant: libvirt started, `vagrant up`, ssh-config,
 *   provision over ssh, deploy). Then `lab down` (not timed) and a check that the lab's state
 *   dir is gone. Box and kernel are built/fetched first, outside the timed part.
 *
 * Usage (root, after `npm run build`; take the machine's VM lock):
 *   flock /tmp/dpl-vm.lock node dist/bench/vagrant.js [--kernel 6.12]
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAll, must, run } from './common.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const CLI = join(REPO, 'dist', 'cli', 'main.js');
const STATE_DIR = process.env.DPL_STATE_DIR ?? '/run/datapath-lab';
const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k);
  return i > 0 ? process.argv[i + 1] : d;
};
const KERNEL = arg('--kernel', '6.12');
const log = (m: string) => process.stderr.write(`${m}\n`);

function topology(backend: 'vagrant' | 'qemu', name: string): string {
  const text = readFileSync(join(REPO, 'topologies', 'vagrant-quickstart.yaml'), 'utf8')
    .replace(/^name: .*$/m, `name: ${name}`)
    .replace(/^backend: .*$/m, `backend: ${backend}`)
    .replace(/^kernel: .*$/m, `kernel: "${KERNEL}"`);
  const f = join(mkdtempSync(join(tmpdir(), 'dpl-bench-vg-')), 'lab.yaml');
  writeFileSync(f, text);
  return f;
}

async function timeUp(backend: 'vagrant' | 'qemu'): Promise<number> {
  const name = backend === 'vagrant' ? 'v2benchvg' : 'v2benchqm';
  log(`${backend}: lab up ${name} ...`);
  const up = await run(['node', CLI, 'up', topology(backend, name), '-q'], { timeoutMs: 1_800_000 });
  const down = await run(['node', CLI, 'down', name, '-q'], { timeoutMs: 600_000 });
  must(up, `lab up (${backend})`);
  must(down, `lab down (${backend})`);
  if (existsSync(join(STATE_DIR, name))) throw new Error(`lab down ${name} left ${join(STATE_DIR, name)}`);
  log(`${backend}: ${up.s.toFixed(1)} s to a deployed node`);
  return up.s;
}

async function main(): Promise<void> {
  must(await run(['node', CLI, 'kernels', 'fetch', KERNEL], { timeoutMs: 1_800_000 }), 'kernels fetch');
  must(await run(['node', CLI, 'kernels', 'box', KERNEL], { timeoutMs: 1_800_000 }), 'kernels box');
  const qemu = await timeUp('qemu');
  const vagrant = await timeUp('vagrant');
  process.stdout.write(
    `time to a deployed node, kernel ${KERNEL}, topologies/vagrant-quickstart.yaml:\n` +
      `  qemu     ${qemu.toFixed(1)} s\n  vagrant  ${vagrant.toFixed(1)} s\n  ratio    ${(vagrant / qemu).toFixed(1)}x (vagrant / qemu)\n`,
  );
}

main().catch((e) => {
  killAll();
  log(String(e instanceof Error ? e.message : e));
  process.exit(1);
});

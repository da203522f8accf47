import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LabError } from '../../errors.js';
import { sleep } from '../../sleep.js';
import { HostExec, type Exec } from '../../exec/exec.js';
import { parseConfig, probeLocal, type KernelFacts } from '../../kernel/facts.js';
import { cachedKernel, cacheRoot, releaseVersion, type CachedKernel } from '../../kernels/cache.js';
import { labDir, type JournalEntry } from '../../lifecycle/journal.js';
import type { LabContext } from '../../lifecycle/context.js';
import { BPF_OBJ_DIR } from '../../paths.js';
import { podDeviceKind } from '../../datapath/devices/devices.js';
import type { Lab, LabNode } from '../../topology/model.js';
import type { Backend, DestroyResult, DoctorSection, LogFile, NodeStatus, Timing } from '../backend.js';
import { destroyHostObjects } from '../host-objects.js';
import { qemuDoctor } from './doctor.js';
import { bigTcpMode } from '../../datapath/bigtcp/bigtcp.js';
import { createNamespaces, namespacesOf, wireNamespaces } from '../namespaces.js';
import { chooseAccel } from './accel.js';
import { GuestExec } from './guest-exec.js';
import { linkWires, moveLinkNics, moveUplinkNics, UPLINK_NICS, type Wire } from './nics.js';
import { buildInitramfs, GUEST_MODULES } from './initramfs.js';
import { Qga } from './qga.js';
import { bootVm, runningPid, stopVm, VM_MEMORY_MB, type Accel } from './vm.js';
import { memoryRefusal } from './memory.js';

/** Where the guest sees the lab's BPF objects (copied into its initramfs). */
export const GUEST_OBJ_DIR = '/opt/dpl/bpf';
/** Where the guest's /init mounts cgroup v2 (socket-LB's pod cgroups live there). */
export const GUEST_CGROUP2 = '/sys/fs/cgroup';

/** A user's own bzImage and modules: the release is the modules directory's name. */
function customKernel(c: NonNullable<Lab['customKernel']>): CachedKernel {
  for (const [what, path] of [['vmlinuz', c.vmlinuz], ['modules', c.modulesDir], ...(c.config ? [['config', c.config]] : [])])
    if (!existsSync(path))
      throw new LabError(
        'E_REQUIREMENT',
        `kernel ${what} ${path} does not exist`,
        'fix kernel.vmlinuz / kernel.modules / kernel.config in the topology',
      );
  return {
    name: 'custom',
    release: basename(c.modulesDir.replace(/\/+$/, '')),
    vmlinuz: c.vmlinuz,
    modulesDir: c.modulesDir,
    config: c.config,
  };
}

/** The guest's /init writes /run/dpl-ready once its modules are loaded (it starts the agent before). */
async function waitReady(guest: GuestExec, signal?: AbortSignal): Promise<void> {
  for (let i = 0; i < 300 && !signal?.aborted; i++) {
    if ((await guest.run(['cat', '/run/dpl-ready'], { nothrow: true, signal })).code === 0) return;
    await sleep(50, signal);
  }
  throw new LabError('E_BOOT', `guest ${guest.where} never finished loading its modules (/run/dpl-ready)`);
}

/** A KVM guest that has not answered by then is not going to (TCG boots in about 5 s here). */
const KVM_PROBE_MS = 20_000;

export const vmDir = (lab: string, node: string) => join(labDir(lab), `vm-${node}`);

/**
 * One QEMU VM per node, booting a catalogue kernel; the node's pods and peer are
 * namespaces inside its guest, built by the same code as the local backend's, and
 * every command goes through the guest agent. The journal owns the VMs; what lives
 * inside a guest ends with it.
 */
/** How a node's VM was booted: its initramfs and the ends of its links (boot.json in the VM dir). */
interface NodeBoot {
  initramfs: string;
  wires: Wire[];
}

export class QemuBackend implements Backend {
  readonly kind = 'qemu';
  readonly objDir = GUEST_OBJ_DIR;
  private readonly guests = new Map<string, GuestExec>();
  /** Which node's VM holds a namespace. */
  private readonly nodeOfNetns = new Map<string, string>();
  private kernel?: CachedKernel;
  /** How the VMs run (kvm or tcg), said once in progress and kept for reports. */
  accel?: Accel;

  root(node: string): Exec {
    const g = this.guests.get(node);
    // After lab node kill, until lab node restart.
    if (!g) throw new LabError('E_COMMAND', `VM of node ${node} is not running`);
    return g;
  }

  exec(netns: string): Exec {
    const node = this.nodeOfNetns.get(netns);
    if (!node) throw new LabError('E_INTERNAL', `no VM holds namespace ${netns}`);
    return (this.root(node) as GuestExec).inNetns(netns);
  }

  register(netns: string, node: string): void {
    this.nodeOfNetns.set(netns, node);
  }

  private index(lab: Lab) {
    for (const n of lab.nodes) for (const ns of namespacesOf(lab, [n])) this.nodeOfNetns.set(ns, n.name);
  }

  /** The guest kernel's facts, read from its own config; the tools are this machine's, copied in. */
  async probe(lab: Lab): Promise<KernelFacts> {
    // Refused before anything exists: VMs that do not fit would be killed by the OOM killer mid-boot, or swap the machine.
    const tooBig = memoryRefusal(lab.nodes.length, VM_MEMORY_MB, readFileSync('/proc/meminfo', 'utf8'));
    if (tooBig) throw tooBig;
    const k = lab.customKernel ? customKernel(lab.customKernel) : cachedKernel(lab.kernel!);
    if (!k)
      throw new LabError(
        'E_REQUIREMENT',
        `kernel ${lab.kernel} is not cached`,
        `lab kernels fetch ${lab.kernel} (lab kernels list shows the catalogue)`,
      );
    for (const [bin, pkg] of [
      ['/usr/bin/qemu-system-x86_64', 'qemu-system-x86'],
      ['/usr/sbin/qemu-ga', 'qemu-guest-agent'],
      ['/usr/bin/busybox', 'busybox-static'],
    ])
      if (!existsSync(bin)) throw new LabError('E_REQUIREMENT', `${bin} is missing`, `apt-get install ${pkg} (./lab installs it)`);
    this.kernel = k;
    this.index(lab);
    const host = await probeLocal(new HostExec());
    const config = k.config && existsSync(k.config) ? parseConfig(readFileSync(k.config, 'utf8')) : {};
    const modules = existsSync(join(k.modulesDir, 'modules.dep'))
      ? GUEST_MODULES.filter((m) => new RegExp(`/${m}\\.ko`).test(readFileSync(join(k.modulesDir, 'modules.dep'), 'utf8')))
      : [];
    return {
      ...host,
      release: k.release,
      version: releaseVersion(k.release) ?? [0, 0],
      config,
      configSource: k.config,
      modules,
      btf: config.CONFIG_DEBUG_INFO_BTF === 'y',
      bpffs: true, // the guest's /init mounts it
      // The guest's /init mounts cgroup v2 here (initramfs.ts), which needs CONFIG_CGROUPS in the guest kernel.
      cgroup2: config.CONFIG_CGROUPS === 'y' ? GUEST_CGROUP2 : undefined,
    };
  }

  async provision(ctx: LabContext): Promise<void> {
    const { lab, journal, signal } = ctx;
    const k = this.kernel!;
    const initramfs = await buildInitramfs(
      new HostExec(),
      {
        release: k.release,
        modulesDir: k.modulesDir,
        bpfDir: BPF_OBJ_DIR,
        cacheDir: join(cacheRoot(), 'initramfs'),
        ownModules: !lab.customKernel,
      },
      ctx.progress,
    );
    this.accel = await chooseAccel(ctx.progress, async () => {
      const dir = join(labDir(lab.name), 'kvm-probe');
      journal.record({ backend: this.kind }, [{ kind: 'vm', name: 'kvm-probe', dir }]);
      mkdirSync(dir, { recursive: true });
      try {
        const vm = await bootVm(
          { name: 'kvm-probe', vmlinuz: k.vmlinuz, initramfs, dir, accel: 'kvm', bootTimeoutMs: KVM_PROBE_MS },
          signal,
        );
        vm.qga.close();
        return true;
      } catch {
        return false;
      } finally {
        await stopVm(dir);
      }
    });
    ctx.progress(`booting ${lab.nodes.length} VM(s) with kernel ${k.release} under ${this.accel.toUpperCase()}`);
    const wires = await linkWires(lab);
    await Promise.all(
      lab.nodes.map(async (node) => {
        const dir = vmDir(lab.name, node.name);
        journal.record({ backend: this.kind, node: node.name }, [{ kind: 'vm', name: node.name, dir }]);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'accel'), this.accel!);
        const boot: NodeBoot = { initramfs, wires: wires.filter((w) => w.node === node.name) };
        // What lab node restart needs to boot the node again on the same wires (the far ends keep their UDP ports).
        writeFileSync(join(dir, 'boot.json'), JSON.stringify(boot));
        await this.bootNode(ctx, node, boot);
      }),
    );
  }

  /** Boot one node's VM and put its namespaces and NICs in place (provision, and lab node restart). */
  private async bootNode(ctx: LabContext, node: LabNode, boot: NodeBoot): Promise<void> {
    const { lab, signal } = ctx;
    const k = this.kernel!;
    const dir = vmDir(lab.name, node.name);
    const extra = [...(node.uplink ? UPLINK_NICS : []), ...boot.wires.flatMap((w) => w.args)];
    const vm = await bootVm(
      {
        name: `${lab.name}.${node.name}`,
        vmlinuz: k.vmlinuz,
        initramfs: boot.initramfs,
        dir,
        accel: this.accel!,
        extra,
        cmdline: lab.customKernel?.cmdline,
      },
      signal,
    );
    ctx.progress(
      `node ${node.name}: guest agent answered ${(vm.bootMs / 1000).toFixed(1)} s after QEMU started (console: ${vm.consoleLog})`,
    );
    const guest = new GuestExec(vm.qga, `vm ${node.name}`);
    this.guests.set(node.name, guest);
    await waitReady(guest, signal);
    await guest.run(['mkdir', '-p', ctx.bpfDir], { signal });
    const mode = bigTcpMode(ctx, node);
    await createNamespaces(
      guest,
      this.objDir,
      lab,
      [node],
      (n) => podDeviceKind(ctx, n),
      signal,
      false,
      () => mode,
    );
    if (node.uplink) await moveUplinkNics(guest, lab, node, signal, mode);
    await moveLinkNics(guest, node, boot.wires, signal, mode);
  }

  /** lab node kill: SIGKILL to the node's QEMU, as a host crash would stop it (no shutdown in the guest). */
  async killNode(ctx: LabContext, node: LabNode): Promise<string> {
    const dir = vmDir(ctx.lab.name, node.name);
    const pid = runningPid(dir);
    if (pid === undefined) return `the VM of node ${node.name} was not running`;
    this.guests.get(node.name)?.close();
    this.guests.delete(node.name);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && runningPid(dir) !== undefined; i++) await sleep(50);
    if (runningPid(dir) !== undefined) throw new LabError('E_LAB_FAILED', `QEMU ${pid} of node ${node.name} survived SIGKILL for 5 s`);
    return `QEMU ${pid} of node ${node.name} killed (SIGKILL)`;
  }

  /** lab node restart: kill the VM if it runs, boot it again on the same wires; the caller wires and deploys it. */
  async restartNode(ctx: LabContext, node: LabNode): Promise<{ rewire: boolean; detail: string }> {
    const dir = vmDir(ctx.lab.name, node.name);
    if (runningPid(dir) !== undefined) await this.killNode(ctx, node);
    const f = join(dir, 'boot.json');
    if (!existsSync(f)) throw new LabError('E_LAB_FAILED', `no ${f}: the lab was brought up before lab node restart existed`);
    const accel = join(dir, 'accel');
    if (existsSync(accel)) this.accel = readFileSync(accel, 'utf8').trim() as Accel;
    const t0 = performance.now();
    await this.bootNode(ctx, node, JSON.parse(readFileSync(f, 'utf8')) as NodeBoot);
    return { rewire: true, detail: `node ${node.name}: VM booted again in ${((performance.now() - t0) / 1000).toFixed(1)} s` };
  }

  async wireNode(ctx: LabContext, node: LabNode): Promise<void> {
    await wireNamespaces(this.root(node.name), (ns) => this.exec(ns), ctx.lab, node, podDeviceKind(ctx, node), this.objDir, ctx.signal);
  }

  /**
   * VMs are stopped (their pid checked against their directory); what a guest holds
   * (namespaces, pins) ends with its VM, which comes later in the reverse journal.
   * Objects on this machine (the lab's iperf3 servers, say) are removed as the local backend does.
   */
  async destroy(entries: JournalEntry[], progress: (m: string) => void): Promise<DestroyResult> {
    const gone: number[] = [];
    const left: string[] = [];
    const vms = entries.filter((e) => e.obj.kind === 'vm');
    if (vms.length) progress(`stopping ${vms.length} VM(s)`);
    for (const e of entries) {
      const o = e.obj;
      if (o.kind === 'vm') (await stopVm(o.dir)) ? gone.push(e.seq) : left.push(`VM ${o.name} (${o.dir})`);
      else if (e.owner.node) gone.push(e.seq);
      else {
        const r = await destroyHostObjects([e], new HostExec(), progress);
        gone.push(...r.gone);
        left.push(...r.left);
      }
    }
    return { gone, left };
  }

  status(entries: JournalEntry[]): NodeStatus[] {
    return entries.flatMap((e) =>
      e.obj.kind === 'vm' && e.owner.node
        ? [{ node: e.owner.node, kind: 'vm', where: e.obj.dir, running: runningPid(e.obj.dir) !== undefined }]
        : [],
    );
  }

  doctor(): Promise<DoctorSection> {
    return qemuDoctor();
  }

  logs(lab: Lab): LogFile[] {
    return lab.nodes
      .map((n) => ({ node: n.name, path: join(vmDir(lab.name, n.name), 'console.log'), name: `console-${n.name}.log` }))
      .filter((l) => existsSync(l.path));
  }

  timing(): Timing {
    return this.accel === 'kvm' ? 'native' : 'emulated';
  }

  async reattach(ctx: LabContext): Promise<void> {
    this.index(ctx.lab);
    for (const node of ctx.lab.nodes) {
      // A node lab node kill stopped has no agent to answer; commands to it fail until it is restarted.
      if (runningPid(vmDir(ctx.lab.name, node.name)) === undefined && existsSync(join(vmDir(ctx.lab.name, node.name), 'boot.json')))
        continue;
      const qga = new Qga(join(vmDir(ctx.lab.name, node.name), 'qga.sock'));
      await qga.open(10_000).catch((e) => {
        throw new LabError('E_LAB_FAILED', `the VM of node ${node.name} does not answer: ${String(e)}`, `lab down ${ctx.lab.name}`);
      });
      this.guests.set(node.name, new GuestExec(qga, `vm ${node.name}`));
      const accel = join(vmDir(ctx.lab.name, node.name), 'accel');
      if (existsSync(accel)) this.accel = readFileSync(accel, 'utf8').trim() as Accel;
    }
  }

  /** Let the process exit: close the agent sockets (the VMs keep running). */
  close(): void {
    for (const g of this.guests.values()) g.close();
  }
}

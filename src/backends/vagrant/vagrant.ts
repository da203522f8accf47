import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../../errors.js';
import { HostExec, runArgv } from '../../exec/exec.js';
import { parseConfig, probeLocal, type KernelFacts } from '../../kernel/facts.js';
import { fetchKernel } from '../../kernels/fetch.js';
import { findKernel, loadCatalogue } from '../../kernels/catalogue.js';
import { releaseVersion } from '../../kernels/cache.js';
import type { LabContext } from '../../lifecycle/context.js';
import { HOST_OWNER, knownLabs, labDir, type JournalEntry } from '../../lifecycle/journal.js';
import { readLabState } from '../../lifecycle/labstate.js';
import type { Lab } from '../../topology/model.js';
import type { DestroyResult, DoctorSection, NodeStatus, Timing } from '../backend.js';
import { freeUdpPort } from '../qemu/nics.js';
import { remoteLabDir } from '../ssh/connection.js';
import { SshBackend } from '../ssh/ssh.js';
import { destroyRemote } from '../ssh/restore.js';
import { buildBox, type BoxResult } from './box.js';
import { VagrantCli } from './cli.js';
import { domainDriver, ensureLibvirt } from './daemons.js';
import { restoreHost, takeSnapshot, type HostSnapshot } from './host-state.js';
import { type VagrantSpec, vagrantSpec, writeProject } from './vagrantfile.js';
import { machineTarget, nodeSsh, writeKnownHosts } from './target.js';

/** Where a lab's Vagrant project lives: the Vagrantfile, lab.json, .vagrant/ and VAGRANT_HOME (never the user's home). */
export const vagrantDir = (lab: string) => join(labDir(lab), 'vagrant');

/**
 * Nodes as Vagrant machines (vagrant-libvirt; VirtualBox accepted, untested): Vagrant
 * creates the VMs from the lab's own box, then the ssh backend takes over each machine
 * over OpenSSH with what `vagrant ssh-config` printed (one ControlMaster per machine),
 * with the box's recorded host key checked. The Vagrant project, libvirt's host changes
 * and the daemons the lab started are journaled before `vagrant up`.
 */
export class VagrantBackend extends SshBackend {
  override readonly kind: string = 'vagrant';
  private box?: BoxResult;
  private kernelFacts?: KernelFacts;
  private vmlinuz?: string;
  /** libvirt's domain type for the machines: `qemu` is TCG (emulated CPUs: throughput ratios are not judged). */
  private driver?: 'kvm' | 'qemu';

  /** The guest kernel's facts from its config (as the qemu backend reads them); the box is built if missing. */
  override async probe(lab: Lab, signal?: AbortSignal): Promise<KernelFacts> {
    if (this.kernelFacts) return this.kernelFacts;
    // The libvirtd a lab starts is journaled as that lab's and stopped by its teardown: a second lab would lose it.
    const other = knownLabs().find((l) => l !== lab.name && readLabState(l)?.lab.backend === 'vagrant');
    if (other)
      throw new LabError(
        'E_REQUIREMENT',
        `vagrant lab '${other}' is up: one vagrant lab at a time (they would share the libvirtd one of them started)`,
        `lab down ${other}`,
      );
    // Where provision copies the objects (a fresh machine holds no prepared ones): the lifecycle reads it after probe.
    this.objDir = `${remoteLabDir(lab.name)}/bpf`;
    for (const [bin, pkg] of [
      ['vagrant', 'vagrant'],
      ['virsh', 'libvirt-clients'],
      ['libvirtd', 'libvirt-daemon-system'],
      ['debootstrap', 'debootstrap'],
    ])
      if ((await runArgv(['sh', '-c', `command -v ${bin}`], { nothrow: true })).code !== 0)
        throw new LabError(
          'E_REQUIREMENT',
          `${bin} is not installed`,
          `apt-get install --no-install-recommends ${pkg} (./lab selftest --long installs the set)`,
        );
    const k = await fetchKernel(findKernel(loadCatalogue(), lab.kernel ?? '6.12'), { signal });
    this.box = await buildBox(k.kernel, k.record, { signal });
    this.vmlinuz = k.kernel.vmlinuz;
    const host = await probeLocal(new HostExec());
    const config = k.kernel.config && existsSync(k.kernel.config) ? parseConfig(readFileSync(k.kernel.config, 'utf8')) : {};
    this.kernelFacts = {
      ...host,
      release: k.kernel.release,
      version: releaseVersion(k.kernel.release) ?? [0, 0],
      config,
      configSource: k.kernel.config,
      btf: config.CONFIG_DEBUG_INFO_BTF === 'y',
      bpffs: true,
    };
    return this.kernelFacts;
  }

  override async provision(ctx: LabContext): Promise<void> {
    const { lab, journal, signal } = ctx;
    const exec = new HostExec();
    const box = this.box!;
    const dir = vagrantDir(lab.name);
    const firewall = await takeSnapshot(exec, signal);
    await ensureLibvirt((d) => journal.record(HOST_OWNER, [{ kind: 'process', pid: d.pid, startTime: d.startTime, argv: d.argv }]), {
      log: ctx.progress,
      signal,
    });
    const before: HostSnapshot = { ...(await takeSnapshot(exec, signal)), ipForward: firewall.ipForward, chains: firewall.chains };
    const driver = domainDriver((await runArgv(['virsh', '-c', 'qemu:///system', 'capabilities'], { signal })).stdout);
    this.driver = driver;
    const ports: number[] = [];
    for (let i = 0; i < lab.links.length * 2; i++) ports.push(await freeUdpPort());
    const spec = vagrantSpec(
      lab,
      { name: box.record.name, version: box.record.version, url: `file://${join(box.dir, box.record.files.metadata)}` },
      { vmlinuz: this.vmlinuz!, initrd: join(box.dir, box.record.files.initrd), cmdline: box.record.cmdline },
      driver,
      ports,
    );
    journal.record({ backend: this.kind }, [
      { kind: 'vagrant', dir, home: join(dir, 'home'), provider: 'libvirt', machines: lab.nodes.map((n) => n.name), before },
    ]);
    writeProject(dir, spec);
    const cli = this.cli(dir);
    ctx.progress(`vagrant up: ${lab.nodes.length} machine(s), box ${box.record.name} ${box.record.version}, libvirt driver ${driver}`);
    await cli.up([], signal);
    await this.sshSettings(lab, writeKnownHosts(dir, box.record.hostKey), signal);
    await super.probe(lab, signal);
    // systemd mounts the guest's /run noexec; the lab's tools run from /run/datapath-lab (a throwaway VM: no journal entry).
    for (const node of lab.nodes) await this.root(node.name).run(['mount', '-o', 'remount,exec', '/run'], { signal });
    await super.provision(ctx);
  }

  /** Each node's ssh settings from what `vagrant ssh-config` prints now (the lab's VAGRANT_HOME and .vagrant). */
  private async sshSettings(lab: Lab, knownHosts: string, signal?: AbortSignal): Promise<void> {
    const cli = this.cli(vagrantDir(lab.name));
    for (const node of lab.nodes) {
      const c = await cli.sshConfig(node.name, signal);
      node.ssh = nodeSsh(lab, node.name, machineTarget(lab.name, node.name, c, knownHosts));
    }
  }

  /**
   * `lab check` from another process: the machines' ssh settings again from `vagrant ssh-config`
   * (lab.json of the lab state was written before `vagrant up` and holds none), the libvirt driver
   * from the Vagrant project's lab.json, then the ssh backend reconnects.
   */
  override async reattach(ctx: LabContext): Promise<void> {
    const dir = vagrantDir(ctx.lab.name);
    if (!existsSync(join(dir, 'lab.json')))
      throw new LabError('E_LAB_FAILED', `lab ${ctx.lab.name} has no Vagrant project in ${dir}`, `lab down ${ctx.lab.name}`);
    this.driver = (JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8')) as VagrantSpec).libvirt.driver;
    await this.sshSettings(ctx.lab, join(dir, 'known_hosts'), ctx.signal);
    await super.reattach(ctx);
  }

  private cli(dir: string, progress?: (m: string) => void): VagrantCli {
    return new VagrantCli({ dir, home: join(dir, 'home'), provider: 'libvirt' }, (l) => {
      if (progress && l.type === 'ui' && l.data[0] === 'info') progress(`vagrant: ${l.data.at(-1)!.split('\n')[0]}`);
    });
  }

  /** Entries on the machines go over ssh (while the machines run); the Vagrant project: destroy, then the host put back. */
  override async destroy(entries: JournalEntry[], progress: (m: string) => void): Promise<DestroyResult> {
    const gone: number[] = [];
    const left: string[] = [];
    const remote = entries.filter((e) => e.obj.kind === 'remote');
    if (remote.length) {
      const r = await destroyRemote(remote, progress);
      gone.push(...r.gone);
      left.push(...r.left);
    }
    for (const e of entries) {
      const o = e.obj;
      if (o.kind !== 'vagrant') continue;
      progress(`vagrant destroy -f (${o.machines.join(', ')})`);
      try {
        if (existsSync(join(o.dir, 'Vagrantfile'))) await this.cli(o.dir, progress).destroy([]);
      } catch (err) {
        left.push(`vagrant machines ${o.machines.join(', ')} in ${o.dir}: ${(err as Error).message}`);
      }
      const still = await restoreHost(new HostExec(), o.before);
      left.push(...still);
      if (!still.length) {
        rmSync(o.dir, { recursive: true, force: true });
        gone.push(e.seq);
      }
    }
    return { gone, left };
  }

  override timing(): Timing {
    return this.driver === 'qemu' ? 'emulated' : super.timing();
  }

  override status(entries: JournalEntry[]): NodeStatus[] {
    return entries.flatMap((e) =>
      e.obj.kind === 'vagrant'
        ? e.obj.machines.map((m) => ({ node: m, kind: 'vagrant', where: e.obj.kind === 'vagrant' ? e.obj.dir : '', running: true }))
        : [],
    );
  }

  override async doctor(): Promise<DoctorSection> {
    const v = await runArgv(['vagrant', '--version'], { nothrow: true });
    return {
      backend: this.kind,
      facts: {
        vagrant:
          v.stdout.trim() || 'not installed (apt-get install --no-install-recommends vagrant vagrant-libvirt libvirt-daemon-system-sysv)',
        boxes: 'lab kernels box NAME builds one (debootstrap + a catalogue kernel)',
      },
    };
  }
}

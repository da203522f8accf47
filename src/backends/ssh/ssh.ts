import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { LabError } from '../../errors.js';
import { runArgv, type Exec } from '../../exec/exec.js';
import type { KernelFacts } from '../../kernel/facts.js';
import { knownLabs, type JournalEntry } from '../../lifecycle/journal.js';
import type { LabContext } from '../../lifecycle/context.js';
import type { RemoteItem, RemoteTarget } from '../../lifecycle/remote.js';
import { podDeviceKind } from '../../datapath/devices/devices.js';
import { bigTcpMode } from '../../datapath/bigtcp/bigtcp.js';
import type { Lab, LabNode } from '../../topology/model.js';
import type { Backend, DestroyResult, DoctorSection, NodeStatus, Timing } from '../backend.js';
import { createNamespaces, namespacesOf, wireNamespaces } from '../namespaces.js';
import { nodeLinks } from '../wiring.js';
import { targetName } from './args.js';
import { closeMaster, openMaster, remoteLabDir, remoteTarget } from './connection.js';
import { SshExec } from './exec.js';
import { probeTarget, type TargetFacts } from './probe.js';
import { planChannels, planProfile, settingArgv, type Change, type ProfilePlan } from './profile.js';
import { destroyRemote } from './restore.js';
import { copyObjects, objectsDigest, PREPARED_OBJ_DIR } from './copy.js';

/**
 * Bare-metal hosts over SSH: each node is a host reached with the OpenSSH client over
 * one ControlMaster connection; its pods and peer are namespaces on that host named like
 * the local backend's, built by the same code. A link between two nodes is each host's own
 * NIC, moved into the node's namespace while the lab is up. Nothing of the host's own
 * changes unless the topology says allowHostChanges, and each change is journaled with
 * its old value before it is made.
 */
export class SshBackend implements Backend {
  readonly kind: string = 'ssh';
  objDir = '/run/datapath-lab/bpf';
  private readonly execs = new Map<string, SshExec>();
  private readonly nodeOfNetns = new Map<string, string>();
  readonly targets = new Map<string, TargetFacts>();
  /** The NIC profile of each node as planned at provision (for reports). */
  readonly plans = new Map<string, ProfilePlan>();
  private ctx?: LabContext;
  private emulated = false;
  /** Tools already on a target this run: node/local path → path there. */
  private readonly tools = new Map<string, string>();

  root(node: string): Exec {
    const e = this.execs.get(node);
    if (!e) throw new LabError('E_INTERNAL', `no connection to the target of node ${node}`);
    return e;
  }

  exec(netns: string): Exec {
    const node = this.nodeOfNetns.get(netns);
    if (!node) throw new LabError('E_INTERNAL', `no target holds namespace ${netns}`);
    return (this.root(node) as SshExec).inNetns(netns);
  }

  register(netns: string, node: string): void {
    this.nodeOfNetns.set(netns, node);
    const n = this.ctx?.lab.nodes.find((x) => x.name === node);
    if (this.ctx && n) this.record(this.ctx, n, [{ what: 'netns', names: [netns] }]);
  }

  private index(lab: Lab) {
    this.objDir = `${remoteLabDir(lab.name)}/bpf`;
    for (const n of lab.nodes) for (const ns of namespacesOf(lab, [n])) this.nodeOfNetns.set(ns, n.name);
  }

  /** Targets prepared with this build's objects use them where they are; otherwise provision copies them. */
  private chooseObjDir(lab: Lab): void {
    const digest = objectsDigest();
    const prepared = lab.nodes.every((n) => this.targets.get(n.name)?.objDigest === digest);
    this.objDir = prepared ? PREPARED_OBJ_DIR : `${remoteLabDir(lab.name)}/bpf`;
  }

  private target(lab: Lab, node: LabNode): RemoteTarget {
    return remoteTarget(lab.name, node, (this.execs.get(node.name) as SshExec | undefined)?.sudo);
  }

  private record(ctx: LabContext, node: LabNode, items: RemoteItem[]): JournalEntry[] {
    const target = this.target(ctx.lab, node);
    return ctx.journal.record(
      { backend: this.kind, node: node.name },
      items.map((item) => ({ kind: 'remote' as const, target, item })),
    );
  }

  /** Connect to every target and read it; refuses (exit 2, naming the target) before anything changes anywhere. */
  async probe(lab: Lab, signal?: AbortSignal): Promise<KernelFacts> {
    this.index(lab);
    const opened: RemoteTarget[] = [];
    // A lab that is up already has its NICs in its namespaces (lab check probes it again).
    const up = knownLabs().includes(lab.name);
    const one = async (node: LabNode) => {
      const t = remoteTarget(lab.name, node);
      const facts = await probeTarget(new SshExec(t, false), signal);
      if (!facts.kernel.root)
        throw new LabError(
          'E_REQUIREMENT',
          `${targetName(t)}: the login is uid ${facts.uid} and sudo -n does not work: the lab needs root there`,
          'log in as root (ssh.user: root) or give the user passwordless sudo',
        );
      for (const tool of ['ip', 'tc', 'bpftool', 'nsenter'] as const)
        if (!facts.kernel.tools[tool].path)
          throw new LabError('E_REQUIREMENT', `${targetName(t)}: ${tool} is not installed`, 'install iproute2, bpftool, util-linux there');
      if (!facts.kernel.bpffs)
        throw new LabError('E_REQUIREMENT', `${targetName(t)}: bpffs is not mounted at /sys/fs/bpf`, 'mount -t bpf bpf /sys/fs/bpf');
      const nic = node.ssh?.nic;
      if (nic && !up && !facts.nics.some((x) => x.name === nic))
        throw new LabError(
          'E_REQUIREMENT',
          `${targetName(t)}: no physical NIC named ${nic} (it has: ${facts.nics.map((x) => x.name).join(', ') || 'none'})`,
          `fix nodes[].ssh.nic of node ${node.name}`,
        );
      this.targets.set(node.name, facts);
      this.execs.set(node.name, new SshExec({ ...t, ...(facts.sudo ? { sudo: true } : {}) }, facts.sudo));
      if (facts.emulated) this.emulated = true;
    };
    // Every target is connected to, then probed, side by side, before any is touched; the first refusal is reported.
    const connected = await Promise.allSettled(
      lab.nodes.map(async (node) => {
        const t = remoteTarget(lab.name, node);
        if (await openMaster(t, signal)) opened.push(t);
      }),
    );
    const results = connected.some((r) => r.status === 'rejected') ? connected : await Promise.allSettled(lab.nodes.map(one));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      for (const t of opened) await closeMaster(t);
      throw failed.reason;
    }
    this.chooseObjDir(lab);
    // The first target's facts stand for the lab (root, tools); each node's datapath is decided by its own (nodeFacts).
    return this.targets.get(lab.nodes[0].name)!.kernel;
  }

  async provision(ctx: LabContext): Promise<void> {
    this.ctx = ctx;
    const { lab, signal } = ctx;
    ctx.progress(`preparing ${lab.nodes.length} target(s) over ssh`);
    await Promise.all(
      lab.nodes.map(async (node) => {
        const root = this.root(node.name);
        this.record(ctx, node, [{ what: 'connection' }, { what: 'dir', path: remoteLabDir(lab.name) }, { what: 'dir', path: ctx.bpfDir }]);
        if (this.objDir !== PREPARED_OBJ_DIR) await copyObjects(root, this.objDir, signal);
        await root.run(['mkdir', '-p', ctx.bpfDir], { signal });
        this.record(ctx, node, [{ what: 'netns', names: namespacesOf(lab, [node]) }]);
        const mode = bigTcpMode(ctx, node);
        await createNamespaces(
          root,
          this.objDir,
          lab,
          [node],
          (n) => podDeviceKind(ctx, n),
          signal,
          true,
          () => mode,
        );
        const link = nodeLinks(lab, node)[0];
        const nic = node.ssh?.nic;
        if (!link || !nic) return;
        const facts = this.targets.get(node.name)!.nics.find((x) => x.name === nic)!;
        const base = node.ssh?.profile
          ? planProfile(node.ssh.profile, facts, this.targets.get(node.name)!.cpus, mode === 'ipv4+ipv6')
          : bigTcpPlan(facts, mode);
        const ch = planChannels(facts, node.ssh?.channels);
        const plan = {
          ...base,
          changes: [...base.changes, ...ch.changes],
          skips: [...base.skips, ...ch.skips],
          kept: [...base.kept, ...ch.kept],
        };
        this.plans.set(node.name, plan);
        for (const s of plan.skips) ctx.progress(`node ${node.name}: ${nic}: skipped ${s.what}: ${s.reason}`);
        await this.apply(ctx, node, plan.changes);
        const addrs = await nicAddrs(root, nic, signal);
        this.record(ctx, node, [{ what: 'nic', dev: nic, netns: node.netns, name: link.dev, mac: facts.address, addrs, up: facts.up }]);
        await root.run(['ip', 'link', 'set', 'dev', nic, 'netns', node.netns, 'name', link.dev], { signal });
      }),
    );
  }

  /** Each change journaled with its old value, then made; a change the kernel refuses fails the lab (teardown puts back the rest). */
  private async apply(ctx: LabContext, node: LabNode, changes: Change[]): Promise<void> {
    if (!changes.length) return;
    ctx.progress(`node ${node.name}: changing ${changes.map((c) => `${c.key} ${c.old} -> ${c.value}`).join(', ')}`);
    this.record(
      ctx,
      node,
      changes.map((c) => ({ what: 'setting' as const, dev: c.dev, tool: c.tool, key: c.key, old: c.old })),
    );
    for (const c of changes) await this.root(node.name).run(settingArgv(c.tool, c.dev, c.key, c.value), { signal: ctx.signal });
  }

  async wireNode(ctx: LabContext, node: LabNode): Promise<void> {
    await wireNamespaces(this.root(node.name), (ns) => this.exec(ns), ctx.lab, node, podDeviceKind(ctx, node), this.objDir, ctx.signal);
    await this.podMtu(ctx, node);
  }

  /**
   * Pods get the MTU of their node's link NIC when it is larger than theirs (the profile's 8264),
   * on both ends of their device pair, so segments that fill whole pages reach them as they reach
   * the host (routes carry no MTU of their own: the devices' holds).
   */
  private async podMtu(ctx: LabContext, node: LabNode): Promise<void> {
    const mtu = this.linkMtu(ctx, node);
    if (!mtu || mtu <= 1500 || !node.pods.length) return;
    ctx.progress(`node ${node.name}: pods at the link's MTU ${mtu}`);
    const script =
      'm=$1 ns=$2; shift 2; while [ $# -gt 0 ]; do ip -n "$ns" link set dev "$1" mtu "$m" && ip -n "$3" link set dev "$2" mtu "$m" || exit 1; shift 3; done';
    const args = node.pods.flatMap((p) => [p.hostDev, p.dev, p.netns]);
    await this.root(node.name).run(['sh', '-c', script, 'sh', String(mtu), node.netns, ...args], { signal: ctx.signal });
  }

  /** The MTU of a node's link NIC once the profile has set it (undefined: the node has no linked NIC). */
  private linkMtu(ctx: LabContext, node: LabNode): number | undefined {
    const nic = node.ssh?.nic && this.targets.get(node.name)?.nics.find((x) => x.name === node.ssh!.nic);
    if (!nic || !nodeLinks(ctx.lab, node).length) return undefined;
    const plan = this.plans.get(node.name);
    const changed = plan?.changes.find((c) => c.key === 'mtu');
    return changed ? Number(changed.value) : nic.mtu;
  }

  nodeFacts(node: string): KernelFacts | undefined {
    return this.targets.get(node)?.kernel;
  }

  appCore(node: string): number | undefined {
    const plan = this.plans.get(node);
    if (plan) return plan.appCore;
    // Reattached (lab check): the profile's rule again, from the target's CPUs (profile.ts: the last core).
    const n = this.ctx?.lab.nodes.find((x) => x.name === node);
    const cpus = this.targets.get(node)?.cpus ?? 1;
    return n?.ssh?.profile && cpus >= 2 ? cpus - 1 : undefined;
  }

  trackProcess(ctx: LabContext, node: string, pid: number, comm: string): () => void {
    const n = ctx.lab.nodes.find((x) => x.name === node);
    if (!n) return () => {};
    const seqs = this.record(ctx, n, [{ what: 'process', pid, comm }]).map((e) => e.seq);
    return () => ctx.journal.gone(seqs);
  }

  /**
   * A static tool copied to the lab's directory on the target once: skipped when the copy there
   * has the same sha256 (a lab checked again), verified after the copy. The directory is journaled
   * (lab down removes it).
   */
  async nodeTool(ctx: LabContext, node: LabNode, localPath: string): Promise<string> {
    const key = `${node.name}/${localPath}`;
    const done = this.tools.get(key);
    if (done) return done;
    const bytes = readFileSync(localPath);
    const sum = createHash('sha256').update(bytes).digest('hex');
    const dir = `${remoteLabDir(ctx.lab.name)}/tools`;
    const path = `${dir}/${basename(localPath)}`;
    const root = this.root(node.name);
    const have = async () =>
      (await root.run(['sh', '-c', 'sha256sum "$1" 2>/dev/null', 'sh', path], { nothrow: true, signal: ctx.signal })).stdout;
    if (!(await have()).startsWith(sum)) {
      this.record(ctx, node, [{ what: 'dir', path: dir }]);
      ctx.progress(`node ${node.name}: copying ${basename(localPath)} (${(bytes.length / 1e6).toFixed(1)} MB) to ${path}`);
      const put = 'mkdir -p "$1" && base64 -d > "$2.tmp" && chmod 755 "$2.tmp" && mv "$2.tmp" "$2"';
      await root.run(['sh', '-c', put, 'sh', dir, path], { input: bytes.toString('base64'), signal: ctx.signal });
      if (!(await have()).startsWith(sum))
        throw new LabError(
          'E_LAB_FAILED',
          `${targetName(this.target(ctx.lab, node))}: ${path} does not match ${localPath} after the copy (sha256 ${sum})`,
        );
    }
    this.tools.set(key, path);
    return path;
  }

  destroy(entries: JournalEntry[], progress: (m: string) => void): Promise<DestroyResult> {
    return destroyRemote(entries, progress);
  }

  status(entries: JournalEntry[]): NodeStatus[] {
    return entries.flatMap((e) =>
      e.obj.kind === 'remote' && e.obj.item.what === 'connection'
        ? [{ node: e.obj.target.node, kind: 'ssh', where: targetName(e.obj.target), running: existsSync(e.obj.target.control) }]
        : [],
    );
  }

  async doctor(): Promise<DoctorSection> {
    const v = await runArgv(['ssh', '-V'], { nothrow: true });
    return {
      backend: this.kind,
      facts: {
        client: (v.stderr || v.stdout).trim() || 'ssh not installed (apt-get install openssh-client)',
        targets: 'lab doctor --target [user@]HOST[:PORT] probes one',
      },
    };
  }

  logs(): [] {
    return [];
  }

  timing(): Timing {
    return this.emulated ? 'emulated' : 'native';
  }

  async reattach(ctx: LabContext): Promise<void> {
    this.ctx = ctx;
    this.index(ctx.lab);
    for (const node of ctx.lab.nodes) {
      const t = remoteTarget(ctx.lab.name, node);
      await openMaster(t, ctx.signal);
      const facts = await probeTarget(new SshExec(t, false), ctx.signal);
      this.targets.set(node.name, facts);
      if (facts.emulated) this.emulated = true;
      this.execs.set(node.name, new SshExec({ ...t, ...(facts.sudo ? { sudo: true } : {}) }, facts.sudo));
    }
    this.chooseObjDir(ctx.lab);
  }
}

/** Without a profile, a linked NIC still gets the lab's BIG TCP sizes (TSO probing), as a journaled host change. */
function bigTcpPlan(nic: TargetFacts['nics'][number], mode: ReturnType<typeof bigTcpMode>): ProfilePlan {
  if (mode === 'off') return { changes: [], skips: [], kept: [] };
  const full = planProfile('mlx5-back-to-back', nic, 1, mode === 'ipv4+ipv6');
  return { changes: full.changes.filter((c) => /_max_size$/.test(c.key)), skips: [], kept: [] };
}

/** The NIC's own addresses (lost when it changes namespace), put back with it. */
async function nicAddrs(root: Exec, nic: string, signal?: AbortSignal): Promise<string[]> {
  const r = await root.run(['ip', '-j', 'addr', 'show', 'dev', nic], { signal });
  const parsed = JSON.parse(r.stdout || '[]') as { addr_info?: { local: string; prefixlen: number; scope?: string }[] }[];
  return (parsed[0]?.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`);
}

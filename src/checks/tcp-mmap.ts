import { existsSync } from 'node:fs';
import type { Timing } from '../backends/backend.js';
import { cpuSecondsPerGb, tcpMmapPath, type TcpMmapResult } from '../backends/ssh/tcp-mmap.js';
import { bigTcp } from '../datapath/bigtcp/bigtcp.js';
import { podDevice } from '../datapath/devices/devices.js';
import { decisionOf } from '../datapath/feature.js';
import { measurer } from '../measure/measurer.js';
import { pageMss, type TcpMmapFlow } from '../measure/tcp-mmap.js';
import type { LabNode, NodeLink } from '../topology/model.js';
import { couldNotEstablish, skip, type Check } from './check.js';

/**
 * The seed's claim is "the same" for pods as for the hosts. 0.9: a single TCP flow's goodput
 * between two runs of one path varies by several percent on real hosts (where the flow's RX queue
 * lands, softirq and application on the cores the profile chose), and netkit-throughput judges
 * the same claim with the same bound; a pod path 10% slower is a finding, not noise.
 */
export const TCP_MMAP_MIN_RATIO = 0.9;
/**
 * Percentage points of mmap'ed bytes pods may lose against the hosts: tcp_mmap reads by copy
 * the tail of each chunk that does not fill a page (recv_skip_hint), and how much that is
 * depends on where reads fall against segments, which varies from run to run.
 */
export const TCP_MMAP_MMAP_SLACK = 5;

/** Gbit/s, CPU s per GB and segment size of one path (rounded for the report). */
export interface TcpMmapFigures {
  gbps: number;
  cpuSecPerGb?: number;
  mmapPct: number;
  rcvMss?: number;
  mb: number;
}

export const figures = (r: TcpMmapResult): TcpMmapFigures => ({
  gbps: Math.round(r.gbps * 1000) / 1000,
  ...(r.usecPerMb !== undefined ? { cpuSecPerGb: Math.round(cpuSecondsPerGb(r.usecPerMb) * 1000) / 1000 } : {}),
  mmapPct: Math.round(r.mmapPct * 10) / 10,
  ...(r.rcvMss !== undefined ? { rcvMss: r.rcvMss } : {}),
  mb: Math.round(r.mb),
});

/**
 * The verdict (pure). No host report, or a host run that moved nothing: no baseline (`error`).
 * Pods that moved nothing, got smaller segments (rcv_mss: their devices lack the link's MTU) or
 * lost zerocopy receive against the hosts: `fail`, on any timing (the kernel showed it). The
 * throughput ratio is judged on native CPUs only: under TCG both paths are bound by the
 * emulator, so `skip` with the figures.
 */
export function judgeTcpMmap(
  host: TcpMmapFigures | undefined,
  pod: TcpMmapFigures | undefined,
  timing: Timing,
): { status: 'pass' | 'fail' | 'skip' | 'error'; reason: string } {
  if (!host || !(host.gbps > 0))
    return {
      status: 'error',
      reason: couldNotEstablish(`host to host tcp_mmap ${host ? 'moved nothing' : 'printed no report'}: no baseline for the pods`),
    };
  const cpu = (f: TcpMmapFigures) => (f.cpuSecPerGb === undefined ? '' : `, ${f.cpuSecPerGb} CPU s/GB`);
  const line = (f: TcpMmapFigures) => `${f.gbps} Gbit/s${cpu(f)}, rcv_mss ${f.rcvMss ?? '?'}, ${f.mmapPct}% mmap'ed`;
  if (!pod || !(pod.gbps > 0)) return { status: 'fail', reason: `pod to pod moved nothing while host to host did (${line(host)})` };
  const ratio = Math.round((pod.gbps / host.gbps) * 100) / 100;
  const summary = `pod ${line(pod)}; host ${line(host)}; pod/host ${ratio}`;
  if (host.rcvMss !== undefined && pod.rcvMss !== undefined && pod.rcvMss < host.rcvMss)
    return { status: 'fail', reason: `pods receive smaller segments than the hosts (the link's MTU is not theirs): ${summary}` };
  if (pod.mmapPct < host.mmapPct - TCP_MMAP_MMAP_SLACK)
    return { status: 'fail', reason: `pods lose zerocopy receive (mmap) the hosts have: ${summary}` };
  // tcp_mmap.c: mmap needs page-sized payload in page-aligned frags, which takes a NIC that splits headers.
  const noMmap = host.mmapPct < 1 ? " (nothing mmap'ed on the hosts either: the NIC does not split headers into whole pages)" : '';
  if (timing === 'emulated')
    return {
      status: 'skip',
      reason: `needs native CPUs to judge the ratio: the targets are QEMU TCG guests, where both paths run as fast as the emulator does; segments and mmap share match${noMmap}; measured ${summary}`,
    };
  return ratio >= TCP_MMAP_MIN_RATIO
    ? { status: 'pass', reason: `${summary}${noMmap}` }
    : { status: 'fail', reason: `${summary}: pods below ${TCP_MMAP_MIN_RATIO}x the hosts` };
}

/** A link between two nodes that both have pods (sender a, receiver b). */
const podLink = (nodes: readonly LabNode[], links: readonly NodeLink[]) =>
  links.find((l) => [l.a, l.b].every((n) => nodes.find((x) => x.name === n)?.pods.length));

export const tcpMmap: Check = {
  id: 'tcp-mmap',
  title: 'tcp_mmap: pod to pod vs host to host over the back-to-back link',
  proves: `tcp_mmap (mmap receive, pinned with taskset to the profile's application core) reaches from pod to pod at least ${TCP_MMAP_MIN_RATIO}x its host-to-host Gbit/s over the same NICs, with segments as large and as much of it mmap'ed (the ratio judged on native CPUs only)`,
  requires: () => ({ ok: true }),
  applies: (lab) =>
    lab.backend !== 'ssh'
      ? { ok: false, reason: `tcp_mmap is copied to ssh targets (backend ${lab.backend})` }
      : podLink(lab.nodes, lab.links)
        ? { ok: true }
        : { ok: false, reason: 'needs a link between two nodes that both have pods' },
  async run(ctx, spec) {
    const { lab, backend } = ctx;
    const link = podLink(lab.nodes, lab.links);
    if (!link) return skip('a link between two nodes that both have pods');
    if (!backend.nodeTool) return skip(`a backend that copies tools to its nodes (${backend.kind} does not)`);
    const local = tcpMmapPath();
    if (!existsSync(local)) return skip(`tcp_mmap at ${local} (lab targets tcp-mmap builds it)`);
    const [a, b] = [link.a, link.b].map((n) => lab.nodes.find((x) => x.name === n)!);
    const from = a.pods.find((p) => !spec.pod || p.name === spec.pod || `${a.name}/${p.name}` === spec.pod) ?? a.pods[0];
    const to = b.pods[0];
    const family: 4 | 6 = link.b4 && to.ipv4 ? 4 : 6;
    const hostAddr = family === 4 ? link.b4?.addr : link.b6?.addr;
    const podAddr = family === 4 ? to.ipv4 : to.ipv6;
    if (!hostAddr || !podAddr) return skip(`IPv${family} addresses on the link and the receiving pod`);
    const m = measurer(ctx);
    const flow = m.tcpMmapFlow;
    if (!flow) return skip(`a measurer that runs tcp_mmap (the ${m.kind}'s has none)`);
    const mtuOf = async (netns: string, dev: string) => (await m.readLinks(backend.exec(netns), dev, ctx.signal))[0]?.mtu;
    const mtu = { nic: await mtuOf(b.netns, link.devB), pod: await mtuOf(to.netns, to.dev) };
    const mss = mtu.nic ? pageMss(mtu.nic, family) : undefined;
    const bins = { from: await backend.nodeTool(ctx, a, local), to: await backend.nodeTool(ctx, b, local) };
    const cores = { from: backend.appCore?.(a.name), to: backend.appCore?.(b.name) };
    const seconds = spec.seconds ?? 10;
    const run = async (what: 'host' | 'pod', fromNs: string, toNs: string, addr: string): Promise<TcpMmapFlow> => {
      ctx.progress(`tcp-mmap: ${seconds} s ${what} to ${what} (${a.name} -> ${b.name})`);
      return flow({
        from: backend.exec(fromNs),
        to: backend.exec(toNs),
        fromBin: bins.from,
        toBin: bins.to,
        addr,
        family,
        seconds,
        fromCore: cores.from,
        toCore: cores.to,
        mss,
        track: (end, pid) => backend.trackProcess?.(ctx, end === 'from' ? a.name : b.name, pid, 'tcp_mmap') ?? (() => {}),
        signal: ctx.signal,
      });
    };
    const host = await run('host', a.netns, b.netns, hostAddr);
    const pod = await run('pod', from.netns, to.netns, podAddr);
    const hostF = host.result && figures(host.result);
    const podF = pod.result && figures(pod.result);
    const datapath = Object.fromEntries(
      [a, b].map((n) => {
        const dev = decisionOf(ctx.decisions, podDevice, n.name);
        const big = decisionOf(ctx.decisions, bigTcp, n.name);
        const hr = decisionOf(ctx.decisions, 'host-routing', n.name);
        return [
          n.name,
          { podDevice: dev?.mode, hostRouting: hr?.mode, bigTcp: big?.mode, why: [dev, hr, big].flatMap((d) => (d ? [d.detail] : [])) },
        ];
      }),
    );
    const timing = backend.timing();
    const verdict = judgeTcpMmap(hostF, podF, timing);
    const fellBack = Object.entries(datapath)
      .filter(([, d]) => d.podDevice !== 'netkit' || d.hostRouting !== 'bpf' || d.bigTcp === 'off')
      .map(([n, d]) => `node ${n}: pods on ${d.podDevice}, host routing ${d.hostRouting}, BIG TCP ${d.bigTcp}`);
    return {
      ...verdict,
      reason: fellBack.length ? `${verdict.reason} (fell back: ${fellBack.join('; ')})` : verdict.reason,
      metrics: {
        host: hostF ?? null,
        pod: podF ?? null,
        ratio: hostF && podF && hostF.gbps > 0 ? Math.round((podF.gbps / hostF.gbps) * 100) / 100 : null,
        mtu,
        mss: mss ?? null,
        family,
        cores,
        seconds,
        datapath,
        timing,
        judged: timing === 'native',
      },
      threshold: `pod/host Gbit/s >= ${TCP_MMAP_MIN_RATIO} (native CPUs only); pod rcv_mss >= host's; pod mmap'ed >= host's - ${TCP_MMAP_MMAP_SLACK} points`,
      evidence: [...host.evidence.map((l) => `[host] ${l}`), ...pod.evidence.map((l) => `[pod] ${l}`)],
    };
  },
};

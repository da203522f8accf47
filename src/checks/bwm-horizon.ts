import { measurer } from '../measure/measurer.js';
import { all, needTool } from '../kernel/facts.js';
import { bandwidthManager, bwmMode, bwmPins } from '../datapath/bwm/bwm.js';
import { HORIZON_NS } from '../datapath/bwm/maps.js';
import { showBps } from '../datapath/bwm/quantity.js';
import { RATE_TOLERANCE } from './bwm-rate.js';
import { bwmApplies, bwmSetup } from './bwm-rate.js';
import { couldNotEstablish, skip, type Check } from './check.js';

/**
 * The limit the check sets: at 100 kbit/s one 1442-byte datagram is 115 ms of departure
 * time, so about 17 queued datagrams reach the 2 s horizon, far fewer than a UDP socket's
 * default send buffer (net.core.wmem_default, 208 KiB) lets the sender queue.
 */
export const HORIZON_LIMIT_BPS = 100e3;
/** Offered load: ten times the limit. */
export const HORIZON_OFFERED_BPS = 1e6;
/** UDP payload per datagram; on the wire 42 bytes more (Ethernet 14, IPv4 20, UDP 8). */
export const DATAGRAM = 1400;
const WIRE = DATAGRAM + 42;

/** What the horizon check measured. */
export interface HorizonRun {
  limitBps: number;
  sentBps: number;
  receivedBps: number;
  /** Packets edt_uplink dropped beyond the horizon during the flow. */
  dropHorizon: number;
  stamped: number;
}

/** Pass: BPF dropped and counted packets beyond the horizon and the receiver got no more than the limit. */
export function judgeHorizon(r: HorizonRun): { status: 'pass' | 'fail' | 'error'; reason: string } {
  const payloadLimit = (r.limitBps * DATAGRAM) / WIRE;
  if (!(r.sentBps >= 2 * r.limitBps))
    return {
      status: 'error',
      reason: couldNotEstablish(
        `the pod sent only ${showBps(r.sentBps)}, not twice its ${showBps(r.limitBps)} limit: no queue reaches the horizon`,
      ),
    };
  const problems: string[] = [];
  if (!(r.dropHorizon > 0))
    problems.push(`no packet dropped at the horizon although the pod offered ${showBps(r.sentBps)} against ${showBps(r.limitBps)}`);
  if (r.receivedBps > (1 + RATE_TOLERANCE) * payloadLimit)
    problems.push(`the receiver got ${showBps(r.receivedBps)}, above the limit's ${showBps(payloadLimit)} of payload`);
  if (!(r.stamped > 0)) problems.push('edt_uplink stamped no packet of the pod');
  const summary = `${r.dropHorizon} packets dropped in BPF beyond the ${Number(HORIZON_NS) / 1e9} s horizon while the pod offered ${showBps(r.sentBps)} against ${showBps(r.limitBps)}; the receiver got ${showBps(r.receivedBps)}`;
  return problems.length ? { status: 'fail', reason: problems.join('; ') } : { status: 'pass', reason: summary };
}

export const bwmHorizon: Check = {
  id: 'bwm-horizon',
  title: 'Bandwidth Manager: what lies beyond the 2 s horizon is dropped in BPF and counted',
  proves: `a pod limited to ${showBps(HORIZON_LIMIT_BPS)} offering ${showBps(HORIZON_OFFERED_BPS)} of UDP (no congestion control to slow it) is held to its limit, the packets whose departure would lie 2 s or more ahead dropped by edt_uplink and counted`,
  requires: ({ facts }) => all(needTool(facts, 'iperf3'), bandwidthManager.requires(facts)),
  applies: bwmApplies,
  async run(ctx, spec) {
    const { node, limited } = bwmSetup(ctx.lab)!;
    if (bwmMode(ctx, node) !== 'edt') return skip(`the bandwidth manager is off on ${node.name}`);
    const peer = ctx.lab.peers.find((p) => p.node === node.name)!;
    const seconds = spec.seconds ?? 3;
    const root = ctx.backend.root(node.name);
    const counters = bwmPins(ctx, node).counters;
    ctx.progress(
      `bwm-horizon: ${seconds} s of UDP at ${showBps(HORIZON_OFFERED_BPS)} from ${limited.name} limited to ${showBps(HORIZON_LIMIT_BPS)}`,
    );
    const { run, evidence } = await measurer(ctx).withShaper(ctx, node, 'edt', { [limited.name]: HORIZON_LIMIT_BPS }, async () => {
      const before = await measurer(ctx).readEdtCounters(root, counters, ctx.signal);
      const f = await measurer(ctx).udpFlow({
        from: ctx.backend.exec(limited.netns),
        to: ctx.backend.exec(peer.netns),
        addr: node.uplink!.peer4!.addr,
        seconds,
        bps: HORIZON_OFFERED_BPS,
        len: DATAGRAM,
        journal: ctx.journal,
        signal: ctx.signal,
      });
      const after = await measurer(ctx).readEdtCounters(root, counters, ctx.signal);
      const run: HorizonRun = {
        limitBps: HORIZON_LIMIT_BPS,
        sentBps: f.sentBps,
        receivedBps: f.receivedBps,
        dropHorizon: after.dropHorizon - before.dropHorizon,
        stamped: after.stamped - before.stamped,
      };
      return {
        run,
        evidence: [...f.evidence, `tc -s qdisc show dev ${node.uplink!.nodeDev}:\n${await measurer(ctx).uplinkQdiscStats(ctx, node)}`],
      };
    });
    const threshold = `dropped at the horizon > 0, received payload <= ${1 + RATE_TOLERANCE} x the limit's, the pod offering >= 2 x its limit`;
    return { ...judgeHorizon(run), metrics: { pod: `${node.name}/${limited.name}`, seconds, ...run }, threshold, evidence };
  },
};

import { edtDeparture } from '../datapath/bwm/maps.js';
import { Engine } from './engine.js';
import { Fq } from './qdisc.js';
import { truesizeOf } from './skb.js';

/** Ethernet 14 + IPv4 20 + UDP 8: a datagram's bytes on the wire beside its payload. */
export const UDP_WIRE_OVERHEAD = 42;
/** net.core.wmem_default: a UDP socket's sk_sndbuf unless the application sets SO_SNDBUF (iperf3 -u does not). */
export const UDP_SNDBUF = 212_992;

/** A UDP sender at a fixed offered rate through the node's EDT + fq to a receiver (iperf3 -u -b). */
export interface UdpRunSpec {
  /** Offered payload rate, bit/s (iperf3 -b counts payload). */
  bps: number;
  /** Payload per datagram, bytes. */
  len: number;
  seconds: number;
  /** One-way propagation delay, ns. */
  delayNs: number;
  /** edt_uplink's state for the pod (as PathSpec.edt); undefined: no Bandwidth Manager, straight to the wire. */
  edt?: { bytesPerSec?: bigint; horizonNs: bigint; tLast: bigint; counters: { stamped: number; dropHorizon: number; unlimited: number } };
}

export interface UdpRunResult {
  sentBps: number;
  receivedBps: number;
  sentPackets: number;
  lostPackets: number;
  /** Times the sender found its socket's send buffer full (sock_alloc_send_pskb would block). */
  blocked: number;
  events: number;
  virtualNs: number;
}

/**
 * iperf3 -u paces its datagrams itself (one every len*8/bps seconds); each skb is owned by
 * the socket (sk_wmem_alloc, truesize) until freed, and with BPF host routing nothing
 * orphans it before fq lets it go, so a full send buffer blocks the sender
 * (sock_alloc_send_pskb). UDP has no congestion control: what EDT drops past the horizon
 * is lost, not sent again.
 */
export function runUdp(spec: UdpRunSpec): UdpRunResult {
  const sim = new Engine();
  const end = spec.seconds * 1e9;
  const gap = (spec.len * 8 * 1e9) / spec.bps;
  const wireLen = spec.len + UDP_WIRE_OVERHEAD;
  const truesize = truesizeOf(wireLen);
  const fq = spec.edt ? new Fq(3028, Number(spec.edt.horizonNs)) : undefined;
  const out: UdpRunResult = { sentBps: 0, receivedBps: 0, sentPackets: 0, lostPackets: 0, blocked: 0, events: 0, virtualNs: end };
  let owned = 0;
  let received = 0;
  let waiting = false;
  let wakeAt: number | undefined;
  const arrive = () => {
    if (sim.now <= end) received++;
  };
  const release = () => {
    owned -= truesize;
    sim.after(spec.delayNs, arrive);
    if (waiting) {
      waiting = false;
      send();
    }
  };
  const drain = () => {
    if (!fq) return;
    for (let skb = fq.dequeue(sim.now); skb; skb = fq.dequeue(sim.now)) release();
    const t = fq.readyAt(sim.now);
    if (t !== undefined && wakeAt !== Math.ceil(t)) {
      wakeAt = Math.ceil(t);
      sim.at(wakeAt, () => {
        if (sim.now === wakeAt) {
          wakeAt = undefined;
          drain();
        }
      });
    }
  };
  const send = () => {
    if (sim.now > end) return;
    if (owned + truesize > UDP_SNDBUF) {
      out.blocked++;
      waiting = true;
      return;
    }
    out.sentPackets++;
    owned += truesize;
    const e = spec.edt;
    if (!e || !fq) release();
    else if (!e.bytesPerSec) {
      e.counters.unlimited++;
      release();
    } else {
      const d = edtDeparture({
        now: BigInt(Math.floor(sim.now)),
        tLast: e.tLast,
        wireLen,
        bytesPerSec: e.bytesPerSec,
        horizonNs: e.horizonNs,
      });
      if (d.action === 'drop') {
        e.counters.dropHorizon++;
        owned -= truesize;
        out.lostPackets++;
      } else {
        e.tLast = d.tLast;
        e.counters.stamped++;
        const pktLen = wireLen;
        fq.enqueue(
          { len: wireLen, pktLen, payload: spec.len, truesize, family: 'ipv4', seq: 0, flow: 0, tstamp: Number(d.tNext) },
          sim.now,
        );
        drain();
      }
    }
    sim.after(gap, send);
  };
  sim.at(0, send);
  sim.run(end + spec.delayNs);
  out.sentBps = (out.sentPackets * spec.len * 8) / spec.seconds;
  out.receivedBps = (received * spec.len * 8) / spec.seconds;
  out.lostPackets = out.sentPackets - received;
  out.events = sim.events;
  return out;
}

/**
 * CPU cost of one skb at each software stage, ns = perSkb + perByte * len. Not derived from
 * kernel code: calibrated against this project's quickstart run on its 2-vCPU build machine
 * (kernel 6.18, veth pods, bpf host routing): iperf3 carried ~7.5-8 Gbit/s with 64 KB skbs
 * and ~15-24 Gbit/s with 192 KB ones, so the per-skb cost dominates there (about 65 us per skb
 * on the sending side). Another machine needs another profile; the verdicts do not depend on it.
 */
export interface CpuProfile {
  name: string;
  /** tcp_sendmsg copy + tcp_write_xmit + the pod device's xmit, on the sender's CPU. */
  send: StageCost;
  /** The node's softirq: the per-CPU backlog (__netif_rx), tcx or ip_rcv/ip_forward, the next xmit. */
  forward: StageCost;
  /** ip_forward through the host stack costs more than a BPF redirect (legacy host routing). */
  forwardLegacy: StageCost;
  /** The receiver's softirq and copy to user space. */
  receive: StageCost;
}

export interface StageCost {
  perSkbNs: number;
  perByteNs: number;
}

export const CALIBRATED_2VCPU: CpuProfile = {
  name: 'calibrated-2vcpu',
  send: { perSkbNs: 62_000, perByteNs: 0.025 },
  forward: { perSkbNs: 2_000, perByteNs: 0.002 },
  forwardLegacy: { perSkbNs: 8_000, perByteNs: 0.004 },
  receive: { perSkbNs: 10_000, perByteNs: 0.02 },
};

/** A fast host for NIC profiles (100G): a few us per skb, so the wire limits. */
export const FAST_HOST: CpuProfile = {
  name: 'fast-host',
  send: { perSkbNs: 3_000, perByteNs: 0.01 },
  forward: { perSkbNs: 500, perByteNs: 0.001 },
  forwardLegacy: { perSkbNs: 1_500, perByteNs: 0.002 },
  receive: { perSkbNs: 2_000, perByteNs: 0.008 },
};

export const costNs = (c: StageCost, len: number) => c.perSkbNs + c.perByteNs * len;

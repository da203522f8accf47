/**
 * Verdict of xdp-lb-in-xdp: a pure function of counters read on an LB node around client traffic to a VIP. The XDP
 * program counts every request, and the node's IP stack (`Ip: InReceives`, counted in net/ipv4/ip_input.c
 * ip_rcv_core) sees none of them: an XDP_TX/REDIRECT frame is consumed in the driver's receive path (veth:
 * veth_xdp_rcv_skb) before __netif_receive_skb_core. The control marks the VIP pass so the same requests go to the
 * stack: it shows the stack counter would have seen them.
 */
import { couldNotEstablish } from './check.js';
import type { MaglevVerdict } from './maglev-verdicts.js';

/** Counters around one burst of requests to one VIP through one LB node. */
export interface InXdpRun {
  /** LB node. */
  node: string;
  /** VIP:port/proto as printed. */
  frontend: string;
  /** Requests the client sent. */
  sent: number;
  /** Requests answered from the VIP. */
  answered: number;
  /** Rise of the XDP program's packet counter for the VIP. */
  xdpCounted: number;
  /** Rise of the LB node's Ip InReceives over the same window. */
  stackDelta: number;
  /** Packets the LB node's stack carries anyway in that window (replies routed through it; 0 when they bypass it). */
  expectedOther: number;
  /** The same burst with the VIP marked pass: requests sent, the stack counter's rise, the program's pass counter's rise. */
  control?: { sent: number; stackDelta: number; xdpPassed: number };
  /** The stack counter stackDelta is read from; absent: Ip InReceives (IPv4). */
  stackCounter?: string;
}

/** Fewest requests per run for the counters to say anything. */
export const MIN_REQUESTS = 20;
/** Share of the requests the stack counter may rise by beyond what it carries anyway (background: ND, ARP replies...). */
export const STACK_SLACK = 0.1;
/** Share of requests that must be answered for the traffic to count as flowing. */
const MIN_ANSWERED = 0.95;

const RULE =
  `every request counted by the XDP program and the LB node's Ip InReceives rising by at most what it carries anyway ` +
  `+ ${STACK_SLACK * 100}% of the requests; control (VIP pass): InReceives rises by at least the requests`;

export function judgeInXdp(runs: readonly InXdpRun[]): MaglevVerdict {
  const metrics: Record<string, unknown> = { runs };
  const err = (what: string): MaglevVerdict => ({ status: 'error', reason: couldNotEstablish(what), metrics, threshold: RULE });
  if (runs.length === 0) return err('no VIP was measured');
  for (const r of runs) {
    const at = `${r.frontend} via ${r.node}`;
    if (r.sent < MIN_REQUESTS) return err(`${at}: ${r.sent} requests sent, fewer than ${MIN_REQUESTS}`);
    if (r.answered < MIN_ANSWERED * r.sent) return err(`${at}: ${r.answered} of ${r.sent} requests answered`);
    if (!r.control) return err(`${at}: no control run with the VIP marked pass`);
    if (r.control.xdpPassed < r.control.sent)
      return err(`${at}: the control passed ${r.control.xdpPassed} of ${r.control.sent} requests in XDP (the pass mark did not take)`);
    if (r.control.stackDelta < r.control.sent)
      return err(`${at}: the stack counter rose by ${r.control.stackDelta} for ${r.control.sent} passed requests: it cannot see them`);
  }
  for (const r of runs) {
    const at = `${r.frontend} via ${r.node}`;
    if (r.xdpCounted < r.sent)
      return { status: 'fail', reason: `${at}: the XDP program counted ${r.xdpCounted} of ${r.sent} requests`, metrics, threshold: RULE };
    const extra = r.stackDelta - r.expectedOther;
    if (extra > STACK_SLACK * r.sent)
      return {
        status: 'fail',
        reason: `${at}: ${r.stackCounter ?? 'Ip InReceives'} rose by ${r.stackDelta}, ${extra} more than the ${r.expectedOther} packets it carries anyway, for ${r.sent} requests: requests reached the stack`,
        metrics,
        threshold: RULE,
      };
  }
  const total = runs.reduce((s, r) => s + r.sent, 0);
  return {
    status: 'pass',
    reason: `${total} requests over ${runs.length} VIP(s) counted in XDP, none seen by the LB node's IP stack (control: the stack saw the passed ones)`,
    metrics,
    threshold: RULE,
  };
}

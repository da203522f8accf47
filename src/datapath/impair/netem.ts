import { hasConfig, type KernelFacts, type Verdict } from '../../kernel/facts.js';
import type { JournalObject } from '../../lifecycle/journal.js';
import { type Impair, impairText, NETEM_HANDLE, netemArgs, TBF_HANDLE } from '../../topology/impair.js';
import type { Lab, LabNode } from '../../topology/model.js';
import type { Decision } from '../feature.js';

/** One end of an impaired link: a netem on `dev` in `netns`, root or under the rate's tbf. */
export interface NetemEnd {
  /** The link as `lab impair` names it: node:node, or node:peer for an uplink. */
  link: string;
  /** The node whose wiring puts it there (the peer's end is its node's). */
  node: string;
  netns: string;
  dev: string;
  /** Under the tbf of the link's rate (handle 1:), or the root qdisc. */
  parent: 'root' | 'tbf';
  impair: Impair;
}

/** Why this kernel cannot impair links, with the piece it lacks named. */
export function netemVerdict(facts: KernelFacts): Verdict {
  const v = hasConfig(facts, 'CONFIG_NET_SCH_NETEM', 'sch_netem');
  return v.ok
    ? v
    : { ok: false, reason: `no sch_netem: ${v.reason} (netem is the qdisc that delays, drops, duplicates and reorders packets)` };
}

/** The name of a link for `lab impair`, `lab link` and status: its two ends, in the topology's order. */
export const linkName = (a: string, b: string) => `${a}:${b}`;

/** Every impaired link end the node's wiring sets: its uplink (both ends) and its side of each node-to-node link. */
export function netemEnds(lab: Lab, node: LabNode): NetemEnd[] {
  const out: NetemEnd[] = [];
  const u = node.uplink;
  if (u?.impair) {
    const peer = lab.peers.find((p) => p.node === node.name)!;
    const link = linkName(node.name, u.peer);
    out.push({ link, node: node.name, netns: node.netns, dev: u.nodeDev, parent: u.rate ? 'tbf' : 'root', impair: u.impair });
    out.push({ link, node: node.name, netns: peer.netns, dev: u.peerDev, parent: 'root', impair: u.impair });
  }
  for (const l of lab.links) {
    if (!l.impair || (l.a !== node.name && l.b !== node.name)) continue;
    const dev = l.a === node.name ? l.devA : l.devB;
    out.push({ link: linkName(l.a, l.b), node: node.name, netns: node.netns, dev, parent: l.rate ? 'tbf' : 'root', impair: l.impair });
  }
  return out;
}

/** Every impaired end of the lab. */
export const allNetemEnds = (lab: Lab): NetemEnd[] => lab.nodes.flatMap((n) => netemEnds(lab, n));

/** The tc line that puts an end's netem in place (the tbf, when there is one, is already there with handle 1:). */
export function netemAddLine(e: NetemEnd): string {
  const where = e.parent === 'tbf' ? `parent ${TBF_HANDLE}1` : 'root';
  return `qdisc add dev ${e.dev} ${where} handle ${NETEM_HANDLE} netem ${netemArgs(e.impair).join(' ')}`;
}

/** Journal entries of a node's netems, recorded before they are created. */
export const netemJournal = (ends: readonly NetemEnd[]): JournalObject[] =>
  ends.map((e) => ({ kind: 'qdisc', netns: e.netns, dev: e.dev, handle: NETEM_HANDLE, qdisc: 'netem' }));

/**
 * The impairments decision of each node with an impaired link end: applied where the kernel has
 * netem, declined (the lab refuses before creating anything) where it has not.
 */
export function impairDecisions(lab: Lab, facts: KernelFacts): Decision[] {
  const v = netemVerdict(facts);
  return lab.nodes.flatMap((n): Decision[] => {
    const ends = netemEnds(lab, n);
    if (!ends.length) return [];
    const links = [...new Set(ends.map((e) => `${e.link} (${impairText(e.impair)})`))].join('; ');
    return [
      v.ok
        ? { feature: 'impair', node: n.name, status: 'applied', mode: 'netem', detail: `netem on ${links}` }
        : { feature: 'impair', node: n.name, status: 'declined', mode: 'none', detail: `cannot impair ${links}: ${v.reason}` },
    ];
  });
}

/** impair's line in `lab doctor`, beside the datapath features. */
export function impairDoctor(facts: KernelFacts) {
  const v = netemVerdict(facts);
  return {
    id: 'impair',
    title: 'link impairments (netem: links[].impair, uplink.impair, lab impair)',
    supported: v.ok,
    reason: v.ok ? undefined : v.reason,
    withDefaults: v.ok ? 'off: no link declares impair' : 'declined where a link declares impair',
  };
}

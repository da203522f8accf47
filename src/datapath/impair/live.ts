import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { LabError } from '../../errors.js';
import { parseJson, type Exec } from '../../exec/exec.js';
import type { LabContext } from '../../lifecycle/context.js';
import { labDir } from '../../lifecycle/journal.js';
import { type Impair, ImpairChangeSchema, ImpairSchema, mergeImpair, NETEM_HANDLE, netemArgs, TBF_HANDLE } from '../../topology/impair.js';
import type { Lab } from '../../topology/model.js';
import { planRoutes } from '../../topology/routes.js';
import { LL_A, LL_B } from '../../backends/wiring.js';
import { allNetemEnds, linkName, type NetemEnd } from './netem.js';

/** One end of a link as `lab link` changes it: a device in a namespace. */
export interface LinkDevEnd {
  netns: string;
  dev: string;
}

/** A link of the lab by name (node:node, node:peer), with both ends; undefined names none. */
export interface NamedLink {
  name: string;
  ends: [LinkDevEnd, LinkDevEnd];
  impair?: Impair;
  /** Where the link sits in the lab: links[i], or nodes[i].uplink. */
  at: { links: number } | { uplink: number };
}

/** Every link of the lab under the name `lab impair` and `lab link` take. */
export function namedLinks(lab: Lab): NamedLink[] {
  const out: NamedLink[] = [];
  lab.nodes.forEach((n, i) => {
    const u = n.uplink;
    if (!u) return;
    const peer = lab.peers.find((p) => p.node === n.name)!;
    const ends: [LinkDevEnd, LinkDevEnd] = [
      { netns: n.netns, dev: u.nodeDev },
      { netns: peer.netns, dev: u.peerDev },
    ];
    out.push({ name: linkName(n.name, u.peer), ends, impair: u.impair, at: { uplink: i } });
  });
  lab.links.forEach((l, k) => {
    const a = lab.nodes.find((n) => n.name === l.a)!;
    const b = lab.nodes.find((n) => n.name === l.b)!;
    const ends: [LinkDevEnd, LinkDevEnd] = [
      { netns: a.netns, dev: l.devA },
      { netns: b.netns, dev: l.devB },
    ];
    out.push({ name: linkName(l.a, l.b), ends, impair: l.impair, at: { links: k } });
  });
  return out;
}

/** The link named (either order of its ends), or a usage error listing the lab's links. */
export function findLink(lab: Lab, name: string): NamedLink {
  const [x, y] = name.split(':');
  const l = namedLinks(lab).find((c) => c.name === name || c.name === `${y}:${x}`);
  if (!l)
    throw new LabError(
      'E_USAGE',
      `lab ${lab.name} has no link '${name}'; links: ${
        namedLinks(lab)
          .map((c) => c.name)
          .join(', ') || '(none)'
      }`,
      'name a link by its two ends, node:node or node:peer',
    );
  return l;
}

/** The lab with one link's impairment replaced. */
export function withImpair(lab: Lab, link: NamedLink, impair: Impair): Lab {
  if ('links' in link.at) {
    const k = link.at.links;
    return { ...lab, links: lab.links.map((l, i) => (i === k ? { ...l, impair } : l)) };
  }
  const k = link.at.uplink;
  return { ...lab, nodes: lab.nodes.map((n, i) => (i === k ? { ...n, uplink: { ...n.uplink!, impair } } : n)) };
}

/**
 * Validate one `lab impair` change against the lab as it is: the flags' syntax, a link that has a
 * netem to change, and the impairment after the change (jitter and reorder need a delay).
 * Throws E_USAGE (exit 2) before anything is touched.
 */
export function planImpair(lab: Lab, linkArg: string, flags: Record<string, string | undefined>) {
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  if (!Object.keys(given).length)
    throw new LabError('E_USAGE', 'nothing to change: give at least one of --rate, --delay, --jitter, --loss, --reorder, --duplicate');
  const change = ImpairChangeSchema.safeParse(given);
  if (!change.success) throw new LabError('E_USAGE', issuesText(change.error));
  const link = findLink(lab, linkArg);
  if (!link.impair)
    throw new LabError(
      'E_USAGE',
      `link ${link.name} has no netem: lab impair changes a netem in place and never creates or re-creates one`,
      `declare it in the topology (impair: {} on the link) and bring the lab up again`,
    );
  const after = mergeImpair(link.impair, change.data);
  const valid = ImpairSchema.safeParse(after);
  if (!valid.success) throw new LabError('E_USAGE', issuesText(valid.error));
  return { link, before: link.impair, after };
}

const issuesText = (e: z.ZodError) => e.issues.map((i) => `--${i.path.join('.') || 'impair'}: ${i.message}`).join('\n');

/** A netem as `tc -s -j qdisc show` prints it (the fields read here). */
export const NetemJson = z
  .object({
    kind: z.string(),
    handle: z.string(),
    parent: z.string().optional(),
    root: z.boolean().optional(),
    options: z.record(z.string(), z.unknown()).optional(),
    bytes: z.number().optional(),
    packets: z.number().optional(),
    drops: z.number().optional(),
  })
  .passthrough();
export type NetemJson = z.infer<typeof NetemJson>;

/** The lab's netem on a device (handle 10:), as the kernel shows it now. */
export async function readNetem(exec: Exec, dev: string, signal?: AbortSignal): Promise<NetemJson | undefined> {
  const r = await exec.run(['tc', '-s', '-j', 'qdisc', 'show', 'dev', dev], { signal });
  return z
    .array(NetemJson)
    .parse(parseJson(r, `tc -s -j qdisc show dev ${dev}`))
    .find((q) => q.kind === 'netem' && q.handle === NETEM_HANDLE);
}

/** The tc argv that changes an end's netem in place (same handle, same parent: netem_change, never a new qdisc). */
export function netemChangeArgv(e: Pick<NetemEnd, 'dev' | 'parent'>, after: Impair, hadRate: boolean): string[] {
  const where = e.parent === 'tbf' ? ['parent', `${TBF_HANDLE}1`] : ['root'];
  return ['tc', 'qdisc', 'change', 'dev', e.dev, ...where, 'handle', NETEM_HANDLE, 'netem', ...netemArgs(after, hadRate)];
}

/** What one end showed before and after a change. */
export interface EndChange {
  netns: string;
  dev: string;
  before: NetemJson;
  after: NetemJson;
}

/**
 * Change the netem on every end of a link with `tc qdisc change`; each end is read before (it must
 * be the lab's netem) and after (same handle, counters not reset, or the change is reported as failed).
 */
export async function applyImpair(ctx: LabContext, link: NamedLink, before: Impair, after: Impair): Promise<EndChange[]> {
  const ends = allNetemEnds(ctx.lab).filter((e) => e.link === link.name);
  const out: EndChange[] = [];
  for (const e of ends) {
    const exec = ctx.backend.exec(e.netns);
    const b = await readNetem(exec, e.dev, ctx.signal);
    if (!b) throw new LabError('E_LAB_FAILED', `no netem ${NETEM_HANDLE} on ${e.dev} in ${e.netns}: the lab's wiring is not what it made`);
    await exec.run(netemChangeArgv(e, after, !!before.rate), { signal: ctx.signal });
    const a = await readNetem(exec, e.dev, ctx.signal);
    if (!a || a.handle !== b.handle || (a.packets ?? 0) < (b.packets ?? 0))
      throw new LabError('E_LAB_FAILED', `netem on ${e.dev} in ${e.netns} was not changed in place: ${JSON.stringify(a)}`);
    out.push({ netns: e.netns, dev: e.dev, before: b, after: a });
  }
  return out;
}

/** A line in the lab's changes.jsonl: what a live verb changed, for status and for whoever reads the lab dir. */
export function logChange(lab: string, entry: Record<string, unknown>): void {
  appendFileSync(join(labDir(lab), 'changes.jsonl'), `${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`);
}

/**
 * Take a link down or up on both ends. Down keeps the global IPv6 addresses (keep_addr_on_down: by default
 * addrconf_ifdown flushes them, net/ipv6/addrconf.c; link-local ones go anyway); the routes through the device go with it
 * (fib_sync_down_dev, rt6_sync_down_dev), so up puts the lab's routes on that device back.
 */
export async function setLink(ctx: LabContext, link: NamedLink, state: 'down' | 'up'): Promise<void> {
  const plan = planRoutes(ctx.lab);
  for (const [i, end] of link.ends.entries()) {
    const exec = ctx.backend.exec(end.netns);
    if (state === 'down') {
      await exec.run(['sysctl', '-q', '-w', `net.ipv6.conf.${end.dev}.keep_addr_on_down=1`], { nothrow: true, signal: ctx.signal });
      await exec.run(['ip', 'link', 'set', 'dev', end.dev, 'down'], { signal: ctx.signal });
      continue;
    }
    await exec.run(['ip', 'link', 'set', 'dev', end.dev, 'up'], { signal: ctx.signal });
    // The link-local address the wiring gave the end (ndisc solicits from it) is flushed even so.
    if (ctx.lab.families.includes('ipv6'))
      await exec.run(['ip', 'addr', 'replace', i === 0 ? LL_A : LL_B, 'dev', end.dev, 'nodad'], { signal: ctx.signal });
    const owner = ctx.lab.nodes.find((n) => n.netns === end.netns)?.name ?? ctx.lab.peers.find((p) => p.netns === end.netns)?.name ?? '';
    const routes = [...(plan.nodes[owner] ?? []), ...(plan.peers[owner] ?? [])].filter((r) => r.dev === end.dev);
    if (routes.length)
      await exec.run(['ip', '-batch', '-'], {
        input: routes.map((r) => `route replace ${r.prefix} via ${r.via} dev ${r.dev}\n`).join(''),
        signal: ctx.signal,
      });
  }
}

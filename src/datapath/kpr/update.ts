import { z } from 'zod';
import { LabError } from '../../errors.js';
import { parseJson } from '../../exec/exec.js';
import type { LabContext } from '../../lifecycle/context.js';
import type { Lab, LabNode } from '../../topology/model.js';
import { decisionOf } from '../feature.js';
import { applyIptables, deploySockLb, kubeProxy, sockLbPins } from './kpr.js';
import { deployNodePort, syncNodePort } from './nodeport.js';
import { syncXdpLb } from '../xdp-lb/feature.js';
import { backendEntry, frontendLines, svcKey } from './maps.js';
import { frontendKey, servicePlan, slotsOf, type Frontend, type ServicePlan } from './plan.js';

/** The service entry of a frontend as the map holds it (struct svc_value, by BTF). */
const Entry = z.object({ formatted: z.object({ value: z.object({ count: z.number(), rev: z.number() }) }) });

/** Revisions are 16 bits (svc_key.rev); 0 is the service entry's own key, so they run 1..65535. */
const nextRev = (rev: number) => (rev % 65535) + 1;

const keyOf = (f: Frontend) => frontendKey(f.service, f.family, f.port, f.protocol);
const sameSlots = (a: Frontend, b: Frontend) =>
  a.affinitySeconds === b.affinitySeconds && a.svcId === b.svcId && slotsOf(a).join(',') === slotsOf(b).join(',');

/** What a change of the service set does to one node's maps, in the order a reader may see it. */
export interface MapDelta {
  /** Backends the new set names that the old did not: written first, before any slot points at them. */
  addBackends: ServicePlan['backends'];
  /** Frontends that are new or whose slots changed: new slots under a new revision, then the entry flipped. */
  put: Frontend[];
  /** Frontends gone: the entry deleted first (a connect no longer matches), then its slots. */
  drop: Frontend[];
  /** Backend ids no slot names any more: deleted last. */
  dropBackends: number[];
}

/** The map changes from one plan to the next (ids kept by the caller's serviceIds, so a kept id means the same thing). */
export function mapDelta(before: ServicePlan, after: ServicePlan): MapDelta {
  const old = new Map(before.frontends.map((f) => [keyOf(f), f]));
  const now = new Set(after.frontends.map(keyOf));
  const oldBe = new Set(before.backends.map((b) => b.id));
  const newBe = new Set(after.backends.map((b) => b.id));
  return {
    addBackends: after.backends.filter((b) => !oldBe.has(b.id)),
    put: after.frontends.filter((f) => !old.has(keyOf(f)) || !sameSlots(old.get(keyOf(f))!, f)),
    drop: before.frontends.filter((f) => !now.has(keyOf(f))),
    dropBackends: [...oldBe].filter((id) => !newBe.has(id)),
  };
}

/** The service entry's revision and slot count on a node, or undefined when the map has no entry for the frontend. */
async function entryOf(ctx: LabContext, node: LabNode, f: Frontend): Promise<{ rev: number; slots: number } | undefined> {
  const p = sockLbPins(ctx, node);
  const r = await ctx.backend
    .root(node.name)
    .run(['bpftool', '-j', 'map', 'lookup', 'pinned', p.services, 'key', 'hex', ...svcKey(f).split(' ')], {
      signal: ctx.signal,
      nothrow: true,
    });
  if (r.code !== 0) return undefined;
  const v = Entry.parse(parseJson(r, 'bpftool map lookup')).formatted.value;
  return { rev: v.rev, slots: v.count };
}

/**
 * Move a running lab from one service set to the next on every node. bpf: one bpftool
 * batch per node, ordered so each frontend changes atomically for a connect (frontendLines:
 * new slots, entry flip, old slots deleted); socket-LB is loaded first on a node that had
 * no services at up (journaled by deploySockLb). iptables: kube-proxy's full resync, the
 * whole ruleset rewritten by iptables-restore (one commit per table). A node that fails
 * (bpftool batch stops at its first bad line, with the lines before it applied) is
 * rolled back with the nodes already changed: the same change from the new set to the
 * old, so every frontend flips back to the old backends under a fresh revision.
 */
export async function applyServiceChange(ctx: LabContext, before: Lab, after: Lab): Promise<void> {
  const changed: LabNode[] = [];
  for (const node of after.nodes) {
    changed.push(node);
    try {
      await applyNode(ctx, before, after, node);
    } catch (e) {
      const undone: string[] = [];
      const stuck: string[] = [];
      for (const n of changed.reverse()) {
        try {
          await applyNode(ctx, after, before, n);
          undone.push(n.name);
        } catch (r) {
          stuck.push(`${n.name} (${r instanceof Error ? r.message.split('\n')[0] : String(r)})`);
        }
      }
      throw new LabError(
        'E_COMMAND',
        `lab svc: node ${node.name} failed: ${e instanceof Error ? e.message : String(e)}`,
        stuck.length
          ? `rolled back ${undone.join(', ') || 'no node'}; could not roll back ${stuck.join(', ')}: lab down and up again`
          : `rolled back ${undone.join(', ')}: the lab's services are as they were`,
      );
    }
  }
}

/** One node's share of a change (applyServiceChange). */
async function applyNode(ctx: LabContext, before: Lab, after: Lab, node: LabNode): Promise<void> {
  const delta = mapDelta(servicePlan(before), servicePlan(after));
  const mode = decisionOf(ctx.decisions, kubeProxy, node.name)?.mode;
  await syncXdpLb(ctx, node, before, after);
  if (mode === 'iptables') await applyIptables({ ...ctx, lab: after }, node, true);
  if (mode !== 'bpf') return;
  if (!before.services.length) {
    await deploySockLb({ ...ctx, lab: after }, node);
    await deployNodePort({ ...ctx, lab: after }, node);
    return;
  }
  const p = sockLbPins(ctx, node);
  const lines = delta.addBackends.map((b) => {
    const e = backendEntry(b);
    return `map update pinned ${p.backends} key hex ${e.key} value hex ${e.value}`;
  });
  for (const f of delta.put) {
    const now = await entryOf(ctx, node, f);
    lines.push(...frontendLines(p, f, now ? nextRev(now.rev) : 1, now));
  }
  for (const f of delta.drop) {
    const now = await entryOf(ctx, node, f);
    if (!now) continue;
    lines.push(`map delete pinned ${p.services} key hex ${svcKey(f)}`);
    lines.push(...Array.from({ length: now.slots }, (_, i) => `map delete pinned ${p.services} key hex ${svcKey(f, i + 1, now.rev)}`));
  }
  lines.push(
    ...delta.dropBackends.map(
      (id) => `map delete pinned ${p.backends} key hex ${backendEntry({ id, addr: '0.0.0.0', port: 0, family: 'ipv4' }).key}`,
    ),
  );
  if (lines.length)
    await ctx.backend.root(node.name).run(['bpftool', 'batch', 'file', '-'], { input: lines.join('\n') + '\n', signal: ctx.signal });
  await syncNodePort(ctx, node, before, after);
}

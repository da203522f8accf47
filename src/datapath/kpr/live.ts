import { z } from 'zod';
import { parseJson } from '../../exec/exec.js';
import type { LabContext } from '../../lifecycle/context.js';
import { decisionOf } from '../feature.js';
import { kubeProxy, sockLbPins } from './kpr.js';
import { frontendLines, svcKey } from './maps.js';
import type { Frontend } from './plan.js';

/** The service entry of a frontend as the map holds it (struct svc_value, by BTF). */
const Entry = z.object({ formatted: z.object({ value: z.object({ count: z.number(), rev: z.number() }) }) });

/** Revisions are 16 bits (svc_key.rev); 0 is the service entry's own key, so they run 1..65535. */
export const nextRev = (rev: number) => (rev % 65535) + 1;

/**
 * Give a frontend a new backend set on every socket-LB node of a running lab: the
 * service entry is read for its revision and slot count, the new slots are written under
 * the next revision, the entry flipped, the old slots deleted (frontendLines): a connect
 * meanwhile sees the whole old set or the whole new one. Returns the revision written.
 */
export async function setBackends(ctx: LabContext, f: Frontend): Promise<number> {
  let written = 0;
  for (const node of ctx.lab.nodes) {
    if (decisionOf(ctx.decisions, kubeProxy, node.name)?.mode !== 'bpf') continue;
    const p = sockLbPins(ctx, node);
    const root = ctx.backend.root(node.name);
    const r = await root.run(['bpftool', '-j', 'map', 'lookup', 'pinned', p.services, 'key', 'hex', ...svcKey(f).split(' ')], {
      signal: ctx.signal,
    });
    const now = Entry.parse(parseJson(r, 'bpftool map lookup')).formatted.value;
    written = nextRev(now.rev);
    const lines = frontendLines(p, f, written, { rev: now.rev, slots: now.count });
    await root.run(['bpftool', 'batch', 'file', '-'], { input: lines.join('\n') + '\n', signal: ctx.signal });
  }
  return written;
}

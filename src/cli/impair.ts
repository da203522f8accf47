import type { Command } from 'commander';
import { LabError } from '../errors.js';
import { readLabState, writeLabState } from '../lifecycle/labstate.js';
import { impairText } from '../topology/impair.js';
import { guarded, progressLogger } from './output.js';
import { lock, upState } from './svc.js';

/** Run a live change of a lab under the lab's change lock, with a context attached to it. */
async function live<T>(
  verb: string,
  name: string,
  quiet: boolean | undefined,
  fn: (ctx: import('../lifecycle/context.js').LabContext) => Promise<T>,
) {
  const { attach } = await import('../lifecycle/steps.js');
  const unlock = lock(name, verb);
  try {
    const { ctx } = await attach(name, new AbortController().signal, progressLogger(quiet));
    try {
      return await fn(ctx);
    } finally {
      ctx.backend.close?.();
    }
  } finally {
    unlock();
  }
}

/** `lab impair` and `lab link`: change a running lab's links in place. */
export function register(program: Command, exit: (code: number) => void): void {
  const run = guarded(exit);
  program
    .command('impair')
    .description("change a running lab's link impairment in place (tc qdisc change of its netem: same handle, counters kept)")
    .argument('<lab>', 'lab name')
    .argument('<link>', 'the link by its two ends: node:node, or node:peer for an uplink')
    .option('--rate <rate>', 'netem rate (10mbit; 0bit: no limit)')
    .option('--delay <time>', 'delay on each end (50ms; 0ms: none)')
    .option('--jitter <time>', 'delay variation (needs a delay)')
    .option('--loss <percent>', 'random loss on each end (1%)')
    .option('--reorder <percent>', 'packets sent ahead of the delayed ones (needs a delay)')
    .option('--duplicate <percent>', 'packets sent twice')
    .option('-q, --quiet', 'no progress lines')
    .action((lab: string, linkArg: string, o: Record<string, string | undefined> & { quiet?: boolean }) =>
      run(async () => {
        const { planImpair, applyImpair, withImpair, logChange } = await import('../datapath/impair/live.js');
        const { quiet, ...flags } = o;
        const state = upState(lab);
        const { link, before, after } = planImpair(state.lab, linkArg, flags as Record<string, string | undefined>);
        const t0 = performance.now();
        const ends = await live('lab impair', lab, quiet, async (ctx) => applyImpair(ctx, link, before, after));
        const now = readLabState(lab) ?? state;
        writeLabState({ ...now, lab: withImpair(now.lab, link, after) });
        logChange(lab, {
          verb: 'impair',
          link: link.name,
          before,
          after,
          handles: ends.map((e) => `${e.netns}/${e.dev} ${e.after.handle}`),
        });
        process.stdout.write(
          `lab ${lab}: link ${link.name}: netem ${impairText(after)} (was ${impairText(before)}); ` +
            `${ends.map((e) => `${e.dev} in ${e.netns}: handle ${e.after.handle}, ${e.after.packets ?? 0} packets so far`).join('; ')} ` +
            `(${(performance.now() - t0).toFixed(0)} ms)\n`,
        );
      })(),
    );
  program
    .command('link')
    .description("take a running lab's link down or up on both ends (up puts the lab's routes over it back)")
    .argument('<lab>', 'lab name')
    .argument('<link>', 'the link by its two ends: node:node, or node:peer for an uplink')
    .argument('<state>', 'down or up')
    .option('-q, --quiet', 'no progress lines')
    .action((lab: string, linkArg: string, want: string, o: { quiet?: boolean }) =>
      run(async () => {
        const { findLink, setLink, logChange } = await import('../datapath/impair/live.js');
        if (want !== 'down' && want !== 'up') throw new LabError('E_USAGE', `state '${want}': expected down or up`);
        const link = findLink(upState(lab).lab, linkArg);
        await live('lab link', lab, o.quiet, (ctx) => setLink(ctx, link, want));
        const now = readLabState(lab)!;
        const down = new Set(now.linksDown ?? []);
        want === 'down' ? down.add(link.name) : down.delete(link.name);
        writeLabState({ ...now, linksDown: [...down] });
        logChange(lab, { verb: 'link', link: link.name, state: want });
        process.stdout.write(`lab ${lab}: link ${link.name} ${want}\n`);
      })(),
    );
  program
    .command('node')
    .description(
      "kill a running lab's node as a crash would, or restart it (a VM is killed and booted again; a local node keeps its namespaces, its lab processes die)",
    )
    .argument('<lab>', 'lab name')
    .argument('<node>', 'node name')
    .argument('<action>', 'kill or restart')
    .option('-q, --quiet', 'no progress lines')
    .action((lab: string, nodeName: string, action: string, o: { quiet?: boolean }) =>
      run(async () => {
        const { logChange } = await import('../datapath/impair/live.js');
        const { wireNode, deployNode } = await import('../lifecycle/steps.js');
        if (action !== 'kill' && action !== 'restart') throw new LabError('E_USAGE', `action '${action}': expected kill or restart`);
        const state = upState(lab);
        const node = state.lab.nodes.find((n) => n.name === nodeName);
        if (!node)
          throw new LabError('E_USAGE', `lab ${lab} has no node '${nodeName}'; nodes: ${state.lab.nodes.map((n) => n.name).join(', ')}`);
        const t0 = performance.now();
        const detail = await live('lab node', lab, o.quiet, async (ctx) => {
          const b = ctx.backend;
          if (!b.killNode || !b.restartNode) throw new LabError('E_USAGE', `the ${b.kind} backend cannot kill or restart a node`);
          if (action === 'kill') return b.killNode(ctx, node);
          const r = await b.restartNode(ctx, node);
          if (r.rewire) {
            await wireNode(ctx, node);
            await deployNode(ctx, node);
          }
          return r.detail;
        });
        const now = readLabState(lab)!;
        const killed = new Set(now.nodesKilled ?? []);
        action === 'kill' ? killed.add(nodeName) : killed.delete(nodeName);
        // A node booted again comes with its links up (wired afresh).
        const touches = (l: string) => l.split(':').includes(nodeName);
        const linksDown =
          action === 'restart' && state.backend === 'qemu' ? (now.linksDown ?? []).filter((l) => !touches(l)) : now.linksDown;
        writeLabState({ ...now, nodesKilled: [...killed], linksDown });
        logChange(lab, { verb: 'node', node: nodeName, action, detail });
        process.stdout.write(`lab ${lab}: ${detail} (${(performance.now() - t0).toFixed(0)} ms)\n`);
      })(),
    );
}

import type { Command } from 'commander';
import { LabError } from '../errors.js';
import { impairText } from '../topology/impair.js';
import { changeRunningLab } from './live.js';
import { guarded } from './output.js';

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
        const t0 = performance.now();
        const {
          plan: { link, before, after },
          result: ends,
        } = await changeRunningLab(lab, 'lab impair', quiet, {
          plan: (state) => planImpair(state.lab, linkArg, flags as Record<string, string | undefined>),
          apply: (ctx, p) => applyImpair(ctx, p.link, p.before, p.after),
          record: (now, p) => ({ ...now, lab: withImpair(now.lab, p.link, p.after) }),
        });
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
        const { plan: link } = await changeRunningLab(lab, 'lab link', o.quiet, {
          plan: (state) => findLink(state.lab, linkArg),
          apply: (ctx, l) => setLink(ctx, l, want),
          record: (now, l) => {
            const down = new Set(now.linksDown ?? []);
            want === 'down' ? down.add(l.name) : down.delete(l.name);
            return { ...now, linksDown: [...down] };
          },
        });
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
        const t0 = performance.now();
        const { result: detail } = await changeRunningLab(lab, 'lab node', o.quiet, {
          plan: (state) => {
            const node = state.lab.nodes.find((n) => n.name === nodeName);
            if (!node)
              throw new LabError(
                'E_USAGE',
                `lab ${lab} has no node '${nodeName}'; nodes: ${state.lab.nodes.map((n) => n.name).join(', ')}`,
              );
            return node;
          },
          apply: async (ctx, node) => {
            const b = ctx.backend;
            if (!b.killNode || !b.restartNode) throw new LabError('E_USAGE', `the ${b.kind} backend cannot kill or restart a node`);
            if (action === 'kill') return b.killNode(ctx, node);
            const r = await b.restartNode(ctx, node);
            if (r.rewire) {
              await wireNode(ctx, node);
              await deployNode(ctx, node);
            }
            return r.detail;
          },
          record: (now) => {
            const killed = new Set(now.nodesKilled ?? []);
            action === 'kill' ? killed.add(nodeName) : killed.delete(nodeName);
            // A node booted again comes with its links up (wired afresh).
            const touches = (l: string) => l.split(':').includes(nodeName);
            const linksDown =
              action === 'restart' && now.backend === 'qemu' ? (now.linksDown ?? []).filter((l) => !touches(l)) : now.linksDown;
            return { ...now, nodesKilled: [...killed], linksDown };
          },
        });
        logChange(lab, { verb: 'node', node: nodeName, action, detail });
        process.stdout.write(`lab ${lab}: ${detail} (${(performance.now() - t0).toFixed(0)} ms)\n`);
      })(),
    );
}

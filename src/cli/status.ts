import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { EXIT, LabError } from '../errors.js';
import { Journal, knownLabs } from '../lifecycle/journal.js';
import { namedLinks } from '../datapath/impair/live.js';
import { impairText } from '../topology/impair.js';
import { readLabState } from '../lifecycle/labstate.js';
import { table } from '../report/table.js';
import { backendNames, createBackend } from '../backends/registry.js';
import type { NodeStatus } from '../backends/backend.js';
import type { JournalEntry } from '../lifecycle/journal.js';
import { printError } from './output.js';
import { join } from 'node:path';
import { HostExec } from '../exec/exec.js';
import { showBps } from '../datapath/bwm/quantity.js';
import { readDatapathCounters, type DatapathCounters } from '../measure/datapath-counters.js';
import { readXdpLbCounters } from '../datapath/xdp-lb/counters.js';

/** Each backend's view of its own journal entries: where the lab's nodes are and whether they run. */
function machines(live: JournalEntry[]) {
  const kinds = [...new Set(live.map((e) => e.owner.backend))];
  return kinds.flatMap((k): NodeStatus[] => {
    const mine = live.filter((e) => e.owner.backend === k);
    // A lab brought up by another version of the lab with a backend this one lacks: listed, not fatal.
    if (!backendNames().includes(k))
      return [...new Set(mine.map((e) => e.owner.node ?? '?'))].map((node) => ({
        node,
        kind: `${k} (unknown backend)`,
        where: '?',
        running: false,
      }));
    return createBackend(k).status(mine);
  });
}

/**
 * The datapath counters of each node whose pinned map this machine can see (a local
 * lab; a guest's pins are inside its VM). A node whose map cannot be read is left out.
 */
async function counters(name: string) {
  const s = readLabState(name);
  if (!s) return {};
  const host = new HostExec();
  const out: Record<string, DatapathCounters> = {};
  for (const n of s.lab.nodes) {
    const map = join(s.bpfDir, n.name, 'maps', 'counters');
    if (existsSync(map)) out[n.name] = await readDatapathCounters(host, map).catch(() => undefined as never);
  }
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v));
}

/** A lab as status shows it, read from its state file, its journal and the machine. */
export function labStatus(name: string) {
  const s = readLabState(name);
  const live = Journal.open(name)?.live() ?? [];
  const netns = live.filter((e) => e.obj.kind === 'netns').map((e) => (e.obj as { name: string }).name);
  let owner: 'running' | 'exited' = 'exited';
  try {
    if (s) {
      process.kill(s.pid, 0);
      owner = 'running';
    }
  } catch {
    /* the process that brought it up is gone (normal after lab up) */
  }
  return {
    name,
    phase: s?.phase ?? 'unknown (no lab.json: left by a crash)',
    topology: s?.file,
    backend: s?.backend,
    createdAt: s?.createdAt,
    owner: s ? { pid: s.pid, state: owner } : undefined,
    nodes: s?.lab.nodes.map((n) => ({
      name: n.name,
      netns: n.netns,
      pods: n.pods.map((p) => ({ name: p.name, netns: p.netns, ipv4: p.ipv4, ipv6: p.ipv6, egressBps: p.egressBps })),
      uplink: n.uplink && { peer: n.uplink.peer, rate: n.uplink.rate },
    })),
    datapath: s?.decisions ?? [],
    links: s
      ? namedLinks(s.lab).map((l) => ({ name: l.name, state: s.linksDown?.includes(l.name) ? 'down' : 'up', impair: l.impair }))
      : [],
    nodesKilled: s?.nodesKilled ?? [],
    journal: {
      objects: live.length,
      namespaces: netns.length,
      namespacesPresent: netns.filter((n) => existsSync(`/run/netns/${n}`)).length,
      machines: machines(live),
    },
    kernel: s?.lab.kernel,
  };
}

export function register(program: Command, exit: (code: number) => void): void {
  program
    .command('status')
    .description('list the labs on this machine, or show one lab: nodes, pods, addresses, datapath decisions and counters, journal')
    .argument('[name]', 'lab name')
    .option('--json', 'machine-readable output')
    .action(async (name: string | undefined, opts: { json?: boolean }) => {
      const labs = knownLabs();
      if (name && !labs.includes(name)) {
        printError(new LabError('E_LAB_UNKNOWN', `no lab named '${name}'`, `labs here: ${labs.join(', ') || 'none'}`));
        return exit(EXIT.badInput);
      }
      const all = (name ? [name] : labs).map(labStatus);
      // One lab: also its datapath counters (redirects by kind, drops by reason), read now.
      const dp = name ? await counters(name) : {};
      const st = name ? readLabState(name) : undefined;
      const xl = st ? await readXdpLbCounters(new HostExec(), st.lab, st.bpfDir).catch(() => ({})) : {};
      if (opts.json) {
        if (name) Object.assign(all[0], { counters: dp, xdpLb: xl });
        process.stdout.write(JSON.stringify(name ? all[0] : all, null, 2) + '\n');
        return exit(EXIT.ok);
      }
      if (!all.length) {
        process.stdout.write('no labs are up\n');
        return exit(EXIT.ok);
      }
      if (!name) {
        process.stdout.write(
          table(
            ['LAB', 'PHASE', 'BACKEND', 'NODES', 'PODS', 'NAMESPACES', 'TOPOLOGY'],
            all.map((l) => [
              l.name,
              l.phase,
              l.backend ?? '?',
              String(l.nodes?.length ?? '?'),
              String(l.nodes?.reduce((a, n) => a + n.pods.length, 0) ?? '?'),
              `${l.journal.namespacesPresent}/${l.journal.namespaces}`,
              l.topology ?? '?',
            ]),
          ) + '\n',
        );
        return exit(EXIT.ok);
      }
      const l = all[0];
      const lines = [
        l.backend
          ? `lab ${l.name}: ${l.phase} (backend ${l.backend}${l.kernel ? `, kernel ${l.kernel}` : ''}, from ${l.topology}, since ${l.createdAt})`
          : `lab ${l.name}: ${l.phase}; lab down ${l.name} removes what its journal names`,
        `journal: ${l.journal.objects} objects, ${l.journal.namespacesPresent}/${l.journal.namespaces} namespaces present`,
        `nodes: ${l.journal.machines.map((m) => `${m.node} (${m.kind} ${m.running ? 'running' : 'GONE'})`).join(', ') || 'none recorded'}`,
        ...l.links.map((k) => `link ${k.name}: ${k.state}${k.impair ? `, netem: ${impairText(k.impair)}` : ''}`),
        ...l.nodesKilled.map((n) => `node ${n}: killed (lab node ${l.name} ${n} restart)`),
        '',
      ];
      for (const n of l.nodes ?? []) {
        lines.push(
          `node ${n.name} (${n.netns})${n.uplink ? `, uplink to ${n.uplink.peer}${n.uplink.rate ? ` at ${n.uplink.rate}` : ''}` : ''}`,
        );
        for (const p of n.pods)
          lines.push(
            `  pod ${p.name.padEnd(12)} ${[p.ipv4, p.ipv6].filter(Boolean).join('  ')}   (${p.netns})${p.egressBps ? `, egress ${showBps(p.egressBps)}` : ''}`,
          );
        for (const d of l.datapath.filter((d) => d.node === n.name))
          lines.push(`  ${d.feature.padEnd(13)} ${d.status.padEnd(9)} ${d.detail}`);
        const c = dp[n.name];
        if (c)
          lines.push(
            `  counters      ${Object.entries(c)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}`,
          );
        const x = (xl as Awaited<ReturnType<typeof readXdpLbCounters>>)[n.name];
        if (x)
          for (const [what, rows] of [
            ['VIP', x.vips],
            ['backend', x.backends],
          ] as const)
            for (const r of rows) lines.push(`  xdp-lb ${what.padEnd(7)} ${r.name}: ${r.packets} packets, ${r.bytes} bytes`);
      }
      process.stdout.write(lines.join('\n') + '\n');
      exit(EXIT.ok);
    });
}

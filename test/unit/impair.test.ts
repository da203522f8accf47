import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../src/errors.js';
import { findLink, netemChangeArgv, planImpair, withImpair } from '../../src/datapath/impair/live.js';
import { impairDecisions, netemAddLine, netemEnds, netemJournal, netemVerdict } from '../../src/datapath/impair/netem.js';
import type { KernelFacts } from '../../src/kernel/facts.js';
import { tbfBatch } from '../../src/backends/wiring.js';
import type { Exec } from '../../src/exec/exec.js';
import { Bottleneck } from '../../src/measure/bottleneck.js';
import { withPreRestore } from '../../src/lifecycle/pre-restore.js';
import { ImpairSchema, mergeImpair, netemArgs } from '../../src/topology/impair.js';
import { parseTopology } from '../../src/topology/loader.js';
import type { Lab } from '../../src/topology/model.js';
import { resolve } from '../../src/topology/resolver.js';

const topology = (uplinkImpair: string, linkImpair = '') => `name: imp
nodes:
  - name: a
    pods:
      - name: p
    uplink:
      peer: remote
      rate: 100mbit
${uplinkImpair}
  - name: b
links:
  - endpoints: [a, b]
${linkImpair}
`;
const load = (text: string) => {
  const p = parseTopology(text, 'lab.yaml');
  return p.ok ? resolve(p.value) : p;
};
const lab = (text: string): Lab => {
  const r = load(text);
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return r.value;
};
const errors = (text: string) => {
  const r = load(text);
  if (r.ok) throw new Error('expected errors');
  return r.errors.map(formatIssue);
};
const facts = (netem: 'y' | 'm' | undefined, modules: string[] = []) =>
  ({ configSource: '/proc/config.gz', config: netem ? { CONFIG_NET_SCH_NETEM: netem } : {}, modules }) as unknown as KernelFacts;

const impaired = lab(topology('      impair: {delay: 20ms, jitter: 5ms, loss: "1%"}', '    impair: {}'));

describe('impair in the topology', () => {
  it('resolves uplink and link impairments, and puts netem under the rate tbf (handle 1:) or at the root', () => {
    const a = impaired.nodes[0]!;
    expect(a.uplink?.impair).toEqual({ delay: '20ms', jitter: '5ms', loss: '1%' });
    expect(impaired.links[0]?.impair).toEqual({});
    const ends = netemEnds(impaired, a);
    expect(ends.map((e) => [e.link, e.netns, e.dev, e.parent])).toEqual([
      ['a:remote', 'dpl-imp.a', 'uplink', 'tbf'],
      ['a:remote', 'dpl-imp.remote', 'eth0', 'root'],
      ['a:b', 'dpl-imp.a', 'n-b', 'root'],
    ]);
    expect(ends.map(netemAddLine)).toEqual([
      'qdisc add dev uplink parent 1:1 handle 10: netem delay 20ms 5ms loss 1% duplicate 0% reorder 0%',
      'qdisc add dev eth0 root handle 10: netem delay 20ms 5ms loss 1% duplicate 0% reorder 0%',
      'qdisc add dev n-b root handle 10: netem delay 0ms loss 0% duplicate 0% reorder 0%',
    ]);
    expect(tbfBatch(impaired, a)).toBe('qdisc add dev uplink root handle 1: tbf rate 100mbit burst 64kb latency 50ms\n');
    expect(netemJournal(ends)[0]).toEqual({ kind: 'qdisc', netns: 'dpl-imp.a', dev: 'uplink', handle: '10:', qdisc: 'netem' });
    // Without impair the tbf keeps its line as before (the Bottleneck restores it verbatim).
    expect(tbfBatch(lab(topology('')), lab(topology('')).nodes[0]!)).toBe(
      'qdisc add dev uplink root tbf rate 100mbit burst 64kb latency 50ms\n',
    );
    expect(netemEnds(impaired, impaired.nodes[1]!).map((e) => e.dev)).toEqual(['n-a']);
  });

  it('refuses bad impairments with file:line: field.path and a message naming the fix', () => {
    const bad = (s: string) => errors(topology(`      impair: ${s}`));
    expect(bad('{delay: 50}')).toEqual([
      'lab.yaml:9:23: nodes[0].uplink.impair.delay: write the delay with its unit, like 50ms (a bare number has no unit here)',
    ]);
    expect(bad('{loss: 2}')[0]).toMatch(/impair\.loss: write the loss as a percentage, like 1%$/);
    expect(bad('{loss: 101%}')[0]).toMatch(/impair\.loss: 101% is above 100%/);
    expect(bad('{delay: 2min}')[0]).toMatch(/impair\.delay: '2min' is not a tc time like 50ms/);
    expect(bad('{delay: 61s}')[0]).toMatch(/impair\.delay: 61s is above 60s/);
    expect(bad('{jitter: 5ms}')[0]).toMatch(/impair\.jitter: jitter varies the delay: give a delay too/);
    expect(bad('{reorder: 25%}')[0]).toMatch(/impair\.reorder: reorder .*needs a delay/);
    expect(bad('{rate: 0bit}')[0]).toMatch(/impair\.rate: a rate of 0 passes nothing/);
    expect(bad('{rate: fast}')[0]).toMatch(/impair\.rate: 'fast' is not a tc rate/);
    expect(bad('{lost: 1%}')[0]).toMatch(/lab\.yaml:9:\d+: nodes\[0\]\.uplink\.impair\.lost: unknown field 'lost'/);
    expect(errors(topology('', '    impair: {duplicate: 1}'))[0]).toMatch(
      /links\[0\]\.impair\.duplicate: write the duplicate as a percentage/,
    );
  });

  it('refuses uplink impair beside the bandwidth manager (both want the uplink root qdisc)', () => {
    const t = `name: imp\nnodes:\n  - name: a\n    pods:\n      - name: p\n        egressBandwidth: 10M\n    uplink:\n      peer: r\n      impair: {delay: 1ms}\n`;
    expect(errors(t).join('\n')).toMatch(/uplink\.impair: uplink impair \(a netem\) and the bandwidth manager \(fq\)/);
  });
});

describe('netem on the kernel', () => {
  it('is declined where the kernel lacks sch_netem, naming the reason; applied where it has it', () => {
    expect(netemVerdict(facts(undefined))).toEqual({
      ok: false,
      reason: 'no sch_netem: kernel lacks CONFIG_NET_SCH_NETEM (netem is the qdisc that delays, drops, duplicates and reorders packets)',
    });
    expect(netemVerdict(facts('m')).ok).toBe(false);
    expect(netemVerdict(facts('m', ['sch_netem'])).ok).toBe(true);
    const declined = impairDecisions(impaired, facts(undefined));
    expect(declined.map((d) => [d.node, d.status])).toEqual([
      ['a', 'declined'],
      ['b', 'declined'],
    ]);
    expect(declined[0]!.detail).toMatch(
      /^cannot impair a:remote \(delay 20ms, jitter 5ms, loss 1%\); a:b \(none \(a netem in place\)\): no sch_netem/,
    );
    expect(impairDecisions(impaired, facts('y')).every((d) => d.status === 'applied')).toBe(true);
    expect(impairDecisions(lab(topology('')), facts(undefined))).toEqual([]);
  });
});

describe('lab impair: a change validated against the running lab', () => {
  it('merges a change (0 turns a field off) and sends every field, so netem_change resets nothing by omission', () => {
    expect(mergeImpair({ delay: '20ms', loss: '1%', rate: '5mbit' }, { loss: '0%', duplicate: '2%', rate: '0bit' })).toEqual({
      delay: '20ms',
      duplicate: '2%',
    });
    expect(netemArgs({ delay: '20ms' }, true)).toEqual(['delay', '20ms', 'loss', '0%', 'duplicate', '0%', 'reorder', '0%', 'rate', '0bit']);
    expect(netemChangeArgv({ dev: 'uplink', parent: 'tbf' }, { loss: '3%' }, false)).toEqual(
      'tc qdisc change dev uplink parent 1:1 handle 10: netem delay 0ms loss 3% duplicate 0% reorder 0%'.split(' '),
    );
  });

  it('plans a change by link name in either order; refuses bad flags, unknown links and links without a netem (exit 2)', () => {
    const p = planImpair(impaired, 'remote:a', { delay: '60ms', loss: '3%', jitter: undefined });
    expect(p.link.name).toBe('a:remote');
    expect(p.after).toEqual({ delay: '60ms', jitter: '5ms', loss: '3%' });
    const usage = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return `${(e as { code: string }).code}: ${(e as Error).message}`;
      }
      throw new Error('expected a refusal');
    };
    expect(usage(() => planImpair(impaired, 'a:remote', {}))).toMatch(/^E_USAGE: nothing to change/);
    expect(usage(() => planImpair(impaired, 'a:remote', { loss: '3' }))).toBe("E_USAGE: --loss: '3' is not a percentage like 1% or 0.5%");
    expect(usage(() => planImpair(impaired, 'a:remote', { delay: '0ms' }))).toMatch(/^E_USAGE: --jitter: jitter varies the delay/);
    expect(usage(() => planImpair(impaired, 'a:c', { loss: '1%' }))).toBe("E_USAGE: lab imp has no link 'a:c'; links: a:remote, a:b");
    const plain = lab(topology(''));
    expect(usage(() => planImpair(plain, 'a:b', { loss: '1%' }))).toMatch(/^E_USAGE: link a:b has no netem/);
    const after = withImpair(impaired, findLink(impaired, 'b:a'), { loss: '2%' });
    expect(after.links[0]?.impair).toEqual({ loss: '2%' });
    expect(after.nodes[0]?.uplink?.impair).toEqual(impaired.nodes[0]?.uplink?.impair);
  });

  it('validates a change with the same schema as the file', () => {
    expect(ImpairSchema.safeParse({ delay: '1ms', reorder: '10%' }).success).toBe(true);
    expect(ImpairSchema.safeParse({ reorder: '10%' }).success).toBe(false);
  });
});

describe("a custom kernel's cmdline", () => {
  const custom = (cmdline: string) =>
    `name: imp\nbackend: qemu\nkernel:\n  vmlinuz: /k/vmlinuz\n  modules: /k/modules\n  cmdline: ${cmdline}\nnodes:\n  - name: a\n`;
  it('is kept for the VM, and refused with file:line when it is not kernel parameters', () => {
    expect(lab(custom('rdinit=/nonexistent')).customKernel).toMatchObject({ cmdline: 'rdinit=/nonexistent', vmlinuz: '/k/vmlinuz' });
    expect(errors(custom('"a  b"'))).toEqual([
      'lab.yaml:6:12: kernel.cmdline: kernel parameters: printable words separated by single spaces',
    ]);
  });
});

describe('a bottleneck on an impaired link', () => {
  it('is restored with its netem under it (lifting the tbf deletes its child)', async () => {
    const inputs: string[] = [];
    const exec = { run: async (_argv: string[], o?: { input?: string }) => void inputs.push(o?.input ?? '') } as unknown as Exec;
    await Bottleneck.ofUplink(impaired, impaired.nodes[0]!, exec)!.restore();
    expect(inputs).toEqual([
      'qdisc replace dev uplink root handle 1: tbf rate 100mbit burst 64kb latency 50ms\n' +
        'qdisc replace dev uplink parent 1:1 handle 10: netem delay 20ms 5ms loss 1% duplicate 0% reorder 0%\n',
    ]);
  });
});

describe('a snapshot before a check restores its bottleneck', () => {
  it('is taken when the measurement under a changed bottleneck throws, before the restore; never when it succeeds', async () => {
    const events: string[] = [];
    const exec = {
      run: async (argv: string[], o?: { input?: string }) =>
        void events.push(`tc ${o?.input ? o.input.split(' ').slice(0, 2).join(' ') : argv.slice(1, 3).join(' ')}`),
    } as unknown as Exec;
    const neck = Bottleneck.ofUplink(impaired, impaired.nodes[0]!, exec)!;
    const capture = async (why: string) => void events.push(`snapshot: ${why}`);
    await expect(
      withPreRestore(capture, () =>
        neck.with({ lift: true }, async () => {
          throw new Error('iperf3 never connected');
        }),
      ),
    ).rejects.toThrow('iperf3 never connected');
    expect(events).toEqual([
      'tc qdisc del',
      'snapshot: tbf lifted from uplink; the measurement under it failed: iperf3 never connected',
      'tc qdisc replace',
    ]);
    events.length = 0;
    await withPreRestore(capture, () => neck.with({ lift: true }, async () => 1));
    expect(events.filter((e) => e.startsWith('snapshot'))).toEqual([]);
  });
});

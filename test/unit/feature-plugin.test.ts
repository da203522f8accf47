import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Feature } from '../../src/datapath/feature.js';
import { FEATURES } from '../../src/datapath/registry.js';
import type { LabContext } from '../../src/lifecycle/context.js';
import { Journal } from '../../src/lifecycle/journal.js';
import { deployNode } from '../../src/lifecycle/steps.js';
import type { LabNode } from '../../src/topology/model.js';
import type { KernelFacts } from '../../src/kernel/facts.js';

/**
 * A feature written the way a new one is added: its own object with requires/decide/
 * apply/remove. deployNode runs it without knowing its name; nothing in the lifecycle,
 * CLI or report changes for it.
 */
type EchoMode = 'loud' | 'quiet';
const applied: string[] = [];
const echo: Feature<EchoMode> = {
  id: 'echo',
  title: 'an example feature',
  requires: () => ({ ok: true }),
  decide: (_f, _dp, node) => ({ feature: 'echo', node, status: node === 'n2' ? 'declined' : 'applied', mode: 'loud', detail: 'example' }),
  async apply(ctx, node, d) {
    ctx.journal.record({ backend: ctx.backend.kind, node: node.name }, [{ kind: 'dir', path: `/tmp/echo-${node.name}` }]);
    applied.push(`${node.name}:${d.mode}`);
  },
};

describe('datapath features as plug-ins', () => {
  it('deployNode applies registered features in order, skips declined ones, and journals what they create', async () => {
    process.env.DPL_STATE_DIR = mkdtempSync(join(tmpdir(), 'dpl-feature-'));
    const journal = Journal.create('plug');
    const facts = {} as KernelFacts;
    const nodes = ['n1', 'n2'].map((name) => ({ name, pods: [] }) as unknown as LabNode);
    const decisions = nodes.map((n) => echo.decide(facts, {} as never, n.name));
    const ctx = { backend: { kind: 'local' }, journal, decisions, progress: () => {} } as unknown as LabContext;
    for (const n of nodes) await deployNode(ctx, n, [echo]);
    expect(applied).toEqual(['n1:loud']);
    expect(journal.live()).toEqual([{ seq: 1, obj: { kind: 'dir', path: '/tmp/echo-n1' }, owner: { backend: 'local', node: 'n1' } }]);
  });

  it('every registered feature decides with a typed mode and an id of its own', () => {
    const facts = { version: [6, 18], config: {}, tools: { ip: {}, bpftool: {} }, bpffs: true } as unknown as KernelFacts;
    expect(new Set(FEATURES.map((f) => f.id)).size).toBe(FEATURES.length);
    expect(FEATURES.length).toBeGreaterThan(0);
    for (const f of FEATURES) {
      const d = f.decide(facts, { hostRouting: 'bpf', bigTcp: true, podDevice: 'auto', kubeProxy: 'bpf' }, 'n');
      expect(d.feature).toBe(f.id);
      expect(typeof d.mode).toBe('string');
      expect(d.mode.length).toBeGreaterThan(0);
    }
  });
});

import { describe, expect, it } from 'vitest';
import * as lab from '../../src/index.js';

describe('the library entry', () => {
  it('parses, resolves and lists what the CLI uses', () => {
    const p = lab.parseTopology('name: lib\nnodes:\n  - name: n1\n    pods: [{name: a}]\n', 'lib.yaml');
    if (!p.ok) throw new Error('parse');
    const r = lab.resolve(p.value);
    expect(r.ok && r.value.nodes[0].pods[0].netns).toBe('dpl-lib.n1.a');
    expect(lab.backendNames()).toEqual(['local', 'qemu', 'sim', 'ssh', 'vagrant']);
    expect(lab.CHECKS.map((c) => c.id)).toContain('backpressure');
    expect(typeof lab.labMachine.provide).toBe('function');
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';
import { jsonSchema } from '../../src/topology/schema.js';

const load = (text: string) => {
  const p = parseTopology(text, 'lab.yaml');
  if (!p.ok) return p;
  return resolve(p.value);
};
const errors = (text: string) => {
  const r = load(text);
  if (r.ok) throw new Error('expected errors');
  return r.errors;
};

const minimal = `name: t1
nodes:
  - name: n1
    pods:
      - name: a
      - name: b
    uplink:
      peer: remote
      rate: 200mbit
`;

describe('topology loader and resolver', () => {
  it('resolves defaults: addresses, namespaces, device names, all checks', () => {
    const r = load(minimal.replace('name: t1', 'name: t1\nfamilies: [ipv4, ipv6]'));
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const lab = r.value;
    expect(lab.backend).toBe('local');
    const n = lab.nodes[0];
    expect(n.netns).toBe('dpl-t1.n1');
    expect(n.datapath).toEqual({ hostRouting: 'bpf', bigTcp: true, podDevice: 'auto' });
    expect(n.gw4).toBe('10.244.1.1');
    expect(n.pods.map((p) => [p.netns, p.hostDev, p.ipv4, p.ipv6])).toEqual([
      ['dpl-t1.n1.a', 'lxc-a', '10.244.1.2', 'fd00:244:1::2'],
      ['dpl-t1.n1.b', 'lxc-b', '10.244.1.3', 'fd00:244:1::3'],
    ]);
    expect(n.uplink).toMatchObject({ node4: { addr: '10.255.1.1', len: 30 }, peer4: { addr: '10.255.1.2', len: 30 }, rate: '200mbit' });
    expect(lab.peers).toEqual([{ name: 'remote', netns: 'dpl-t1.remote', node: 'n1' }]);
    expect(lab.checks.map((c) => c.id)).toEqual(['backpressure', 'tso-probe', 'bigtcp', 'netkit', 'netkit-throughput', 'connectivity']);
  });

  it('node datapath overrides the lab profile', () => {
    const r = load(minimal.replace('    pods:', '    datapath: { hostRouting: legacy }\n    pods:'));
    expect(r.ok && r.value.nodes[0].datapath.hostRouting).toBe('legacy');
  });

  it('reports malformed YAML with its line', () => {
    const [e] = errors('name: t1\nnodes:\n  - name: [unclosed\n');
    expect(e.line).toBeGreaterThanOrEqual(3);
    expect(e.message).toMatch(/^YAML:/);
  });

  it('reports an unknown field at its line with the field path', () => {
    const [e] = errors(minimal.replace('      rate: 200mbit', '      rate: 200mbit\n      colour: blue'));
    expect(e).toMatchObject({ file: 'lab.yaml', line: 10, column: 7, path: 'nodes[0].uplink.colour' });
    expect(e.message).toContain("unknown field 'colour'");
  });

  it('reports a missing field and a bad enum value', () => {
    expect(errors('nodes:\n  - name: n1\n')[0]).toMatchObject({ path: 'name', message: expect.stringContaining('missing required field') });
    const [e] = errors(minimal + 'datapath:\n  hostRouting: fast\n');
    expect(e).toMatchObject({ path: 'datapath.hostRouting', line: 11 });
    expect(e.message).toContain('"bpf", "legacy"');
  });

  it('reports duplicate names', () => {
    const e = errors(minimal.replace('      - name: b', '      - name: a'));
    expect(e[0]).toMatchObject({ path: 'nodes[0].pods[1].name', line: 6 });
    expect(e[0].message).toContain("duplicate pod name 'a'");
    const e2 = errors(`name: t1\nnodes:\n  - name: n1\n  - name: n1\n`);
    expect(e2[0].message).toContain("duplicate node name 'n1'");
  });

  it('reports names too long for an interface', () => {
    const [e] = errors(minimal.replace('      - name: b', '      - name: averyveryverylongpod'));
    expect(e.path).toBe('nodes[0].pods[1].name');
    expect(e.message).toMatch(/at most 11 characters/);
  });

  it('reports overlapping prefixes', () => {
    const e = errors(`name: t1\nnodes:\n  - name: n1\n    podCidr: 10.0.0.0/16\n  - name: n2\n    podCidr: 10.0.5.0/24\n`);
    expect(e[0]).toMatchObject({ path: 'nodes[1].podCidr', line: 6 });
    expect(e[0].message).toContain('10.0.5.0/24 overlaps 10.0.0.0/16');
  });

  it('reports a pod address outside its node prefix', () => {
    const [e] = errors(minimal.replace('      - name: a', '      - name: a\n        ipv4: 10.9.9.9'));
    expect(e).toMatchObject({ path: 'nodes[0].pods[0].ipv4' });
  });

  it('reports an unknown backend, listing the known ones', () => {
    const [e] = errors(minimal + 'backend: firecracker\n');
    expect(e).toMatchObject({ path: 'backend', line: 10 });
    expect(e.message).toBe("unknown backend 'firecracker'; known: local, qemu");
  });

  it('reports links to unknown nodes and self links', () => {
    const e = errors(minimal + 'links:\n  - endpoints: [n1, n9]\n  - endpoints: [n1, n1]\n');
    expect(e.map((x) => x.path)).toEqual(['links[0].endpoints[1]', 'links[1].endpoints']);
  });

  it('the committed JSON Schema is the one the zod schema generates', () => {
    const committed = JSON.parse(readFileSync(new URL('../../topologies/topology.schema.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(JSON.parse(JSON.stringify(jsonSchema())));
  });

  it('every shipped topology is valid', () => {
    for (const f of ['quickstart', 'two-node']) {
      const text = readFileSync(new URL(`../../topologies/${f}.yaml`, import.meta.url), 'utf8');
      const r = load(text);
      expect(r.ok, JSON.stringify(!r.ok && r.errors)).toBe(true);
    }
  });
});

describe('qemu topologies', () => {
  it('default to the reference kernel and take a kernels list for a matrix', () => {
    const r = load(minimal + 'backend: qemu\nkernels: ["6.1", "7.3"]\n');
    expect(r.ok && [r.value.kernel, r.value.kernels]).toEqual(['6.1', ['6.1', '7.3']]);
    const d = load(minimal + 'backend: qemu\n');
    expect(d.ok && d.value.kernel).toBe('6.12');
  });
  it('refuse kernel on the local backend', () => {
    expect(errors(minimal + 'kernel: "6.12"\n')[0].message).toContain('kernel applies to the qemu backend only');
  });
});

describe('a custom kernel', () => {
  it('takes a bzImage and modules dir, resolved against the topology file', () => {
    const p = parseTopology(minimal + 'backend: qemu\nkernel:\n  vmlinuz: k/bzImage\n  modules: k/lib/modules/6.9.0-dev\n', '/labs/x/lab.yaml');
    if (!p.ok) throw new Error(JSON.stringify(p.errors));
    const r = resolve(p.value);
    expect(r.ok && r.value.customKernel).toEqual({ vmlinuz: '/labs/x/k/bzImage', modulesDir: '/labs/x/k/lib/modules/6.9.0-dev', config: undefined });
    expect(r.ok && r.value.kernel).toBe('custom');
  });
});

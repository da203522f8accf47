import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backendNames } from '../../src/backends/registry.js';
import { formatIssue } from '../../src/errors.js';
import { BACKENDS, CHECK_IDS } from '../../src/topology/ids.js';
import { MAX_ALIAS_NODES, MAX_DEPTH, MAX_TOPOLOGY_BYTES, firstInvalidUtf8, positionAt } from '../../src/topology/limits.js';
import { loadTopologyFile, parseTopology } from '../../src/topology/loader.js';
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
    expect(n.datapath).toEqual({ hostRouting: 'bpf', bigTcp: true, podDevice: 'auto', kubeProxy: 'bpf' });
    expect(n.gw4).toBe('10.244.1.1');
    expect(n.pods.map((p) => [p.netns, p.hostDev, p.ipv4, p.ipv6])).toEqual([
      ['dpl-t1.n1.a', 'lxc-a', '10.244.1.2', 'fd00:244:1::2'],
      ['dpl-t1.n1.b', 'lxc-b', '10.244.1.3', 'fd00:244:1::3'],
    ]);
    expect(n.uplink).toMatchObject({ node4: { addr: '10.255.1.1', len: 30 }, peer4: { addr: '10.255.1.2', len: 30 }, rate: '200mbit' });
    expect(lab.peers).toEqual([{ name: 'remote', netns: 'dpl-t1.remote', node: 'n1' }]);
    expect(lab.checks.map((c) => c.id)).toEqual([...CHECK_IDS]);
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
    expect(e.message).toBe("unknown hostRouting mode 'fast'; hostRouting modes are: bpf, legacy");
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
    expect(e.message).toBe("unknown backend 'firecracker'; backends are: local, qemu, sim, ssh, vagrant");
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
    for (const f of ['quickstart', 'two-node', 'vm-quickstart', 'vm-two-node']) {
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
    expect(errors(minimal + 'kernel: "6.12"\n')[0].message).toContain('kernel applies to the qemu and vagrant backends only');
  });
});

describe('vagrant topologies', () => {
  it('refuse a second link on a node (a Vagrant machine has one link NIC), naming the endpoint', () => {
    const three = `name: t1\nbackend: vagrant\nnodes:\n  - name: n1\n  - name: n2\n  - name: n3\nlinks:\n  - endpoints: [n1, n2]\n  - endpoints: [n2, n3]\n`;
    const [e, ...rest] = errors(three);
    expect(rest).toEqual([]);
    expect(e).toMatchObject({ path: 'links[1].endpoints[0]', line: 9 });
    expect(e.message).toContain("node 'n2' already has a link");
    expect(load(three.replace('backend: vagrant', 'backend: qemu')).ok).toBe(true);
  });
});

describe('a custom kernel', () => {
  it('takes a bzImage and modules dir, resolved against the topology file', () => {
    const p = parseTopology(
      minimal + 'backend: qemu\nkernel:\n  vmlinuz: k/bzImage\n  modules: k/lib/modules/6.9.0-dev\n',
      '/labs/x/lab.yaml',
    );
    if (!p.ok) throw new Error(JSON.stringify(p.errors));
    const r = resolve(p.value);
    expect(r.ok && r.value.customKernel).toEqual({
      vmlinuz: '/labs/x/k/bzImage',
      modulesDir: '/labs/x/k/lib/modules/6.9.0-dev',
      config: undefined,
    });
    expect(r.ok && r.value.kernel).toBe('custom');
  });
});

/** The one error of a bad file, as file:line:col: path: message. */
const only = (text: string) => {
  const e = errors(text);
  expect(e, JSON.stringify(e)).toHaveLength(1);
  return formatIssue(e[0]);
};
const withPod = (field: string) =>
  minimal.replace('name: t1', 'name: t1\nfamilies: [ipv4, ipv6]').replace('      - name: a', `      - name: a\n        ${field}`);

describe('YAML resource limits', () => {
  it('an alias bomb is refused at the alias that crosses the limit, before toJS expands it', () => {
    const levels = [
      'a0: &a0 [x,x,x,x,x,x,x,x,x,x]',
      ...[1, 2, 3].map(
        (i) =>
          `a${i}: &a${i} [${Array(10)
            .fill(`*a${i - 1}`)
            .join(',')}]`,
      ),
    ];
    // Under an unknown key and under a known one: the limit comes before validation.
    expect(only(`name: t1\n${levels.join('\n')}\nnodes:\n  - name: n1\n`)).toBe(
      `lab.yaml:5:38: a3[7]: aliases expand to more than ${MAX_ALIAS_NODES} nodes here (an alias bomb?); a topology needs few`,
    );
    const known =
      `name: t1\nnodes:\n  - name: n1\n    pods: &p0 [{name: a}, {name: b}, {name: c}, {name: d}, {name: e}]\n` +
      [1, 2, 3, 4, 5]
        .map(
          (i) =>
            `  - name: m${i}\n    pods: &p${i} [${Array(10)
              .fill(`*p${i - 1}`)
              .join(', ')}]`,
        )
        .join('\n') +
      '\n';
    expect(only(known)).toMatch(/^lab\.yaml:\d+:\d+: nodes\[\d\]\.pods\[\d\]: aliases expand to more than 10000 nodes/);
  });
  it('a few aliases are fine (a shared datapath profile)', () => {
    const r = load(`name: t1\nnodes:\n  - name: n1\n    datapath: &dp { hostRouting: legacy }\n  - name: n2\n    datapath: *dp\n`);
    expect(r.ok && r.value.nodes.map((n) => n.datapath.hostRouting)).toEqual(['legacy', 'legacy']);
  });
  it('an alias inside its own anchor (a cycle) is refused, not turned into a cyclic object', () => {
    expect(only('name: t1\nnodes: &n\n  - name: n1\n  - *n\n')).toBe(
      'lab.yaml:4:5: nodes[1]: alias *n refers to a node that holds it (a cycle)',
    );
  });
  it('nesting deeper than the limit is refused where it crosses it, in flow and block style', () => {
    const flow = `name: t1\nx: ${'['.repeat(MAX_DEPTH + 5)}${']'.repeat(MAX_DEPTH + 5)}\n`;
    expect(only(flow)).toBe(
      `lab.yaml:2:${4 + MAX_DEPTH}: YAML: nested more than ${MAX_DEPTH} levels deep (a topology nests 5); refusing to read it`,
    );
    const block = `name: t1\n${Array.from({ length: MAX_DEPTH + 5 }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n')} 1\n`;
    expect(only(block)).toMatch(new RegExp(`^lab\\.yaml:${MAX_DEPTH + 2}:\\d+: YAML: nested more than ${MAX_DEPTH} levels`));
    // A megabyte of '[' is answered at once (the lexer stops at the limit).
    const t0 = performance.now();
    expect(only(`name: t1\nx: ${'['.repeat(100_000)}\n`)).toContain('nested more than');
    expect(performance.now() - t0).toBeLessThan(5000);
  });
  it('aliases that nest the document past the depth limit are refused at the alias', () => {
    const chain = ['a0: &a0 1', ...Array.from({ length: MAX_DEPTH + 2 }, (_, i) => `a${i + 1}: &a${i + 1} [*a${i}]`)];
    expect(only(`name: t1\n${chain.join('\n')}\n`)).toBe(
      `lab.yaml:${MAX_DEPTH + 2}:12: a${MAX_DEPTH}[0]: alias *a${MAX_DEPTH - 1} nests the document more than ${MAX_DEPTH} levels deep`,
    );
  });
  it('text past the size limit is refused at the line where it crosses the limit', () => {
    // 9 bytes, then lines of 1024: byte 256 Ki is in line 257, column 1016.
    const text = `name: t1\n${`#${' '.repeat(1022)}\n`.repeat(MAX_TOPOLOGY_BYTES / 1024)}`;
    expect(only(text)).toBe(
      `lab.yaml:${MAX_TOPOLOGY_BYTES / 1024 + 1}:${((MAX_TOPOLOGY_BYTES - 9) % 1024) + 1}: the file is larger than ${MAX_TOPOLOGY_BYTES / 1024} KiB (a topology is a few); refusing to read past here`,
    );
  });
  it('an unresolved tag, a second document, an empty file, a list', () => {
    expect(only(minimal + 'x: !foo 1\n')).toBe('lab.yaml:10:4: YAML: Unresolved tag: !foo');
    expect(only(minimal + '---\nname: t2\n')).toBe('lab.yaml:10:1: YAML: the file holds more than one document (---); a topology is one');
    expect(only('')).toBe('lab.yaml:1: an empty file: expected a mapping with name, nodes, ... (see topologies/quickstart.yaml)');
    expect(only('- a\n')).toBe('lab.yaml:1: a list: expected a mapping with name, nodes, ... (see topologies/quickstart.yaml)');
  });
});

describe('utf-8 and offsets', () => {
  it('finds the first byte that is not UTF-8, also in a truncated sequence at the end', () => {
    const enc = new TextEncoder();
    expect(firstInvalidUtf8(enc.encode('name: é\n'))).toBe(-1);
    expect(firstInvalidUtf8(Uint8Array.from([...enc.encode('ab\n'), 0xff, 0x41]))).toBe(3);
    expect(firstInvalidUtf8(Uint8Array.from([...enc.encode('é'), 0xc3]))).toBe(2);
    expect(firstInvalidUtf8(Uint8Array.from([0x41, 0xe2, 0x82, 0x41]))).toBe(1);
    expect(firstInvalidUtf8(Uint8Array.from([0x41, 0x80]))).toBe(1);
    expect(positionAt('ab\ncd', 4)).toEqual({ line: 2, column: 2 });
  });
});

describe('addresses and prefixes', () => {
  it('names what is wrong with an address', () => {
    expect(only(withPod('ipv4: 10.1.1.300'))).toBe(
      "lab.yaml:7:15: nodes[0].pods[0].ipv4: '10.1.1.300' is not an IPv4 address (like 10.244.1.2)",
    );
    expect(only(withPod('ipv6: "fd00::1::2"'))).toBe(
      "lab.yaml:7:15: nodes[0].pods[0].ipv6: 'fd00::1::2' is not an IPv6 address (like fd00:244:1::2)",
    );
    expect(only(withPod('ipv6: 10.244.1.5'))).toContain("'10.244.1.5' is an IPv4 address; this field takes IPv6");
    expect(only(withPod('ipv4: 10.244.1.5/24'))).toContain("'10.244.1.5/24' is a prefix; this field takes an IPv4 address without /LENGTH");
  });
  it('accepts IPv6 text with :: and normalises it', () => {
    const r = load(withPod('ipv6: "FD00:244:1:0::0005"'));
    expect(r.ok && r.value.nodes[0].pods[0].ipv6).toBe('fd00:244:1::5');
  });
  it('names what is wrong with a prefix: no length, length out of range, host bits', () => {
    const cidr = (c: string) => only(minimal.replace('    pods:', `    podCidr: ${c}\n    pods:`));
    expect(cidr('10.244.1.0')).toBe(
      "lab.yaml:4:14: nodes[0].podCidr: '10.244.1.0' is not an IPv4 prefix: it lacks /LENGTH (like 10.244.1.0/24)",
    );
    expect(cidr('10.244.1.0/33')).toBe("lab.yaml:4:14: nodes[0].podCidr: '10.244.1.0/33': prefix length '33' is not a number from 0 to 32");
    expect(cidr('10.244.1.5/24')).toBe("lab.yaml:4:14: nodes[0].podCidr: '10.244.1.5/24' has host bits set; the prefix is 10.244.1.0/24");
    expect(cidr('10.244.1.0/31')).toBe(
      'lab.yaml:4:14: nodes[0].podCidr: 10.244.1.0/31 is too small for pods: it holds the network address, the gateway, a pod and the broadcast address (at most /30)',
    );
    expect(cidr('"fd00::/64"')).toContain("'fd00::/64' is an IPv6 prefix; this field takes IPv4");
  });
  it("refuses a pod on the node's gateway, the network address and the IPv4 broadcast address", () => {
    expect(only(withPod('ipv4: 10.244.1.1'))).toBe(
      "lab.yaml:7:15: nodes[0].pods[0].ipv4: 10.244.1.1 is the node's gateway (host 1 of 10.244.1.0/24, on every pod device); pods take hosts 2 and up",
    );
    expect(only(withPod('ipv6: "fd00:244:1::1"'))).toContain("fd00:244:1::1 is the node's gateway (host 1 of fd00:244:1::/64");
    expect(only(withPod('ipv4: 10.244.1.0'))).toContain('10.244.1.0 is the network address of 10.244.1.0/24');
    expect(only(withPod('ipv6: "fd00:244:1::"'))).toContain('fd00:244:1:: is the network address of fd00:244:1::/64');
    expect(only(withPod('ipv4: 10.244.1.255'))).toContain('10.244.1.255 is the broadcast address of 10.244.1.0/24');
  });
  it('does not hand out the broadcast address by default', () => {
    const pods = (n: number) => Array.from({ length: n }, (_, i) => `      - name: p${i}`).join('\n');
    expect(load(`name: t1\nnodes:\n  - name: n1\n    podCidr: 10.9.0.0/29\n    pods:\n${pods(5)}\n`).ok).toBe(true);
    expect(only(`name: t1\nnodes:\n  - name: n1\n    podCidr: 10.9.0.0/29\n    pods:\n${pods(6)}\n`)).toBe(
      'lab.yaml:11:9: nodes[0].pods[5]: pod prefix 10.9.0.0/29 has no room for pod 6',
    );
  });
  it('refuses link and uplink prefixes without two hosts, and fields of a family the lab does not use', () => {
    expect(only(`${minimal}  - name: n2\nlinks:\n  - endpoints: [n1, n2]\n    ipv4: 10.9.0.0/31\n`)).toBe(
      'lab.yaml:13:11: links[0].ipv4: 10.9.0.0/31 is too small: a link needs two hosts (at most /30)',
    );
    expect(only(minimal.replace('      rate: 200mbit', '      ipv4: 10.9.0.0/32'))).toContain(
      'nodes[0].uplink.ipv4: 10.9.0.0/32 is too small: the uplink needs two hosts',
    );
    expect(only(minimal.replace('      - name: a', '      - name: a\n        ipv6: "fd00:244:1::5"'))).toBe(
      'lab.yaml:6:15: nodes[0].pods[0].ipv6: ipv6 is set but families is [ipv4]: add ipv6 to families, or remove this',
    );
  });
});

describe('enums, unions and values: messages that name the value and the choices', () => {
  it('an unknown check id lists the known ones, as a string or in a mapping', () => {
    const list = CHECK_IDS.join(', ');
    expect(only(minimal + 'checks: [bigtcp, speed]\n')).toBe(`lab.yaml:10:18: checks[1]: unknown check 'speed'; checks are: ${list}`);
    expect(only(minimal + 'checks:\n  - { id: speed, seconds: 2 }\n')).toBe(
      `lab.yaml:11:11: checks[0].id: unknown check 'speed'; checks are: ${list}`,
    );
    expect(only(minimal + 'checks: [3]\n')).toBe(
      `lab.yaml:10:10: checks[0]: expected a check id (${list}) or a mapping {id, pod, seconds}, got 3`,
    );
    expect(only(minimal + 'checks: [{ id: bigtcp, colour: red }]\n')).toBe("lab.yaml:10:24: checks[0].colour: unknown field 'colour'");
    expect(only(minimal + 'checks: [bigtcp, bigtcp]\n')).toBe(
      'lab.yaml:10:18: checks[1]: check bigtcp is listed twice (first at checks[0])',
    );
  });
  it('families, datapath fields and types', () => {
    expect(only(minimal + 'families: [ipv4, ipv5]\n')).toBe("lab.yaml:10:18: families[1]: unknown family 'ipv5'; families are: ipv4, ipv6");
    expect(only(minimal + 'families: [ipv4, ipv4]\n')).toBe(
      'lab.yaml:10:18: families[1]: family ipv4 is listed twice (first at families[0])',
    );
    expect(only(minimal + 'datapath: { podDevice: tap }\n')).toBe(
      "lab.yaml:10:24: datapath.podDevice: unknown podDevice kind 'tap'; podDevice kinds are: auto, veth, netkit",
    );
    expect(only(minimal + 'datapath: { bigTcp: yes }\n')).toBe("lab.yaml:10:21: datapath.bigTcp: expected true or false, got 'yes'");
    expect(only(minimal.replace('    pods:\n      - name: a\n      - name: b\n', '    pods: client\n'))).toBe(
      "lab.yaml:4:11: nodes[0].pods: expected a list, got 'client'",
    );
    expect(only(minimal.replace('name: t1', 'name: 12'))).toBe('lab.yaml:1:7: name: expected text, got 12');
  });
  it('seconds: a whole number from 1 to 60', () => {
    for (const s of ['0', '-1', '2.5', '61', 'two'])
      expect(only(minimal + `checks: [{ id: bigtcp, seconds: ${s} }]\n`)).toBe(
        'lab.yaml:10:33: checks[0].seconds: seconds is a whole number from 1 to 60',
      );
  });
  it('a rate of 0 and a link that is not two endpoints', () => {
    expect(only(minimal.replace('200mbit', '0mbit'))).toBe(
      'lab.yaml:9:13: nodes[0].uplink.rate: a rate of 0 passes nothing; give one above 0, like 200mbit',
    );
    expect(only(minimal.replace('200mbit', '200mb'))).toContain('a tc rate like 200mbit');
    for (const r of ['8bit', '9999bit', '2tbit', '126gbps'])
      expect(only(minimal.replace('200mbit', r))).toBe(
        `lab.yaml:9:13: nodes[0].uplink.rate: ${r} is outside 10kbit to 1tbit, where tc's tbf keeps its 64 KiB burst (it counts it in 32-bit clock ticks)`,
      );
    for (const r of ['10kbit', '1.5mbit', '1tbit', '125mbps']) expect(load(minimal.replace('200mbit', r)).ok, r).toBe(true);
    expect(only(minimal + 'links:\n  - endpoints: [n1]\n')).toBe(
      'lab.yaml:11:16: links[0].endpoints: a link has two endpoints: [node, node]',
    );
    expect(only(minimal + 'links:\n  - endpoints: [n1, n1]\n')).toBe(
      'lab.yaml:11:16: links[0].endpoints: a link joins two different nodes',
    );
  });
});

describe('names that would collide on the machine', () => {
  it('a peer named like a node (both would be namespace dpl-LAB.NAME); two uplinks to one peer only where one kernel holds both', () => {
    expect(only(minimal.replace('peer: remote', 'peer: n1'))).toBe(
      "lab.yaml:8:13: nodes[0].uplink.peer: duplicate peer name 'n1' (first at nodes[0].name)",
    );
    const two = `${minimal}  - name: n2\n    uplink:\n      peer: remote\n`;
    expect(load(two).ok).toBe(true);
    expect(only(two.replace('name: t1', 'name: t1\nbackend: qemu'))).toMatch(
      /^lab\.yaml:13:13: nodes\[1\]\.uplink\.peer: peer 'remote' is also behind the node at nodes\[0\]\.uplink\.peer: .*local backend only/,
    );
  });
});

describe('backends and kernels, without the backend registry', () => {
  it('the topology names the backends the registry has', () => {
    expect([...BACKENDS].sort()).toEqual(backendNames().sort());
  });
  it('the resolver does not import the backend registry', () => {
    const src = readFileSync(new URL('../../src/topology/resolver.ts', import.meta.url), 'utf8');
    expect(src).not.toMatch(/backends\//);
  });
  it("refuses kernel and kernels names the catalogue lacks, listing the catalogue's names", () => {
    const known = ['6.1', '6.12', '7.3'];
    const qemu = (extra: string) => {
      const p = parseTopology(minimal + `backend: qemu\n${extra}`, 'lab.yaml');
      if (!p.ok) throw new Error(JSON.stringify(p.errors));
      const r = resolve(p.value, { kernelNames: known });
      return r.ok ? [] : r.errors.map(formatIssue);
    };
    expect(qemu('kernel: "9.99"\n')).toEqual([
      "lab.yaml:11:9: kernel: no kernel '9.99' in the catalogue (vms/kernels.yaml); kernels are: 6.1, 6.12, 7.3, or {vmlinuz, modules} for your own",
    ]);
    expect(qemu('kernels: ["6.1", "9.99"]\n')).toEqual([
      expect.stringMatching(/^lab\.yaml:11:18: kernels\[1\]: no kernel '9\.99' in the catalogue/),
    ]);
    expect(qemu('kernels: ["6.1", "6.1"]\n')).toEqual(['lab.yaml:11:18: kernels[1]: kernel 6.1 is listed twice (first at kernels[0])']);
    expect(qemu('kernel: "6.12"\n')).toEqual([]);
  });
  it('reads the real catalogue when not given one', () => {
    expect(errors(minimal + 'backend: qemu\nkernel: "9.99"\n')[0].message).toMatch(/kernels are: .*6\.12/);
  });
  it('an unquoted kernel name is refused: YAML reads 6.10 as 6.1', () => {
    expect(only(minimal + 'backend: qemu\nkernel: 6.10\n')).toBe(
      'lab.yaml:11:9: kernel: write the kernel name in quotes (kernel: "6.12"): unquoted, YAML reads it as the number 6.1',
    );
  });
});

describe('reading files', () => {
  it('a missing file, a directory, a file that is not UTF-8, one too large', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpl-unit-'));
    const at = (name: string, data?: string | Uint8Array) => {
      const f = join(dir, name);
      if (data !== undefined) writeFileSync(f, data);
      return f;
    };
    const read = async (f: string) => {
      const r = await loadTopologyFile(f);
      if (r.ok) throw new Error('expected errors');
      return r.errors.map(formatIssue);
    };
    expect(await read(at('none.yaml'))).toEqual([`${dir}/none.yaml: no such file`]);
    expect(await read(dir)).toEqual([`${dir}: is a directory; give a topology file (YAML), like topologies/quickstart.yaml`]);
    const latin1 = at('latin1.yaml', Uint8Array.from([...new TextEncoder().encode('name: t1\nnodes:\n  - name: caf'), 0xe9, 0x0a]));
    expect(await read(latin1)).toEqual([`${latin1}:3:14: not UTF-8 text (byte 0xe9 at offset 29); save the file as UTF-8`]);
    const big = at('big.yaml', `name: t1\n${'#'.repeat(MAX_TOPOLOGY_BYTES)}\n`);
    expect(await read(big)).toEqual([
      `${big}:2:${MAX_TOPOLOGY_BYTES - 8}: the file is larger than ${MAX_TOPOLOGY_BYTES / 1024} KiB (a topology is a few); refusing to read past here`,
    ]);
    expect((await loadTopologyFile(at('ok.yaml', minimal))).ok).toBe(true);
  });
});

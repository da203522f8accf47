import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, quickstart, topo } from '../kernel/helpers.js';
import { CHECK_IDS } from '../../src/topology/ids.js';

/** What a lab of that name could have created: namespaces, its BPF pin dir, its state dir. */
const leftovers = (lab: string) => [
  ...(existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(`dpl-${lab}.`)) : []),
  ...[`/sys/fs/bpf/dpl/${lab}`, `/run/datapath-lab/${lab}`].filter((d) => existsSync(d)),
];
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Bad input in FILE: exit 2, a message naming file:line and field, no stack trace, and nothing created. */
async function rejectsFile(file: string, lab: string, expected: (string | RegExp)[], verb: 'run' | 'up' = 'run', args: string[] = []) {
  const r = await cli([verb, file, '-q', ...args]);
  expect(r.code, r.stderr).toBe(2);
  for (const e of expected) expect(r.stderr).toMatch(typeof e === 'string' ? new RegExp(escapeRe(e).replace('FILE', escapeRe(file))) : e);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  expect(leftovers(lab)).toEqual([]);
}

/** The same for topology text, written to a temp file. */
async function rejects(text: string, ...expected: (string | RegExp)[]) {
  await rejectsFile(topo(text), /^name: (\S+)/m.exec(text)?.[1] ?? 'none', expected);
}

describe('cli: status of state it cannot fully read', () => {
  it('a lab whose journal names a backend this version lacks is listed, not fatal, and its nodes shown as unknown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpl-state-'));
    const entry = { seq: 1, obj: { kind: 'netns', name: 'dpl-fut.node1' }, owner: { backend: 'newer', node: 'node1' }, op: 'create' };
    mkdirSync(join(dir, 'fut'));
    writeFileSync(join(dir, 'fut', 'journal.jsonl'), `${JSON.stringify(entry)}\n`);
    const saved = process.env.DPL_STATE_DIR;
    process.env.DPL_STATE_DIR = dir;
    try {
      const all = await cli(['status']);
      expect(all.code, all.stderr).toBe(0);
      expect(all.stdout).toMatch(/^fut\s+unknown \(no lab\.json/m);
      const one = await cli(['status', 'fut']);
      expect(one.code, one.stderr).toBe(0);
      expect(one.stdout).toMatch(/nodes: node1 \(newer \(unknown backend\) GONE\)/);
      expect(one.stdout).not.toMatch(/undefined/);
    } finally {
      if (saved === undefined) delete process.env.DPL_STATE_DIR;
      else process.env.DPL_STATE_DIR = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cli: one vagrant lab at a time', () => {
  it('a second vagrant lab is refused at probe (exit 2, naming the first), before anything is created', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpl-state-'));
    const entry = { seq: 1, obj: { kind: 'vagrant', dir: '/nonexistent' }, owner: { backend: 'vagrant', node: 'node1' }, op: 'create' };
    mkdirSync(join(dir, 'vgfirst'));
    writeFileSync(join(dir, 'vgfirst', 'journal.jsonl'), `${JSON.stringify(entry)}\n`);
    writeFileSync(join(dir, 'vgfirst', 'lab.json'), JSON.stringify({ name: 'vgfirst', lab: { name: 'vgfirst', backend: 'vagrant' } }));
    const saved = process.env.DPL_STATE_DIR;
    process.env.DPL_STATE_DIR = dir;
    try {
      const r = await cli(['up', new URL('../../topologies/vagrant-quickstart.yaml', import.meta.url).pathname, '-q']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/vagrant lab 'vgfirst' is up: one vagrant lab at a time/);
      expect(readdirSync(dir).filter((d) => !d.startsWith('.'))).toEqual(['vgfirst']);
    } finally {
      if (saved === undefined) delete process.env.DPL_STATE_DIR;
      else process.env.DPL_STATE_DIR = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cli: bad input gets exit 2, a located message, and changes nothing', () => {
  it('malformed YAML', () => rejects('name: x\nnodes:\n  - name: [oops\n', 'FILE:4:1: YAML:'));
  it('unknown field', () => rejects(quickstart('c1') + 'colour: red\n', "FILE:11:1: colour: unknown field 'colour'"));
  it('missing field', () => rejects('name: c2\n', 'FILE:1:1: nodes: missing required field'));
  it('duplicate names', () =>
    rejects(quickstart('c3').replace('name: server', 'name: client'), "FILE:7:15: nodes[0].pods[1].name: duplicate pod name 'client'"));
  it('overlapping prefixes', () =>
    rejects(
      'name: c4\nnodes:\n  - name: n1\n    podCidr: 10.0.0.0/8\n  - name: n2\n    podCidr: 10.1.0.0/16\n',
      'FILE:6:14: nodes[1].podCidr: 10.1.0.0/16 overlaps 10.0.0.0/8',
    ));
  it('a name too long for an interface', () =>
    rejects(
      quickstart('c5').replace('name: server', 'name: serverserverserver'),
      'nodes[0].pods[1].name: pod name is at most 11 characters',
    ));
  it('an unknown backend', () =>
    rejects(
      quickstart('c6') + 'backend: firecracker\n',
      "FILE:11:10: backend: unknown backend 'firecracker'; backends are: local, qemu, sim",
    ));
  it('a missing file', async () => {
    const file = join(dirname(topo('')), 'nosuch.yaml');
    await rejectsFile(file, 'none', ['FILE: no such file']);
  });
  it('an empty file', () => rejects('', 'FILE:1: an empty file: expected a mapping with name, nodes'));
  it('an unknown check in --only', async () => {
    const r = await cli(['run', topo(quickstart('c7')), '--only', 'speed']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown check speed; checks are: backpressure, tso-probe, bigtcp');
  });
  it('an unknown verb, and down/status/check of a lab that does not exist', async () => {
    expect((await cli(['frobnicate'])).code).toBe(2);
    // Down of a lab that is not up is a no-op (a second `lab down`, issue 15), saying so.
    const down = await cli(['down', 'nosuchlab']);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/lab nosuchlab is not up: nothing to remove/);
    for (const args of [
      ['status', 'nosuchlab'],
      ['check', 'nosuchlab'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/no lab named 'nosuchlab'/);
    }
    expect((await cli(['down'])).code).toBe(2);
  });
  it('not root: refused with exit 2 before anything is created', async () => {
    const { spawnSync } = await import('node:child_process');
    const { CLI } = await import('../kernel/helpers.js');
    const file = topo(quickstart('c8'));
    const { chmodSync } = await import('node:fs');
    const { dirname } = await import('node:path');
    chmodSync(dirname(file), 0o755);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'up', file], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain('run it as root');
  });
});

describe('cli: input a new user gets wrong, refused before anything is created', () => {
  const bomb = (key: string) =>
    [
      'a0: &a0 [x,x,x,x,x,x,x,x,x,x]',
      ...[1, 2, 3, 4, 5, 6].map(
        (i) =>
          `a${i}: &a${i} [${Array(10)
            .fill(`*a${i - 1}`)
            .join(',')}]`,
      ),
    ]
      .map((l) => l.replace(/^a(\d): /, `${key}$1: `))
      .join('\n');
  it('a YAML alias bomb under an unknown key, for run and up', async () => {
    const file = topo(`name: bi1\n${bomb('a')}\nnodes:\n  - name: n1\n`);
    for (const verb of ['run', 'up'] as const)
      await rejectsFile(file, 'bi1', ['FILE:5:38: a3[7]: aliases expand to more than 10000 nodes here'], verb);
  });
  it('a YAML alias bomb inside a known field', () =>
    rejects(
      `name: bi2\nnodes:\n  - name: n1\n    pods: &p0 [{name: a}, {name: b}]\n${[1, 2, 3, 4, 5]
        .map(
          (i) =>
            `  - name: m${i}\n    pods: &p${i} [${Array(10)
              .fill(`*p${i - 1}`)
              .join(', ')}]`,
        )
        .join('\n')}\n`,
      /lab\.yaml:\d+:\d+: nodes\[\d\]\.pods\[\d\]: aliases expand to more than 10000 nodes here/,
    ));
  it('nesting too deep', () => rejects(`name: bi3\nnodes: ${'['.repeat(1000)}\n`, 'FILE:2:40: YAML: nested more than 32 levels deep'));
  it("a pod on its node's gateway address, the network or the broadcast address", async () => {
    await rejects(
      quickstart('bi4').replace('      - name: client', '      - name: client\n        ipv4: 10.244.1.1'),
      "FILE:7:15: nodes[0].pods[0].ipv4: 10.244.1.1 is the node's gateway (host 1 of 10.244.1.0/24, on every pod device); pods take hosts 2 and up",
    );
    await rejects(
      quickstart('bi4').replace('      - name: client', '      - name: client\n        ipv4: 10.244.1.255'),
      'FILE:7:15: nodes[0].pods[0].ipv4: 10.244.1.255 is the broadcast address of 10.244.1.0/24',
    );
  });
  it('an address that is not one', async () => {
    await rejects(
      quickstart('bi5').replace('      - name: client', '      - name: client\n        ipv4: 10.1.1.300'),
      "FILE:7:15: nodes[0].pods[0].ipv4: '10.1.1.300' is not an IPv4 address",
    );
    await rejects(
      quickstart('bi5').replace('    pods:', '    podCidr6: "fd00:244:1::5/64"\n    pods:'),
      "FILE:5:15: nodes[0].podCidr6: 'fd00:244:1::5/64' has host bits set; the prefix is fd00:244:1::/64",
    );
  });
  it('an unknown check in the topology lists the checks', () =>
    rejects(
      quickstart('bi6') + 'checks: [bigtcp, speed]\n',
      "FILE:11:18: checks[1]: unknown check 'speed'; checks are: backpressure, tso-probe, bigtcp",
    ));
  it('a rate of 0 and a rate tbf cannot keep', async () => {
    await rejects(quickstart('bi7').replace('200mbit', '0mbit'), 'FILE:10:13: nodes[0].uplink.rate: a rate of 0 passes nothing');
    await rejects(quickstart('bi7').replace('200mbit', '8bit'), 'FILE:10:13: nodes[0].uplink.rate: 8bit is outside 10kbit to 1tbit');
  });
  it('a kernel the catalogue lacks, in the file and on the command line', async () => {
    await rejects(
      quickstart('bi8') + 'backend: qemu\nkernel: "9.99"\n',
      "FILE:12:9: kernel: no kernel '9.99' in the catalogue (vms/kernels.yaml); kernels are: 6.1, 6.12, 7.3",
    );
    await rejects(
      quickstart('bi8') + 'backend: qemu\nkernels: ["6.12", "9.99"]\n',
      "FILE:12:19: kernels[1]: no kernel '9.99' in the catalogue",
    );
    const file = topo(quickstart('bi8') + 'backend: qemu\n');
    await rejectsFile(
      file,
      'bi8',
      ["error: --kernel: no kernel '9.99' in the catalogue (vms/kernels.yaml); kernels are: 6.1, 6.12, 7.3"],
      'run',
      ['--kernel', '6.12,9.99'],
    );
    await rejectsFile(file, 'bi8', ['kernel 6.12 is named twice'], 'run', ['--kernel', '6.12,6.12']);
    expect((await cli(['run', file, '--kernel', '9.99'])).stderr).not.toContain('lab kernels fetch');
  });
  it('a directory, a file that is not UTF-8, a file too large', async () => {
    const dir = dirname(topo(''));
    await rejectsFile(dir, 'none', ['FILE: is a directory; give a topology file (YAML)']);
    const latin1 = topo('');
    const bytes = Buffer.from(quickstart('bi9').replace('name: server', 'name: caf@'));
    bytes[bytes.indexOf('@')] = 0xe9; // é in Latin-1
    writeFileSync(latin1, bytes);
    await rejectsFile(latin1, 'bi9', [/lab\.yaml:7:18: not UTF-8 text \(byte 0xe9 at offset \d+\); save the file as UTF-8/]);
    await rejects(quickstart('bi9') + `# ${'x'.repeat(300 * 1024)}\n`, /lab\.yaml:11:\d+: the file is larger than 256 KiB/);
  });
});

describe('cli: help and doctor', () => {
  it('--help lists every verb and the exit codes', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    for (const v of ['up', 'status', 'check', 'down', 'run', 'demo', 'doctor', 'schema'])
      expect(r.stdout).toMatch(new RegExp(`\\n  ${v} `));
    expect(r.stdout).toContain('Exit codes');
  });
  it('doctor --json reads the kernel: features and checks with reasons', async () => {
    const r = await cli(['doctor', '--json']);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.kernel.release).toMatch(/^\d+\.\d+/);
    const nk = d.features.find((f: { id: string }) => f.id === 'pod-device');
    // The verdict follows this kernel's own config (the build machine's has no CONFIG_NETKIT).
    const { readFileSync } = await import('node:fs');
    const { gunzipSync } = await import('node:zlib');
    const hasNetkit = /^CONFIG_NETKIT=[ym]$/m.test(gunzipSync(readFileSync('/proc/config.gz')).toString());
    expect(nk.supported).toBe(hasNetkit);
    if (!hasNetkit) expect(nk.reason).toBe('kernel lacks CONFIG_NETKIT');
    expect(d.checks.map((c: { id: string }) => c.id).sort()).toEqual([...CHECK_IDS].sort());
    expect(d.checks.find((c: { id: string }) => c.id === 'netkit').supported).toBe(hasNetkit);
    const qemu = d.backends.find((b: { backend: string }) => b.backend === 'qemu');
    expect(qemu.tables[0].rows.map((r: string[]) => r[0])).toEqual(expect.arrayContaining(['6.1', '6.12', '7.3']));
  });
});

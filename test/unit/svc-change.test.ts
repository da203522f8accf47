import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { changeLock } from '../../src/cli/live.js';
import { svcEntry, svcKey } from '../../src/datapath/kpr/maps.js';
import { planIds, servicePlan } from '../../src/datapath/kpr/plan.js';
import { applyServiceChange } from '../../src/datapath/kpr/update.js';
import { CommandError, LabError } from '../../src/errors.js';
import type { ExecResult } from '../../src/exec/exec.js';
import type { LabContext } from '../../src/lifecycle/context.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';
import type { Lab } from '../../src/topology/model.js';

describe('lab svc lock', () => {
  const dirs: string[] = [];
  const file = () => {
    dirs.push(mkdtempSync(join(tmpdir(), 'dpl-np-lock-')));
    return join(dirs.at(-1)!, 'svc.lock');
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('refuses a second change while the first holder lives, naming its pid; free again after unlock', () => {
    const f = file();
    const unlock = changeLock(f, 'lab1', 'lab svc', { pid: 111, alive: () => true });
    expect(readFileSync(f, 'utf8')).toBe('111');
    let err: unknown;
    try {
      changeLock(f, 'lab1', 'lab svc', { pid: 222, alive: (pid) => pid === 111 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LabError);
    expect((err as LabError).message).toBe('lab svc in pid 111 is changing lab lab1');
    unlock();
    changeLock(f, 'lab1', 'lab svc', { pid: 222, alive: () => true })();
  });

  it("takes over a dead holder's lock", () => {
    const f = file();
    changeLock(f, 'lab1', 'lab svc', { pid: 111, alive: () => true });
    const unlock = changeLock(f, 'lab1', 'lab svc', { pid: 222, alive: (pid) => pid !== 111 });
    expect(readFileSync(f, 'utf8')).toBe('222');
    unlock();
  });
});

/** topologies/services.yaml, resolved. */
function servicesLab(): Lab {
  const p = parseTopology(readFileSync(new URL('../../topologies/services.yaml', import.meta.url), 'utf8'), 'services.yaml');
  if (!p.ok) throw new Error(JSON.stringify(p.errors));
  const r = resolve(p.value);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

const result = (stdout = '', code = 0): ExecResult => ({ code, stdout, stderr: '', ms: 1 });

describe('lab svc: a node that fails halfway is rolled back with the nodes already changed', () => {
  it("node2's bpftool batch fails: node1 gets the old backends back under a fresh revision, and the error says so", async () => {
    const lab = servicesLab();
    const before: Lab = { ...lab, serviceIds: planIds(servicePlan(lab)) };
    const after: Lab = {
      ...before,
      services: before.services.map((s) => (s.name === 'web' ? { ...s, backends: s.backends.slice(0, -1) } : s)),
    };
    const batches: { node: string; input: string }[] = [];
    let failNode2 = true;
    // Each service entry holds 2 slots under revision 2 for the fake's map lookups.
    const root = (node: string) => ({
      run: async (argv: readonly string[], opts?: { input?: string }) => {
        if (argv[0] === 'bpftool' && argv[1] === '-j') return result(JSON.stringify({ formatted: { value: { count: 2, rev: 2 } } }));
        if (argv[0] === 'test') return result('', 1);
        if (argv.join(' ') === 'bpftool batch file -') {
          batches.push({ node, input: opts?.input ?? '' });
          if (node === 'node2' && failNode2) {
            failNode2 = false;
            throw new CommandError([...argv], 255, '', 'Error: map update failed', opts?.input);
          }
        }
        return result();
      },
    });
    const ctx = {
      lab: after,
      decisions: lab.nodes.map((n) => ({ feature: 'kube-proxy', node: n.name, status: 'applied', mode: 'bpf', detail: '' })),
      backend: { kind: 'local', root },
      bpfDir: '/sys/fs/bpf/dpl/x',
      objDir: '/nonexistent',
      signal: new AbortController().signal,
      progress: () => undefined,
    } as unknown as LabContext;

    const err = await applyServiceChange(ctx, before, after).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LabError);
    expect((err as LabError).message).toMatch(/^lab svc: node node2 failed: /);
    expect((err as LabError).hint).toBe("rolled back node2, node1: the lab's services are as they were");
    expect(batches.map((b) => b.node)).toEqual(['node1', 'node2', 'node2', 'node1']);
    // The rollback on node1 writes web's three slots under revision 3 and flips its entry to them.
    const web = servicePlan(before).frontends.find((f) => f.service === 'web' && f.family === 'ipv4' && f.protocol === 'TCP')!;
    const flip = `map update pinned /sys/fs/bpf/dpl/x/node1/kpr/maps/services key hex ${svcKey(web)} value hex ${svcEntry(web, 3, 3)}`;
    expect(batches[0].input).not.toContain(flip);
    expect(batches[3].input.split('\n')).toContain(flip);
  });
});

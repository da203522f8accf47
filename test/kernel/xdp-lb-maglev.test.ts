import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { judgeMaglevBalance, judgeMaglevConsistency, judgeWeightZero, type TupleSeen } from '../../src/checks/maglev-verdicts.js';
import { buildMaglev, flowHash4, maglevKey, remapCount, tableShares } from '../../src/datapath/xdp-lb/maglev.js';
import { type XlBackend, type XlFrontend, xdpLbPlan } from '../../src/datapath/xdp-lb/plan.js';
import { flow } from '../../src/datapath/xdp-lb/packets.js';
import { runArgv } from '../../src/exec/exec.js';

/**
 * Maglev in the kernel: two instances of xdp_lb.c ("lb1", "lb2", maps of their own) get their tables from plans
 * whose backends arrive in opposite orders; the tables read back from both maps, and crafted 5-tuples run through
 * both programs (BPF_PROG_TEST_RUN), feed the Maglev verdicts: the same backend through either LB node and as
 * predicted, a removal moving at most 1% of the others' cells, a weight-0 backend owning no cell and getting no flow,
 * weighted shares within 1% and flows within the binomial spread.
 */

const OBJ = fileURLToPath(new URL('../../build/bpf/xdp_lb.o', import.meta.url));
const XLCTL = fileURLToPath(new URL('../../build/bpf/xlctl', import.meta.url));
const NS = `xl-m${process.pid}`;
const PIN = `/sys/fs/bpf/xl-m${process.pid}`;
const TMP = mkdtempSync(join(tmpdir(), 'xl-maglev-'));
const M = 16381;
const VIP = '10.96.0.10';
const CLIENT = '192.0.2.77';
const LBS = ['lb1', 'lb2'] as const;
const NODES = [2, 3, 4];
const BACKENDS: XlBackend[] = NODES.map((n, i) => ({
  id: i + 1,
  addr: `10.244.${n}.3`,
  port: 8080,
  family: 'ipv4',
  nodeAddr: `10.200.0.${n}`,
}));
const name = (id: number) => `web${id}`;
const fe = (weights: number[]): XlFrontend => ({
  svcId: 1,
  family: 'ipv4',
  port: 80,
  protocol: 'TCP',
  lbVip: VIP,
  mode: 'dsr',
  backends: weights.map((weight, i) => ({ id: i + 1, weight })),
});
const pins = (lb: string) => ({ cfg: `${PIN}/${lb}/m/xl_cfg`, backends: `${PIN}/${lb}/m/xl_backends`, vips: `${PIN}/${lb}/m/xl_vips` });

async function install(lb: string, f: XlFrontend, backends: XlBackend[]): Promise<void> {
  const p = xdpLbPlan(pins(lb), [f], backends, M, { addr4: '10.200.0.1' });
  await runArgv(['bpftool', 'batch', 'file', '-'], { input: `${p.mapLines.join('\n')}\n` });
  await runArgv([XLCTL, `${PIN}/${lb}/m/xl_maglev`], { input: `${p.tableLines.join('\n')}\n` });
}

/** The table as the kernel holds it, in backend-index space (id - 1). */
async function readBack(lb: string): Promise<Int32Array> {
  const r = await runArgv([XLCTL, `${PIN}/${lb}/m/xl_maglev`], { input: `get 1 ${M}\n` });
  return Int32Array.from((JSON.parse(r.stdout) as { ids: number[] }).ids, (id) => id - 1);
}

/** The backend each client port's packet went to through `lb`, by the IPIP outer destination. */
async function route(lb: string, ports: number[]): Promise<(string | undefined)[]> {
  const lines = ports.map((port) => {
    writeFileSync(join(TMP, `in${port}`), flow(CLIENT, VIP, { proto: 'TCP', sport: port, dport: 80 }));
    return `prog run pinned ${PIN}/${lb}/p/xl_xdp data_in ${join(TMP, `in${port}`)} data_out ${join(TMP, `${lb}-out${port}`)} data_size_out 1024`;
  });
  await runArgv(['nsenter', `--net=/run/netns/${NS}`, '--', 'bpftool', 'batch', 'file', '-'], { input: `${lines.join('\n')}\n` });
  return ports.map((port) => {
    const o = readFileSync(join(TMP, `${lb}-out${port}`));
    if (o[23] !== 4) return undefined;
    const dst = Array.from(o.subarray(30, 34)).join('.');
    const b = BACKENDS.find((x) => x.nodeAddr === dst);
    return b ? name(b.id) : undefined;
  });
}

const PORTS = Array.from({ length: 40 }, (_, i) => 42000 + i);

beforeAll(async () => {
  await runArgv(['ip', 'netns', 'add', NS]);
  const ipb = [
    'link set lo up',
    'link add d0 type veth peer name d1',
    'link set d1 up',
    'addr add 10.200.0.1/24 dev d0',
    'link set d0 up',
    ...NODES.map((n) => `neigh add 10.200.0.${n} lladdr 02:00:00:00:01:0${n} dev d0 nud permanent`),
  ];
  await runArgv(['ip', '-n', NS, '-batch', '-'], { input: `${ipb.join('\n')}\n` });
  await runArgv(['nsenter', `--net=/run/netns/${NS}`, '--', 'sysctl', '-qw', 'net.ipv4.conf.all.forwarding=1']);
  for (const lb of LBS) {
    mkdirSync(`${PIN}/${lb}`, { recursive: true });
    await runArgv(['bpftool', 'prog', 'loadall', OBJ, `${PIN}/${lb}/p`, 'pinmaps', `${PIN}/${lb}/m`]);
  }
  await install('lb1', fe([1, 1, 1]), BACKENDS);
  const f = fe([1, 1, 1]);
  await install('lb2', { ...f, backends: [...f.backends].reverse() }, [...BACKENDS].reverse());
});

afterAll(async () => {
  await runArgv(['ip', 'netns', 'del', NS], { nothrow: true });
  rmSync(PIN, { recursive: true, force: true });
  rmSync(TMP, { recursive: true, force: true });
});

describe('Maglev tables and flows in the kernel, judged by the Maglev verdicts', () => {
  it('consistency: same tables and backends through both LB programs, a removal moves under 1% of the others’ cells', async () => {
    const [t1, t2] = [await readBack('lb1'), await readBack('lb2')];
    expect(Buffer.from(t1.buffer).equals(Buffer.from(t2.buffer))).toBe(true);
    const keys = BACKENDS.map((b) => ({ key: maglevKey({ addr: b.addr, port: b.port, proto: 'tcp' }), weight: 1 }));
    const predictedTable = buildMaglev(keys, M);
    const [r1, r2] = [await route('lb1', PORTS), await route('lb2', PORTS)];
    const tuples: TupleSeen[] = PORTS.map((port, i) => ({
      tuple: `${CLIENT}:${port} > ${VIP}:80/TCP`,
      first: r1[i],
      second: r2[i],
      predicted: name(predictedTable[flowHash4(CLIENT, port, 80, 6) % M] + 1),
    }));
    // web3 goes to weight 0 on lb1: a fresh table, swapped in; the read-back tables are compared cell by cell.
    await install('lb1', fe([1, 1, 0]), BACKENDS);
    const after = await readBack('lb1');
    const { changed, cells } = remapCount(t1, after, 2);
    const v = judgeMaglevConsistency(
      [
        {
          node: 'lb1',
          frontend: `${VIP}:80/TCP`,
          removed: 'web3',
          survivorCells: cells,
          changed,
          leftToRemoved: after.filter((x) => x === 2).length,
        },
      ],
      tuples,
    );
    expect(v.reason).toMatch(/same backend/);
    expect(v.status).toBe('pass');
  });

  it('weight zero: the zeroed backend owns no cell and gets none of the new flows', async () => {
    const before = await readBack('lb2');
    const shareBefore = before.filter((x) => x === 2).length / M;
    await install('lb2', fe([1, 1, 0]), BACKENDS);
    const after = await readBack('lb2');
    const seen = await route('lb2', PORTS);
    const answeredBy: Record<string, number> = {};
    for (const b of seen) if (b) answeredBy[b] = (answeredBy[b] ?? 0) + 1;
    const v = judgeWeightZero([
      {
        node: 'lb2',
        frontend: `${VIP}:80/TCP`,
        zeroed: ['web3'],
        backends: BACKENDS.map((b) => name(b.id)),
        shareBefore,
        cells: after.filter((x) => x === 2).length,
        tried: PORTS.length,
        answeredBy,
      },
    ]);
    expect(v.reason).toMatch(/none by web3/);
    expect(v.status).toBe('pass');
  });

  it('balance: weights 1:2:1 give table shares within 1% of the weights and 300 flows within the binomial spread', async () => {
    const weights = [1, 2, 1];
    await install('lb1', fe(weights), BACKENDS);
    const cells = tableShares(await readBack('lb1'), BACKENDS.length);
    const ports = Array.from({ length: 300 }, (_, i) => 43000 + i);
    const seen = await route('lb1', ports);
    const names = BACKENDS.map((b) => name(b.id));
    const flows = names.map((n) => seen.filter((s) => s === n).length);
    const frontend = `${VIP}:80/TCP`;
    const v = judgeMaglevBalance(
      [{ node: 'lb1', frontend, backends: names, weights, cells }],
      [{ node: 'lb1', frontend, backends: names, cells, flows, unanswered: seen.filter((s) => s === undefined).length }],
    );
    expect(v.status).toBe('pass');
  });
});

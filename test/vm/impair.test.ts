import { describe, expect, it } from 'vitest';
import { readNetem, type NetemJson } from '../../src/datapath/impair/live.js';
import { bulkFlow } from '../../src/measure/flow.js';
import { cli } from '../kernel/helpers.js';
import { inGuest, vmLab } from './vm-lab.js';

const LAB = 'impvm';
// One node VM (TCG, kernel 6.12, sch_netem a module in its initramfs); the uplink's two ends are
// namespaces in the guest (node1's uplink, remote's eth0), each with a netem from the topology.
const TOPOLOGY = `name: ${LAB}
backend: qemu
kernel: "6.12"
families: [ipv4]
nodes:
  - name: node1
    pods:
      - name: client
    uplink:
      peer: remote
      impair:
        delay: 20ms
checks:
  - connectivity
`;
const PEER = '10.255.1.2';
const ns = (n: string) => `dpl-${LAB}.${n}`;

const netems = () =>
  inGuest(LAB, async (ctx) => [
    await readNetem(ctx.backend.exec(ns('node1')), 'uplink'),
    await readNetem(ctx.backend.exec(ns('remote')), 'eth0'),
  ]);

/** busybox ping's round trips (ms) from a namespace of the guest; [] when nothing came back. */
async function ping(from: string, count: number): Promise<{ rtts: number[]; out: string }> {
  const r = await inGuest(LAB, (ctx) => ctx.backend.exec(ns(from)).run(['ping', '-c', String(count), '-W', '2', PEER], { nothrow: true }));
  const out = r.stdout + r.stderr;
  return { rtts: [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])), out };
}
const delayOf = (q: NetemJson | undefined) => (q?.options?.delay as { delay: number } | undefined)?.delay;

describe('link impairments with netem in a VM (kernel 6.12)', () => {
  vmLab({ lab: LAB, kernel: '6.12', topology: TOPOLOGY });

  it('puts the topology netem on both ends: delay read back from tc -s -j and seen in ping round trips', async () => {
    const [a, b] = await netems();
    for (const q of [a, b]) expect(q).toMatchObject({ kind: 'netem', handle: '10:', root: true });
    expect([delayOf(a), delayOf(b)]).toEqual([0.02, 0.02]);
    const status = JSON.parse((await cli(['status', LAB, '--json'])).stdout);
    expect(status.datapath.find((d: { feature: string }) => d.feature === 'impair')).toMatchObject({ status: 'applied', mode: 'netem' });
    // 20 ms on each end's egress: every round trip takes at least 40 ms.
    const { rtts, out } = await ping('node1', 4);
    expect(rtts.length, out).toBeGreaterThanOrEqual(3);
    expect(Math.min(...rtts), out).toBeGreaterThanOrEqual(40);
    console.info(`figures: delay 20ms each end: ping RTTs ${rtts.join(', ')} ms`);
  });

  it('lab impair changes the netem in place (same handle, counters kept); the new delay and loss show in RTT and retransmits', async () => {
    const [a0, b0] = await netems();
    const bad = await cli(['impair', LAB, 'node1:remote', '--loss', '3', '-q']);
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toMatch(/--loss: '3' is not a percentage/);
    const [a1] = await netems();
    expect(a1?.options).toEqual(a0?.options);

    const r = await cli(['impair', LAB, 'node1:remote', '--delay', '60ms', '--loss', '3%', '-q']);
    expect(r.code, r.stderr).toBe(0);
    const [a, b] = await netems();
    for (const [before, after] of [
      [a0, a],
      [b0, b],
    ]) {
      expect(after).toMatchObject({ kind: 'netem', handle: before!.handle, root: true });
      // A re-created qdisc starts its counters at 0; a changed one keeps them.
      expect(after!.packets!).toBeGreaterThanOrEqual(before!.packets!);
      expect(before!.packets!).toBeGreaterThan(0);
      expect(delayOf(after)).toBe(0.06);
      expect(after!.options!['loss-random']).toMatchObject({ loss: 0.03 });
    }
    const { rtts, out } = await ping('node1', 4);
    expect(rtts.length, out).toBeGreaterThanOrEqual(1);
    expect(Math.min(...rtts), out).toBeGreaterThanOrEqual(120);
    // 3% loss on data and on acks: the sender retransmits, and netem counts its drops.
    const flow = await inGuest(LAB, (ctx) =>
      bulkFlow({ from: ctx.backend.exec(ns('node1')), to: ctx.backend.exec(ns('remote')), addr: PEER, seconds: 4, journal: ctx.journal }),
    );
    const [a2] = await netems();
    expect(flow.retransmits, flow.evidence.join('\n')).toBeGreaterThan(0);
    expect(a2!.drops!).toBeGreaterThan(0);
    expect(a2!.handle).toBe(a0!.handle);
    console.info(
      `figures: delay 60ms loss 3%: ping RTTs ${rtts.join(', ')} ms; 4 s iperf3 ${(flow.bitsPerSecond / 1e6).toFixed(2)} Mbit/s, ` +
        `retransmits ${flow.retransmits}; node-side netem handle ${a0!.handle} -> ${a2!.handle}, packets ${a0!.packets} -> ` +
        `${a!.packets} (at the change) -> ${a2!.packets}, drops ${a2!.drops}`,
    );
  });

  it('lab link down/up: ping fails while the link is down and works after, the netem still there', async () => {
    expect((await cli(['link', LAB, 'node1:remote', 'down', '-q'])).code).toBe(0);
    expect(JSON.parse((await cli(['status', LAB, '--json'])).stdout).links).toMatchObject([{ name: 'node1:remote', state: 'down' }]);
    const down = await ping('node1.client', 2);
    expect(down.rtts, down.out).toEqual([]);
    expect((await cli(['link', LAB, 'remote:node1', 'up', '-q'])).code).toBe(0);
    // From the pod: the peer's route back to the pod prefix went with the device and was put back.
    const up = await ping('node1.client', 3);
    expect(up.rtts.length, up.out).toBeGreaterThan(0);
    expect(JSON.parse((await cli(['status', LAB, '--json'])).stdout).links).toMatchObject([{ name: 'node1:remote', state: 'up' }]);
    const [a] = await netems();
    expect(a).toMatchObject({ kind: 'netem', handle: '10:' });
  });
});

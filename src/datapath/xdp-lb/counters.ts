import { existsSync } from 'node:fs';
import type { Exec } from '../../exec/exec.js';
import type { Lab } from '../../topology/model.js';
import { servicePlan } from '../kpr/plan.js';
import { vipPort } from './plan.js';
import { xdpLbInputs, xdpLbPins } from './feature.js';

/** Packets and bytes (frame incl. Ethernet, as xl_xdp sees it) of one VIP frontend or backend, summed over CPUs. */
export interface XlCount {
  /** VIP:port/proto, or the backend's node/pod:port. */
  name: string;
  packets: number;
  bytes: number;
}

/** One LB node's per-VIP and per-backend counters (xl_vip_stats, xl_be_stats). */
export interface XlNodeCounters {
  vips: XlCount[];
  backends: XlCount[];
}

type Row = { formatted: { key: number; values: { value: { packets: number; bytes: number } }[] } };

async function dump(exec: Exec, map: string): Promise<Map<number, { packets: number; bytes: number }>> {
  const r = await exec.run(['bpftool', '-j', 'map', 'dump', 'pinned', map]);
  const rows = JSON.parse(r.stdout) as Row[];
  return new Map(
    rows.map(({ formatted: f }) => [
      f.key,
      {
        packets: f.values.reduce((s, v) => s + v.value.packets, 0),
        bytes: f.values.reduce((s, v) => s + v.value.bytes, 0),
      },
    ]),
  );
}

/** The XDP load balancer's counters on each LB node whose pins this machine sees (a local lab), for `lab status`. */
export async function readXdpLbCounters(exec: Exec, lab: Lab, bpfDir: string): Promise<Record<string, XlNodeCounters>> {
  if (!lab.services.some((s) => s.loadBalancer)) return {};
  const { frontends, backends } = xdpLbInputs(lab);
  const plan = servicePlan(lab);
  const out: Record<string, XlNodeCounters> = {};
  for (const node of lab.nodes.filter((n) => n.loadBalancer)) {
    const p = xdpLbPins({ bpfDir }, node);
    if (!existsSync(p.vipStats) || !existsSync(p.beStats)) continue;
    const [v, b] = [await dump(exec, p.vipStats), await dump(exec, p.beStats)];
    const zero = { packets: 0, bytes: 0 };
    out[node.name] = {
      vips: frontends.map((f) => ({ name: `${vipPort(f)}/${f.protocol}`, ...(v.get(f.svcId) ?? zero) })),
      backends: backends.map((x) => {
        const pb = plan.backends.find((y) => y.id === x.id);
        return { name: `${pb ? `${pb.node}/${pb.pod}` : x.addr}:${x.port}`, ...(b.get(x.id) ?? zero) };
      }),
    };
  }
  return out;
}

import { LabError } from '../../errors.js';
import type { Frontend, PlanBackend } from '../kpr/plan.js';
import { buildMaglev, type MaglevSize, maglevKey } from './maglev.js';
import { backendValue, cfgValue, dsrKey, dsrValue, tableLine, u32Key, vipKey, vipValue, type XlMode } from './maps.js';

/**
 * What one LB node writes into the XDP load balancer's maps, from the kube-proxy replacement's service plan (its
 * frontend and backend ids, kept across `lab svc`). Pure and independent of the order backends arrive in: every LB
 * node computes the same tables (buildMaglev sorts by backend key), so a flow picks the same backend through any of
 * them.
 */

/** A frontend the XDP program serves: a service port at its load-balancer VIP. */
export interface XlFrontend extends Pick<Frontend, 'svcId' | 'family' | 'port' | 'protocol' | 'backends'> {
  /** The load-balancer VIP (not the ClusterIP). */
  lbVip: string;
  mode: XlMode;
}

/** A backend and the IPIP (IPv6-in-IPv6) outer destination in DSR mode. */
export interface XlBackend extends Pick<PlanBackend, 'id' | 'addr' | 'port' | 'family'> {
  /** The IPIP outer destination: the pod itself for a pod backend (its node's xl_decap finds it by it), or a node. */
  nodeAddr: string;
}

export interface XlNodePlan {
  /** `bpftool batch` lines for xl_cfg, xl_backends and xl_vips. */
  mapLines: string[];
  /** xlctl lines: one `set` (whole table, one swap) per frontend with a backend of weight > 0, else `del`. */
  tableLines: string[];
  /** The table of each frontend by svcId (backend ids per cell), for read-back comparisons. */
  tables: Map<number, number[]>;
}

/** Paths of the pinned maps the lines name. */
export interface XlMapPins {
  cfg: string;
  backends: string;
  vips: string;
}

/** VIP:port as printed, an IPv6 VIP in brackets (RFC 3986 host syntax). */
export const vipPort = (f: Pick<XlFrontend, 'lbVip' | 'port' | 'family'>) =>
  f.family === 'ipv6' ? `[${f.lbVip}]:${f.port}` : `${f.lbVip}:${f.port}`;

const PROTO = { TCP: 'tcp', UDP: 'udp' } as const;

/** The map contents of one LB node whose own addresses are `self` (IPIP outer source, SNAT source). */
export function xdpLbPlan(
  pins: XlMapPins,
  frontends: readonly XlFrontend[],
  backends: readonly XlBackend[],
  lutSize: MaglevSize,
  self: { addr4?: string; addr6?: string },
): XlNodePlan {
  const byId = new Map(backends.map((b) => [b.id, b]));
  const mapLines = [`map update pinned ${pins.cfg} key hex ${u32Key(0)} value hex ${cfgValue(self.addr4, self.addr6)}`];
  for (const b of [...backends].sort((x, y) => x.id - y.id))
    mapLines.push(
      `map update pinned ${pins.backends} key hex ${u32Key(b.id)} value hex ${backendValue({ family: b.family, port: b.port, addr: b.addr, node: b.nodeAddr })}`,
    );
  const tableLines: string[] = [];
  const tables = new Map<number, number[]>();
  const vipAddrs = new Set<string>();
  for (const f of frontends) {
    const key = vipKey({ family: f.family, addr: f.lbVip, proto: f.protocol, port: f.port });
    mapLines.push(`map update pinned ${pins.vips} key hex ${key} value hex ${vipValue({ svc: f.svcId, lutSize, mode: f.mode })}`);
    const addrKey = vipKey({ family: f.family, addr: f.lbVip });
    if (!vipAddrs.has(addrKey))
      mapLines.push(`map update pinned ${pins.vips} key hex ${addrKey} value hex ${vipValue({ svc: 0, lutSize: 0, mode: f.mode })}`);
    vipAddrs.add(addrKey);
    const members = f.backends.map(({ id, weight }) => {
      const b = byId.get(id);
      if (!b) throw new LabError('E_INTERNAL', `frontend ${f.svcId} names backend ${id}, which the plan does not have`);
      return { id, key: maglevKey({ addr: b.addr, port: b.port, proto: PROTO[f.protocol] }), weight };
    });
    if (!members.some((m) => m.weight > 0)) {
      tableLines.push(`del ${f.svcId}`);
      continue;
    }
    const ids = Array.from(buildMaglev(members, lutSize), (i) => members[i].id);
    tables.set(f.svcId, ids);
    tableLines.push(tableLine(f.svcId, ids));
  }
  return { mapLines, tableLines, tables };
}

/** One DSR frontend a pod on this node serves: the xl_dsr entry xl_decap looks the decapsulated packet up by. */
export interface XlDsrEntry {
  /** bpftool hex of struct xl_dsr_key. */
  key: string;
  /** bpftool hex of struct xl_dsr_target. */
  value: string;
  /** VIP:port/proto -> pod:targetPort, for errors and reports. */
  label: string;
}

/**
 * What a backend node writes into xl_dsr: for each DSR frontend, each of its backends (of the frontend's family) that is one of `localPods`
 * (addresses of this node's pods), weight 0 included (a flow the LB already sends there keeps working while it drains).
 */
export function dsrPodEntries(
  frontends: readonly XlFrontend[],
  backends: readonly XlBackend[],
  localPods: ReadonlySet<string>,
): XlDsrEntry[] {
  const byId = new Map(backends.map((b) => [b.id, b]));
  const seen = new Set<string>();
  const out: XlDsrEntry[] = [];
  for (const f of frontends) {
    if (f.mode !== 'dsr') continue;
    for (const { id } of f.backends) {
      const b = byId.get(id);
      if (!b || b.family !== f.family || !localPods.has(b.addr)) continue;
      const key = dsrKey({ proto: f.protocol, port: f.port, vip: f.lbVip, pod: b.addr });
      if (seen.has(key)) continue;
      seen.add(key);
      const pod = f.family === 'ipv6' ? `[${b.addr}]` : b.addr;
      out.push({ key, value: dsrValue(b.port), label: `${vipPort(f)}/${f.protocol} -> ${pod}:${b.port}` });
    }
  }
  return out;
}

/** `bpftool batch` lines that make a pinned xl_dsr hold exactly `next`, given it held `prev`. */
export function dsrLines(pin: string, prev: readonly XlDsrEntry[], next: readonly XlDsrEntry[]): string[] {
  const keep = new Set(next.map((e) => e.key));
  return [
    ...prev.filter((e) => !keep.has(e.key)).map((e) => `map delete pinned ${pin} key hex ${e.key}`),
    ...next.map((e) => `map update pinned ${pin} key hex ${e.key} value hex ${e.value}`),
  ];
}

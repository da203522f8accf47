import { type Frontend, type PlanBackend, type ServicePlan, slotsOf } from '../datapath/kpr/plan.js';
import type { Family } from '../topology/schema.js';
import type { Rng } from './rng.js';

/**
 * Socket-LB as lookups, map for map as bpf/sock_lb.c keeps them (include/svc_maps.h): a
 * service entry per frontend (slot 0) with its slot count, revision and affinity timeout;
 * slots under the live revision, each naming a backend id; the backends; the affinity
 * entries by (netns cookie, service id); revnat entries by (socket cookie, backend address
 * and port). Nothing per packet: the kernel runs the program at connect()/sendmsg() only
 * (cgroup/connect4 and sendmsg4, __cgroup_bpf_run_filter_sock_addr), so an established
 * socket keeps the backend it got.
 */

/** The service entry (struct svc_value at slot 0). */
interface SvcEntry {
  svcId: number;
  count: number;
  rev: number;
  affinitySecs: number;
}

/** What xlate_fwd did to a connect or sendmsg. */
export type Xlate =
  | { kind: 'none' }
  | { kind: 'reject'; errno: 'EHOSTUNREACH' }
  | { kind: 'xlate'; backend: PlanBackend; svcId: number }
  /** A slot or backend lookup missed: the call goes on to the ClusterIP itself (count(SLB_SLOT_MISS)). */
  | { kind: 'miss' };

const svcKey = (family: Family, addr: string, port: number, proto: string) => `${family}/${addr}/${port}/${proto}`;

/** One node's socket-LB maps, filled from the lab's service plan as deploySockLb fills them. */
export class SockLb {
  private readonly services = new Map<string, SvcEntry>();
  /** Slots by `${svcId}/${rev}/${slot}` (slot 1..count) to a backend id. */
  private readonly slots = new Map<string, number>();
  private readonly backends = new Map<number, PlanBackend>();
  private readonly affinity = new Map<string, { lastNs: number; backendId: number }>();
  private readonly revnat = new Map<string, { addr: string; port: number }>();
  /** The program's counters (enum sock_lb_counter): xlate, no_backend, affinity_hit, slot_miss, revnat. */
  readonly counters = { xlate: 0, noBackend: 0, affinityHit: 0, slotMiss: 0, revnat: 0 };

  constructor(plan: ServicePlan) {
    for (const b of plan.backends) this.backends.set(b.id, b);
    for (const f of plan.frontends) this.setFrontend(f, 1);
  }

  /** frontendLines: the frontend's slots under revision `rev`, then its entry flipped to them, the old slots gone. */
  setFrontend(f: Frontend, rev: number): void {
    const key = svcKey(f.family, f.vip, f.port, f.protocol);
    const old = this.services.get(key);
    const slots = slotsOf(f);
    for (const [i, id] of slots.entries()) this.slots.set(`${f.svcId}/${rev}/${i + 1}`, id);
    this.services.set(key, { svcId: f.svcId, count: slots.length, rev, affinitySecs: f.affinitySeconds });
    if (old && old.rev !== rev) for (let i = 1; i <= old.count; i++) this.slots.delete(`${old.svcId}/${old.rev}/${i}`);
  }

  /** The revision a frontend's entry holds now (live.ts reads it before writing the next). */
  revOf(f: Pick<Frontend, 'family' | 'vip' | 'port' | 'protocol'>): number {
    return this.services.get(svcKey(f.family, f.vip, f.port, f.protocol))?.rev ?? 0;
  }

  /**
   * xlate_fwd: a service's destination becomes one of its backends. Affinity first (the
   * client's entry, if within the timeout and its backend still exists), else a slot
   * drawn as bpf_get_prandom_u32() % count + 1; the revnat entry is written under the
   * socket's cookie so getpeername and recvmsg can put the frontend back.
   */
  connect(
    rng: Rng,
    c: { netnsCookie: string; socketCookie: number; family: Family; proto: 'TCP' | 'UDP'; addr: string; port: number; nowNs: number },
  ): Xlate {
    const svc = this.services.get(svcKey(c.family, c.addr, c.port, c.proto));
    if (!svc) return { kind: 'none' };
    if (svc.count === 0) {
      this.counters.noBackend++;
      return { kind: 'reject', errno: 'EHOSTUNREACH' };
    }
    const akey = `${c.netnsCookie}/${svc.svcId}`;
    let id = 0;
    if (svc.affinitySecs) {
      const a = this.affinity.get(akey);
      if (a && c.nowNs - a.lastNs <= svc.affinitySecs * 1e9 && this.backends.has(a.backendId)) id = a.backendId;
      if (id) this.counters.affinityHit++;
    }
    if (!id) id = this.slots.get(`${svc.svcId}/${svc.rev}/${(rng.u32() % svc.count) + 1}`) ?? 0;
    const be = id ? this.backends.get(id) : undefined;
    if (!be || be.family !== c.family) {
      this.counters.slotMiss++;
      return { kind: 'miss' };
    }
    if (svc.affinitySecs) this.affinity.set(akey, { lastNs: c.nowNs, backendId: id });
    this.revnat.set(`${c.socketCookie}/${be.addr}/${be.port}`, { addr: c.addr, port: c.port });
    this.counters.xlate++;
    return { kind: 'xlate', backend: be, svcId: svc.svcId };
  }

  /** xlate_rev (getpeername, recvmsg): the frontend a socket dialled, for the peer it is connected to; else the peer as is. */
  peer(socketCookie: number, addr: string, port: number): { addr: string; port: number } {
    const rv = this.revnat.get(`${socketCookie}/${addr}/${port}`);
    if (!rv) return { addr, port };
    this.counters.revnat++;
    return rv;
  }
}

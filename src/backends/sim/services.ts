import { nextRev } from '../../datapath/kpr/live.js';
import type { Frontend } from '../../datapath/kpr/plan.js';
import { MeasureError } from '../../errors.js';
import type { Exec } from '../../exec/exec.js';
import type { HeldConnection, ProbeSpec, Servers, ServerSeen, SvcAttempt } from '../../measure/services.js';
import { hopsTo } from '../../topology/routes.js';
import type { SimLab } from './model.js';

/**
 * One way across one hop (a veth pair, or a link between nodes) in the service model: the
 * same 20 us the flow model gives its path (SimMeasurer.path delayNs). An assumption, not
 * calibrated: the service checks judge who answered and with which errno, not the time.
 */
const HOP_NS = 20_000;
/** A syscall a socket-LB program refuses returns before any packet: the program's run, about a microsecond. */
const REJECT_NS = 1_000;
/** The first ephemeral port (net.ipv4.ip_local_port_range's default start). */
const EPHEMERAL = 32768;

/** A pod as the service model sees it. */
interface Where {
  node: string;
  netns: string;
  name: string;
  addrs: string[];
}

/**
 * svcprobe's measurements answered by the model: each connect()/sendto() from a pod goes
 * through its node's socket-LB maps (src/sim/socklb.ts) when socket-LB runs there, then to
 * whoever owns the address it was translated to. A backend answers with its name when a
 * server listens on that port and protocol; a TCP SYN to a closed port gets a RST
 * (ECONNREFUSED at connect); a datagram to one gets an ICMP port unreachable, which only a
 * connected UDP socket reports (ECONNREFUSED at its read: __udp4_lib_err sets sk_err for
 * connected sockets, or with IP_RECVERR, which svcprobe does not set).
 */
export class SimServices {
  /** Hop counts to each destination node, one search per destination: the lab's links do not change under the model. */
  private readonly hops = new Map<string, Map<string, number>>();

  constructor(private readonly m: SimLab) {}

  private pod(netns: string): Where {
    for (const n of this.m.lab.nodes)
      for (const p of n.pods)
        if (p.netns === netns) return { node: n.name, netns, name: p.name, addrs: [p.ipv4, p.ipv6].filter((a): a is string => !!a) };
    throw new MeasureError(`simulated: no pod in ${netns}`);
  }

  private owner(addr: string): Where | undefined {
    for (const n of this.m.lab.nodes)
      for (const p of n.pods)
        if (p.ipv4 === addr || p.ipv6 === addr)
          return { node: n.name, netns: p.netns, name: p.name, addrs: [p.ipv4, p.ipv6].filter((a): a is string => !!a) };
    return undefined;
  }

  /** One-way virtual time between two nodes: a veth hop at each end plus the inter-node links; undefined without a route. */
  private oneWayNs(from: string, to: string): number | undefined {
    let toDest = this.hops.get(to);
    if (!toDest) {
      toDest = hopsTo(to, this.m.lab.links);
      this.hops.set(to, toDest);
    }
    const hops = toDest.get(from);
    return hops === undefined ? undefined : (hops + 1) * HOP_NS;
  }

  /** The address a connect from `src` reaches after its node's socket-LB, or the refusal. */
  private dial(src: Where, cookie: number, spec: { op: string; addr: string; port: number }) {
    const lb = this.m.sockLb.get(src.node);
    const family = spec.addr.includes(':') ? ('ipv6' as const) : ('ipv4' as const);
    const proto = spec.op === 'tcp' || spec.op === 'hold' ? ('TCP' as const) : ('UDP' as const);
    const x = lb?.connect(this.m.rng, {
      netnsCookie: src.netns,
      socketCookie: cookie,
      family,
      proto,
      addr: spec.addr,
      port: spec.port,
      nowNs: this.m.virtualNs,
    });
    if (x?.kind === 'reject') return { errno: x.errno };
    const to = x?.kind === 'xlate' ? { addr: x.backend.addr, port: x.backend.port } : { addr: spec.addr, port: spec.port };
    return { to, proto, family };
  }

  /** What a packet to addr:port/proto meets: no route, nobody (a ClusterIP nobody translated), a closed port, or a server. */
  private reach(src: Where, addr: string, port: number, proto: 'TCP' | 'UDP') {
    const dst = this.owner(addr);
    if (!dst) return { kind: 'nobody' as const };
    const oneWay = this.oneWayNs(src.node, dst.node);
    if (oneWay === undefined) return { kind: 'unreachable' as const };
    const server = this.m.servers.get(dst.netns);
    const open = server?.ports.includes(`${port}/${proto.toLowerCase()}`);
    return { kind: open ? ('open' as const) : ('closed' as const), rtt: 2 * oneWay, dst, server };
  }

  private seen(server: { seen: ServerSeen[] } | undefined, src: Where, family: string, proto: 'tcp' | 'udp') {
    const addr = src.addrs.find((a) => a.includes(':') === (family === 'ipv6'));
    if (server && addr) server.seen.push({ seen: addr, port: EPHEMERAL + (this.m.cookie % 28232), proto });
  }

  /** One attempt, as svcprobe's one_tcp / one_udp emit it; the virtual clock moves by its duration. */
  private attempt(src: Where, i: number, spec: ProbeSpec): SvcAttempt {
    const cookie = ++this.m.cookie;
    const base = { i, op: spec.op, peer: '', peerPort: 0, reply: '' } as const;
    const first = spec.op === 'udp' ? 'sendto' : 'connect';
    const d = this.dial(src, cookie, spec);
    if (!('to' in d) || !d.to) {
      this.m.virtualNs += REJECT_NS;
      return { ...base, errno: d.errno ?? 'EINVAL', stage: first, us: REJECT_NS / 1000 };
    }
    const lb = this.m.sockLb.get(src.node);
    const r = this.reach(src, d.to.addr, d.to.port, d.proto);
    const timeoutUs = spec.timeoutMs * 1000;
    if (r.kind === 'unreachable') {
      this.m.virtualNs += REJECT_NS;
      return { ...base, errno: 'ENETUNREACH', stage: first, us: REJECT_NS / 1000 };
    }
    if (spec.op === 'tcp') {
      if (r.kind === 'nobody') {
        this.m.virtualNs += timeoutUs * 1000;
        return { ...base, errno: 'ETIMEDOUT', stage: 'connect', us: timeoutUs };
      }
      const us = r.rtt / 1000;
      this.m.virtualNs += r.rtt;
      if (r.kind === 'closed') return { ...base, errno: 'ECONNREFUSED', stage: 'connect', us };
      this.seen(r.server, src, d.family, 'tcp');
      // The server writes its name once accepted: half a round trip after the handshake's ACK.
      this.m.virtualNs += r.rtt / 2;
      const peer = lb ? lb.peer(cookie, d.to.addr, d.to.port) : d.to;
      return { ...base, errno: '', stage: 'done', us, peer: peer.addr, peerPort: peer.port, reply: r.server!.name };
    }
    // UDP: the send returns at once; the reply (or its absence) decides.
    const sendUs = 1;
    if (r.kind !== 'open') {
      const refused = r.kind === 'closed' && spec.op === 'udpc';
      this.m.virtualNs += refused ? r.rtt : timeoutUs * 1000;
      return { ...base, errno: refused ? 'ECONNREFUSED' : 'ETIMEDOUT', stage: 'reply', us: sendUs };
    }
    this.m.virtualNs += r.rtt;
    this.seen(r.server, src, d.family, 'udp');
    const peer = lb ? lb.peer(cookie, d.to.addr, d.to.port) : d.to;
    return { ...base, errno: '', stage: 'done', us: sendUs, peer: peer.addr, peerPort: peer.port, reply: r.server!.name };
  }

  async serviceAttempts(from: Exec, spec: ProbeSpec): Promise<SvcAttempt[]> {
    const src = this.pod(from.where);
    return Array.from({ length: spec.attempts }, (_, i) => this.attempt(src, i, spec));
  }

  /** Servers in backend pods: the model notes which ports answer; nothing runs. */
  async startServers(pods: { exec: Exec; name: string; ports: string[] }[]): Promise<Servers> {
    const started = pods.map((p) => p.exec.where);
    for (const p of pods) this.m.servers.set(p.exec.where, { name: p.name, ports: [...p.ports], seen: [] });
    const servers = this.m.servers;
    return {
      async stop() {
        for (const w of started) servers.delete(w);
      },
      seen: () => Object.fromEntries(started.flatMap((w) => (servers.has(w) ? [[servers.get(w)!.name, [...servers.get(w)!.seen]]] : []))),
    };
  }

  /**
   * svcprobe hold: connect until the backend named `want` answers (64 tries), then one
   * exchange per interval of virtual time until stop(), and a last one after it. The
   * socket keeps the address socket-LB gave it at connect, whatever the maps say later.
   */
  holdConnection(from: Exec, spec: { addr: string; port: number; want: string; intervalMs: number; maxMs: number }): HeldConnection {
    const src = this.pod(from.where);
    const m = this.m;
    const out: SvcAttempt[] = [];
    const base = { op: 'hold', peer: '', peerPort: 0, reply: '', us: 0 } as const;
    let held: { cookie: number; to: { addr: string; port: number }; peer: { addr: string; port: number }; startNs: number } | undefined;
    for (let tries = 0; tries < 64 && !held; tries++) {
      const cookie = ++m.cookie;
      const d = this.dial(src, cookie, { op: 'hold', addr: spec.addr, port: spec.port });
      if (!('to' in d) || !d.to) {
        out.push({ ...base, i: tries, errno: d.errno ?? 'EINVAL', stage: 'connect' });
        break;
      }
      const r = this.reach(src, d.to.addr, d.to.port, 'TCP');
      if (r.kind !== 'open') {
        out.push({ ...base, i: tries, errno: r.kind === 'closed' ? 'ECONNREFUSED' : 'ETIMEDOUT', stage: 'connect' });
        break;
      }
      m.virtualNs += r.rtt * 1.5;
      if (r.server!.name !== spec.want) continue;
      const peer = m.sockLb.get(src.node)?.peer(cookie, d.to.addr, d.to.port) ?? d.to;
      held = { cookie, to: d.to, peer, startNs: m.virtualNs };
      out.push({ ...base, i: 0, errno: '', stage: 'held', peer: peer.addr, peerPort: peer.port, reply: spec.want });
    }
    if (!held && !out.length) out.push({ ...base, i: 0, errno: 'ESRCH', stage: 'pick' });
    const h = held;
    const exchange = (i: number, last: boolean): SvcAttempt => {
      const r = this.reach(src, h!.to.addr, h!.to.port, 'TCP');
      const ok = r.kind === 'open';
      m.virtualNs += ok ? r.rtt : 1e9;
      return {
        ...base,
        i,
        errno: ok ? '' : r.kind === 'closed' ? 'ECONNRESET' : 'ETIMEDOUT',
        stage: ok ? (last ? 'final' : 'done') : 'reply',
        us: ok ? r.rtt / 1000 : 1e6,
        peer: h!.peer.addr,
        peerPort: h!.peer.port,
        reply: ok ? r.server!.name : '',
      };
    };
    const ready = h ? Promise.resolve() : Promise.reject(new MeasureError(`simulated svcprobe hold in ${from.where}: ${out[0]?.errno}`));
    ready.catch(() => undefined);
    return {
      ready,
      async stop() {
        if (!h) return out;
        const n = Math.min(Math.floor((m.virtualNs - h.startNs) / (spec.intervalMs * 1e6)), Math.floor(spec.maxMs / spec.intervalMs));
        for (let i = 1; i <= n; i++) out.push(exchange(i, false));
        m.virtualNs = Math.max(m.virtualNs, h.startNs + (n + 1) * spec.intervalMs * 1e6);
        out.push(exchange(n + 1, true));
        return out;
      },
    };
  }

  /** live.ts setBackends on every socket-LB node: the next revision's slots, the entry flipped. */
  async setBackends(f: Frontend): Promise<number> {
    let written = 0;
    for (const lb of this.m.sockLb.values()) {
      written = nextRev(lb.revOf(f));
      lb.setFrontend(f, written);
    }
    return written;
  }
}

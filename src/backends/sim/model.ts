import { bigTcpMode } from '../../datapath/bigtcp/bigtcp.js';
import { chosenSize } from '../../datapath/bigtcp/bigtcp.js';
import type { Decision } from '../../datapath/feature.js';
import { decisionOf } from '../../datapath/feature.js';
import type { HostRoutingMode } from '../../datapath/host-routing/host-routing.js';
import type { BigCounts } from '../../measure/bigcount.js';
import type { BottleneckChange } from '../../measure/bottleneck.js';
import type { Lab, LabNode, SimNic } from '../../topology/model.js';
import type { CcName } from '../../sim/cc.js';
import { CALIBRATED_2VCPU, type CpuProfile, FAST_HOST } from '../../sim/cpu.js';
import { type DeviceProfile, PROFILES, SimDevice } from '../../sim/devices.js';
import { Rng } from '../../sim/rng.js';
import { SockLb } from '../../sim/socklb.js';
import { kubeProxy } from '../../datapath/kpr/kpr.js';
import { bandwidthManager, type BwmMode } from '../../datapath/bwm/bwm.js';
import { servicePlan } from '../../datapath/kpr/plan.js';
import type { ServerSeen } from '../../measure/services.js';

/**
 * The simulated lab's state: every device with its sizes, each node's host-routing mode, a
 * bottleneck changed for a measurement, the skb counters, the RNG and the virtual clock.
 * Built from the same resolved topology and the same feature decisions as a kernel lab.
 */
export class SimLab {
  readonly devices = new Map<string, SimDevice[]>();
  readonly hostRouting = new Map<string, HostRoutingMode>();
  /** A node's uplink bottleneck as a check changed it (absent: as the topology has it). */
  readonly neck = new Map<string, BottleneckChange>();
  /** Counters attached on a pod namespace's device. */
  readonly counters = new Map<string, BigCounts>();
  readonly rng: Rng;
  /** Socket-LB's maps on each node where the kube-proxy decision is bpf (deploySockLb fills them from the same plan). */
  readonly sockLb = new Map<string, SockLb>();
  /** svcprobe servers running, by pod namespace: their name, the ports they answer ('8080/tcp') and the sources they saw. */
  readonly servers = new Map<string, { name: string; ports: string[]; seen: ServerSeen[] }>();
  /**
   * The Bandwidth Manager on a node (edt_uplink + fq on its uplink, when decided): its counters
   * (edt_counters), the rates a check set for a measurement (withShaper; absent: the topology's
   * egressBandwidth), and the uplink fq's statistics after the last flow.
   */
  readonly bwm = new Map<
    string,
    {
      counters: { stamped: number; dropHorizon: number; unlimited: number };
      rates?: Record<string, number>;
      fq: { sentBytes: number; sentPkts: number; drops: number; horizonDrops: number; throttled: number };
    }
  >();
  /** The last socket cookie handed out (bpf_get_socket_cookie: one per socket, never reused). */
  cookie = 0;
  /** Virtual time spent in measurements so far, ns. */
  virtualNs = 0;
  /** Events the engine ran so far. */
  events = 0;
  /**
   * The calibrated 2-vCPU profile, unless a node has a 100G NIC profile: a host with such a NIC is not this
   * build machine, and its per-skb costs (FAST_HOST) let the wire be the limit.
   */
  readonly cpu: CpuProfile;

  constructor(
    readonly lab: Lab,
    decisions: Decision[],
    readonly seed: number,
  ) {
    this.rng = new Rng(seed);
    this.cpu = lab.nodes.some((n) => nicProfile(n).lineBps) ? FAST_HOST : CALIBRATED_2VCPU;
    let ifindex = 2;
    const add = (netns: string, name: string, profile: DeviceProfile = PROFILES.veth) => {
      const d = new SimDevice(netns, name, profile, ifindex++);
      const list = this.devices.get(netns) ?? [];
      list.push(d);
      this.devices.set(netns, list);
      return d;
    };
    for (const node of lab.nodes) {
      const mode = bigTcpMode({ decisions }, node);
      const devs: SimDevice[] = [];
      const pods = decisionOf<string>(decisions, 'pod-device', node.name)?.mode === 'netkit' ? PROFILES.netkit : PROFILES.veth;
      for (const pod of node.pods) devs.push(add(node.netns, pod.hostDev, pods), add(pod.netns, pod.dev, pods));
      if (node.uplink) {
        const peer = lab.peers.find((p) => p.node === node.name)!;
        // A NIC profile is the uplink on both ends: the node's NIC and the peer's, back to back.
        const nic = nicProfile(node);
        devs.push(add(node.netns, node.uplink.nodeDev, nic), add(peer.netns, node.uplink.peerDev, nic));
      }
      for (const l of lab.links) {
        if (l.a === node.name) devs.push(add(node.netns, l.devA));
        if (l.b === node.name) devs.push(add(node.netns, l.devB));
      }
      // As the backends create devices: sizes min(196608, tso_max_size) when BIG TCP is decided on.
      if (mode !== 'off') for (const d of devs) d.setSizes(chosenSize(d.profile.tsoMaxSize, true), mode === 'ipv4+ipv6');
      if (decisionOf<BwmMode>(decisions, bandwidthManager, node.name)?.mode === 'edt')
        this.bwm.set(node.name, {
          counters: { stamped: 0, dropHorizon: 0, unlimited: 0 },
          fq: { sentBytes: 0, sentPkts: 0, drops: 0, horizonDrops: 0, throttled: 0 },
        });
      if (lab.services.length && decisionOf(decisions, kubeProxy, node.name)?.mode === 'bpf')
        this.sockLb.set(node.name, new SockLb(servicePlan(lab)));
      this.hostRouting.set(node.name, decisionOf<HostRoutingMode>(decisions, 'host-routing', node.name)?.mode ?? 'legacy');
    }
  }

  /** The pods' congestion control on a node: its sim setting, else bbr (tcp_sk_init: a new namespace takes init_net's, bbr here). */
  congestionControl(node: LabNode): CcName {
    return node.sim?.congestionControl ?? 'bbr';
  }

  device(netns: string, dev: string): SimDevice | undefined {
    return this.devices.get(netns)?.find((d) => d.name === dev);
  }
}

/** The device model of a topology's `sim.nic` name. */
const NIC_PROFILES: Record<SimNic, DeviceProfile> = {
  veth: PROFILES.veth,
  virtio: PROFILES['virtio-net'],
  'mlx5-cx6dx': PROFILES.mlx5,
  'ice-e810': PROFILES.ice,
};

/** A node's uplink device model (veth when the topology names none). */
export const nicProfile = (node: LabNode): DeviceProfile => NIC_PROFILES[node.sim?.nic ?? 'veth'];

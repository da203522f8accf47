import { bigTcpMode } from '../../datapath/bigtcp/bigtcp.js';
import { chosenSize } from '../../datapath/bigtcp/bigtcp.js';
import type { Decision } from '../../datapath/feature.js';
import { decisionOf } from '../../datapath/feature.js';
import type { HostRoutingMode } from '../../datapath/host-routing/host-routing.js';
import type { BigCounts } from '../../measure/bigcount.js';
import type { BottleneckChange } from '../../measure/bottleneck.js';
import type { Lab } from '../../topology/model.js';
import { CALIBRATED_2VCPU, type CpuProfile } from '../../sim/cpu.js';
import { PROFILES, SimDevice } from '../../sim/devices.js';
import { Rng } from '../../sim/rng.js';

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
  /** Virtual time spent in measurements so far, ns. */
  virtualNs = 0;
  /** Events the engine ran so far. */
  events = 0;
  readonly cpu: CpuProfile = CALIBRATED_2VCPU;

  constructor(
    readonly lab: Lab,
    decisions: Decision[],
    readonly seed: number,
  ) {
    this.rng = new Rng(seed);
    let ifindex = 2;
    const add = (netns: string, name: string) => {
      const d = new SimDevice(netns, name, PROFILES.veth, ifindex++);
      const list = this.devices.get(netns) ?? [];
      list.push(d);
      this.devices.set(netns, list);
      return d;
    };
    for (const node of lab.nodes) {
      const mode = bigTcpMode({ decisions }, node);
      const devs: SimDevice[] = [];
      for (const pod of node.pods) devs.push(add(node.netns, pod.hostDev), add(pod.netns, pod.dev));
      if (node.uplink) {
        const peer = lab.peers.find((p) => p.node === node.name)!;
        devs.push(add(node.netns, node.uplink.nodeDev), add(peer.netns, node.uplink.peerDev));
      }
      for (const l of lab.links) {
        if (l.a === node.name) devs.push(add(node.netns, l.devA));
        if (l.b === node.name) devs.push(add(node.netns, l.devB));
      }
      // As the backends create devices: sizes min(196608, tso_max_size) when BIG TCP is decided on.
      if (mode !== 'off') for (const d of devs) d.setSizes(chosenSize(d.profile.tsoMaxSize, true), mode === 'ipv4+ipv6');
      this.hostRouting.set(node.name, decisionOf<HostRoutingMode>(decisions, 'host-routing', node.name)?.mode ?? 'legacy');
    }
  }

  device(netns: string, dev: string): SimDevice | undefined {
    return this.devices.get(netns)?.find((d) => d.name === dev);
  }
}

import type { Backend } from '../backends/backend.js';
import { setSizes, type SizedDevice } from '../datapath/bigtcp/bigtcp.js';
import type { Hook } from '../datapath/hook.js';
import { currentHostRouting, setHostRouting, type HostRoutingMode } from '../datapath/host-routing/host-routing.js';
import type { Exec } from '../exec/exec.js';
import type { KernelFacts } from '../kernel/facts.js';
import type { LabContext } from '../lifecycle/context.js';
import type { Lab, LabNode } from '../topology/model.js';
import { BigCounter, type BigCounts } from './bigcount.js';
import { Bottleneck } from './bottleneck.js';
import { tcpConnectAll, type ConnectResult, type ConnectSpec } from './connect.js';
import { bulkFlow, type FlowResult, type FlowSpec } from './flow.js';
import { readLinks, type LinkFacts } from './links.js';
import { tcpMmapFlow, type TcpMmapFlow, type TcpMmapSpec } from './tcp-mmap.js';
import { setBackends } from '../datapath/kpr/live.js';
import type { Frontend } from '../datapath/kpr/plan.js';
import type { Journal } from '../lifecycle/journal.js';
import { holdConnection, serviceAttempts, startServers } from './services.js';
import { readEdtCounters, type EdtCounters } from '../datapath/bwm/maps.js';
import { uplinkQdiscStats, withShaper, type Shaper } from '../datapath/bwm/shaper.js';
import { udpFlow } from './udp-flow.js';

/** A bottleneck a check may lift or reshape for one measurement (Bottleneck on a kernel). */
export type BottleneckHandle = Pick<Bottleneck, 'bps' | 'describe' | 'with'>;

/** A BPF-style counter of skbs over 64 KiB on a pod's egress (BigCounter on a kernel). */
export interface BigCounterHandle {
  attach(signal?: AbortSignal): Promise<void>;
  reset(signal?: AbortSignal): Promise<void>;
  read(signal?: AbortSignal): Promise<{ counts: BigCounts; raw: string }>;
  detach(): Promise<void>;
}

/**
 * Who answers the measurement API: the kernel (today's functions, which run ss, tc, ip,
 * iperf3 and bpftool in the namespaces) or the simulator's model. Every member has the
 * signature of the kernel function it stands for, so a check reads the same either way
 * and its verdict function never knows which one answered.
 */
export interface Measurer {
  /** 'kernel': measured; 'model': predicted by the simulator. */
  readonly kind: 'kernel' | 'model';
  readLinks(exec: Exec, dev?: string, signal?: AbortSignal): Promise<LinkFacts[]>;
  bulkFlow(spec: FlowSpec): Promise<FlowResult>;
  tcpConnectAll(from: Exec, addrs: readonly string[], spec: Omit<ConnectSpec, 'addr'>): Promise<ConnectResult[]>;
  bottleneck(lab: Lab, node: LabNode, exec: Exec): BottleneckHandle | undefined;
  currentHostRouting(ctx: LabContext, node: LabNode, signal?: AbortSignal): Promise<HostRoutingMode>;
  setHostRouting(ctx: LabContext, node: LabNode, mode: HostRoutingMode, signal?: AbortSignal): Promise<void>;
  setSizes(backend: Backend, facts: KernelFacts, namespaces: string[], on: boolean, signal?: AbortSignal): Promise<SizedDevice[]>;
  bigCounter(host: Exec, podExec: Exec, dev: string, bpfDir: string, objDir: string, hook: Hook): BigCounterHandle;
  /** tcp_mmap from one namespace to another (absent: no model of it, the tcp-mmap check skips). */
  tcpMmapFlow?(spec: TcpMmapSpec): Promise<TcpMmapFlow>;
  serviceAttempts: typeof serviceAttempts;
  startServers(
    pods: { exec: Exec; name: string; ports: string[] }[],
    objDir: string,
    journal: Journal,
    signal?: AbortSignal,
  ): ReturnType<typeof startServers>;
  holdConnection: typeof holdConnection;
  setBackends(ctx: LabContext, f: Frontend): Promise<number>;
  withShaper<T>(ctx: LabContext, node: LabNode, shaper: Shaper, rates: Record<string, number>, fn: () => Promise<T>): Promise<T>;
  readEdtCounters(root: Exec, mapPath: string, signal?: AbortSignal): Promise<EdtCounters>;
  uplinkQdiscStats(ctx: LabContext, node: LabNode): Promise<string>;
  udpFlow: typeof udpFlow;
}

/** The kernel: each member is the function checks called directly before the simulator existed. */
export const kernelMeasurer: Measurer = {
  kind: 'kernel',
  readLinks: (...a) => readLinks(...a),
  bulkFlow: (spec) => bulkFlow(spec),
  tcpConnectAll: (...a) => tcpConnectAll(...a),
  bottleneck: (...a) => Bottleneck.ofUplink(...a),
  currentHostRouting: (...a) => currentHostRouting(...a),
  setHostRouting: (...a) => setHostRouting(...a),
  setSizes: (...a) => setSizes(...a),
  bigCounter: (...a) => new BigCounter(...a),
  tcpMmapFlow: (spec) => tcpMmapFlow(spec),
  serviceAttempts: (...a) => serviceAttempts(...a),
  startServers: (...a) => startServers(...a),
  holdConnection: (...a) => holdConnection(...a),
  setBackends: (...a) => setBackends(...a),
  withShaper: (...a) => withShaper(...a),
  readEdtCounters: (...a) => readEdtCounters(...a),
  uplinkQdiscStats: (...a) => uplinkQdiscStats(...a),
  udpFlow: (...a) => udpFlow(...a),
};

/** The measurer of a lab: its backend's (the simulator has one), else the kernel's. */
export function measurer(ctx: Pick<LabContext, 'backend'>): Measurer {
  return ctx.backend.measurer?.() ?? kernelMeasurer;
}

/**
 * The one measurement API checks call; checks never build command lines. Each
 * measurement is typed and carries its raw kernel output as evidence.
 * - a bulk TCP flow, optionally sampled by one node-side process (sk_wmem_alloc, qdisc backlog), samples streamed;
 * - request/response latency (sockperf ping-pong round trips);
 * - counters from a BPF map (skbs over 64 KiB on a pod's egress);
 * - device facts (`ip -d -j link`), netkit devices and hook programs;
 * - the topology's bottleneck, changed for a measurement and put back in a finally;
 * - connection attempts with their outcome and errno (TCP connect to a closed port: a RST proves the round trip);
 * - the datapath's own per-CPU counters (redirects, drops by reason);
 * - tcp_mmap between two namespaces (Gbit/s, CPU per MB, rcv_mss, mmap'ed share).
 */
export { bulkFlow, median, IPERF_PORT, type FlowResult, type FlowSpec } from './flow.js';
export {
  startSampler,
  SampleParser,
  parseSsWmem,
  parseTcBacklog,
  type FlowSample,
  type SampleRecord,
  type SamplerSpec,
  type Sampler,
} from './sampler.js';
export { requestResponse, parseSockperf, SOCKPERF_PORT, type RrResult, type RrSpec } from './rr.js';
export { BigCounter, BIG, type BigCounts } from './bigcount.js';
export { readLinks, LinkJson, type LinkFacts } from './links.js';
export { tcxPrograms } from './tcx.js';
export { readNetkitDevice, nkctlAttempt, setPeerProgram, type NetkitDevice, type NkctlAttempt } from './netkit.js';
export { Bottleneck, bottlenecksRestored, rateBps, type BottleneckChange } from './bottleneck.js';
export { addVethPod } from './scratch-pod.js';
export {
  tcpConnect,
  tcpConnectAll,
  parseConnect,
  CONNECT_TIMEOUT_MS,
  type ConnectOutcome,
  type ConnectResult,
  type ConnectSpec,
} from './connect.js';
export {
  readDatapathCounters,
  parseDatapathCounters,
  counterDelta,
  DATAPATH_COUNTERS,
  type DatapathCounter,
  type DatapathCounters,
} from './datapath-counters.js';
export { tcpMmapFlow, pageMss, TCP_MMAP_PORT, type TcpMmapFlow, type TcpMmapSpec } from './tcp-mmap.js';
export { measurer, kernelMeasurer, type Measurer, type BottleneckHandle, type BigCounterHandle } from './measurer.js';

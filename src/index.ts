/** datapath-lab as a library: the curated public entry (the CLI is built on the same). */
export { LabError, TopologyError, CommandError, EXIT, exitCodeFor, type ErrorCode, type TopologyIssue } from './errors.js';
export { TopologySchema, jsonSchema, type Topology, type RawTopology, type CheckId, type Datapath } from './topology/schema.js';
export { parseTopology, loadTopologyFile, type Loaded, type Result } from './topology/loader.js';
export { resolve } from './topology/resolver.js';
export type { Lab, LabNode, Pod, Peer, NodeLink, CheckSpec } from './topology/model.js';
export { labMachine, type LabInput, type LabOutput, type LabMode } from './lifecycle/lab-machine.js';
export { nodeMachine } from './lifecycle/node-machine.js';
export { validate, probe, attach, deployNode } from './lifecycle/steps.js';
export { Journal, knownLabs, type JournalObject, type JournalEntry, type Owner } from './lifecycle/journal.js';
export { teardownLab } from './lifecycle/teardown.js';
export { createBackend, backendNames } from './backends/registry.js';
export type { Backend, DestroyResult, NodeStatus, DoctorSection, LogFile, Timing } from './backends/backend.js';
export type { LabContext } from './lifecycle/context.js';
export { HostExec, NetnsExec, type Exec, type ExecResult, type ExecOptions } from './exec/exec.js';
export { probeLocal, type KernelFacts, type Verdict } from './kernel/facts.js';
export { FEATURES } from './datapath/registry.js';
export { decisionOf, type Decision, type DecisionStatus, type Feature } from './datapath/feature.js';
export { CHECKS, checkById } from './checks/registry.js';
export type { Check, CheckResult, CheckStatus } from './checks/check.js';
export {
  bulkFlow,
  requestResponse,
  BigCounter,
  readLinks,
  Bottleneck,
  type FlowResult,
  type FlowSample,
  type RrResult,
} from './measure/index.js';
export { loadCatalogue } from './kernels/catalogue.js';
export { cachedKernel, type CachedKernel } from './kernels/cache.js';

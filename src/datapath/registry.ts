import { bigTcp } from './bigtcp/bigtcp.js';
import { bandwidthManager } from './bwm/bwm.js';
import { podDevice } from './devices/devices.js';
import type { Feature } from './feature.js';
import { hostRouting } from './host-routing/host-routing.js';
import { kubeProxy } from './kpr/kpr.js';
import { xdpLoadBalancer } from './xdp-lb/feature.js';

/** Every datapath feature, in the order they are decided and applied on a node. Adding one is one line here. */
export const FEATURES: readonly Feature[] = [
  podDevice,
  hostRouting,
  bigTcp,
  kubeProxy,
  bandwidthManager,
  xdpLoadBalancer,
] as readonly Feature<string>[];

import { bigTcp } from './bigtcp/bigtcp.js';
import { podDevice } from './devices/devices.js';
import type { FeatureInfo } from './feature.js';
import { hostRouting } from './host-routing/host-routing.js';

/** Every datapath feature, in the order they are deployed on a node. */
export const FEATURES: readonly FeatureInfo[] = [podDevice, hostRouting, bigTcp];

import type { Check } from './check.js';
import { bwmHorizon } from './bwm-horizon.js';
import { bwmLatency } from './bwm-latency.js';
import { bwmRate } from './bwm-rate.js';
import { bwmBackpressure } from './bwm-backpressure.js';

/** The Bandwidth Manager's checks, in run order (src/checks/registry.ts spreads them). */
export const BWM_CHECKS: readonly Check[] = [bwmRate, bwmLatency, bwmHorizon, bwmBackpressure];

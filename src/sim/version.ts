/** The simulator's model version: reports carry it; bump it when a model changes what it predicts. */
export const MODEL_VERSION = 'dpl-sim/0.3.0';

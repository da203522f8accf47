import { installEarlySignals } from './signals.js';

// Before the CLI's modules load (hundreds of ms on a busy machine): a signal in that window is recorded, not fatal.
installEarlySignals();
// DPL_TRACE=signals: when that is, for the test that signals the CLI in this window.
if (process.env.DPL_TRACE?.split(',').includes('signals')) process.stderr.write('signals: early handlers installed\n');
await import('./main.js');

import { nofileRefusal, ownLimits } from './nofile.js';
import { installEarlySignals } from './signals.js';

// Before the CLI's modules load (hundreds of ms on a busy machine): a signal in that window is recorded, not fatal.
installEarlySignals();
// DPL_TRACE=signals: when that is, for the test that signals the CLI in this window.
if (process.env.DPL_TRACE?.split(',').includes('signals')) process.stderr.write('signals: early handlers installed\n');
// Before the modules load: below the fds they need, Node fails loading them with a stack trace.
const tooFewFds = nofileRefusal(ownLimits());
if (tooFewFds) {
  process.stderr.write(tooFewFds);
  process.exit(2);
}
await import('./main.js');

import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * A snapshot taken before a check puts back what it changed. runChecks lends the running check a
 * capture; what restores in a finally (Bottleneck.with) calls beforeRestore when its measurement
 * threw, so the snapshot shows the nodes as they were when it failed, not as the finally left them.
 */
const store = new AsyncLocalStorage<(why: string) => Promise<void>>();

/** Run a check with a capture that beforeRestore calls. */
export function withPreRestore<T>(capture: (why: string) => Promise<void>, fn: () => Promise<T>): Promise<T> {
  return store.run(capture, fn);
}

/** Capture now, if the running check has a capture; a capture that fails never hides the check's own error. */
export async function beforeRestore(why: string): Promise<void> {
  await store
    .getStore()?.(why)
    .catch(() => undefined);
}

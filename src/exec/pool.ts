/** Run async work over items, at most `n` at a time. */
export async function pool<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/** Parallel commands per step: spawning overlaps with the kernel's work even on 2 cores. */
export const PARALLEL = 4;

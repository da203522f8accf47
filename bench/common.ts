import { spawnArgv, type Background } from '../src/exec/exec.js';

export { median } from '../src/measure/flow.js';

/** One benchmark command: exit code, output, wall seconds. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  s: number;
}

const live = new Set<Background>();

/** Run argv through the project's exec adapter, timed; tracked so killAll() can end it. */
export function run(argv: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  const b = spawnArgv(argv, opts);
  live.add(b);
  return b.done.then((r) => {
    live.delete(b);
    return { code: r.code, stdout: r.stdout, stderr: r.stderr, s: r.ms / 1000 };
  });
}

/** End every command still running (a benchmark's cleanup on failure). */
export function killAll(): void {
  for (const b of live) b.kill('SIGKILL');
}

export function must(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  return r;
}

export { sleep } from '../src/sleep.js';

/** Wall ms and CPU ms (user + system) of fn: on a shared machine CPU time is the steadier figure. */
export function timed<T>(fn: () => T): { r: T; ms: number; cpuMs: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = fn();
  const c = process.cpuUsage(c0);
  return { r, ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 };
}

import { describe, expect, it, vi } from 'vitest';
import { expectedSeconds, liveLine, progressLogger } from '../../src/cli/output.js';

/** A terminal (or a pipe) that records what was written, and a clock the test moves. */
function fake(isTTY: boolean, columns = 80) {
  const out: string[] = [];
  let t = 1000;
  return { stream: { isTTY, columns, write: (s: string) => out.push(s) }, out, now: () => t, advance: (ms: number) => (t += ms) };
}

describe('progress', () => {
  it('reads the length a step announces, from the messages the checks print', () => {
    expect(expectedSeconds('backpressure: 3 s flow client -> remote (10.255.1.2) with bpf host routing')).toBe(3);
    expect(expectedSeconds('bigtcp: 2.5 s ipv6 flow client -> dpl-x.remote with BIG TCP on')).toBe(2.5);
    expect(expectedSeconds('bwm-latency: 3 s of round trips from limited alone (the floor)')).toBe(3);
    expect(expectedSeconds('booting 1 VM(s) with kernel 6.12.95+deb12-cloud-amd64 under TCG')).toBeUndefined();
    expect(expectedSeconds('node node1: guest agent answered 10.1 s after QEMU started')).toBeUndefined();
  });

  it('the live line: elapsed, what is left while known, overrun, and the terminal width', () => {
    expect(liveLine('bigtcp: 3 s ipv4 flow', 12_300, 1_000)).toBe('[ 12.3s] bigtcp: 3 s ipv4 flow (1.0 s, ~2.0 s left)');
    expect(liveLine('bigtcp: 3 s ipv4 flow', 15_000, 3_700)).toBe('[ 15.0s] bigtcp: 3 s ipv4 flow (3.7 s of ~3 s)');
    expect(liveLine('booting 1 VM(s) under TCG', 4_000, 2_000)).toBe('[  4.0s] booting 1 VM(s) under TCG (2.0 s)');
    const cut = liveLine(`kernel 7.3: ${'x'.repeat(200)}`, 1_000, 500, 60);
    expect(cut.length).toBe(59);
    expect(cut).toMatch(/x… \(0\.5 s\)$/);
  });

  it('not a terminal: a stamped line per step, as before', () => {
    const f = fake(false);
    const p = progressLogger(false, f.stream, f.now);
    p('validate lab.yaml');
    f.advance(2_500);
    p('probe the local backend');
    p.end();
    expect(f.out).toEqual(['[  0.0s] validate lab.yaml\n', '[  2.5s] probe the local backend\n']);
  });

  it('a terminal: one line rewritten in place, verdicts and warnings kept above it, cleared at the end', () => {
    const f = fake(true);
    const p = progressLogger(false, f.stream, f.now);
    p('backpressure: 2 s flow client -> remote');
    f.advance(1_200);
    p('check backpressure: PASS bpf: socket owned ...');
    p('tear down lab x');
    p.end();
    expect(f.out).toEqual([
      '\r\x1b[K[  0.0s] backpressure: 2 s flow client -> remote (0.0 s, ~2.0 s left)',
      '\r\x1b[K[  1.2s] check backpressure: PASS bpf: socket owned ...\n',
      '\r\x1b[K[  1.2s] tear down lab x (0.0 s)',
      '\r\x1b[K',
    ]);
    // Only kept lines end a row: the live one never does.
    expect(f.out.filter((s) => s.endsWith('\n'))).toHaveLength(1);
  });

  it('quiet: nothing at all', () => {
    const f = fake(true);
    const p = progressLogger(true, f.stream, f.now);
    p('validate');
    p.end();
    expect(f.out).toEqual([]);
  });
  it('a terminal: the live line ticks while a step runs, and stops at the end', () => {
    vi.useFakeTimers();
    try {
      const f = fake(true);
      const p = progressLogger(false, f.stream, f.now);
      p('bigtcp: 3 s ipv4 flow');
      for (let i = 0; i < 4; i++) {
        f.advance(500);
        vi.advanceTimersByTime(500);
      }
      expect(f.out.at(-1)).toBe('\r\x1b[K[  2.0s] bigtcp: 3 s ipv4 flow (2.0 s, ~1.0 s left)');
      p.end();
      const n = f.out.length;
      vi.advanceTimersByTime(5_000);
      expect(f.out).toHaveLength(n);
    } finally {
      vi.useRealTimers();
    }
  });
});

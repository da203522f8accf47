/**
 * A deterministic discrete-event engine: a virtual clock in integer nanoseconds (a
 * double holds every integer up to 2^53 ns, 104 days) and a binary min-heap of events
 * ordered by (time, insertion sequence), so two events at the same instant run in the
 * order they were scheduled: no dependence on wall time, hashing or object identity.
 */
export type Action = () => void;

export class Engine {
  /** Virtual time, ns. */
  now = 0;
  /** Events run so far. */
  events = 0;
  private times: number[] = [];
  private seqs: number[] = [];
  private acts: Action[] = [];
  private seq = 0;

  /** Run `fn` at absolute time t (ns; never before now; a fraction rounds up, so nothing runs early). */
  at(t: number, fn: Action): void {
    const time = t < this.now ? this.now : Math.ceil(t);
    const { times, seqs, acts } = this;
    let i = times.length;
    const s = this.seq++;
    times.push(time);
    seqs.push(s);
    acts.push(fn);
    // Sift up.
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (times[p] < time || (times[p] === time && seqs[p] < s)) break;
      times[i] = times[p];
      seqs[i] = seqs[p];
      acts[i] = acts[p];
      i = p;
    }
    times[i] = time;
    seqs[i] = s;
    acts[i] = fn;
  }

  /** Run `fn` dt ns from now. */
  after(dt: number, fn: Action): void {
    this.at(this.now + dt, fn);
  }

  get pending(): number {
    return this.times.length;
  }

  /** Run events in order until the queue is empty or the next one is later than `until` (ns); the clock ends at `until`. */
  run(until = Number.POSITIVE_INFINITY): void {
    const { times, seqs, acts } = this;
    while (times.length && times[0] <= until) {
      const t = times[0];
      const fn = acts[0];
      const lastT = times.pop()!;
      const lastS = seqs.pop()!;
      const lastA = acts.pop()!;
      const n = times.length;
      if (n) {
        // Sift the last element down from the root.
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= n) break;
          const r = l + 1;
          let c = l;
          if (r < n && (times[r] < times[l] || (times[r] === times[l] && seqs[r] < seqs[l]))) c = r;
          if (times[c] > lastT || (times[c] === lastT && seqs[c] > lastS)) break;
          times[i] = times[c];
          seqs[i] = seqs[c];
          acts[i] = acts[c];
          i = c;
        }
        times[i] = lastT;
        seqs[i] = lastS;
        acts[i] = lastA;
      }
      this.now = t;
      this.events++;
      fn();
    }
    if (until !== Number.POSITIVE_INFINITY && this.now < until) this.now = until;
  }
}

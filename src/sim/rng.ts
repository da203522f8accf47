/**
 * xorshift32 (Marsaglia, "Xorshift RNGs", J. Stat. Softw. 2003): a 32-bit state, three
 * shifts, period 2^32-1. Small, fast, and the same sequence on every machine: the
 * simulator's only source of randomness, so one seed gives one report.
 */
export class Rng {
  private s: number;
  constructor(seed: number) {
    // A zero state would stay zero forever.
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** Next 32-bit unsigned integer. */
  u32(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }
  /** A new independent stream (for one flow), drawn from this one. */
  fork(): Rng {
    return new Rng(this.u32());
  }
}

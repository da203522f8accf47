import type { Exec } from '../exec/exec.js';
import { LabError } from '../errors.js';
import { nodeLinks, tbfBatch } from '../backends/wiring.js';
import { netemAddLine, netemEnds } from '../datapath/impair/netem.js';
import type { Lab, LabNode } from '../topology/model.js';
import { beforeRestore } from '../lifecycle/pre-restore.js';

/** How a check wants the bottleneck while it measures. */
export type BottleneckChange = { lift: true } | { rateBps: number };

/** tc(8) RATES: SI multiples; "bps" units are bytes per second. */
const UNIT: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12, bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9 };

/** Bits per second of a tc rate ('200mbit'); the topology schema admits only these forms. */
export function rateBps(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)([a-z]+)$/.exec(rate);
  if (!m || !(m[2] in UNIT)) throw new LabError('E_USAGE', `not a tc rate: ${rate}`);
  return Number(m[1]) * UNIT[m[2]];
}

/** Changed bottlenecks not yet put back; the CLI waits for them before it exits (an interrupted `lab check`). */
const unrestored = new Set<Promise<void>>();

/** Resolves once every temporarily changed bottleneck is back as its topology had it (or after timeoutMs). */
export async function bottlenecksRestored(timeoutMs = 15_000): Promise<void> {
  if (!unrestored.size) return;
  let t: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled([...unrestored]), new Promise((r) => (t = setTimeout(r, timeoutMs)))]);
  clearTimeout(t);
}

/**
 * The tbf line as `qdisc replace`, and after it the netem under it when the link is impaired
 * (src/datapath/impair/netem.ts): lifting the tbf deletes its child, so restoring puts both back.
 */
function withNetem(lab: Lab, node: LabNode, dev: string, tbf: string): string {
  const netem = netemEnds(lab, node).find((e) => e.netns === node.netns && e.dev === dev && e.parent === 'tbf');
  return [tbf, ...(netem ? [netemAddLine(netem)] : [])].map((l) => l.replace(/^qdisc add /, 'qdisc replace ')).join('\n');
}

/** The tbf the topology put on a node's uplink (wiring.ts tbfBatch is its one source). */
export class Bottleneck {
  private constructor(
    /** The node's namespace, where the qdisc lives. */
    readonly exec: Exec,
    /** The uplink's node-side device. */
    readonly dev: string,
    /** The topology's rate in bits per second. */
    readonly bps: number,
    /** The topology's own tc line for this device, as `qdisc replace`. */
    private readonly line: string,
  ) {}

  /** The bottleneck of a node's uplink, or undefined when the topology gives it no rate. */
  static ofUplink(lab: Lab, node: LabNode, exec: Exec): Bottleneck | undefined {
    const u = node.uplink;
    if (!u?.rate) return undefined;
    const line = (tbfBatch(lab, node) ?? '').split('\n').find((l) => l.includes(` dev ${u.nodeDev} `));
    if (!line) return undefined;
    return new Bottleneck(exec, u.nodeDev, rateBps(u.rate), withNetem(lab, node, u.nodeDev, line));
  }

  /** The bottleneck on one of a node's devices (its uplink or a link with a rate), or undefined without one. */
  static ofDevice(lab: Lab, node: LabNode, dev: string, exec: Exec): Bottleneck | undefined {
    const rate = node.uplink?.nodeDev === dev ? node.uplink.rate : nodeLinks(lab, node).find((l) => l.dev === dev)?.rate;
    if (!rate) return undefined;
    const line = (tbfBatch(lab, node) ?? '').split('\n').find((l) => l.includes(` dev ${dev} `));
    if (!line) return undefined;
    return new Bottleneck(exec, dev, rateBps(rate), withNetem(lab, node, dev, line));
  }

  /** A human description of a change. */
  describe(c: BottleneckChange): string {
    return 'lift' in c ? `tbf lifted from ${this.dev}` : `tbf ${(c.rateBps / 1e6).toFixed(1)} Mbit/s on ${this.dev}`;
  }

  private async apply(c: BottleneckChange, signal?: AbortSignal): Promise<void> {
    if ('lift' in c) {
      await this.exec.run(['tc', 'qdisc', 'del', 'dev', this.dev, 'root'], { signal });
      return;
    }
    const line = this.line.replace(/ rate \S+ /, ` rate ${Math.round(c.rateBps)}bit `);
    await this.exec.run(['tc', '-batch', '-'], { input: `${line}\n`, signal });
  }

  /** Put the qdisc back exactly as the topology's wiring made it (no signal: this must run after an abort too). */
  async restore(): Promise<void> {
    await this.exec.run(['tc', '-batch', '-'], { input: `${this.line}\n`, nothrow: true }).catch(() => undefined);
  }

  /**
   * Run `fn` with the bottleneck changed, and put it back in a finally, also when `fn`
   * throws or the lab is interrupted. A rate equal to the topology's changes nothing.
   */
  async with<T>(c: BottleneckChange, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (!('lift' in c) && Math.round(c.rateBps) >= this.bps) return fn();
    let done!: () => void;
    const pending = new Promise<void>((r) => (done = r));
    unrestored.add(pending);
    try {
      await this.apply(c, signal);
      return await fn();
    } catch (e) {
      if (!signal?.aborted)
        await beforeRestore(`${this.describe(c)}; the measurement under it failed: ${(e as Error).message?.split('\n')[0]}`);
      throw e;
    } finally {
      await this.restore();
      unrestored.delete(pending);
      done();
    }
  }
}

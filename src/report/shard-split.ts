import { LabError } from '../errors.js';

/** One share of a matrix: shard `index` (1-based) of `count`. */
export interface Shard {
  /** 1..count. */
  index: number;
  /** How many shards the matrix is split into. */
  count: number;
}

/** One cell of the kernels x topologies matrix. */
export interface MatrixCell {
  /** The topology file as given. */
  topology: string;
  /** A catalogue kernel name. */
  kernel: string;
}

/** `--shard I/N`: 1 <= I <= N, integers; anything else is a usage error. */
export function parseShard(value: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const [index, count] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  if (!m || count < 1 || index < 1 || index > count) throw new LabError('E_USAGE', `--shard ${value}: want I/N with 1 <= I <= N, e.g. 2/3`);
  return { index, count };
}

/**
 * The cells shard I of N runs: every cell sorted by topology then kernel, and dealt round
 * robin, so the split depends only on the set of cells (not on the order they were named)
 * and shard sizes differ by at most one.
 */
export function shardCells(cells: readonly MatrixCell[], shard: Shard): MatrixCell[] {
  const key = (c: MatrixCell) => `${c.topology}\0${c.kernel}`;
  const sorted = [...cells].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return sorted.filter((_, i) => i % shard.count === shard.index - 1);
}

/** What one share runs of one topology: its kernels there. */
export interface SharePlan {
  /** The topology file as given. */
  topology: string;
  /** The kernels of this topology in the share, in catalogue-name order. */
  kernels: string[];
}

/**
 * Share I of N of the kernels x topologies matrix as one `lab run --kernel` per topology:
 * the cells shardCells deals this share, grouped by topology (topologies without a cell
 * left out). Every runner computes the same plan alone, as with the kernels of one topology.
 */
export function planShare(topologies: readonly string[], kernels: readonly string[], shard: Shard): SharePlan[] {
  const cells = [...new Set(topologies)].flatMap((topology) => [...new Set(kernels)].map((kernel) => ({ topology, kernel })));
  const plan = new Map<string, string[]>();
  for (const c of shardCells(cells, shard)) plan.set(c.topology, [...(plan.get(c.topology) ?? []), c.kernel]);
  return [...plan].map(([topology, ks]) => ({ topology, kernels: ks }));
}

/** Every kernel a share boots (what its runner fetches), sorted. */
export const planKernels = (plan: readonly SharePlan[]) => [...new Set(plan.flatMap((p) => p.kernels))].sort();

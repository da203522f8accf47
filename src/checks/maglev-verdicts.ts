/**
 * Verdicts of maglev-balance, maglev-consistency and xdp-lb-weight-zero: pure functions of what the checks read
 * back from the LB nodes' tables and what client flows met. The checks themselves live with the XDP LB feature.
 */
import { couldNotEstablish } from './check.js';

/** What a Maglev verdict hands its check: status, reason, figures and the rule it judged by. */
export interface MaglevVerdict {
  status: 'pass' | 'fail' | 'error';
  reason: string;
  metrics: Record<string, unknown>;
  threshold: string;
}

/** A frontend's Maglev table as read back from one LB node. */
export interface MaglevTableRun {
  /** LB node the table was read from. */
  node: string;
  /** The frontend as labelOf prints it. */
  frontend: string;
  /** Backend names (node/pod), in the order of weights and cells. */
  backends: readonly string[];
  /** Lab weights (0..100). */
  weights: readonly number[];
  /** Cells each backend owns in the table read back (tableShares); they sum to M. */
  cells: readonly number[];
}

/** Client flows sent through one VIP of one LB node, and which backend answered each. */
export interface MaglevFlowRun {
  node: string;
  frontend: string;
  /** Backend names, in the order of cells and flows. */
  backends: readonly string[];
  /** Cells each backend owns in the table the flows went through: a flow lands on backend i with chance cells_i / M. */
  cells: readonly number[];
  /** Flows each backend answered. */
  flows: readonly number[];
  /** Flows that got no answer, or an answer from no listed backend. */
  unanswered: number;
}

/** Standard deviations of the binomial spread a backend's flow count may stray from K x cells / M. */
export const FLOW_Z = 4;
/** Fewest flows a backend should expect before its count says anything (normal approximation of the binomial). */
export const MIN_EXPECTED_FLOWS = 10;
/** Share of flows that may go unanswered before the spread cannot be judged. */
const MAX_UNANSWERED = 0.01;

const pct = (x: number, digits = 2) => `${(100 * x).toFixed(digits)}%`;
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const error = (what: string, metrics: Record<string, unknown>, threshold: string): MaglevVerdict => ({
  status: 'error',
  reason: couldNotEstablish(what),
  metrics,
  threshold,
});

const BALANCE_RULE =
  `table: every backend within 1% of its weight's share (1% of M/N when weights are equal, else 1% of M), weight 0 ` +
  `owns no cell; flows: every backend within ${FLOW_Z} binomial standard deviations of K x cells/M`;

/** Table shares within 1% of even or of the weights, and client flows within the binomial spread of the shares. */
export function judgeMaglevBalance(tables: readonly MaglevTableRun[], flows: readonly MaglevFlowRun[]): MaglevVerdict {
  const metrics: Record<string, unknown> = { tables: [], flows: [] };
  if (!tables.length) return error('no Maglev table was read back', metrics, BALANCE_RULE);
  const problems: string[] = [];
  const notes: string[] = [];
  for (const t of tables) {
    const m = sum(t.cells);
    const live = t.weights.filter((w) => w > 0);
    if (!live.length || m === 0) return error(`${t.frontend} on ${t.node} has no backend of weight > 0`, metrics, BALANCE_RULE);
    const total = sum(live);
    const equal = live.every((w) => w === live[0]);
    const tolerance = equal ? (0.01 * m) / live.length : 0.01 * m;
    let worst = 0;
    t.backends.forEach((b, i) => {
      const expected = (m * t.weights[i]) / total;
      const off = Math.abs(t.cells[i] - expected);
      if (t.weights[i] === 0 && t.cells[i] > 0) problems.push(`${t.frontend} on ${t.node}: ${b} has weight 0 and owns ${t.cells[i]} cells`);
      else if (off > tolerance)
        problems.push(
          `${t.frontend} on ${t.node}: ${b} owns ${t.cells[i]} of ${m} cells, ${expected.toFixed(1)} expected, ${off.toFixed(1)} off > ${tolerance.toFixed(1)}` +
            (equal && m < 100 * live.length ? ` (M < 100 x N: 1% of M/N is under one cell)` : ''),
        );
      worst = Math.max(worst, off / m);
    });
    (metrics.tables as unknown[]).push({
      node: t.node,
      frontend: t.frontend,
      m,
      cells: Object.fromEntries(t.backends.map((b, i) => [b, t.cells[i]])),
    });
    notes.push(`${t.frontend} on ${t.node}: worst ${pct(worst, 3)} of M off its share`);
  }
  // The tables already went against the claim: no flow count can change that.
  if (problems.length) return { status: 'fail', reason: problems.join('; '), metrics, threshold: BALANCE_RULE };
  if (!flows.length) return error('no client flows were sent', metrics, BALANCE_RULE);
  for (const f of flows) {
    const m = sum(f.cells);
    const answered = sum(f.flows);
    const k = answered + f.unanswered;
    if (m === 0) return error(`${f.frontend} on ${f.node}: the flows' table has no cell`, metrics, BALANCE_RULE);
    if (k === 0) return error(`${f.frontend} on ${f.node}: no flow was sent`, metrics, BALANCE_RULE);
    if (f.unanswered > MAX_UNANSWERED * k)
      return error(
        `${f.frontend} on ${f.node}: ${f.unanswered} of ${k} flows got no answer (more than ${pct(MAX_UNANSWERED, 0)})`,
        metrics,
        BALANCE_RULE,
      );
    const live = f.cells.map((c) => c / m).filter((p) => p > 0);
    const need = Math.ceil(MIN_EXPECTED_FLOWS / Math.min(...live));
    if (answered < need)
      return error(
        `${f.frontend} on ${f.node}: ${answered} answered flows; ${need} are needed so the smallest share expects ${MIN_EXPECTED_FLOWS}`,
        metrics,
        BALANCE_RULE,
      );
    const rows = f.backends.map((b, i) => {
      const p = f.cells[i] / m;
      const expected = answered * p;
      const sd = Math.sqrt(answered * p * (1 - p));
      return { backend: b, flows: f.flows[i], expected: Number(expected.toFixed(1)), allowed: Number((FLOW_Z * sd).toFixed(1)) };
    });
    for (const r of rows)
      if (Math.abs(r.flows - r.expected) > r.allowed)
        problems.push(
          `${f.frontend} via ${f.node}: ${r.backend} answered ${r.flows} of ${answered} flows, ${r.expected} expected +/- ${r.allowed} (${FLOW_Z} sd)`,
        );
    (metrics.flows as unknown[]).push({ node: f.node, frontend: f.frontend, answered, unanswered: f.unanswered, rows });
    notes.push(`${f.frontend} via ${f.node}: ${rows.map((r) => `${r.backend} ${r.flows}/${r.expected}`).join(', ')} of ${answered} flows`);
  }
  if (problems.length) return { status: 'fail', reason: problems.join('; '), metrics, threshold: BALANCE_RULE };
  return {
    status: 'pass',
    reason:
      `${tables.length} tables within 1% of their weights, ${flows.length} flow runs within ${FLOW_Z} sd of K x cells/M ` +
      `(binomial: a flow's backend is a draw with p = cells/M, so a count strays by sqrt(K p (1-p))): ${notes.join('; ')}`,
    metrics,
    threshold: BALANCE_RULE,
  };
}

/** One backend removed from a frontend's table on one LB node, the tables before and after compared cell by cell. */
export interface MaglevRemovalRun {
  node: string;
  frontend: string;
  /** The backend removed. */
  removed: string;
  /** Cells the other backends owned before the removal (remapCount's cells). */
  survivorCells: number;
  /** Of those, the cells with another owner after the removal (remapCount's changed). */
  changed: number;
  /** Cells the removed backend still owns after its removal. */
  leftToRemoved: number;
}

/** One 5-tuple sent through each of two LB nodes, and the backend that answered through each. */
export interface TupleSeen {
  /** The 5-tuple as people read it: 10.0.0.1:40000 > 172.30.0.10:80/TCP. */
  tuple: string;
  /** Backend that answered through the first LB node; undefined when none did. */
  first?: string;
  /** Backend that answered through the second LB node; undefined when none did. */
  second?: string;
  /** Backend the lab predicts (flowHash4 % M into the builder's table), when the check computed one. */
  predicted?: string;
}

/**
 * A 5-tuple sent again through both LB nodes after a backend's removal, with the LB's conntrack entries for it cleared
 * (so the kernel's new table picks, not the entry of the first send).
 */
export interface TupleAfter extends TupleSeen {
  /** The backend both LB nodes sent it to before the removal. */
  before: string;
  /** The backend removed. */
  removed: string;
}

/** Share of the survivors' cells a removal may move (issue 9; Cilium kubeproxy-free.rst says so for M > 100 x N). */
export const MAX_REMAP = 0.01;
/** Fewest 5-tuples answered through both LB nodes before agreement says anything. */
export const MIN_TUPLES = 10;

/** Removal remaps at most 1% of the survivors' cells; the same 5-tuples land on the same backend through either LB node. */
export function judgeMaglevConsistency(
  removals: readonly MaglevRemovalRun[],
  tuples: readonly TupleSeen[],
  lbs: readonly [string, string] = ['lb1', 'lb2'],
  /** The same tuples after the removal (real traffic through `lab svc`'s change); absent: tables only. */
  after?: readonly TupleAfter[],
): MaglevVerdict {
  const threshold =
    `removal: at most ${pct(MAX_REMAP, 0)} of the other backends' cells change owner and the removed one keeps none; ` +
    `5-tuples: the same backend through ${lbs[0]} and ${lbs[1]} (and the predicted one, where given), at least ${MIN_TUPLES} answered by both` +
    (after ? "; after the removal the same, none on the removed backend, a survivor's tuple moved only where its cell did" : '');
  const both = tuples.filter((t) => t.first !== undefined && t.second !== undefined);
  const metrics: Record<string, unknown> = {
    removals: removals.map((r) => ({ ...r, fraction: r.survivorCells ? r.changed / r.survivorCells : null })),
    tuples: tuples.length,
    answeredByBoth: both.length,
  };
  if (!removals.length) return error('no removal was measured', metrics, threshold);
  const empty = removals.find((r) => r.survivorCells === 0);
  if (empty)
    return error(`${empty.frontend} on ${empty.node}: no cell belonged to a backend other than ${empty.removed}`, metrics, threshold);
  if (both.length < MIN_TUPLES)
    return error(
      `${both.length} of ${tuples.length} 5-tuples were answered through both ${lbs.join(' and ')} (${MIN_TUPLES} needed)`,
      metrics,
      threshold,
    );
  const problems: string[] = [];
  for (const r of removals) {
    if (r.leftToRemoved > 0)
      problems.push(`${r.frontend} on ${r.node}: ${r.removed} still owns ${r.leftToRemoved} cells after its removal`);
    if (r.changed > MAX_REMAP * r.survivorCells)
      problems.push(
        `${r.frontend} on ${r.node}: removing ${r.removed} moved ${r.changed} of the others' ${r.survivorCells} cells ` +
          `(${pct(r.changed / r.survivorCells)} > ${pct(MAX_REMAP, 0)})`,
      );
  }
  const split = both.filter((t) => t.first !== t.second);
  if (split.length)
    problems.push(
      `${split.length} of ${both.length} 5-tuples reached different backends: ` +
        split
          .slice(0, 3)
          .map((t) => `${t.tuple}: ${t.first} via ${lbs[0]}, ${t.second} via ${lbs[1]}`)
          .join('; '),
    );
  const mispredicted = both.filter((t) => t.predicted !== undefined && t.first === t.second && t.first !== t.predicted);
  if (mispredicted.length)
    problems.push(
      `${mispredicted.length} 5-tuples reached another backend than the table predicts: ` +
        mispredicted
          .slice(0, 3)
          .map((t) => `${t.tuple}: ${t.first}, predicted ${t.predicted}`)
          .join('; '),
    );
  const late = after && judgeAfter(after, lbs, metrics);
  if (late && 'error' in late) return error(late.error, metrics, threshold);
  if (late) problems.push(...late.problems);
  if (problems.length) return { status: 'fail', reason: problems.join('; '), metrics, threshold };
  const worst = Math.max(...removals.map((r) => r.changed / r.survivorCells));
  const predicted = both.filter((t) => t.predicted !== undefined).length;
  return {
    status: 'pass',
    reason:
      `${removals.length} removals moved at most ${pct(worst)} of the others' cells; ${both.length} 5-tuples reached the same backend ` +
      `through ${lbs[0]} and ${lbs[1]}${predicted ? ` (${predicted} as the table predicts)` : ''}` +
      (both.length < tuples.length ? `; ${tuples.length - both.length} got no answer through one of them and were left out` : '') +
      (late ? `; ${late.summary}` : ''),
    metrics,
    threshold,
  };
}

/** The after-removal half of judgeMaglevConsistency: problems, or what could not be established, and a summary. */
function judgeAfter(
  after: readonly TupleAfter[],
  lbs: readonly [string, string],
  metrics: Record<string, unknown>,
): { problems: string[]; summary: string } | { error: string } {
  const both = after.filter((t) => t.first !== undefined && t.second !== undefined);
  const removed = after[0]?.removed;
  const wasOn = both.filter((t) => t.before === t.removed).length;
  const survivors = both.filter((t) => t.before !== t.removed);
  const moved = survivors.filter((t) => t.first !== t.before);
  metrics.after = {
    tuples: after.length,
    answeredByBoth: both.length,
    wereOnRemoved: wasOn,
    survivors: survivors.length,
    moved: moved.length,
  };
  if (both.length < MIN_TUPLES)
    return { error: `after the removal ${both.length} of ${after.length} 5-tuples were answered through both (${MIN_TUPLES} needed)` };
  if (!wasOn || !survivors.length)
    return { error: `before the removal ${wasOn ? 'no' : 'none of the'} 5-tuples were on ${wasOn ? 'a survivor' : removed}` };
  const problems: string[] = [];
  const show = (ts: readonly TupleAfter[], f: (t: TupleAfter) => string) => ts.slice(0, 3).map(f).join('; ');
  const split = both.filter((t) => t.first !== t.second);
  if (split.length)
    problems.push(
      `after the removal ${split.length} of ${both.length} 5-tuples reached different backends: ` +
        show(split, (t) => `${t.tuple}: ${t.first} via ${lbs[0]}, ${t.second} via ${lbs[1]}`),
    );
  const onRemoved = both.filter((t) => t.first === t.removed || t.second === t.removed);
  if (onRemoved.length)
    problems.push(`${onRemoved.length} 5-tuples reached ${removed} after its removal: ${show(onRemoved, (t) => t.tuple)}`);
  const mispredicted = both.filter((t) => t.predicted !== undefined && t.first === t.second && t.first !== t.predicted);
  if (mispredicted.length)
    problems.push(
      `after the removal ${mispredicted.length} 5-tuples reached another backend than the new table predicts: ` +
        show(mispredicted, (t) => `${t.tuple}: ${t.first} (was ${t.before}), predicted ${t.predicted}`),
    );
  const unexplained = moved.filter((t) => t.predicted === undefined);
  if (unexplained.length)
    problems.push(
      `${unexplained.length} 5-tuples on survivors moved after removing ${removed}: ` +
        show(unexplained, (t) => `${t.tuple}: ${t.before} -> ${t.first}`),
    );
  const summary =
    `after removing ${removed}: ${survivors.length - moved.length} of ${survivors.length} 5-tuples on survivors stayed` +
    `${moved.length ? ` (${moved.length} moved with their cell)` : ''}, ${wasOn} of its own went to survivors`;
  return { problems, summary };
}

/** New flows through a frontend after some of its backends went to weight 0. */
export interface WeightZeroRun {
  node: string;
  frontend: string;
  /** Backends at weight 0 (all of them: the service has no backend left). */
  zeroed: readonly string[];
  /** Every backend of the frontend. */
  backends: readonly string[];
  /** Share of the table (0..1] the zeroed backends owned before their weight went to 0. */
  shareBefore: number;
  /** Cells the zeroed backends own in the table read back after the change (0 when no table is left). */
  cells: number;
  /** New flows tried after the change. */
  tried: number;
  /** New flows each backend answered after the change. */
  answeredBy: Readonly<Record<string, number>>;
}

/** The chance a flow would still have reached the zeroed backends had the change done nothing, that a run must beat. */
export const WEIGHT_ZERO_MISS_CHANCE = 0.001;
/** Fewest flows judged in any case. */
const MIN_WEIGHT_ZERO_FLOWS = 10;

/**
 * Flows needed so that, had the weight change done nothing, at least one of them would have reached the zeroed
 * backends with chance 1 - WEIGHT_ZERO_MISS_CHANCE: (1 - share)^K <= 0.001.
 */
export function weightZeroFlowsNeeded(shareBefore: number): number {
  if (shareBefore >= 1) return MIN_WEIGHT_ZERO_FLOWS;
  return Math.max(MIN_WEIGHT_ZERO_FLOWS, Math.ceil(Math.log(WEIGHT_ZERO_MISS_CHANCE) / Math.log(1 - shareBefore)));
}

/** No new flow reached a weight-0 backend, and it owns no cell; enough flows were tried for that to mean something. */
export function judgeWeightZero(runs: readonly WeightZeroRun[]): MaglevVerdict {
  const threshold =
    `no new flow answered by a weight-0 backend and no cell left to it, over at least the K flows with ` +
    `(1 - share before)^K <= ${WEIGHT_ZERO_MISS_CHANCE} (all backends at 0: every flow unanswered, at least ${MIN_WEIGHT_ZERO_FLOWS})`;
  const metrics: Record<string, unknown> = { runs: runs.map((r) => ({ ...r, needed: weightZeroFlowsNeeded(r.shareBefore) })) };
  if (!runs.length) return error('no weight-0 run was measured', metrics, threshold);
  const problems: string[] = [];
  const notes: string[] = [];
  for (const r of runs) {
    if (!r.zeroed.length) return error(`${r.frontend} on ${r.node}: no backend was set to weight 0`, metrics, threshold);
    if (!(r.shareBefore > 0 && r.shareBefore <= 1))
      return error(
        `${r.frontend} on ${r.node}: ${r.zeroed.join(', ')} owned no share of the table before (${r.shareBefore})`,
        metrics,
        threshold,
      );
    const allZero = r.backends.every((b) => r.zeroed.includes(b));
    const answered = sum(Object.values(r.answeredBy));
    const judged = allZero ? r.tried : answered;
    const needed = weightZeroFlowsNeeded(r.shareBefore);
    if (judged < needed)
      return error(
        `${r.frontend} on ${r.node}: ${judged} flows ${allZero ? 'tried' : 'answered'}; ${needed} are needed ` +
          `(${r.zeroed.join(', ')} owned ${pct(r.shareBefore)} of the table before)`,
        metrics,
        threshold,
      );
    const reached = r.zeroed.filter((b) => (r.answeredBy[b] ?? 0) > 0);
    for (const b of reached)
      problems.push(`${r.frontend} via ${r.node}: ${r.answeredBy[b]} of ${answered} new flows reached ${b} at weight 0`);
    if (r.cells > 0) problems.push(`${r.frontend} on ${r.node}: ${r.zeroed.join(', ')} at weight 0 still own ${r.cells} cells`);
    if (allZero && answered > 0)
      problems.push(`${r.frontend} via ${r.node}: every backend is at weight 0, yet ${answered} flows were answered`);
    notes.push(
      allZero
        ? `${r.frontend} via ${r.node}: all backends at 0, ${r.tried} flows, none answered`
        : `${r.frontend} via ${r.node}: ${answered} flows answered, none by ${r.zeroed.join(', ')} (${needed} needed)`,
    );
  }
  if (problems.length) return { status: 'fail', reason: problems.join('; '), metrics, threshold };
  return { status: 'pass', reason: notes.join('; '), metrics, threshold };
}

import { z } from 'zod';

/**
 * Link impairments (netem): the topology's `impair` and `lab impair`'s flags, in tc's own
 * units (tc(8) "RATES", "TIMES"; tc-netem(8) percentages), validated once here for both.
 */

/** What netem does to a link: each field in tc's syntax, as written by the user. */
export interface Impair {
  /** netem's rate (tc-netem(8) "rate"), e.g. 10mbit. */
  rate?: string;
  /** Added delay each way, e.g. 50ms. */
  delay?: string;
  /** Delay variation around `delay` (needs delay). */
  jitter?: string;
  /** Packets dropped at random, e.g. 1%. */
  loss?: string;
  /** Packets sent at once, ahead of the delayed ones (needs delay; tc-netem(8) "reorder"). */
  reorder?: string;
  /** Packets sent twice, e.g. 1%. */
  duplicate?: string;
}

export const IMPAIR_FIELDS = ['rate', 'delay', 'jitter', 'loss', 'reorder', 'duplicate'] as const;
export type ImpairField = (typeof IMPAIR_FIELDS)[number];

// tc(8) RATES: k = 1000; bps units are bytes.
const RATE = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|tbit|bps|kbps|mbps|gbps)$/;
const RATE_BITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12, bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9 };
// tc(8) TIMES (a bare number is microseconds there; here a unit is required, so 50 cannot mean 50 ms by mistake).
const TIME = /^(\d+(?:\.\d+)?)(s|sec|secs|ms|msec|msecs|us|usec|usecs)$/;
const TIME_US: Record<string, number> = { s: 1e6, sec: 1e6, secs: 1e6, ms: 1e3, msec: 1e3, msecs: 1e3, us: 1, usec: 1, usecs: 1 };
const PERCENT = /^(\d+(?:\.\d+)?)%$/;

/** Longest delay or jitter accepted: past a minute every TCP connection over the link times out. */
export const MAX_DELAY_US = 60e6;

/** Bits per second of a tc rate, or undefined when it is not one. */
export const impairRateBits = (s: string): number | undefined => {
  const m = RATE.exec(s);
  return m ? Number(m[1]) * RATE_BITS[m[2]!]! : undefined;
};
/** Microseconds of a tc time, or undefined when it is not one. */
export const timeUs = (s: string): number | undefined => {
  const m = TIME.exec(s);
  return m ? Number(m[1]) * TIME_US[m[2]!]! : undefined;
};
/** The number in a percentage, or undefined when it is not one. */
export const percent = (s: string): number | undefined => {
  const m = PERCENT.exec(s);
  return m ? Number(m[1]) : undefined;
};

const text = (what: string, example: string) =>
  z.string({
    error: (iss) =>
      typeof iss.input === 'number'
        ? example.endsWith('%')
          ? `write the ${what} as a percentage, like ${example}`
          : `write the ${what} with its unit, like ${example} (a bare number has no unit here)`
        : `expected a ${what} like ${example}`,
  });

const rateField = text('rate', '10mbit').superRefine((s, ctx) => {
  const b = impairRateBits(s);
  if (b === undefined)
    ctx.addIssue({
      code: 'custom',
      message: `'${s}' is not a tc rate like 10mbit (units: bit, kbit, mbit, gbit, tbit; bps, kbps, mbps, gbps for bytes)`,
    });
  else if (b <= 0) ctx.addIssue({ code: 'custom', message: 'a rate of 0 passes nothing; leave rate out for no limit' });
  else if (b > 1e12) ctx.addIssue({ code: 'custom', message: `${s} is above 1tbit` });
});
const timeField = (what: string) =>
  text(what, '50ms').superRefine((s, ctx) => {
    const us = timeUs(s);
    if (us === undefined)
      ctx.addIssue({ code: 'custom', message: `'${s}' is not a tc time like 50ms (units: s, ms, us; sec, msec, usec)` });
    else if (us > MAX_DELAY_US) ctx.addIssue({ code: 'custom', message: `${s} is above 60s` });
  });
const percentField = (what: string) =>
  text(what, '1%').superRefine((s, ctx) => {
    const p = percent(s);
    if (p === undefined) ctx.addIssue({ code: 'custom', message: `'${s}' is not a percentage like 1% or 0.5%` });
    else if (p > 100) ctx.addIssue({ code: 'custom', message: `${s} is above 100%` });
  });

const needsDelay = (impair: Impair, ctx: z.RefinementCtx) => {
  const delay = impair.delay === undefined ? 0 : (timeUs(impair.delay) ?? 0);
  for (const f of ['jitter', 'reorder'] as const)
    if (impair[f] !== undefined && delay === 0 && nonZero(f, impair[f]))
      ctx.addIssue({
        code: 'custom',
        path: [f],
        message:
          f === 'jitter'
            ? 'jitter varies the delay: give a delay too (delay: 50ms, jitter: 10ms)'
            : 'reorder sends some packets at once and delays the rest: give a delay too (tc-netem(8): reordering needs a delay)',
      });
};

const nonZero = (f: ImpairField, v: string) =>
  f === 'rate' ? (impairRateBits(v) ?? 1) > 0 : f === 'delay' || f === 'jitter' ? (timeUs(v) ?? 1) > 0 : (percent(v) ?? 1) > 0;

export const ImpairSchema = z
  .object({
    rate: rateField.optional().describe("netem's rate (tc units: 10mbit)"),
    delay: timeField('delay').optional().describe('delay added on each end (tc units: 50ms, 500us): the round trip grows by twice it'),
    jitter: timeField('jitter').optional().describe('delay variation around delay (needs delay)'),
    loss: percentField('loss').optional().describe("packets dropped at random on each end ('1%')"),
    reorder: percentField('reorder').optional().describe("packets sent at once ahead of the delayed ones ('25%'; needs delay)"),
    duplicate: percentField('duplicate').optional().describe("packets sent twice ('1%')"),
  })
  .strict()
  .superRefine(needsDelay)
  .describe(
    'netem on both ends of the link (its node side under the rate tbf when both are given); {} puts a netem in place for lab impair',
  );

/** One `lab impair` change: like the topology's, but 0 (0ms, 0%, 0bit) turns a field off. */
export const ImpairChangeSchema = z
  .object({
    rate: text('rate', '10mbit')
      .superRefine((s, ctx) => {
        const b = impairRateBits(s);
        if (b === undefined) ctx.addIssue({ code: 'custom', message: `'${s}' is not a tc rate like 10mbit, or 0bit for no limit` });
        else if (b > 1e12) ctx.addIssue({ code: 'custom', message: `${s} is above 1tbit` });
      })
      .optional(),
    delay: timeField('delay').optional(),
    jitter: timeField('jitter').optional(),
    loss: percentField('loss').optional(),
    reorder: percentField('reorder').optional(),
    duplicate: percentField('duplicate').optional(),
  })
  .strict();

/** The impairment after a change: given fields replace, zero ones are dropped; validated like the topology's. */
export function mergeImpair(current: Impair, change: Impair): Impair {
  const out: Impair = { ...current };
  for (const f of IMPAIR_FIELDS) {
    const v = change[f];
    if (v === undefined) continue;
    if (nonZero(f, v)) out[f] = v;
    else delete out[f];
  }
  return out;
}

/**
 * netem's arguments for a whole impairment. Every field is given, zero when unset: `tc qdisc
 * change` of netem resets what tc_netem_qopt carries (latency, jitter, loss, duplicate) but keeps
 * reorder and rate unless sent (netem_change, net/sched/sch_netem.c), so a field turned off is sent as 0.
 */
export function netemArgs(i: Impair, hadRate = false): string[] {
  const delay = i.delay ?? '0ms';
  return [
    'delay',
    delay,
    ...(i.jitter ? [i.jitter] : []),
    'loss',
    i.loss ?? '0%',
    'duplicate',
    i.duplicate ?? '0%',
    'reorder',
    i.reorder ?? '0%',
    ...(i.rate ? ['rate', i.rate] : hadRate ? ['rate', '0bit'] : []),
  ];
}

/** The fixed handle of the lab's netem on a device (root, or under the rate's tbf). */
export const NETEM_HANDLE = '10:';
/** The handle of the rate's tbf when a netem sits under it. */
export const TBF_HANDLE = '1:';

/** The impairment in one line, for status and progress. */
export const impairText = (i: Impair): string =>
  IMPAIR_FIELDS.filter((f) => i[f] !== undefined)
    .map((f) => `${f} ${i[f]}`)
    .join(', ') || 'none (a netem in place)';

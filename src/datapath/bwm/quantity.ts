/**
 * Kubernetes resource quantities, the syntax of the `kubernetes.io/egress-bandwidth`
 * annotation ("50M", "1.5Gi", "5e7"), per the grammar in k8s.io/apimachinery
 * pkg/api/resource/quantity.go:
 *   <quantity> ::= <signedNumber><suffix>
 *   <suffix>   ::= <binarySI> (Ki Mi Gi Ti Pi Ei) | <decimalSI> (n u m "" k M G T P E) | <decimalExponent> (e<n> or E<n>)
 * The annotation's value is bits per second; Quantity.Value() rounds up to a whole number.
 */

const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|[numkMGTPE]?)$/;

/**
 * Bounds Kubernetes puts on a bandwidth annotation (kubelet pkg/util/bandwidth/utils.go,
 * validateBandwidthIsReasonable: "unreasonably small (< 1kbit)", "unreasonably large (> 1Pbit)").
 */
export const BANDWIDTH_BITS = { min: 1e3, max: 1e15 } as const;

/** A quantity's value, rounded up like Quantity.Value(); or why the text is not a quantity. */
export function parseQuantity(text: string): { value: number } | { problem: string } {
  const m = QUANTITY.exec(text.trim() === text ? text : '');
  if (!m)
    return {
      problem: `'${text}' is not a Kubernetes quantity: a number and a suffix, decimal k, M, G, T, P, E (x1000) or binary Ki, Mi, Gi, Ti, Pi, Ei (x1024), like 50M or 100Mi`,
    };
  const [, sign, digits, suffix] = m;
  const scale = suffix in BINARY ? BINARY[suffix] : suffix in DECIMAL ? DECIMAL[suffix] : 10 ** Number(suffix.slice(1));
  const raw = Number(digits) * scale;
  // Multiplying a decimal fraction by the scale can land a hair above a whole number (0.1 * 3 * 1e9...): round to 1e-6 first.
  const value = Math.ceil(Math.round(raw * 1e6) / 1e6) * (sign === '-' ? -1 : 1);
  if (!Number.isFinite(value)) return { problem: `'${text}' is too large a quantity` };
  return { value };
}

/** Bits per second of an egressBandwidth value, or the message a topology error shows. */
export function parseBandwidth(text: string): { bps: number } | { problem: string } {
  const q = parseQuantity(text);
  if ('problem' in q) return q;
  if (q.value < BANDWIDTH_BITS.min)
    return { problem: `${text} is ${q.value} bit/s: Kubernetes refuses a bandwidth below 1k (1000 bit/s) as unreasonably small` };
  if (q.value > BANDWIDTH_BITS.max) return { problem: `${text} is above 1P (10^15 bit/s), which Kubernetes refuses as unreasonably large` };
  return { bps: q.value };
}

/** A rate for people: 50000000 -> '50 Mbit/s'. */
export function showBps(bps: number): string {
  for (const [unit, f] of [
    ['Gbit/s', 1e9],
    ['Mbit/s', 1e6],
    ['kbit/s', 1e3],
  ] as const)
    if (bps >= f) return `${Math.round((bps / f) * 100) / 100} ${unit}`;
  return `${bps} bit/s`;
}

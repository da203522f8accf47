import { esc, svgOpen } from './svg.js';

/** One distribution of a CDF plot. */
export interface CdfCurve {
  /** Legend text: the shaper, the run. */
  label: string;
  /** Stroke, a CSS colour (#rrggbb). */
  color: string;
  /** Latency µs, non-decreasing, and the fraction at or below each (see measure/cdf.ts). */
  us: number[];
  p: number[];
  /** Samples it was made from. */
  n: number;
  /** The median and 99th percentile to mark, µs (the curve's own, so each mark sits on its line). */
  p50Us?: number;
  p99Us?: number;
}

/** A latency CDF drawn as static SVG: the x axis logarithmic, p50 and p99 marked per curve. */
export interface CdfPlot {
  /** Drawn as static SVG. */
  kind: 'cdf';
  /** Unique in the page. */
  id: string;
  /** Heading above the chart. */
  title: string;
  /** The lowest fraction shown (0: the whole CDF; 0.9: its tail). */
  yMin: number;
  curves: CdfCurve[];
  /** What the chart shows, in a sentence or two. */
  caption: string;
}

const W = 760;
const PLOT_H = 260;
const LEFT = 64;
const RIGHT = 16;
const TOP = 10;
const AXIS_H = 42;
const LEGEND_ROW = 18;

/** Latency as a person reads it: 850 µs, 12.3 ms. */
export const showUs = (us: number) =>
  us >= 1000 ? `${Number((us / 1000).toFixed(us >= 10_000 ? 0 : 1))} ms` : `${Number(us.toFixed(us >= 10 ? 0 : 1))} µs`;

/** Tick values 1, 2, 5 x 10^k inside [lo, hi]. */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  if (!(lo > 0) || !(hi > lo)) return out;
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) out.push(v);
    }
  return out;
}

/** The x range of some curves: their smallest and largest latency, padded; undefined when there is nothing to draw. */
export function cdfRange(curves: readonly CdfCurve[]): [number, number] | undefined {
  const xs = curves.flatMap((c) => c.us).filter((v) => v > 0 && Number.isFinite(v));
  if (!xs.length) return undefined;
  const lo = xs.reduce((a, b) => Math.min(a, b));
  const hi = xs.reduce((a, b) => Math.max(a, b));
  return [lo / 1.2, hi === lo ? lo * 2 : hi * 1.2];
}

/** The CDF chart: a step line per curve, dashed guides at p50 and p99, a dot where each curve reaches them. */
export function cdfSvg(plot: CdfPlot): string {
  const range = cdfRange(plot.curves);
  const legendH = plot.curves.length * LEGEND_ROW + 6;
  const height = legendH + TOP + PLOT_H + AXIS_H;
  const parts: string[] = [];
  const open = svgOpen('cdf', plot.title, W, height);
  if (!range) return [open, `<title>${esc(plot.title)}</title>`, '<text x="8" y="20">no samples</text>', '</svg>'].join('\n');
  const [lo, hi] = range;
  const y0 = legendH + TOP;
  const x = (us: number) =>
    LEFT + ((Math.log10(Math.max(us, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (W - LEFT - RIGHT);
  const y = (p: number) => y0 + PLOT_H - ((Math.max(p, plot.yMin) - plot.yMin) / (1 - plot.yMin)) * PLOT_H;
  const f = (v: number) => v.toFixed(1);
  plot.curves.forEach((c, k) => {
    const ly = 4 + k * LEGEND_ROW;
    const marks = [c.p50Us !== undefined ? `p50 ${showUs(c.p50Us)}` : '', c.p99Us !== undefined ? `p99 ${showUs(c.p99Us)}` : '']
      .filter(Boolean)
      .join(', ');
    parts.push(`<rect x="${LEFT}" y="${ly}" width="12" height="12" fill="${c.color}"/>`);
    parts.push(`<text x="${LEFT + 18}" y="${ly + 11}">${esc(`${c.label}: ${marks} (${c.n} round trips)`)}</text>`);
  });
  parts.push(`<rect class="frame" x="${LEFT}" y="${y0}" width="${W - LEFT - RIGHT}" height="${PLOT_H}" fill="none" stroke="#999"/>`);
  for (const t of logTicks(lo, hi)) {
    parts.push(`<line x1="${f(x(t))}" y1="${y0}" x2="${f(x(t))}" y2="${y0 + PLOT_H}" stroke="#eee"/>`);
    parts.push(`<text x="${f(x(t))}" y="${y0 + PLOT_H + 14}" text-anchor="middle">${esc(showUs(t))}</text>`);
  }
  parts.push(`<text x="${(LEFT + W - RIGHT) / 2}" y="${y0 + PLOT_H + 34}" text-anchor="middle">round trip (log scale)</text>`);
  const yTicks = plot.yMin >= 0.9 ? [0.9, 0.95, 0.99, 1] : [0, 0.25, 0.5, 0.75, 1];
  for (const t of yTicks) parts.push(`<text x="${LEFT - 6}" y="${f(y(t) + 4)}" text-anchor="end">${t}</text>`);
  for (const [p, name] of [
    [0.5, 'p50'],
    [0.99, 'p99'],
  ] as const) {
    if (p < plot.yMin) continue;
    parts.push(`<line class="guide" x1="${LEFT}" y1="${f(y(p))}" x2="${W - RIGHT}" y2="${f(y(p))}" stroke="#888" stroke-dasharray="4 4"/>`);
    parts.push(`<text x="${W - RIGHT - 4}" y="${f(y(p) - 4)}" text-anchor="end" fill="#555">${name}</text>`);
  }
  for (const c of plot.curves) {
    const start = c.p.findIndex((p) => p >= plot.yMin);
    if (start < 0) continue;
    const d: string[] = [`M${f(x(c.us[start]))},${f(y(plot.yMin))}`];
    for (let i = start; i < c.us.length; i++) {
      const prev = i > start ? c.p[i - 1] : plot.yMin;
      d.push(`L${f(x(c.us[i]))},${f(y(prev))}`, `L${f(x(c.us[i]))},${f(y(c.p[i]))}`);
    }
    parts.push(`<path class="curve" data-label="${esc(c.label)}" d="${d.join('')}" fill="none" stroke="${c.color}" stroke-width="2"/>`);
    for (const [us, p, name] of [
      [c.p50Us, 0.5, 'p50'],
      [c.p99Us, 0.99, 'p99'],
    ] as const)
      if (us !== undefined && p >= plot.yMin)
        parts.push(
          `<circle class="mark" data-mark="${name}" cx="${f(x(us))}" cy="${f(y(p))}" r="4" fill="${c.color}">` +
            `<title>${esc(`${c.label} ${name} ${showUs(us)}`)}</title></circle>`,
        );
  }
  return [open, `<title>${esc(plot.title)}</title>`, ...parts, '</svg>'].join('\n');
}

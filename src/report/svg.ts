import type { BarPlot } from './plots.js';

/** Text for HTML and SVG (both XML-ish): the five characters that could end or open markup. */
export const esc = (s: string) =>
  s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A number as a person reads it: 12 345, 1.2 MB (bytes), 191.4. */
export function fmt(v: number, unit = ''): string {
  if (unit === 'B') {
    const [div, u] = v >= 1e6 ? [1e6, 'MB'] : v >= 1e3 ? [1e3, 'KB'] : [1, 'B'];
    return `${Number((v / div).toFixed(div === 1 ? 0 : 1))} ${u}`;
  }
  return (Number.isInteger(v) ? v : Number(v.toFixed(1))).toLocaleString('en-US');
}

/** The opening tag of an inline SVG picture with its accessible name. */
export const svgOpen = (cls: string, label: string, width: number, height: number) =>
  `<svg class="${cls}" role="img" aria-label="${esc(label)}" viewBox="0 0 ${width} ${height}" ` +
  `width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">`;

/** A table row of escaped cells. */
export const tr = (cells: string[], attrs = '') => `<tr${attrs}>${cells.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`;

/** A table head of column headers. */
export const thead = (cols: string[]) => `<thead><tr>${cols.map((c) => `<th scope="col">${esc(c)}</th>`).join('')}</tr></thead>`;

const ROW = 18;
const LABEL_W = 230;
const BAR_W = 380;
const VALUE_W = 150;

/** Length of a bar from 0 to BAR_W: linear from 0, or logarithmic from 1 (values below 1 draw nothing). */
export function barLength(v: number, max: number, log = false): number {
  if (!(v > 0) || !(max > 0)) return 0;
  if (!log) return (v / max) * BAR_W;
  return max > 1 ? (Math.log10(Math.max(1, v)) / Math.log10(max)) * BAR_W : 0;
}

/** A horizontal bar chart: a row per category, grouped or stacked series, the value written beside each bar. */
export function barSvg(p: BarPlot): string {
  const per = p.stacked ? 1 : p.series.length;
  const totals = p.categories.map((_, i) => p.series.reduce((a, s) => a + (s.values[i] ?? 0), 0));
  const max = p.stacked ? Math.max(0, ...totals) : Math.max(0, ...p.series.flatMap((s) => s.values.map((v) => v ?? 0)));
  const groupH = per * ROW + 10;
  const legendH = 22;
  const height = legendH + p.categories.length * groupH + 4;
  const width = LABEL_W + BAR_W + VALUE_W;
  const parts: string[] = [];
  p.series.forEach((s, k) => {
    const x = k * 260;
    parts.push(`<rect x="${x}" y="4" width="12" height="12" fill="${s.color}"/>`);
    parts.push(`<text x="${x + 16}" y="14">${esc(s.label)}</text>`);
  });
  p.categories.forEach((cat, i) => {
    const y0 = legendH + i * groupH;
    parts.push(`<text x="${LABEL_W - 8}" y="${y0 + (per * ROW) / 2 + 4}" text-anchor="end">${esc(cat)}</text>`);
    let stackX = 0;
    p.series.forEach((s, k) => {
      const v = s.values[i];
      const y = y0 + (p.stacked ? 0 : k * ROW);
      const len = barLength(v ?? 0, max, p.log);
      const x = LABEL_W + (p.stacked ? stackX : 0);
      if (len > 0)
        parts.push(`<rect class="bar" x="${x.toFixed(1)}" y="${y + 2}" width="${len.toFixed(1)}" height="${ROW - 4}" fill="${s.color}"/>`);
      if (p.stacked) stackX += len;
      else
        parts.push(`<text x="${(LABEL_W + len + 4).toFixed(1)}" y="${y + ROW - 5}">${v === null ? 'not measured' : fmt(v, p.unit)}</text>`);
    });
    if (p.stacked) {
      const sum = p.series.map((s) => fmt(s.values[i] ?? 0)).join(' + ');
      parts.push(`<text x="${(LABEL_W + stackX + 4).toFixed(1)}" y="${y0 + ROW - 5}">${sum} ${esc(p.unit)}</text>`);
    }
  });
  const scale = p.log ? ' (log scale)' : '';
  return [svgOpen('bars', p.title + scale, width, height), `<title>${esc(p.title + scale)}</title>`, ...parts, '</svg>'].join('\n');
}

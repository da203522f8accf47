import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { extname, join, sep } from 'node:path';
import { cdfSvg } from '../report/cdf-svg.js';
import type { ReportCheck } from '../report/doc.js';
import { bwmLatencyPlots } from '../report/plots.js';

/** A report folder as the dashboard lists it. */
export interface ReportEntry {
  /** The folder, relative to the reports root (a lab's is its name). */
  dir: string;
  /** The lab its report.json names (else the folder's name). */
  lab: string;
  /** When report.json was written. */
  generatedAt?: string;
  /** Checks per status. */
  summary?: Record<string, number>;
  /** Its HTML pages (report.html first), relative to the folder. */
  pages: string[];
  /** mtime of the newest file, ms (newest reports first). */
  mtime: number;
  /** Plots the dashboard shows inline where the report has samples (bwm-latency's CDF), as SVG built here, text escaped. */
  plots?: string[];
}

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/** The report folders one level under `root` that hold a page or a report.json, newest first. */
export function listReports(root: string): ReportEntry[] {
  if (!existsSync(root)) return [];
  const out: ReportEntry[] = [];
  for (const dir of readdirSync(root)) {
    if (!SEGMENT.test(dir)) continue;
    const full = join(root, dir);
    let files: string[];
    try {
      if (!statSync(full).isDirectory()) continue;
      files = readdirSync(full);
    } catch {
      continue;
    }
    const pages = files.filter((f) => f.endsWith('.html') && SEGMENT.test(f)).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    if (!pages.length && !files.includes('report.json')) continue;
    const e: ReportEntry = { dir, lab: dir, pages, mtime: 0 };
    for (const f of [...pages, 'report.json']) {
      try {
        e.mtime = Math.max(e.mtime, statSync(join(full, f)).mtimeMs);
      } catch {
        /* not there */
      }
    }
    try {
      const doc = JSON.parse(readFileSync(join(full, 'report.json'), 'utf8')) as {
        lab?: string;
        generatedAt?: string;
        summary?: Record<string, number>;
        checks?: ReportCheck[];
      };
      const plots = (doc.checks ?? [])
        .filter((c) => c.id === 'bwm-latency' && c.metrics)
        .flatMap((c) => bwmLatencyPlots(c).slice(0, 1))
        .map((p) => (p.kind === 'cdf' ? cdfSvg(p) : ''))
        .filter(Boolean);
      if (plots.length) e.plots = plots;
      e.lab = doc.lab ?? dir;
      e.generatedAt = doc.generatedAt;
      e.summary = doc.summary;
    } catch {
      /* a folder of pages only (a matrix, a demo) */
    }
    out.push(e);
  }
  return out.sort((a, b) => b.mtime - a.mtime);
}

const rank = (f: string) => (f === 'report.html' ? 0 : f === 'matrix.html' ? 1 : 2);

/** What the dashboard serves from the reports folder, by extension. */
const SERVED: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.log': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * A file under the reports root for a request path ('lab/report.html', or deeper: a matrix's
 * kernel folders): every segment a plain name, a served extension, and (links resolved) still
 * under the root. Undefined for anything else.
 */
export function reportFile(root: string, rel: string): { path: string; type: string } | undefined {
  const segs = rel.split('/');
  if (!segs.length || segs.length > 4 || !segs.every((s) => SEGMENT.test(s))) return undefined;
  const type = SERVED[extname(rel)];
  if (!type) return undefined;
  try {
    const real = realpathSync(join(root, ...segs));
    const base = realpathSync(root);
    if (!real.startsWith(base + sep) || !statSync(real).isFile()) return undefined;
    return { path: real, type };
  } catch {
    return undefined;
  }
}

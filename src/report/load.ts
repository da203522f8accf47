import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LabError } from '../errors.js';
import type { LoadedReport } from './claims.js';
import { ReportDoc } from './doc.js';

/** How deep under a directory report.json files are looked for (reports/<lab>/<kernel>/report.json is 2). */
const MAX_DEPTH = 3;

function walk(dir: string, depth: number, out: string[]): void {
  const f = join(dir, 'report.json');
  if (existsSync(f)) out.push(f);
  if (depth >= MAX_DEPTH) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name), depth + 1, out);
}

/**
 * Every report.json under the paths given (a file, or a directory searched a few levels
 * down). A path that does not exist is a usage error; a file that is not a report is left
 * out and named in `unreadable`.
 */
export function loadReports(paths: readonly string[]): { reports: LoadedReport[]; unreadable: string[] } {
  const files: string[] = [];
  for (const p of paths.map((x) => resolve(x))) {
    if (!existsSync(p))
      throw new LabError('E_USAGE', `no such report or directory: ${p}`, 'give report.json files or the directories lab run wrote');
    if (statSync(p).isDirectory()) walk(p, 0, files);
    else files.push(p);
  }
  const reports: LoadedReport[] = [];
  const unreadable: string[] = [];
  for (const path of [...new Set(files)]) {
    try {
      const doc = ReportDoc.safeParse(JSON.parse(readFileSync(path, 'utf8')));
      if (doc.success) reports.push({ path, doc: doc.data });
      else unreadable.push(`${path}: not a report.json (${doc.error.issues[0]?.path.join('.')}: ${doc.error.issues[0]?.message})`);
    } catch (e) {
      unreadable.push(`${path}: ${(e as Error).message}`);
    }
  }
  return { reports, unreadable };
}

import type { CheckResult } from '../checks/check.js';

const MARK = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP', error: 'ERROR' } as const;

/** Fixed-width text table, wrapping the last column to the terminal width. */
export function table(header: string[], rows: string[][], width = process.stdout.columns || 120): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (i < header.length - 1 ? r[i].length : 0))));
  const lastW = Math.max(30, width - w.slice(0, -1).reduce((a, b) => a + b + 2, 0));
  const wrap = (s: string) => {
    const out: string[] = [];
    for (let rest = s; rest.length; ) {
      const cut = rest.length <= lastW ? rest.length : rest.lastIndexOf(' ', lastW) > 0 ? rest.lastIndexOf(' ', lastW) : lastW;
      out.push(rest.slice(0, cut));
      rest = rest.slice(cut).trimStart();
    }
    return out.length ? out : [''];
  };
  const line = (cells: string[]) =>
    wrap(cells.at(-1)!)
      .map((part, k) => [...cells.slice(0, -1).map((c, i) => (k ? '' : c).padEnd(w[i])), part].join('  '))
      .join('\n');
  return [line(header), line(header.map((h, i) => '-'.repeat(i < header.length - 1 ? w[i] : h.length))), ...rows.map(line)].join('\n');
}

/** The checks of a run, for a person at a terminal. */
export function checksTable(results: CheckResult[]): string {
  return table(
    ['CHECK', 'RESULT', 'TIME', 'WHY'],
    results.map((r) => [r.id, MARK[r.status], `${(r.ms / 1000).toFixed(1)}s`, r.reason]),
  );
}

import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../kernel/helpers.js';

describe('lab claims', () => {
  it('reads report.json files under a directory (a kernel matrix nests them) and prints every claim, or JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rep-claims-'));
    mkdirSync(join(dir, 'lab', '6.12'), { recursive: true });
    copyFileSync(new URL('../unit/fixtures/report-quickstart.json', import.meta.url), join(dir, 'lab', '6.12', 'report.json'));
    const json = await cli(['claims', dir, '--json']);
    expect(json.code).toBe(0);
    const out = JSON.parse(json.stdout) as { reports: string[]; claims: { id: string; verdict: string }[] };
    expect(out.reports).toEqual([join(dir, 'lab', '6.12', 'report.json')]);
    expect(out.claims.find((c) => c.id === 'backpressure')!.verdict).toBe('holds');
    const text = await cli(['claims', dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^CLAIM +VERDICT +WHERE +MEASURED/);
    for (const c of out.claims) expect(text.stdout).toContain(c.id);
  });
  it('a path that does not exist is bad input (exit 2)', async () => {
    const r = await cli(['claims', '/nonexistent/rep-reports']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no such report or directory: /nonexistent/rep-reports');
  });
});

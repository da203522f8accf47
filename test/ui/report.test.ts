import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReportDoc } from '../../src/report/doc.js';
import { plotsFor } from '../../src/report/plots.js';
import { cli, residue, topo } from '../kernel/helpers.js';
import { artefact, launch, watch } from './browser.js';

const LAB = 'rep-ui';

describe('report.html of a real lab run, in chromium', () => {
  let browser: Browser;
  let dir: string;
  let doc: ReportDoc;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rep-ui-'));
    // topologies/quickstart.yaml under a name of its own, so a test beside it can use the quickstart.
    const file = topo(
      readFileSync(new URL('../../topologies/quickstart.yaml', import.meta.url), 'utf8').replace(/^name: .*$/m, `name: ${LAB}`),
    );
    const r = await cli(['run', file, '--report-dir', dir, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(await residue(LAB)).toEqual([]);
    doc = ReportDoc.parse(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')));
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('renders every check and every plot, with no console error and no request leaving the file', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const problems = watch(page);
    await page.goto(`file://${join(dir, 'report.html')}`, { waitUntil: 'load' });
    expect(doc.checks.length).toBeGreaterThan(0);
    for (const c of doc.checks) {
      const section = page.locator(`section[data-check="${c.id}"]`);
      await expect.poll(() => section.count(), { timeout: 10_000 }).toBe(1);
      expect(await section.getAttribute('data-status')).toBe(c.status);
      expect(await section.isVisible()).toBe(true);
      expect(await section.locator('h2 .badge').textContent()).toBe(c.status.toUpperCase());
      expect(await section.locator('.reason').textContent()).toBe(c.reason);
    }
    const plots = doc.checks.flatMap((c) => plotsFor(c));
    // The quickstart runs backpressure and bigtcp on this kernel: their plots must be there.
    expect(plots.filter((p) => p.kind === 'lines').map((p) => p.id)).toEqual(['backpressure-bpf', 'backpressure-legacy']);
    for (const p of plots) {
      const host = page.locator(`#plot-${p.id}`);
      if (p.kind === 'lines') {
        await expect.poll(() => host.getAttribute('data-rendered'), { timeout: 10_000 }).toBe('1');
        // Drawn, not just created: the plot's canvas has coloured pixels in both series' colours.
        const colours = await host.locator('canvas').evaluate((cv: HTMLCanvasElement) => {
          const d = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data;
          const seen = new Set<string>();
          for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200) seen.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
          return [...seen];
        });
        for (const s of p.series) {
          const rgb = [1, 3, 5].map((k) => Number.parseInt(s.color.slice(k, k + 2), 16)).join(',');
          expect(colours, `${p.id}: ${s.label} drawn in ${s.color}`).toContain(rgb);
        }
      } else {
        expect(await host.locator('rect.bar').count(), p.id).toBeGreaterThan(0);
      }
    }
    expect(await page.locator('svg.topology g.box').count()).toBe(4);
    expect(await page.locator('#claims tr[data-claim]').count()).toBeGreaterThan(0);
    await page.screenshot({ path: artefact('report.png'), fullPage: true });
    // The README's picture: the backpressure plots with the metrics folded away.
    await page.evaluate(() => {
      for (const d of document.querySelectorAll('details')) d.open = false;
    });
    await page.locator('section[data-check="backpressure"]').screenshot({ path: artefact('report-backpressure.png') });
    expect(problems).toEqual([]);
    await page.close();
  });
});

import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUi, type UiServer } from '../../src/ui/server.js';
import { cli, residue, topo } from '../kernel/helpers.js';
import { artefact, launch, watch } from './browser.js';

const LAB = 'rep-uid';

describe('lab ui in chromium', () => {
  let browser: Browser;
  let ui: UiServer;

  beforeAll(async () => {
    ui = await startUi();
    browser = await launch();
  });
  afterAll(async () => {
    await cli(['down', LAB, '-q']);
    await browser?.close();
    await ui?.close();
  });

  it('refuses the page without its token, or with a wrong one (403)', async () => {
    const page = await browser.newPage();
    const base = ui.url.replace(/\?.*$/, '');
    expect((await page.goto(base))?.status()).toBe(403);
    expect((await page.goto(`${base}?token=not-${ui.token}`))?.status()).toBe(403);
    expect((await page.goto(`${base}events?token=`))?.status()).toBe(403);
    await page.close();
  });

  it("shows a lab brought up in a terminal, its topology, its machines' states and a check's flows as they change, and its end", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = watch(page, ui.url.replace(/\?.*$/, ''));
    expect((await page.goto(ui.url))?.status()).toBe(200);
    await expect.poll(() => page.locator('#conn').textContent(), { timeout: 10_000 }).toMatch(/^live/);
    const seen = new Set<string>();
    // Every state the page shows for the lab machine while it comes up, read as it changes.
    await page.exposeFunction('seen', (s: string) => seen.add(s));
    await page.evaluate((lab) => {
      new MutationObserver(() => {
        for (const tr of document.querySelectorAll(`section[data-lab="${lab}"] tr[data-actor]`))
          (window as unknown as { seen: (s: string) => void }).seen(`${tr.getAttribute('data-actor')} ${tr.getAttribute('data-state')}`);
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    }, LAB);
    const file = topo(
      readFileSync(new URL('../../topologies/quickstart.yaml', import.meta.url), 'utf8').replace(/^name: .*$/m, `name: ${LAB}`),
    );
    const up = await cli(['up', file, '-q']);
    expect(up.code, up.stderr).toBe(0);
    const section = page.locator(`section[data-lab="${LAB}"]`);
    await expect.poll(() => section.locator('tr[data-actor="lab"]').getAttribute('data-state'), { timeout: 10_000 }).toBe('done');
    await expect.poll(() => section.locator('tr[data-actor="node:node1"]').getAttribute('data-status'), { timeout: 10_000 }).toBe('done');
    await expect.poll(() => section.locator('svg.topology g.box').count(), { timeout: 10_000 }).toBe(4);
    // The lab machine went through its states on the page, not just its last one.
    expect([...seen].filter((s) => s.startsWith('lab '))).toEqual(
      expect.arrayContaining(['lab provisioning', 'lab deploying', 'lab done']),
    );
    expect(seen).toContain('node:node1 wiring');
    // A check's sampled flows plotted as they run: the point count grows while `lab check` is still going.
    const points: number[] = [];
    const flows = new Set<string>();
    /** When (this process's clock) the page had shown 3 points of a flow. */
    let threeAt = Number.POSITIVE_INFINITY;
    await page.exposeFunction('points', (n: string, flow: string) => {
      points.push(Number(n));
      flows.add(flow);
      if (Number(n) >= 3) threeAt = Math.min(threeAt, Date.now());
    });
    await page.evaluate((lab) => {
      const box = document.querySelector(`section[data-lab="${lab}"] .live`)!;
      new MutationObserver(() =>
        (window as unknown as { points: (n: string, f: string) => void }).points(
          box.getAttribute('data-points') ?? '0',
          box.getAttribute('data-flow') ?? '',
        ),
      ).observe(box, { attributes: true, attributeFilter: ['data-points'] });
    }, LAB);
    const check = await cli(['check', LAB, '--only', 'backpressure', '-q']);
    const checkEnded = Date.now();
    // The verdict is the check's business (pass, or error on a machine too loaded to queue); the plot is this test's.
    expect([0, 1], check.stderr).toContain(check.code);
    await expect.poll(() => flows.size, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
    expect(new Set(points).size).toBeGreaterThanOrEqual(3);
    // Live, not a burst at the end: a flow had 3 points on the page seconds before the check was over.
    expect(checkEnded - threeAt).toBeGreaterThan(2_000);
    expect(Math.max(0, ...points)).toBeGreaterThanOrEqual(5);
    expect(await section.locator('.live canvas').count()).toBeGreaterThan(0);
    await section.screenshot({ path: artefact('dashboard-lab.png') });
    await page.screenshot({ path: artefact('dashboard.png'), fullPage: true });
    const down = await cli(['down', LAB, '-q']);
    expect(down.code, down.stderr).toBe(0);
    await expect.poll(() => section.getAttribute('class'), { timeout: 10_000 }).toBe('lab gone');
    expect(await residue(LAB)).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });
});

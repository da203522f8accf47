import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUi, type UiServer } from '../../src/ui/server.js';
import { cli, residue } from '../kernel/helpers.js';
import { artefact, launch, watch } from './browser.js';

const LAB = 'uia';

describe('lab ui actions in chromium', () => {
  let browser: Browser;
  let ui: UiServer;
  let reportsDir: string;

  beforeAll(async () => {
    // The page offers what is in its topologies folder: here the shipped quickstart under this test's lab name.
    const topologiesDir = mkdtempSync(join(tmpdir(), 'dpl-ui-topo-'));
    // The page's actions write their reports here (the CLI gets it as DPL_REPORTS_DIR).
    reportsDir = join(mkdtempSync(join(tmpdir(), 'dpl-ui-')), 'reports');
    const quick = readFileSync(new URL('../../topologies/quickstart.yaml', import.meta.url), 'utf8');
    writeFileSync(join(topologiesDir, `${LAB}.yaml`), quick.replace(/^name: .*$/m, `name: ${LAB}`));
    ui = await startUi({ topologiesDir, reportsDir });
    browser = await launch();
  });
  afterAll(async () => {
    await ui?.close();
    await cli(['down', LAB, '-q']);
    await browser?.close();
  });

  it('refuses an action without the token, from another origin, or other than POST', async () => {
    const base = `http://127.0.0.1:${ui.port}`;
    const origin = { Origin: base, 'Content-Type': 'application/json' };
    const body = JSON.stringify({ verb: 'check', lab: LAB });
    const post = (path: string, headers: Record<string, string>) => fetch(`${base}${path}`, { method: 'POST', headers, body });
    expect((await post('/api/actions', origin)).status).toBe(403);
    expect((await post(`/api/actions?token=not-${ui.token}`, origin)).status).toBe(403);
    expect((await post(`/api/actions?token=${ui.token}`, { ...origin, Origin: 'http://evil.example' })).status).toBe(403);
    expect((await post(`/api/actions?token=${ui.token}`, { 'Content-Type': 'application/json' })).status).toBe(403);
    expect((await fetch(`${base}/api/actions?token=${ui.token}`, { method: 'PUT', headers: origin, body })).status).toBe(405);
    // With token and origin it runs (the CLI then refuses: no such lab, see the next test).
    expect((await post(`/api/actions?token=${ui.token}`, origin)).status).toBe(202);
    // A topology outside the list is refused by the server with the reason, and nothing runs.
    const refused = await fetch(`${base}/api/actions?token=${ui.token}`, {
      method: 'POST',
      headers: origin,
      body: JSON.stringify({ verb: 'up', topology: '../../etc/passwd' }),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: string }).error).toMatch(/topology/);
  });

  it('brings a lab up from the page, runs a check and shows its verdict, lists its report, tears it down: no residue', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const problems = watch(page, `http://127.0.0.1:${ui.port}/`);
    expect((await page.goto(ui.url))?.status()).toBe(200);
    await expect.poll(() => page.locator('#topology option').count(), { timeout: 10_000 }).toBe(1);
    // The `check` of a lab not up, posted above, ran as the CLI would: it refused, exit 2, its message shown.
    const first = page.locator('.action[data-verb="check"]').first();
    await expect.poll(() => first.getAttribute('data-code'), { timeout: 15_000 }).toBe('2');
    expect(await first.locator('pre').textContent()).toMatch(/no lab named 'uia' is up/);

    await page.selectOption('#topology', `${LAB}.yaml`);
    await page.click('#up');
    const up = page.locator('.action[data-verb="up"]').first();
    await expect.poll(() => up.getAttribute('data-code'), { timeout: 60_000 }).toBe('0');
    const section = page.locator(`section[data-lab="${LAB}"]`);
    await expect.poll(() => section.locator('tr[data-actor="lab"]').getAttribute('data-state'), { timeout: 10_000 }).toBe('done');
    // The CLI sees the lab the page brought up (the journal and state dir are the truth).
    const status = await cli(['status', LAB, '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ name: LAB, phase: 'up' });

    // Bringing it up again: the CLI refuses (the lab exists), and the page shows its message.
    await page.click('#up');
    const again = page.locator('.action[data-verb="up"]').first();
    await expect.poll(() => again.getAttribute('data-code'), { timeout: 30_000 }).toBe('2');
    expect(await again.locator('pre').textContent()).toMatch(/already/);
    // A refusal changes nothing: no failure report either (`up` names no --report-dir).
    expect(await again.locator('pre').textContent()).not.toContain('report.json');
    // The refused up left the running lab's recorded states alone: its node is still shown, done.
    expect(await section.locator('tr[data-actor="node:node1"]').getAttribute('data-status')).toBe('done');
    expect(await section.locator('tr[data-actor="lab"]').getAttribute('data-state')).toBe('done');

    await section.locator('input.only').fill('connectivity');
    await section.locator('button[data-verb="check"]').click();
    const check = page.locator('.action[data-verb="check"]').first();
    await expect.poll(() => check.getAttribute('data-state'), { timeout: 60_000 }).toBe('done');
    // The verdict is the kernel's: the page shows what the report holds.
    await expect.poll(() => check.locator('tr[data-check="connectivity"]').getAttribute('data-status')).toBe('pass');
    expect(await check.getAttribute('data-code')).toBe('0');
    // Its report is listed with the lab, and opens.
    const link = section.locator('.lab-reports a', { hasText: 'report.html' });
    await expect.poll(() => link.count(), { timeout: 10_000 }).toBe(1);
    const href = await link.getAttribute('href');
    const report = await fetch(`http://127.0.0.1:${ui.port}${href}`);
    expect(report.status).toBe(200);
    expect(await report.text()).toContain('connectivity');
    await page.locator('#actions-wrap').screenshot({ path: artefact('dashboard-actions.png') });
    await section.screenshot({ path: artefact('dashboard-actions-lab.png') });

    await section.locator('button[data-verb="down"]').click();
    const down = page.locator('.action[data-verb="down"]').first();
    await expect.poll(() => down.getAttribute('data-state'), { timeout: 60_000 }).toBe('done');
    expect(await down.getAttribute('data-code'), (await down.locator('pre').textContent()) ?? '').toBe('0');
    await expect.poll(() => section.getAttribute('class'), { timeout: 10_000 }).toBe('lab gone');
    expect(await residue(LAB)).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });
});

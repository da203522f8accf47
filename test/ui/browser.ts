import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';

/** Where the UI tests leave their screenshots (gitignored). */
export const ARTEFACTS = fileURLToPath(new URL('../../test-artifacts/ui/', import.meta.url));

/** Debian's chromium (./lab selftest installs it), or DPL_CHROMIUM. */
export function chromiumPath(): string {
  const p = process.env.DPL_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(p)) throw new Error(`no chromium at ${p}: ./lab selftest installs Debian's chromium (or set DPL_CHROMIUM)`);
  return p;
}

export function launch(): Promise<Browser> {
  // Root (as the lab runs) needs chromium's sandbox off; playwright passes --no-sandbox unless chromiumSandbox is set.
  return chromium.launch({ executablePath: chromiumPath(), headless: true });
}

/** What a page did wrong: console errors, uncaught exceptions, and any request to elsewhere than `origin` (default: file://). */
export function watch(page: Page, origin = 'file://'): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(origin)) problems.push(`network request: ${r.url()}`);
  });
  page.on('requestfailed', (r) => problems.push(`failed request: ${r.url()}`));
  return problems;
}

export function artefact(name: string): string {
  mkdirSync(ARTEFACTS, { recursive: true });
  return join(ARTEFACTS, name);
}

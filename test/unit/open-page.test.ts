import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openPage, pageOpener } from '../../src/cli/open-page.js';

const found = () => '/usr/bin/xdg-open';
const none = () => undefined;

describe('lab demo --open', () => {
  it('opens with xdg-open only where there is a display, else says why', () => {
    expect(pageOpener({ DISPLAY: ':0' }, found)).toEqual({ how: 'xdg-open', path: '/usr/bin/xdg-open' });
    expect(pageOpener({ WAYLAND_DISPLAY: 'wayland-0' }, found).how).toBe('xdg-open');
    expect(pageOpener({}, found)).toEqual({ how: 'none', why: 'no display (DISPLAY and WAYLAND_DISPLAY are unset)' });
    expect(pageOpener({ DISPLAY: ':0' }, none)).toEqual({ how: 'none', why: 'no xdg-open on PATH (Debian: apt install xdg-utils)' });
  });

  it('runs xdg-open with the absolute path, or prints the path when it fails or cannot run', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'dpl-open-'));
    const seen = join(bin, 'seen');
    const script = join(bin, 'xdg-open');
    writeFileSync(script, `#!/bin/sh\necho "$1" > ${seen}\n[ "$1" != /fails.html ]\n`);
    chmodSync(script, 0o755);
    const env = { PATH: `${bin}:/usr/bin:/bin`, DISPLAY: ':0' };
    expect(await openPage('/x/demo.html', env)).toBe('opened /x/demo.html (xdg-open)');
    expect(readFileSync(seen, 'utf8')).toBe('/x/demo.html\n');
    expect(await openPage('/fails.html', env)).toBe('not opened: xdg-open exited 1; open /fails.html');
    expect(await openPage('rel/demo.html', { PATH: env.PATH })).toMatch(/^not opened: no display .*; open \/.*\/rel\/demo\.html$/);
  });
});

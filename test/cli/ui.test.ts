import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI, cli } from '../kernel/helpers.js';

describe('lab ui', () => {
  it('prints a 127.0.0.1 URL with a token, answers 403 without it and 200 with it, and stops on SIGINT with exit 0', async () => {
    const child = spawn(process.execPath, [CLI, 'ui'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
    const url = await new Promise<string>((done, fail) => {
      let out = '';
      const timer = setTimeout(() => fail(new Error(`no URL within 20 s: ${out}`)), 20_000);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          done(m[1]);
        }
      });
    });
    try {
      const base = url.replace(/\?.*$/, '');
      expect((await fetch(base)).status).toBe(403);
      expect((await fetch(`${base}api/labs?token=nope`)).status).toBe(403);
      const ok = await fetch(url);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('datapath-lab dashboard');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
  it('refuses a port that is not one (exit 2)', async () => {
    const r = await cli(['ui', '--port', '99999']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--port 99999: not a port number');
  });
});

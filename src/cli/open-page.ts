import { accessSync, constants } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { spawnArgv } from '../exec/exec.js';

/** What `--open` can do here: open with xdg-open, or only say why not. */
export type Opener = { how: 'xdg-open'; path: string } | { how: 'none'; why: string };

/** An executable of that name on PATH, or undefined. */
export function onPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** A page can be shown where there is a display (X11's DISPLAY or WAYLAND_DISPLAY) and xdg-open to pick the browser. */
export function pageOpener(env: NodeJS.ProcessEnv = process.env, find = onPath): Opener {
  if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return { how: 'none', why: 'no display (DISPLAY and WAYLAND_DISPLAY are unset)' };
  const path = find('xdg-open', env);
  return path ? { how: 'xdg-open', path } : { how: 'none', why: 'no xdg-open on PATH (Debian: apt install xdg-utils)' };
}

/** How long xdg-open may take to hand the page to a browser, ms (it returns once the browser has it). */
const OPEN_TIMEOUT_MS = 15_000;

/** Open a page in the desktop's browser; a line saying what happened (the path to open by hand when it could not). */
export async function openPage(file: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const abs = resolve(file);
  const o = pageOpener(env);
  if (o.how === 'none') return `not opened: ${o.why}; open ${abs}`;
  const r = await spawnArgv([o.path, abs], { env, timeoutMs: OPEN_TIMEOUT_MS }).done;
  return r.code === 0
    ? `opened ${abs} (xdg-open)`
    : `not opened: xdg-open exited ${r.code ?? 'on a signal'}${r.stderr.trim() ? `: ${r.stderr.trim().split('\n')[0]}` : ''}; open ${abs}`;
}

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { LabError } from '../errors.js';

/** What the page inlines so it opens from disk with no network: uPlot's script and stylesheet. */
export interface PageAssets {
  /** uPlot's minified browser build (IIFE: defines the global uPlot). */
  uplotJs: string;
  /** uPlot's stylesheet (legend, cursor). */
  uplotCss: string;
}

let cached: PageAssets | undefined;

/** uPlot as npm installed it (node_modules/uplot/dist), read once per process. */
export async function pageAssets(): Promise<PageAssets> {
  if (cached) return cached;
  const req = createRequire(import.meta.url);
  try {
    const [uplotJs, uplotCss] = await Promise.all([
      readFile(req.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
      readFile(req.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    ]);
    cached = { uplotJs, uplotCss };
    return cached;
  } catch (e) {
    throw new LabError('E_REQUIREMENT', `cannot read uPlot for the HTML report: ${(e as Error).message}`, 'run npm ci (./lab does it)');
  }
}

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// Reports a test writes to the default folder (no --report-dir) go to a temp dir, not ./reports of the checkout.
const env = { DPL_REPORTS_DIR: process.env.DPL_REPORTS_DIR || mkdtempSync(join(tmpdir(), 'dpl-test-reports-')) };

// unit: no privileges, parallel. kernel and cli: real namespaces and BPF on this
// machine (root), one file at a time so labs do not compete for the 2 cores.
export default defineConfig({
  test: {
    projects: [
      // The timeout guards against a hang, not a slow machine: html-validate over a whole report
      // takes seconds when the shared machine's cores are busy.
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 30_000, env } },
      {
        test: {
          name: 'kernel',
          include: ['test/kernel/**/*.test.ts', 'test/cli/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          env,
        },
      },
      // vm: kernels fetched from the Debian mirror and QEMU guests; slow, serial.
      { test: { name: 'vm', include: ['test/vm/**/*.test.ts'], fileParallelism: false, testTimeout: 600_000, hookTimeout: 600_000, env } },
      // ui: a real lab run, then its pages in Debian's chromium driven by playwright-core.
      { test: { name: 'ui', include: ['test/ui/**/*.test.ts'], fileParallelism: false, testTimeout: 120_000, hookTimeout: 180_000, env } },
      // long: too slow for CI's time limit (Vagrant machines, a box built with debootstrap); only with DPL_LONG=1 (./lab selftest --long).
      ...(process.env.DPL_LONG
        ? [
            {
              test: {
                name: 'long',
                include: ['test/long/**/*.test.ts'],
                fileParallelism: false,
                testTimeout: 1_800_000,
                hookTimeout: 1_800_000,
                env,
              },
            },
          ]
        : []),
    ],
  },
});

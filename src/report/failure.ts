import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import type { Backend } from '../backends/backend.js';
import type { CheckResult } from '../checks/check.js';
import type { Decision } from '../datapath/feature.js';
import { BootError, EXIT, exitCodeFor, LabError } from '../errors.js';
import type { KernelFacts } from '../kernel/facts.js';
import { MAX_TOPOLOGY_BYTES } from '../topology/limits.js';
import { loadTopologyFile } from '../topology/loader.js';
import type { Lab } from '../topology/model.js';
import { reportJson, type ReportPaths } from './files.js';
import { defaultReportDir } from './where.js';

/** The step of a lab's life that failed; `boot` is a provision whose VM did not come up. */
export type LabStep = 'validate' | 'probe' | 'provision' | 'boot' | 'wire' | 'deploy' | 'attach' | 'mark-up' | 'check' | 'report';

/** Where and why a lab failed, as report.json's `failure` holds it. */
export interface Failure {
  step: LabStep;
  /** The node whose step failed, when one node's did. */
  node?: string;
  /** The error's stable code (src/errors.ts), or E_INTERNAL for an error the lab did not raise on purpose. */
  code: string;
  message: string;
  /** What to do about it, when the error says. */
  hint?: string;
  /** Last lines of each VM's console, failing node first (a boot's panic is there). */
  consoleTails?: { node: string; tail: string }[];
}

/** What is known about the lab when it failed: the further it got, the more. */
export interface FailureInput {
  /** The topology file. */
  file?: string;
  /** The lab's name: from the topology once it parsed, else from the file's name or `lab check NAME`. */
  name: string;
  lab?: Lab;
  probed?: { backend: Backend; facts: KernelFacts; decisions: Decision[] };
  step: LabStep;
  node?: string;
  error: unknown;
  /** Checks that ran before the failure (an interrupted `lab check`). */
  results?: CheckResult[];
  dir?: string;
}

const CONSOLE_TAIL_LINES = 40;

/** The failure of one step, from the error it threw. A provision that failed on a VM's boot is the `boot` step. */
export function failureOf(step: LabStep, error: unknown, node?: string): Failure {
  const code = error instanceof LabError ? error.code : 'E_INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  const hint = error instanceof LabError ? error.hint : undefined;
  return {
    step: step === 'provision' && code === 'E_BOOT' ? 'boot' : step,
    ...(node ? { node } : {}),
    code,
    message,
    ...(hint ? { hint } : {}),
  };
}

/** The last `n` lines of a text (a console log ends with a newline, which is no line). */
export function tailLines(text: string, n = CONSOLE_TAIL_LINES): string {
  return text.replace(/\n$/, '').split('\n').slice(-n).join('\n');
}

/** report.json of a failed lab: the normal report's fields where known, the checks that ran, and `failure`. */
export function failureReportJson(input: Omit<FailureInput, 'error' | 'dir'>, failure: Failure, logs: string[] = []) {
  const base =
    input.lab && input.probed
      ? reportJson({ lab: input.lab, ...input.probed }, input.results ?? [])
      : {
          lab: input.name,
          topology: input.lab?.file ?? input.file,
          backend: input.lab?.backend,
          generatedAt: new Date().toISOString(),
          summary: { pass: 0, fail: 0, error: 0, skip: 0 },
          checks: input.results ?? [],
        };
  return { ...base, outcome: 'failed' as const, failure, ...(logs.length ? { logs } : {}) };
}

const esc = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/** JUnit XML of a failed lab: one testcase named after the step, an <error> with the message and console tails. */
export function failureJunit(lab: string, f: Failure): string {
  const where = f.node ? ` (node ${f.node})` : '';
  const body = [
    f.message,
    ...(f.hint ? [`to fix: ${f.hint}`] : []),
    ...(f.consoleTails ?? []).map((c) => `console of ${c.node} (last lines):\n${c.tail}`),
  ].join('\n\n');
  const head = `${f.step} failed${where}: ${f.message.split('\n')[0]}`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<testsuites name="datapath-lab" tests="1" failures="0" errors="1" skipped="0" time="0.000">',
    `  <testsuite name="${esc(lab)}" tests="1" failures="0" errors="1" skipped="0" time="0.000">`,
    `    <testcase classname="datapath-lab.${esc(lab)}" name="${esc(f.step)}" time="0.000">`,
    `      <error type="${esc(f.code)}" message="${esc(head)}">${esc(body)}</error>`,
    '    </testcase>',
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

/** A top-level `name:` line holding a valid lab name (schema.ts: a DNS label of at most 12 characters). */
const NAME_LINE = /^name:[ \t]*(["']?)([a-z][a-z0-9-]{0,11})\1[ \t]*(#.*)?$/m;

/**
 * The lab's name for a topology that failed validation: its own once the file parsed that far
 * (a valid `name:` even when other fields are not), else the file's name.
 */
export async function labNameOf(file: string): Promise<string> {
  const loaded = await loadTopologyFile(file);
  if (loaded.ok) return loaded.value.topology.name;
  const text = await readFile(file, 'utf8').catch(() => '');
  return NAME_LINE.exec(text.slice(0, MAX_TOPOLOGY_BYTES))?.[2] ?? (basename(file, extname(file)) || 'lab');
}

/**
 * Where a failure report goes: the folder the caller named (--report-dir; CI reads its junit.xml),
 * else the lab's default folder. A refusal (exit 2: bad input, a lab that is not up, a feature the
 * kernel lacks) changes nothing, so without a named folder it writes no report at all.
 */
export function failureReportDir(input: Pick<FailureInput, 'name' | 'error' | 'dir'>): string | undefined {
  if (input.dir !== undefined) return input.dir;
  return exitCodeFor(input.error) === EXIT.badInput ? undefined : defaultReportDir(input.name);
}

/**
 * Write report.json and junit.xml for a lab that failed before its checks reported, before
 * anything is torn down (a VM's console log goes with teardown). The same paths as a normal run.
 */
export async function writeFailureReports(input: FailureInput): Promise<ReportPaths | undefined> {
  const dir = failureReportDir(input);
  if (dir === undefined) return undefined;
  const out = resolve(dir);
  await mkdir(out, { recursive: true });
  const paths = { dir: out, json: join(out, 'report.json'), junit: join(out, 'junit.xml') };
  // A VM that did not boot is named lab.node (qemu's vm.ts); the provision step knows no node otherwise.
  const vm = input.error instanceof BootError && input.error.vm.startsWith(`${input.name}.`) ? input.error.vm : undefined;
  const failure = failureOf(input.step, input.error, input.node ?? vm?.slice(input.name.length + 1));
  const logs: string[] = [];
  const tails: { node: string; tail: string }[] = [];
  const files = input.lab && input.probed ? input.probed.backend.logs(input.lab) : [];
  for (const log of files) {
    const dst = join(out, log.name);
    const copied = await copyFile(log.path, dst).then(
      () => true,
      () => false,
    );
    if (!copied) continue;
    logs.push(dst);
    tails.push({ node: log.node, tail: tailLines(await readFile(dst, 'utf8')) });
  }
  if (tails.length) failure.consoleTails = tails.sort((a, b) => Number(b.node === failure.node) - Number(a.node === failure.node));
  await writeFile(paths.json, `${JSON.stringify(failureReportJson(input, failure, logs), null, 2)}\n`);
  await writeFile(paths.junit, failureJunit(input.name, failure));
  return paths;
}

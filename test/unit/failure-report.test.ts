import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LabError } from '../../src/errors.js';
import {
  failureJunit,
  failureOf,
  failureReportDir,
  failureReportJson,
  labNameOf,
  tailLines,
  writeFailureReports,
} from '../../src/report/failure.js';
import { defaultReportDir } from '../../src/report/where.js';

describe('failure reports', () => {
  it('a provision that failed on a VM boot is the boot step; other errors keep their step and code', () => {
    expect(failureOf('provision', new LabError('E_BOOT', 'VM n1 did not boot (panic)')).step).toBe('boot');
    expect(failureOf('provision', new LabError('E_COMMAND', 'ip failed')).step).toBe('provision');
    const f = failureOf('deploy', new LabError('E_COMMAND', 'bpftool failed', 'see the log'), 'node1');
    expect(f).toEqual({ step: 'deploy', node: 'node1', code: 'E_COMMAND', message: 'bpftool failed', hint: 'see the log' });
    expect(failureOf('check', 'thrown text').code).toBe('E_INTERNAL');
  });

  it('junit: exactly one testcase, named after the step, with an <error> carrying the message and console tail', () => {
    const xml = failureJunit('lab1', {
      step: 'boot',
      node: 'n1',
      code: 'E_BOOT',
      message: 'VM n1 did not boot <panic>',
      consoleTails: [{ node: 'n1', tail: 'Kernel panic - not syncing' }],
    });
    expect(xml.match(/<testcase /g)).toHaveLength(1);
    expect(xml).toContain('name="boot"');
    expect(xml).toContain('errors="1"');
    expect(xml).toContain('type="E_BOOT" message="boot failed (node n1): VM n1 did not boot &lt;panic&gt;"');
    expect(xml).toContain('Kernel panic - not syncing');
  });

  it('report.json before probe: the lab, no checks, zero counts, the failure', () => {
    const r = failureReportJson(
      { name: 'x', file: 'x.yaml', step: 'validate' },
      failureOf('validate', new LabError('E_TOPOLOGY', 'x.yaml:3: bad')),
    );
    expect(r).toMatchObject({
      lab: 'x',
      topology: 'x.yaml',
      outcome: 'failed',
      checks: [],
      summary: { pass: 0, fail: 0, error: 0, skip: 0 },
    });
    expect(r.failure).toEqual({ step: 'validate', code: 'E_TOPOLOGY', message: 'x.yaml:3: bad' });
  });

  it('tailLines keeps the last lines without the final newline', () => {
    expect(tailLines('a\nb\nc\n', 2)).toBe('b\nc');
    expect(tailLines('', 2)).toBe('');
  });

  it('the lab name: the topology name once it parses, else the file name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpl-fail-'));
    writeFileSync(join(dir, 'good.yaml'), 'name: rpt-named\nnodes:\n  - name: n1\n');
    writeFileSync(join(dir, 'broken.yaml'), 'name: [\n');
    writeFileSync(join(dir, 'invalid.yaml'), 'name: rpt-inv\nnodes: 3\n');
    expect(await labNameOf(join(dir, 'good.yaml'))).toBe('rpt-named');
    expect(await labNameOf(join(dir, 'broken.yaml'))).toBe('broken');
    expect(await labNameOf(join(dir, 'invalid.yaml'))).toBe('rpt-inv');
    expect(await labNameOf(join(dir, 'missing.yaml'))).toBe('missing');
  });

  it('writes both files with the console logs copied and the failing node first', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpl-fail-'));
    const logs = ['n1', 'n2'].map((node) => {
      const path = join(dir, `${node}.log`);
      writeFileSync(path, `${Array.from({ length: 60 }, (_, i) => `${node} line ${i}`).join('\n')}\n`);
      return { node, path, name: `console-${node}.log` };
    });
    const backend = { logs: () => logs, timing: () => 'emulated' } as never;
    const lab = { name: 'rpt-u', file: 'u.yaml', backend: 'qemu', nodes: [] } as never;
    const facts = { release: '6.1.0', arch: 'x86_64', configSource: 'x', btf: true, tools: {}, config: {} } as never;
    const error = new LabError('E_BOOT', 'VM n2 did not boot (panic)');
    const out = join(dir, 'report');
    const paths = await writeFailureReports({
      name: 'rpt-u',
      lab,
      probed: { backend, facts, decisions: [] },
      step: 'provision',
      node: 'n2',
      error,
      dir: out,
    });
    const json = JSON.parse(readFileSync(paths!.json, 'utf8'));
    expect(json.failure.step).toBe('boot');
    expect(json.failure.consoleTails.map((c: { node: string }) => c.node)).toEqual(['n2', 'n1']);
    expect(json.failure.consoleTails[0].tail.split('\n')).toHaveLength(40);
    expect(json.failure.consoleTails[0].tail).toMatch(/n2 line 59$/);
    expect(json.kernel.release).toBe('6.1.0');
    expect(json.logs).toEqual([join(out, 'console-n1.log'), join(out, 'console-n2.log')]);
    expect(readFileSync(paths!.junit, 'utf8')).toContain('name="boot"');
  });

  it('a refusal (exit 2) writes a report only where --report-dir names one; a lab that failed (exit 3) also by default', () => {
    const refused = new LabError('E_TOPOLOGY', 'lab.yaml:3:5: nodes[0].name: bad');
    const failed = new LabError('E_COMMAND', 'bpftool refused the program');
    expect(failureReportDir({ name: 'x', error: refused })).toBeUndefined();
    expect(failureReportDir({ name: 'x', error: new LabError('E_LAB_EXISTS', 'lab x exists') })).toBeUndefined();
    expect(failureReportDir({ name: 'x', error: refused, dir: '/tmp/r' })).toBe('/tmp/r');
    expect(failureReportDir({ name: 'x', error: failed })).toBe(defaultReportDir('x'));
  });
});

import { copyFileSync, mkdtempSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LabError } from '../../src/errors.js';
import { listTopologies, planAction, verdictsSince } from '../../src/ui/actions.js';
import { listReports, reportFile } from '../../src/ui/reports.js';

const topologies = [{ file: 'quickstart.yaml', name: 'quickstart', backend: 'local' }, { file: 'broken.yaml' }];
const env = { topologies, topologiesDir: '/t', reportsDir: '/r', busy: new Set<string>() };
const refused = (raw: unknown, e = env) => {
  try {
    planAction(raw, e);
  } catch (err) {
    expect(err).toBeInstanceOf(LabError);
    return (err as LabError).message;
  }
  throw new Error(`planAction accepted ${JSON.stringify(raw)}`);
};

describe('dashboard action validation', () => {
  it('plans the CLI run of each verb', () => {
    expect(planAction({ verb: 'up', topology: 'quickstart.yaml' }, env)).toEqual({
      verb: 'up',
      lab: 'quickstart',
      topology: 'quickstart.yaml',
      args: ['up', '/t/quickstart.yaml'],
    });
    // A file that does not parse still goes to the CLI, which says where it is wrong.
    expect(planAction({ verb: 'up', topology: 'broken.yaml' }, env).args).toEqual(['up', '/t/broken.yaml']);
    expect(planAction({ verb: 'check', lab: 'uia', only: ['connectivity', 'backpressure'] }, env).args).toEqual([
      'check',
      'uia',
      '--report-dir',
      '/r/uia',
      '--only',
      'connectivity,backpressure',
    ]);
    expect(planAction({ verb: 'check', lab: 'uia' }, env).args).toEqual(['check', 'uia', '--report-dir', '/r/uia']);
    expect(planAction({ verb: 'down', lab: 'uia' }, env).args).toEqual(['down', 'uia']);
  });

  it('refuses what is not an action of the page', () => {
    expect(refused(null)).toMatch(/not an action/);
    expect(refused({ verb: 'rm', lab: 'x' })).toMatch(/verb/);
    expect(refused({ verb: 'up', topology: '../../etc/passwd' })).toMatch(/topology/);
    expect(refused({ verb: 'up', topology: 'elsewhere.yaml' })).toMatch(/no topology elsewhere.yaml in \/t/);
    expect(refused({ verb: 'up' })).toMatch(/up takes a topology/);
    expect(refused({ verb: 'up', topology: 'quickstart.yaml', lab: 'x' })).toMatch(/up takes a topology/);
    expect(refused({ verb: 'check' })).toMatch(/takes a lab name/);
    expect(refused({ verb: 'down', lab: 'x; rm -rf /' })).toMatch(/lab/);
    expect(refused({ verb: 'down', lab: 'uia', only: ['connectivity'] })).toMatch(/down takes no checks/);
    expect(refused({ verb: 'check', lab: 'uia', only: ['--all'] })).toMatch(/only\.0/);
    expect(refused({ verb: 'check', lab: 'uia', extra: 1 })).toMatch(/extra|unrecognized/i);
  });

  it('refuses a second action on a lab while one runs', () => {
    const busy = { ...env, busy: new Set(['uia', 'quickstart']) };
    expect(refused({ verb: 'down', lab: 'uia' }, busy)).toMatch(/lab uia has an action running/);
    expect(refused({ verb: 'up', topology: 'quickstart.yaml' }, busy)).toMatch(/lab quickstart has an action running/);
    expect(planAction({ verb: 'down', lab: 'other' }, busy).lab).toBe('other');
  });

  it('lists topology files with their declared name and backend', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpl-topo-'));
    writeFileSync(join(dir, 'a.yaml'), 'name: a\nbackend: qemu\n');
    writeFileSync(join(dir, 'b.yml'), 'name: [\n');
    writeFileSync(join(dir, 'notes.txt'), 'x');
    writeFileSync(join(dir, '.hidden.yaml'), 'name: h\n');
    expect(listTopologies(dir)).toEqual([{ file: 'a.yaml', name: 'a', backend: 'qemu' }, { file: 'b.yml' }]);
  });
});

describe('dashboard reports', () => {
  const root = mkdtempSync(join(tmpdir(), 'dpl-reports-'));
  mkdirSync(join(root, 'lab1', 'snapshots'), { recursive: true });
  writeFileSync(join(root, 'lab1', 'report.html'), '<html></html>');
  writeFileSync(join(root, 'lab1', 'demo.html'), '<html></html>');
  writeFileSync(
    join(root, 'lab1', 'report.json'),
    JSON.stringify({
      lab: 'lab1',
      generatedAt: '2026-11-30T00:00:00Z',
      summary: { pass: 2 },
      checks: [{ id: 'c', status: 'pass', reason: 'r' }],
    }),
  );
  mkdirSync(join(root, 'empty'));
  writeFileSync(join(root, 'secret.html'), 'x');
  const outside = mkdtempSync(join(tmpdir(), 'dpl-outside-'));
  writeFileSync(join(outside, 'x.txt'), 'not a report');
  symlinkSync(outside, join(root, 'lab1', 'out'));

  it('lists report folders with their pages, report.html first', () => {
    expect(listReports(root)).toEqual([
      expect.objectContaining({
        dir: 'lab1',
        lab: 'lab1',
        generatedAt: '2026-11-30T00:00:00Z',
        summary: { pass: 2 },
        pages: ['report.html', 'demo.html'],
      }),
    ]);
  });

  it("shows a bwm-latency report's CDF inline (the real VM run's report.json), and none for a report without samples", () => {
    const r2 = mkdtempSync(join(tmpdir(), 'dpl-reports-'));
    mkdirSync(join(r2, 'uivbw'));
    copyFileSync(new URL('./fixtures/report-vm-bwm-latency.json', import.meta.url), join(r2, 'uivbw', 'report.json'));
    const [e] = listReports(r2);
    expect(e.lab).toBe('uivbw');
    expect(e.plots).toHaveLength(1);
    expect(e.plots![0]).toMatch(/^<svg class="cdf"/);
    expect(e.plots![0].match(/<path class="curve"/g)).toHaveLength(4);
    expect(listReports(root)[0].plots).toBeUndefined();
  });

  it('serves only plain files under the root', () => {
    expect(reportFile(root, 'lab1/report.html')?.type).toMatch(/text\/html/);
    expect(reportFile(root, 'lab1/../secret.html')).toBeUndefined();
    // A link out of the root is not followed out of it.
    expect(reportFile(root, 'lab1/out/x.txt')).toBeUndefined();
    expect(reportFile(root, 'lab1/report.json')?.type).toBe('application/json');
    expect(reportFile(root, 'lab1/snapshots')).toBeUndefined();
    expect(reportFile(root, '/etc/hostname.txt')).toBeUndefined();
  });

  it("takes a check's verdicts only from a report written since the action started", () => {
    const f = join(root, 'lab1', 'report.json');
    expect(verdictsSince(f, 0)).toEqual([{ id: 'c', status: 'pass', reason: 'r' }]);
    expect(verdictsSince(f, Date.now() + 60_000)).toBeUndefined();
    expect(verdictsSince(join(root, 'none.json'), 0)).toBeUndefined();
  });
});

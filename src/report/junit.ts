import type { CheckResult } from '../checks/check.js';

const esc = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/** JUnit XML: one testcase per check; skips as <skipped/>, failures and errors with the reason and evidence. */
export function junitXml(lab: string, results: CheckResult[]): string {
  const count = (s: string) => results.filter((r) => r.status === s).length;
  const secs = (ms: number) => (ms / 1000).toFixed(3);
  const total = results.reduce((a, r) => a + r.ms, 0);
  const cases = results.map((r) => {
    const open = `    <testcase classname="datapath-lab.${esc(lab)}" name="${esc(r.id)}" time="${secs(r.ms)}">`;
    const body =
      r.status === 'skip'
        ? `\n      <skipped message="${esc(r.reason)}"/>`
        : r.status === 'fail' || r.status === 'error'
          ? `\n      <${r.status === 'fail' ? 'failure' : 'error'} message="${esc(r.reason)}">${esc(r.evidence.join('\n\n'))}</${r.status === 'fail' ? 'failure' : 'error'}>`
          : `\n      <system-out>${esc(r.reason)}</system-out>`;
    return `${open}${body}\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="datapath-lab" tests="${results.length}" failures="${count('fail')}" errors="${count('error')}" skipped="${count('skip')}" time="${secs(total)}">`,
    `  <testsuite name="${esc(lab)}" tests="${results.length}" failures="${count('fail')}" errors="${count('error')}" skipped="${count('skip')}" time="${secs(total)}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

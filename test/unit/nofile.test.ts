import { describe, expect, it } from 'vitest';
import { MIN_NOFILE, nofileRefusal, ownLimits, softNofile } from '../../src/cli/nofile.js';

const limits = (soft: string, hard: string) =>
  `Limit                     Soft Limit           Hard Limit           Units     \nMax open files            ${soft}                ${hard}                files     \n`;

describe('the CLI against RLIMIT_NOFILE', () => {
  it('refuses a soft limit below what it keeps open, naming both figures', () => {
    expect(nofileRefusal(limits('32', '1024'))).toBe(
      'error: the lab keeps up to 35 files open at once; the soft limit on open files (RLIMIT_NOFILE) is 32\n' +
        `  to fix: ulimit -n ${MIN_NOFILE} or more\n`,
    );
    expect(nofileRefusal(limits(String(MIN_NOFILE - 1), '1024'))).toBeDefined();
  });

  it('lets through enough, unlimited and unreadable limits', () => {
    expect(nofileRefusal(limits(String(MIN_NOFILE), '1024'))).toBeUndefined();
    expect(nofileRefusal(limits('unlimited', 'unlimited'))).toBeUndefined();
    expect(nofileRefusal('')).toBeUndefined();
  });

  it('reads this process’s soft limit', () => {
    expect(softNofile(ownLimits())).toBeGreaterThan(0);
  });
});

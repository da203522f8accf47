import { join } from 'node:path';

/**
 * Where reports go when no --report-dir names a place: $DPL_REPORTS_DIR (the test suite points it
 * at a temp dir, so tests leave nothing in the checkout), else ./reports.
 */
export const reportsRoot = (): string => process.env.DPL_REPORTS_DIR || 'reports';

/** The default report folder of a lab (or a demo, a matrix) under reportsRoot. */
export const defaultReportDir = (name: string): string => join(reportsRoot(), name);

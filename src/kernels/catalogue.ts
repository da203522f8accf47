import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LineCounter, isMap, isNode, isScalar, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { formatIssue, LabError, type TopologyIssue } from '../errors.js';
import { REPO_ROOT } from '../paths.js';
import { pathString } from '../topology/loader.js';

export const CATALOGUE_FILE = join(REPO_ROOT, 'vms', 'kernels.yaml');

/** sid's Release file was past its Valid-Until on the mirror this lab was built against, so apt refuses it. */
const REFUSED_SUITES = ['sid', 'unstable'];

const KernelEntrySchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a name of letters, digits, ".", "_" or "-" (it names the cache dir)'),
  suite: z
    .string()
    .regex(/^[a-z][a-z0-9-]*$/, 'a Debian suite such as bookworm or trixie-backports')
    .refine((s) => !REFUSED_SUITES.includes(s), 'sid is not usable here: its Release file is expired on this mirror'),
  packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9.+-]+$/, 'a Debian package name')).min(1),
  description: z.string().default(''),
  mirror: z.url().default('http://deb.debian.org/debian'),
});

export const CatalogueSchema = z.strictObject({ kernels: z.array(KernelEntrySchema).min(1) }).superRefine((c, ctx) => {
  const seen = new Set<string>();
  c.kernels.forEach((k, i) => {
    if (seen.has(k.name)) ctx.addIssue({ code: 'custom', path: ['kernels', i, 'name'], message: `duplicate kernel name '${k.name}'` });
    seen.add(k.name);
  });
});

/** One named kernel: the Debian packages that together hold its vmlinuz, config and modules. */
export type KernelEntry = z.infer<typeof KernelEntrySchema>;

export type CatalogueResult = { ok: true; kernels: KernelEntry[] } | { ok: false; errors: TopologyIssue[] };

function position(doc: Document, lc: LineCounter, path: readonly PropertyKey[], key?: string) {
  const at = path as (string | number)[];
  if (key) {
    const map = at.length ? doc.getIn(at, true) : doc.contents;
    const pair = isMap(map) ? map.items.find((p) => isScalar(p.key) && p.key.value === key) : undefined;
    if (pair && isNode(pair.key) && pair.key.range) return lc.linePos(pair.key.range[0]);
  }
  // A missing field is reported at its parent.
  for (let n = at.length; n >= 0; n--) {
    const node = n ? doc.getIn(at.slice(0, n), true) : doc.contents;
    if (isNode(node) && node.range) return lc.linePos(node.range[0]);
  }
  return undefined;
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys')
    return `unknown field ${issue.keys.map((k) => `'${k}'`).join(', ')} (fields: name, suite, packages, description, mirror)`;
  if (issue.code === 'invalid_type' && issue.input === undefined) return `missing required field (expected ${issue.expected})`;
  return issue.message;
}

/** Parse and validate catalogue text; every error names file:line and the field path. Throws nothing. */
export function parseCatalogue(text: string, file: string): CatalogueResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  if (doc.errors.length) {
    return {
      ok: false,
      errors: doc.errors.map((e) => ({
        file,
        line: e.linePos?.[0].line,
        column: e.linePos?.[0].col,
        path: '',
        message: `YAML: ${e.message.split('\n')[0]}`,
      })),
    };
  }
  const parsed = CatalogueSchema.safeParse(doc.toJS());
  if (parsed.success) return { ok: true, kernels: parsed.data.kernels };
  return {
    ok: false,
    errors: parsed.error.issues.map((issue) => {
      const key = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
      const pos = position(doc, lc, issue.path, key);
      return {
        file,
        line: pos?.line,
        column: pos?.col,
        path: pathString(key ? [...issue.path, key] : issue.path),
        message: describe(issue),
      };
    }),
  };
}

/** Load the catalogue; an unreadable or invalid file is a LabError listing every problem. */
export function loadCatalogue(file = CATALOGUE_FILE): KernelEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LabError('E_USAGE', `cannot read the kernel catalogue ${file}: ${(e as Error).message}`);
  }
  const r = parseCatalogue(text, file);
  if (!r.ok)
    throw new LabError(
      'E_USAGE',
      `invalid kernel catalogue\n  ${r.errors.map(formatIssue).join('\n  ')}`,
      `fix ${file} (fields: name, suite, packages, description)`,
    );
  return r.kernels;
}

/** The catalogue entry of that name; an unknown name lists the known ones. */
export function findKernel(kernels: KernelEntry[], name: string): KernelEntry {
  const k = kernels.find((e) => e.name === name);
  if (!k)
    throw new LabError(
      'E_USAGE',
      `no kernel named '${name}' in the catalogue`,
      `known kernels: ${kernels.map((e) => e.name).join(', ')} (lab kernels list)`,
    );
  return k;
}

import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, isMap, isNode, isScalar, type Document } from 'yaml';
import { z } from 'zod';
import { TopologySchema, type Topology } from './schema.js';
import type { TopologyIssue } from '../errors.js';

export type Result<T> = { ok: true; value: T } | { ok: false; errors: TopologyIssue[] };

/** Maps a field path to its place in the file, for messages that point at a line. */
export type Locate = (path: (string | number)[]) => { line?: number; column?: number };

export interface Loaded {
  file: string;
  topology: Topology;
  locate: Locate;
}

export function pathString(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
}

function locator(doc: Document, lc: LineCounter): Locate {
  return (path) => {
    // Walk up until a node exists: a missing field is reported at its parent.
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) {
        const pos = lc.linePos(node.range[0]);
        return { line: pos.line, column: pos.col };
      }
    }
    return {};
  };
}

/** Position of a key itself (not its value) inside the mapping at `path`. */
function locateKey(doc: Document, lc: LineCounter, path: (string | number)[], key: string) {
  const map = path.length ? doc.getIn(path, true) : doc.contents;
  if (isMap(map)) {
    const pair = map.items.find((p) => isScalar(p.key) && p.key.value === key);
    const range = pair && isNode(pair.key) ? pair.key.range : undefined;
    if (range) {
      const pos = lc.linePos(range[0]);
      return { line: pos.line, column: pos.col };
    }
  }
  return {};
}

function describeZodIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  if (issue.code === 'invalid_type' && issue.input === undefined) return `missing required field (expected ${issue.expected})`;
  if (issue.code === 'invalid_value') return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return issue.message;
}

/** Parse and validate topology text. Returns data; throws nothing. */
export function parseTopology(text: string, file: string): Result<Loaded> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    return {
      ok: false,
      errors: doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return { file, line: pos?.line, column: pos?.col, path: '', message: `YAML: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}` };
      }),
    };
  }
  const locate = locator(doc, lc);
  const raw = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, errors: [{ file, line: 1, path: '', message: 'expected a mapping with name, nodes, ... (see topologies/quickstart.yaml)' }] };
  }
  const parsed = TopologySchema.safeParse(raw);
  if (!parsed.success) {
    return {
      ok: false,
      errors: parsed.error.issues.map((issue) => {
        const path = issue.path as (string | number)[];
        // An unknown key is named in the path and shown at its own line, not at its mapping's.
        if (issue.code === 'unrecognized_keys') {
          const at = [...path, issue.keys[0]];
          return { file, ...locateKey(doc, lc, path, issue.keys[0]), path: pathString(at), message: describeZodIssue(issue) };
        }
        return { file, ...locate(path), path: pathString(path), message: describeZodIssue(issue) };
      }),
    };
  }
  return { ok: true, value: { file, topology: parsed.data, locate } };
}

export async function loadTopologyFile(file: string): Promise<Result<Loaded>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, errors: [{ file, path: '', message: code === 'ENOENT' ? 'no such file' : `cannot read: ${String(e)}` }] };
  }
  return parseTopology(text, file);
}

import { open } from 'node:fs/promises';
import { Composer, LineCounter, Parser, isMap, isNode, isScalar, type Document } from 'yaml';
import type { z } from 'zod';
import { TopologySchema, showInput, type Topology } from './schema.js';
import { MAX_ALIAS_NODES, MAX_TOPOLOGY_BYTES, aliasProblem, cstTooDeep, firstInvalidUtf8, flowTooDeep, positionAt } from './limits.js';
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
    // An empty key (a line that is only `:`) is a null scalar, or no node at all, that toJS() names ''.
    const pair = map.items.find((p) => (isScalar(p.key) ? String(p.key.value ?? '') === key : p.key == null && key === ''));
    const range = (pair && isNode(pair.key) ? pair.key.range : undefined) ?? (pair && isNode(pair.value) ? pair.value.range : undefined);
    // A key that cannot be placed is shown at its mapping.
    const at = range ?? map.range;
    if (at) {
      const pos = lc.linePos(at[0]);
      return { line: pos.line, column: pos.col };
    }
  }
  return {};
}

/** zod's own wording (not a message the schema chose), which describe() words for a topology's author. */
const ZOD_DEFAULT = /^(Invalid (input|option|string)|Too (small|big))\b/;

const TYPE_WORDS: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  tuple: 'a list',
  object: 'a mapping',
};

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys')
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  if (issue.code === 'invalid_type' && issue.input === undefined)
    return `missing required field (expected ${TYPE_WORDS[issue.expected] ?? issue.expected})`;
  if (!ZOD_DEFAULT.test(issue.message)) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${TYPE_WORDS[issue.expected] ?? issue.expected}, got ${showInput(issue.input)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${showInput(issue.input)}`;
    case 'too_small':
    case 'too_big': {
      const bound = `${issue.code === 'too_small' ? 'at least' : 'at most'} ${issue.code === 'too_small' ? issue.minimum : issue.maximum}`;
      if (issue.origin === 'array') return `expected ${bound} items`;
      if (issue.origin === 'string') return `expected ${bound} characters`;
      return `expected ${bound}, got ${showInput(issue.input)}`;
    }
    default:
      return issue.message;
  }
}

/** A union branch that failed on the input's type, not on its content: not the one the author meant. */
function wrongBranch(issues: z.core.$ZodIssue[], input: unknown): boolean {
  return issues.some(
    (i) => i.path.length === 0 && (i.code === 'invalid_type' || (i.code === 'invalid_value' && typeof input !== 'string')),
  );
}

/** Issues with absolute paths; a failed union shows the issues of the branch that matches the input's shape. */
function flatten(issues: z.core.$ZodIssue[], base: PropertyKey[] = []): { issue: z.core.$ZodIssue; path: (string | number)[] }[] {
  return issues.flatMap((issue) => {
    const path = [...base, ...issue.path] as (string | number)[];
    if (issue.code === 'invalid_union' && issue.errors.length) {
      const meant = issue.errors.find((branch) => !wrongBranch(branch, issue.input));
      if (meant) return flatten(meant, path);
      if (ZOD_DEFAULT.test(issue.message)) {
        const expected = issue.errors.flatMap((b) =>
          b
            .filter((i) => i.path.length === 0 && i.code === 'invalid_type')
            .map((i) => TYPE_WORDS[(i as z.core.$ZodIssueInvalidType).expected] ?? (i as z.core.$ZodIssueInvalidType).expected),
        );
        return [
          {
            issue: {
              ...issue,
              message: `expected ${[...new Set(expected)].join(' or ') || 'something else'}, got ${showInput(issue.input)}`,
            },
            path,
          },
        ];
      }
    }
    return [{ issue, path }];
  });
}

/** Parse and validate topology text. Returns data; throws nothing. */
export function parseTopology(text: string, file: string): Result<Loaded> {
  const fail = (offset: number, message: string, path: (string | number)[] = []): Result<Loaded> => ({
    ok: false,
    errors: [{ file, ...positionAt(text, offset), path: pathString(path), message }],
  });
  if (text.length * 3 > MAX_TOPOLOGY_BYTES && Buffer.byteLength(text) > MAX_TOPOLOGY_BYTES) {
    const at = new TextDecoder().decode(Buffer.from(text).subarray(0, MAX_TOPOLOGY_BYTES)).length;
    return fail(at, tooLarge());
  }
  // Limits first: yaml's parser is slow on deep flow collections, its composer recurses per level.
  const flow = flowTooDeep(text);
  if (flow) return fail(flow.offset, flow.message);
  const lc = new LineCounter();
  const tokens = Array.from(new Parser(lc.addNewLine).parse(text));
  const deep = cstTooDeep(tokens);
  if (deep) return fail(deep.offset, deep.message);
  // yaml's parseDocument, on the tokens already parsed.
  const [doc, second] = new Composer({ uniqueKeys: true }).compose(tokens, true, text.length);
  if (second) return fail(second.range[0], 'YAML: the file holds more than one document (---); a topology is one');
  // Warnings too: an unresolved tag (!foo) would otherwise be read as plain text.
  const yamlErrors = [...doc.errors, ...doc.warnings];
  if (yamlErrors.length) {
    return {
      ok: false,
      errors: yamlErrors.map((e) => {
        const pos = lc.linePos(e.pos[0]);
        return { file, line: pos.line, column: pos.col, path: '', message: `YAML: ${e.message.split('\n')[0]}` };
      }),
    };
  }
  const alias = aliasProblem(doc);
  if (alias) return fail(alias.offset, alias.message, alias.path);
  const locate = locator(doc, lc);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_NODES });
  } catch (e) {
    // aliasProblem already bounds aliases; this is yaml's own guard, should its count differ.
    return fail(0, `YAML: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    const what = raw === null ? (text.trim() ? 'an empty document' : 'an empty file') : showInput(raw);
    return {
      ok: false,
      errors: [{ file, line: 1, path: '', message: `${what}: expected a mapping with name, nodes, ... (see topologies/quickstart.yaml)` }],
    };
  }
  const parsed = TopologySchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    return {
      ok: false,
      errors: flatten(parsed.error.issues).map(({ issue, path }) => {
        // An unknown key is named in the path and shown at its own line, not at its mapping's.
        if (issue.code === 'unrecognized_keys') {
          const at = [...path, issue.keys[0]];
          return { file, ...locateKey(doc, lc, path, issue.keys[0]), path: pathString(at), message: describe(issue) };
        }
        return { file, ...locate(path), path: pathString(path), message: describe(issue) };
      }),
    };
  }
  return { ok: true, value: { file, topology: parsed.data, locate } };
}

const tooLarge = () => `the file is larger than ${MAX_TOPOLOGY_BYTES / 1024} KiB (a topology is a few); refusing to read past here`;

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  ENOTDIR: 'no such file (a part of its path is not a directory)',
  EACCES: 'permission denied',
  EISDIR: 'is a directory; give a topology file (YAML), like topologies/quickstart.yaml',
};

/** At most MAX_TOPOLOGY_BYTES + 1 bytes of the file: enough to tell it is too large without reading it all. */
async function readCapped(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    if ((await fh.stat()).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    const buf = Buffer.alloc(MAX_TOPOLOGY_BYTES + 1);
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) r = (await fh.read(buf, n, buf.length - n, null)).bytesRead;
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}

export async function loadTopologyFile(file: string): Promise<Result<Loaded>> {
  let bytes: Buffer;
  try {
    bytes = await readCapped(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    return { ok: false, errors: [{ file, path: '', message: READ_ERRORS[code] ?? `cannot read: ${(e as Error).message}` }] };
  }
  const at = (byteOffset: number) => {
    const before = new TextDecoder().decode(bytes.subarray(0, byteOffset));
    return positionAt(before, before.length);
  };
  if (bytes.length > MAX_TOPOLOGY_BYTES) return { ok: false, errors: [{ file, ...at(MAX_TOPOLOGY_BYTES), path: '', message: tooLarge() }] };
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    const hex = bytes[bad].toString(16).padStart(2, '0');
    return {
      ok: false,
      errors: [{ file, ...at(bad), path: '', message: `not UTF-8 text (byte 0x${hex} at offset ${bad}); save the file as UTF-8` }],
    };
  }
  return parseTopology(new TextDecoder().decode(bytes), file);
}

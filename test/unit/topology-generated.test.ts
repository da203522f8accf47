import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { formatIssue } from '../../src/errors.js';
import { parseTopology } from '../../src/topology/loader.js';
import { resolve } from '../../src/topology/resolver.js';

const TOPOLOGIES = join(import.meta.dirname, '../../topologies');
const FILE = 'gen.yaml';
/** Seeded: a failure prints its seed and path, and the same seed replays it. DPL_FC_RUNS raises the count by hand. */
/** Room for a loaded machine, and for the long mode by hand. */
const TIMEOUT = 300_000;
const PARAMS = { seed: 20261129, numRuns: Number(process.env.DPL_FC_RUNS ?? 300) };

/** The shipped topologies: valid documents to mutate. */
const BASES = readdirSync(TOPOLOGIES)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => readFileSync(join(TOPOLOGIES, f), 'utf8'));

type Outcome = { ok: true } | { ok: false; messages: string[] };

/** parse + resolve as `lab up` does before it touches the machine; an exception escapes (and fails the property). */
function load(text: string): Outcome {
  const loaded = parseTopology(text, FILE);
  const lab = loaded.ok ? resolve(loaded.value) : loaded;
  if (lab.ok) return { ok: true };
  return { ok: false, messages: lab.errors.map(formatIssue) };
}

/** Every refusal names the file and a line, with a non-empty message. */
function expectLocated(o: Outcome, text: string): void {
  if (o.ok) return;
  expect(o.messages.length, text).toBeGreaterThan(0);
  for (const m of o.messages) expect(m, text).toMatch(new RegExp(`^${FILE}:\\d+(:\\d+)?: \\S`));
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Paths to every value in a document. */
function pathsOf(v: Json, at: (string | number)[] = []): (string | number)[][] {
  const here = [at];
  if (Array.isArray(v)) return [...here, ...v.flatMap((x, i) => pathsOf(x, [...at, i]))];
  if (v && typeof v === 'object') return [...here, ...Object.entries(v).flatMap(([k, x]) => pathsOf(x, [...at, k]))];
  return here;
}

type Mutation = { kind: 'delete' } | { kind: 'replace'; value: Json } | { kind: 'add'; key: string; value: Json } | { kind: 'dup' };

/** The document with one value at `path` changed; the root is replaced whole. */
function mutate(doc: Json, path: (string | number)[], m: Mutation): Json {
  const copy = structuredClone(doc);
  if (path.length === 0) return m.kind === 'replace' ? m.value : copy;
  const parent = path.slice(0, -1).reduce<Json>((o, k) => (o as Record<string, Json>)[k as string], copy) as Json[] | Record<string, Json>;
  const key = path.at(-1)!;
  const target = (parent as Record<string, Json>)[key as string];
  if (m.kind === 'delete') Array.isArray(parent) ? parent.splice(key as number, 1) : delete parent[key as string];
  else if (m.kind === 'replace') (parent as Record<string, Json>)[key as string] = m.value;
  else if (m.kind === 'add' && target && typeof target === 'object' && !Array.isArray(target)) target[m.key] = m.value;
  else if (m.kind === 'dup' && Array.isArray(parent)) parent.push(structuredClone(target));
  return copy;
}

const scalar = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1e12, '', 'node1', 'x'.repeat(300), '10.0.0.1/8', 'fd00::1', '200mbit', 'ipv4'),
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.double(),
);
const value: fc.Arbitrary<Json> = fc.oneof(
  { weight: 3, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('name', 'pods', 'peer', 'rate', 'foo'), scalar, { maxKeys: 3 }) },
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant<Mutation>({ kind: 'delete' }),
  value.map<Mutation>((v) => ({ kind: 'replace', value: v })),
  fc.record({ kind: fc.constant('add' as const), key: fc.constantFrom('name', 'nodes', 'extra', 'rate', 'datapath'), value }),
  fc.constant<Mutation>({ kind: 'dup' }),
);

/** A base document and 1-3 mutations of it, each at a path that exists at the time. */
const mutatedDoc = fc
  .tuple(fc.nat(BASES.length - 1), fc.array(fc.tuple(fc.nat(), mutation), { minLength: 1, maxLength: 3 }))
  .map(([b, ms]) =>
    ms.reduce<Json>((doc, [pick, m]) => {
      const paths = pathsOf(doc);
      return mutate(doc, paths[pick % paths.length], m);
    }, parse(BASES[b]) as Json),
  );

/** Small valid-looking labs built from parts: names, pods, uplinks, links between nodes. */
const builtDoc = fc
  .record({
    name: fc.constantFrom('rel-gen', 'a', 'Bad_Name', 'x'.repeat(40)),
    families: fc.subarray(['ipv4', 'ipv6'] as const),
    nodes: fc.uniqueArray(fc.constantFrom('n1', 'n2', 'n3', 'n4'), { minLength: 1, maxLength: 4 }),
    pods: fc.integer({ min: 0, max: 4 }),
    uplink: fc.option(fc.constantFrom('100mbit', '1gbit', '0mbit', 'fast')),
    links: fc.array(fc.tuple(fc.nat(3), fc.nat(3)), { maxLength: 4 }),
  })
  .map(
    ({ name, families, nodes, pods, uplink, links }): Json => ({
      name,
      families: [...families],
      nodes: nodes.map((n, i) => ({
        name: n,
        pods: Array.from({ length: pods }, (_, p) => ({ name: `p${p}` })),
        ...(i === 0 && uplink !== null ? { uplink: { peer: 'remote', rate: uplink } } : {}),
      })),
      ...(links.length ? { links: links.map(([a, b]) => ({ endpoints: [nodes[a % nodes.length], nodes[b % nodes.length]] })) } : {}),
    }),
  );

describe('generated topology documents', () => {
  it('the shipped topologies load (the mutations start from valid documents)', () => {
    expect(BASES.length).toBeGreaterThan(3);
    for (const b of BASES) expect(load(b)).toEqual({ ok: true });
  });

  it('an empty key (a line that is only `:`) is refused at its line (found by the text edits below)', () => {
    expect(load('name: a\n:\nnodes: [{name: n1}]\n')).toEqual({ ok: false, messages: [`${FILE}:2:1: unknown field ''`] });
  });

  it(
    'mutated documents end in ok or located refusals, never an exception',
    () => {
      const seen = { ok: 0, refused: 0 };
      fc.assert(
        fc.property(mutatedDoc, (doc) => {
          const text = stringify(doc);
          const o = load(text);
          seen[o.ok ? 'ok' : 'refused']++;
          expectLocated(o, text);
        }),
        PARAMS,
      );
      // Most mutations break a document: a run that refused none did not test refusals.
      expect(seen.refused).toBeGreaterThan(PARAMS.numRuns / 4);
    },
    TIMEOUT,
  );

  it(
    'built labs end in ok or located refusals, and some of them are ok',
    () => {
      const seen = { ok: 0, refused: 0 };
      fc.assert(
        fc.property(builtDoc, (doc) => {
          const text = stringify(doc);
          const o = load(text);
          seen[o.ok ? 'ok' : 'refused']++;
          expectLocated(o, text);
        }),
        PARAMS,
      );
      expect(seen.ok).toBeGreaterThan(0);
      expect(seen.refused).toBeGreaterThan(0);
    },
    TIMEOUT,
  );

  it(
    'text edits (a character removed, doubled or replaced) end in ok or located refusals',
    () => {
      const edit = fc.tuple(fc.nat(BASES.length - 1), fc.nat(), fc.constantFrom('', ':', '-', ' ', '\t', '[', '{', '"', '&a', '*a', '\n'));
      fc.assert(
        fc.property(edit, ([b, at, put]) => {
          const base = BASES[b];
          const i = at % base.length;
          const text = base.slice(0, i) + put + base.slice(i + 1);
          expectLocated(load(text), text);
        }),
        PARAMS,
      );
    },
    TIMEOUT,
  );
});

import { CST, Lexer, isAlias, isMap, isPair, isScalar, isSeq, type Document, type Node } from 'yaml';

/**
 * Resource limits of topology files. A topology is a few KiB and nests 5 levels
 * (nodes[].pods[].name); the caps only stop input that would exhaust memory or the
 * stack before validation could say what is wrong with it.
 */
/**
 * Largest topology file read: 256 KiB, room for a thousand nodes of ten pods. yaml 2.9's parser
 * is superlinear in a list's length (a 200000-item list takes 3.4 s), so the cap also bounds
 * how long a hostile file keeps the CLI busy before it answers.
 */
export const MAX_TOPOLOGY_BYTES = 256 * 1024;
/** Deepest nesting of mappings and lists; yaml's composer and zod recurse once per level. */
export const MAX_DEPTH = 32;
/** Most nodes that aliases may add to the document (each alias counts the nodes of its anchor, expanded). */
export const MAX_ALIAS_NODES = 10_000;

/** A limit crossed at a place in the text (offset) or at a node (path and offset). */
export interface LimitProblem {
  offset: number;
  path?: (string | number)[];
  message: string;
}

/** Offset of the first byte that is not UTF-8, or -1 when all of it is. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const valid = (n: number) => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return -1;
  } catch {
    // A streaming decode only fails on a bad byte, so "the first n bytes decode" is monotone in n.
    let [lo, hi] = [0, bytes.length];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (valid(mid)) lo = mid;
      else hi = mid - 1;
    }
    // The first lo bytes decode when streaming; a sequence they leave unfinished is where the bad one starts.
    let start = lo;
    while (start > 0 && lo - start < 3 && (bytes[start - 1] & 0xc0) === 0x80) start--;
    if (start > 0 && bytes[start - 1] >= 0xc0) return start - 1;
    return Math.min(lo, bytes.length - 1);
  }
}

/** 1-based line and column of a character offset. */
export function positionAt(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) [line, start] = [line + 1, i + 1];
  return { line, column: offset - start + 1 };
}

const tooDeep = (offset: number): LimitProblem => ({
  offset,
  message: `YAML: nested more than ${MAX_DEPTH} levels deep (a topology nests 5); refusing to read it`,
});

/**
 * Flow collections ([ and {) nested too deep, found by the lexer alone: yaml's parser
 * takes seconds on a megabyte of '[' and its composer overflows the stack on it.
 */
export function flowTooDeep(text: string): LimitProblem | undefined {
  let depth = 0;
  let offset = 0;
  for (const tok of new Lexer().lex(text)) {
    if (tok === '[' || tok === '{') {
      if (++depth > MAX_DEPTH) return tooDeep(offset);
    } else if (tok === ']' || tok === '}') depth--;
    // The lexer's control tokens stand for no source text (yaml's parse/cst.ts).
    if (tok !== CST.DOCUMENT && tok !== CST.FLOW_END && tok !== CST.SCALAR) offset += tok.length;
  }
  return undefined;
}

/** Block and flow collections nested too deep, from the CST (walked without recursion), before yaml composes it. */
export function cstTooDeep(tokens: readonly CST.Token[]): LimitProblem | undefined {
  const stack: { tok: CST.Token | undefined; depth: number }[] = tokens.map((tok) => ({ tok, depth: 0 }));
  let first: number | undefined;
  while (stack.length) {
    const { tok, depth } = stack.pop()!;
    if (!tok) continue;
    if (tok.type === 'document') stack.push({ tok: tok.value, depth });
    else if (CST.isCollection(tok)) {
      if (depth + 1 > MAX_DEPTH) first = Math.min(first ?? tok.offset, tok.offset);
      else for (const it of tok.items) stack.push({ tok: it.key ?? undefined, depth: depth + 1 }, { tok: it.value, depth: depth + 1 });
    }
  }
  return first === undefined ? undefined : tooDeep(first);
}

/**
 * Aliases that would expand the document past MAX_ALIAS_NODES or MAX_DEPTH (an alias
 * bomb), or that refer to a node holding them (a cycle, which toJS turns into a cyclic
 * object). Walks the composed document once in document order, as yaml resolves
 * aliases: an alias names the latest anchor before it.
 */
export function aliasProblem(doc: Document): LimitProblem | undefined {
  const anchors = new Map<string, Node>();
  /** Expanded size and depth of every finished node. */
  const done = new Map<Node, { size: number; depth: number }>();
  let added = 0;
  let problem: LimitProblem | undefined;
  const walk = (node: unknown, path: (string | number)[], depth: number): { size: number; depth: number } => {
    if (problem || !node || typeof node !== 'object') return { size: 1, depth: 0 };
    const n = node as Node;
    const at = n.range?.[0] ?? 0;
    if (isAlias(n)) {
      const target = anchors.get(n.source);
      if (!target) return { size: 1, depth: 0 };
      const t = done.get(target);
      if (!t) {
        problem = { offset: at, path, message: `alias *${n.source} refers to a node that holds it (a cycle)` };
        return { size: 1, depth: 0 };
      }
      added += t.size;
      if (added > MAX_ALIAS_NODES)
        problem = {
          offset: at,
          path,
          message: `aliases expand to more than ${MAX_ALIAS_NODES} nodes here (an alias bomb?); a topology needs few`,
        };
      else if (depth + t.depth > MAX_DEPTH)
        problem = { offset: at, path, message: `alias *${n.source} nests the document more than ${MAX_DEPTH} levels deep` };
      return t;
    }
    if (n.anchor) anchors.set(n.anchor, n);
    let size = 1;
    let deepest = 0;
    const child = (c: unknown, p: (string | number)[]) => {
      const r = walk(c, p, depth + 1);
      size += r.size;
      deepest = Math.max(deepest, r.depth);
    };
    if (isMap(n)) {
      for (const pair of n.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : '?';
        child(pair.key, [...path, key]);
        child(pair.value, [...path, key]);
      }
    } else if (isSeq(n)) {
      for (const [i, it] of n.items.entries()) child(isPair(it) ? it.value : it, [...path, i]);
    }
    const r = { size, depth: isMap(n) || isSeq(n) ? deepest + 1 : 0 };
    done.set(n, r);
    return r;
  };
  walk(doc.contents, [], 0);
  return problem;
}

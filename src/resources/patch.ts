/**
 * Apply a new plain value to a YAML syntax tree while touching as few nodes as possible, so
 * that comments, quoting and number formats survive on everything that did not change.
 */
import { isMap, isScalar, isSeq, type Document, type Node, type Pair, type YAMLMap, type YAMLSeq } from 'yaml';
import { deepEqual, isPlainObject } from '../util/values.js';
import { MAX_ALIAS_COUNT } from './stream.js';

type Plain = unknown;

/** Set `value` at `path` in `doc`. Returns true when the tree changed. */
export function applyAt(doc: Document, path: (string | number)[], value: Plain): boolean {
  if (path.length === 0) {
    if (doc.contents && sameValue(doc, doc.contents as Node, value)) return false;
    if (doc.contents && tryPatchNode(doc, doc.contents as Node, value)) return true;
    doc.contents = replacement(doc, (doc.contents ?? undefined) as Node | undefined, value) as never;
    return true;
  }
  const parent = doc.getIn(path.slice(0, -1), true) as Node | undefined;
  const key = path[path.length - 1]!;
  if (!parent || !(isMap(parent) || isSeq(parent))) throw new Error(`no collection at ${path.slice(0, -1).join('.')}`);
  return applyToChild(doc, parent, key, value);
}

function applyToChild(doc: Document, parent: YAMLMap | YAMLSeq, key: string | number, value: Plain): boolean {
  const current = parent.get(key, true) as Node | undefined;
  if (current !== undefined && sameValue(doc, current, value)) return false;
  if (current !== undefined && tryPatchNode(doc, current, value)) return true;
  parent.set(key, replacement(doc, current, value));
  return true;
}

/**
 * A new node for `value` that takes over the comments and the blank line before `old`, so
 * `runtimeClassName: contrast-cc # why` keeps its comment when the value changes.
 */
function replacement(doc: Document, old: Node | undefined, value: Plain): Node {
  const fresh = doc.createNode(value) as Node;
  if (old === undefined || old === null || typeof old !== 'object') return fresh;
  const before = old.commentBefore ?? undefined;
  const after = old.comment ?? undefined;
  if (old.spaceBefore) fresh.spaceBefore = true;
  if (isScalar(fresh)) {
    if (isScalar(old)) {
      if (before !== undefined) fresh.commentBefore = before;
      if (after !== undefined) fresh.comment = after;
    } else {
      // A collection's own comment is the one after its key (`key: # why`).
      const text = [before, after].filter((c) => c !== undefined).join('\n');
      if (text !== '') fresh.comment = text;
    }
  } else {
    const text = (isScalar(old) ? [before, after] : [before]).filter((c) => c !== undefined).join('\n');
    if (text !== '') fresh.commentBefore = text;
    if (!isScalar(old) && after !== undefined) fresh.comment = after;
  }
  return fresh;
}

/** Edit `node` in place to hold `value` when both are collections of the same type. */
function tryPatchNode(doc: Document, node: Node, value: Plain): boolean {
  if (isMap(node) && isPlainObject(value)) {
    patchMap(doc, node, value);
    return true;
  }
  if (isSeq(node) && Array.isArray(value)) {
    patchSeq(doc, node, value);
    return true;
  }
  return false;
}

function patchMap(doc: Document, node: YAMLMap, value: Record<string, Plain>): void {
  const keep = new Set(Object.keys(value));
  node.items = node.items.filter((pair: Pair) => keep.has(String(scalarKey(pair))));
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    applyToChild(doc, node, k, v);
  }
}

/**
 * Sequences: reuse the old item node that matches each new item — by `name` for lists of
 * named objects (containers, volumes, env), otherwise by equal value — so inserting an init
 * container does not rewrite every container after it.
 */
function patchSeq(doc: Document, node: YAMLSeq, value: Plain[]): void {
  const old = [...node.items] as Node[];
  const used = new Set<number>();
  const oldPlain = old.map((n) => toPlain(doc, n));
  const items: Node[] = value.map((v) => {
    let match = findIndex(oldPlain, used, (o) => deepEqual(o, v));
    if (match < 0 && isNamed(v)) match = findIndex(oldPlain, used, (o) => isNamed(o) && o.name === v.name);
    if (match < 0) return doc.createNode(v) as Node;
    used.add(match);
    const reused = old[match]!;
    if (!deepEqual(oldPlain[match], v) && !tryPatchNode(doc, reused, v)) return replacement(doc, reused, v);
    return reused;
  });
  node.items = items;
}

function findIndex(values: Plain[], used: Set<number>, pred: (v: Plain) => boolean): number {
  for (let i = 0; i < values.length; i++) if (!used.has(i) && pred(values[i])) return i;
  return -1;
}

function isNamed(v: Plain): v is { name: string } {
  return isPlainObject(v) && typeof v.name === 'string';
}

function scalarKey(pair: Pair): unknown {
  return isScalar(pair.key) ? pair.key.value : pair.key;
}

function sameValue(doc: Document, node: Node, value: Plain): boolean {
  return deepEqual(toPlain(doc, node), value);
}

function toPlain(doc: Document, node: Node): Plain {
  return node.toJS(doc, { maxAliasCount: MAX_ALIAS_COUNT });
}

/**
 * A quick reader for the plain value of one YAML document written the way Kubernetes tools
 * and Helm charts write resources: block mappings and sequences, single-line scalars, literal
 * block scalars, flow collections on one line (`{app: web}`, `[{port: 80}]`, `["a", "b"]`),
 * comments. Anything else (multi-line flow collections, anchors, aliases, tags, escapes,
 * folded or multi-line scalars, tabs, odd indentation, duplicate keys, errors of any kind) is
 * not read here: the reader answers NOT_BLOCK_YAML and the `yaml` package reads the document,
 * so every error message and every unusual case keeps one source. What it does read has the
 * value the `yaml` package gives (tested against it on generated and mutated documents); plain
 * scalars are resolved by the tags of that package's schema, with our options.
 *
 * Why: composing a syntax tree costs about 40 times the text's memory and most of the time of
 * a stream nobody edits (a chart's thousands of ConfigMaps).
 */
import { isScalar, type ScalarTag } from 'yaml';

export const NOT_BLOCK_YAML: unique symbol = Symbol('not block YAML');

/** How a plain scalar resolves: its value, or NOT_BLOCK_YAML when it is not a plain value. */
export type PlainResolver = (text: string) => unknown;

/**
 * A resolver from the scalar tags of a schema: the ones the composer tries on an untagged plain
 * scalar, in its order, each given the parse options the composer gives it.
 */
export function plainResolver(tags: readonly unknown[], options: object): PlainResolver {
  const tests = tags.filter(
    (t): t is ScalarTag & { test: RegExp } =>
      typeof t === 'object' && t !== null && (t as ScalarTag).default === true && (t as ScalarTag).test !== undefined,
  );
  return (text) => {
    const tag = tests.find((t) => t.test.test(text));
    if (!tag) return text;
    let failed = false;
    const resolved: unknown = tag.resolve(text, () => (failed = true), options as never);
    if (failed) return NOT_BLOCK_YAML;
    const value = isScalar(resolved) ? resolved.value : resolved;
    const t = typeof value;
    return value === null || t === 'string' || t === 'number' || t === 'boolean' ? value : NOT_BLOCK_YAML;
  };
}

const NL = 10;
const SPACE = 32;
const HASH = 35;
const DASH = 45;
const COLON = 58;
const SQUOTE = 39;
const DQUOTE = 34;
const COMMA = 44;
const LBRACKET = 91;
const RBRACKET = 93;
const LBRACE = 123;
const RBRACE = 125;

/** Characters the reader leaves to the full parser wherever they are (controls, BOM, CR, non-characters). */
const UNUSUAL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufeff\ufffe\uffff]/;
/**
 * The start of a plain scalar that makes it something else: an indicator, or `-`, `?`, `:`
 * followed by a space (a tab anywhere is left to the full parser).
 */
const NOT_PLAIN_FIRST = /^(?:[,[\]{}#&*!|>'"%@`\t]|[-?:](?: |$))/;
/** Text the reader does not take inside a single-line plain scalar: a tab, `: `, ` #`. */
const NOT_PLAIN_INSIDE = /\t|: | #/;
/**
 * Text the reader does not take in a plain scalar inside a flow collection, besides the above:
 * any `:` (a key's `: ` ends the key before this is asked), `#`, a quote or a flow indicator.
 */
const NOT_FLOW_PLAIN_INSIDE = /[:#'"[\]{},]/;
/** A plain scalar the reader takes inside a flow collection. */
const flowPlain = (source: string): boolean =>
  source !== '' &&
  !NOT_PLAIN_FIRST.test(source) &&
  !NOT_PLAIN_INSIDE.test(source) &&
  !NOT_FLOW_PLAIN_INSIDE.test(source);
const MAX_DEPTH = 64;
/** YAML allows implicit keys of up to 1024 characters. */
const MAX_KEY = 1024;

class Decline extends Error {}
const decline = (): never => {
  throw DECLINED;
};
const DECLINED = new Decline();

/**
 * The value of `text`, one document that may start with a `---` line (and comments before it),
 * or NOT_BLOCK_YAML. An empty document is not read here either.
 */
export function readBlockDocument(text: string, resolve: PlainResolver): unknown {
  if (UNUSUAL.test(text)) return NOT_BLOCK_YAML;
  try {
    return new Reader(text, resolve).document();
  } catch (err) {
    if (err === DECLINED || err instanceof RangeError) return NOT_BLOCK_YAML;
    throw err;
  }
}

/**
 * Where `needle` first occurs in text[from, end), or -1. Searches stop at the end of their line:
 * one that ran on to the end of the document made reading quadratic in its length (64,000 keys
 * without a comment took 47 s).
 */
function indexInLine(text: string, needle: string, from: number, end: number): number {
  if (from >= end) return -1;
  const i = text.slice(from, end).indexOf(needle);
  return i < 0 ? -1 : from + i;
}

class Reader {
  /** Start of the current line. */
  private pos = 0;
  private depth = 0;
  constructor(
    private readonly text: string,
    private readonly resolve: PlainResolver,
  ) {}

  document(): unknown {
    this.skipBlank();
    if (this.text.startsWith('---', this.pos)) {
      const after = this.lineEnd(this.pos);
      if (!this.restIsComment(this.pos + 3, after)) decline();
      this.pos = after + 1;
      this.skipBlank();
    }
    if (this.pos >= this.text.length) decline(); // empty: the full parser decides where it ends
    const indent = this.indentAt(this.pos);
    const value = this.block(indent, -1);
    this.skipBlank();
    if (this.pos < this.text.length) decline(); // content left over (a dedent below column 0 cannot happen)
    return value;
  }

  private lineEnd(from: number): number {
    const i = this.text.indexOf('\n', from);
    return i < 0 ? this.text.length : i;
  }

  private indentAt(lineStart: number): number {
    let i = lineStart;
    while (this.text.charCodeAt(i) === SPACE) i++;
    return i - lineStart;
  }

  /** Skip blank and comment lines; a tab in them is left to the full parser. */
  private skipBlank(): void {
    const text = this.text;
    while (this.pos < text.length) {
      const end = this.lineEnd(this.pos);
      let i = this.pos;
      while (i < end && text.charCodeAt(i) === SPACE) i++;
      if (i < end && text.charCodeAt(i) !== HASH) return;
      this.pos = end + 1;
    }
    this.pos = text.length;
  }

  /** True when [from, end) is spaces, optionally followed by a comment that a space precedes. */
  private restIsComment(from: number, end: number): boolean {
    let i = from;
    while (i < end && this.text.charCodeAt(i) === SPACE) i++;
    if (i === end) return true;
    return this.text.charCodeAt(i) === HASH && i > from;
  }

  /** A block node whose first line starts at column `indent`, inside a parent at `parentIndent`. */
  private block(indent: number, parentIndent: number): unknown {
    if (indent <= parentIndent) decline();
    if (++this.depth > MAX_DEPTH) decline();
    const start = this.pos + indent;
    const value = this.isDashItem(start) ? this.sequence(indent) : this.mapping(indent, start);
    this.depth--;
    return value;
  }

  private isDashItem(at: number): boolean {
    if (this.text.charCodeAt(at) !== DASH) return false;
    const next = this.text.charCodeAt(at + 1);
    return next === SPACE || next === NL || Number.isNaN(next);
  }

  /**
   * The next content line after the current one: its indentation, or -1 at the end. Moves
   * `pos` to it.
   */
  private nextContentIndent(): number {
    this.skipBlank();
    return this.pos < this.text.length ? this.indentAt(this.pos) : -1;
  }

  private sequence(indent: number): unknown[] {
    const items: unknown[] = [];
    for (;;) {
      const dash = this.pos + indent;
      const end = this.lineEnd(dash);
      let i = dash + 1;
      while (i < end && this.text.charCodeAt(i) === SPACE) i++;
      if (i === end || this.text.charCodeAt(i) === HASH) {
        this.pos = end + 1;
        const next = this.nextContentIndent();
        items.push(next > indent ? this.block(next, indent) : null);
      } else if (this.isDashItem(i)) {
        decline(); // a sequence in a sequence's entry on one line
      } else if (this.isFlowStart(i)) {
        items.push(this.inlineValue(i, end, indent));
      } else if (this.startsMappingEntry(i, end)) {
        items.push(this.mapping(i - this.pos, i));
      } else {
        items.push(this.inlineValue(i, end, indent));
      }
      const next = this.nextContentIndent();
      if (next > indent) decline();
      // Done at a dedent, or at a key of the mapping this sequence is the value of (`key:\n- a\nother: b`).
      if (next < indent || !this.isDashItem(this.pos + indent)) return items;
    }
  }

  /**
   * A block mapping whose keys start at column `indent`, the first one at `first` (after a
   * sequence's dash on the same line, for a mapping in a sequence).
   */
  private mapping(indent: number, first: number): Record<string, unknown> {
    const map: Record<string, unknown> = {};
    let at = first;
    for (;;) {
      const end = this.lineEnd(at);
      const { key, after } = this.key(at, end);
      if (Object.prototype.hasOwnProperty.call(map, key)) decline(); // the full parser names the duplicate
      let i = after;
      while (i < end && this.text.charCodeAt(i) === SPACE) i++;
      if (i === end || this.text.charCodeAt(i) === HASH) {
        this.pos = end + 1;
        const next = this.nextContentIndent();
        if (next > indent) map[key] = this.block(next, indent);
        else if (next === indent && this.isDashItem(this.pos + indent)) map[key] = this.sequence(indent);
        else map[key] = null;
      } else {
        map[key] = this.inlineValue(i, end, indent);
      }
      const next = this.nextContentIndent();
      if (next < indent) return map;
      at = this.pos + indent;
      // Deeper than the keys, or a dash at their column after a complete entry: an error.
      if (next > indent || this.isDashItem(at)) decline();
    }
  }

  /** True when a mapping key starts at `at`: a quoted or plain key followed by `:` and a space or the line end. */
  private startsMappingEntry(at: number, end: number): boolean {
    const c = this.text.charCodeAt(at);
    if (c === SQUOTE || c === DQUOTE) {
      const close = this.quotedEnd(at, end);
      return close >= 0 && this.text.charCodeAt(close) === COLON && this.separates(close + 1, end);
    }
    return this.plainKeyColon(at, end) >= 0;
  }

  /** Where the `:` of a plain key starting at `at` is, or -1. */
  private plainKeyColon(at: number, end: number): number {
    let i = indexInLine(this.text, ':', at, end);
    while (i >= 0) {
      if (this.separates(i + 1, end)) return i;
      i = indexInLine(this.text, ':', i + 1, end);
    }
    return -1;
  }

  /** A space or the line's end at `i`. */
  private separates(i: number, end: number): boolean {
    return i === end || this.text.charCodeAt(i) === SPACE;
  }

  private key(at: number, end: number): { key: string; after: number } {
    const c = this.text.charCodeAt(at);
    if (c === SQUOTE || c === DQUOTE) {
      const close = this.quotedEnd(at, end);
      if (close < 0 || this.text.charCodeAt(close) !== COLON || !this.separates(close + 1, end)) decline();
      const key = this.quotedValue(at, close);
      if (key.length > MAX_KEY || key === '__proto__') decline();
      return { key, after: close + 1 };
    }
    const colon = this.plainKeyColon(at, end);
    if (colon < 0 || colon - at > MAX_KEY) decline();
    const source = this.text.slice(at, colon);
    if (source === '' || source.endsWith(' ') || NOT_PLAIN_FIRST.test(source) || NOT_PLAIN_INSIDE.test(source))
      decline();
    if (source === '<<' || source === '__proto__') decline();
    const key = this.resolve(source);
    if (typeof key !== 'string') decline();
    return { key: key as string, after: colon + 1 };
  }

  /** The end (one past the closing quote) of a single-line quoted scalar at `at`, or -1. */
  private quotedEnd(at: number, end: number): number {
    const text = this.text;
    if (text.charCodeAt(at) === DQUOTE) {
      const close = indexInLine(text, '"', at + 1, end);
      if (close < 0 || indexInLine(text, '\\', at + 1, close) >= 0) return -1;
      return close + 1;
    }
    let i = at + 1;
    for (;;) {
      const close = indexInLine(text, "'", i, end);
      if (close < 0) return -1;
      if (text.charCodeAt(close + 1) !== SQUOTE) return close + 1;
      i = close + 2;
    }
  }

  private quotedValue(at: number, close: number): string {
    const inner = this.text.slice(at + 1, close - 1);
    if (inner.includes('\t')) decline();
    return this.text.charCodeAt(at) === SQUOTE ? inner.replaceAll("''", "'") : inner;
  }

  /** A value on the line of its key or dash, at `at`; the node's own column is `indent`. */
  private inlineValue(at: number, end: number, indent: number): unknown {
    const text = this.text;
    const c = text.charCodeAt(at);
    let value: unknown;
    let after: number;
    if (c === SQUOTE || c === DQUOTE) {
      after = this.quotedEnd(at, end);
      if (after < 0) decline();
      value = this.quotedValue(at, after);
    } else if (c === 124 /* | */) {
      return this.literal(at, end, indent);
    } else if (this.isFlowStart(at)) {
      ({ value, after } = this.flowNode(at, end));
    } else {
      let stop = indexInLine(text, ' #', at, end);
      if (stop < 0) stop = end;
      let last = stop;
      while (last > at && text.charCodeAt(last - 1) === SPACE) last--;
      const source = text.slice(at, last);
      if (NOT_PLAIN_FIRST.test(source) || NOT_PLAIN_INSIDE.test(source) || source.endsWith(':')) decline();
      value = this.resolve(source);
      if (value === NOT_BLOCK_YAML) decline();
      after = stop;
    }
    if (!this.restIsComment(after, end)) decline();
    this.pos = end + 1;
    // A more indented line after a one-line value continues it (or is an error): not ours.
    const next = this.nextContentIndent();
    if (next > indent) decline();
    return value;
  }

  private isFlowStart(at: number): boolean {
    const c = this.text.charCodeAt(at);
    return c === LBRACKET || c === LBRACE;
  }

  /** Spaces from `i` on: where they end. */
  private spaces(i: number): number {
    while (this.text.charCodeAt(i) === SPACE) i++;
    return i;
  }

  /**
   * A node inside a flow collection (or the collection itself) at `at`, ending before `end`: a
   * flow collection, a single-line quoted scalar or a plain scalar without flow indicators,
   * `:`, `#` or quotes. Its value and where it ends.
   */
  private flowNode(at: number, end: number): { value: unknown; after: number } {
    const text = this.text;
    const c = text.charCodeAt(at);
    if (this.isFlowStart(at)) {
      if (++this.depth > MAX_DEPTH) decline();
      const value = c === LBRACKET ? this.flowSequence(at + 1, end) : this.flowMapping(at + 1, end);
      this.depth--;
      return value;
    }
    if (c === SQUOTE || c === DQUOTE) {
      const close = this.quotedEnd(at, end);
      if (close < 0) decline();
      return { value: this.quotedValue(at, close), after: close };
    }
    let stop = at;
    while (stop < end) {
      const ch = text.charCodeAt(stop);
      if (ch === COMMA || ch === RBRACKET || ch === RBRACE) break;
      stop++;
    }
    let last = stop;
    while (last > at && text.charCodeAt(last - 1) === SPACE) last--;
    const source = text.slice(at, last);
    if (!flowPlain(source)) decline();
    const value = this.resolve(source);
    if (value === NOT_BLOCK_YAML) decline();
    return { value, after: stop };
  }

  /**
   * After an entry of a flow collection, at `i` or the spaces from there: its closing `close`
   * (`closed`, `next` just after it) or a `,` (`next` at the next entry).
   */
  private flowEntryEnd(i: number, close: number): { closed: boolean; next: number } {
    const at = this.spaces(i);
    const c = this.text.charCodeAt(at);
    if (c === close) return { closed: true, next: at + 1 };
    if (c !== COMMA) decline();
    const next = this.spaces(at + 1);
    // `[a, ]`: a trailing comma, left to the full parser.
    if (this.text.charCodeAt(next) === RBRACKET || this.text.charCodeAt(next) === RBRACE) decline();
    return { closed: false, next };
  }

  /** The entries of `[…]` from just after the `[`. */
  private flowSequence(from: number, end: number): { value: unknown[]; after: number } {
    const items: unknown[] = [];
    let i = this.spaces(from);
    if (this.text.charCodeAt(i) === RBRACKET) return { value: items, after: i + 1 };
    for (;;) {
      const item = this.flowNode(i, end);
      items.push(item.value);
      const { closed, next } = this.flowEntryEnd(item.after, RBRACKET);
      if (closed) return { value: items, after: next };
      i = next;
    }
  }

  /** The entries of `{…}` from just after the `{`: each `key: value` (quoted or plain key, a space after the colon). */
  private flowMapping(from: number, end: number): { value: Record<string, unknown>; after: number } {
    const map: Record<string, unknown> = {};
    let i = this.spaces(from);
    if (this.text.charCodeAt(i) === RBRACE) return { value: map, after: i + 1 };
    for (;;) {
      const { key, after } = this.flowKey(i, end);
      if (Object.prototype.hasOwnProperty.call(map, key)) decline();
      const entry = this.flowNode(this.spaces(after), end);
      map[key] = entry.value;
      const { closed, next } = this.flowEntryEnd(entry.after, RBRACE);
      if (closed) return { value: map, after: next };
      i = next;
    }
  }

  /** A key of a flow mapping at `i` and where its `: ` ends. */
  private flowKey(i: number, end: number): { key: string; after: number } {
    const text = this.text;
    const c = text.charCodeAt(i);
    const quoted = c === SQUOTE || c === DQUOTE;
    const colon = quoted ? this.quotedEnd(i, end) : indexInLine(text, ':', i, end);
    if (colon < 0 || colon - i > MAX_KEY) decline();
    if (text.charCodeAt(colon) !== COLON || text.charCodeAt(colon + 1) !== SPACE) decline();
    let key: unknown;
    if (quoted) key = this.quotedValue(i, colon);
    else {
      const source = text.slice(i, colon);
      if (!flowPlain(source) || source.endsWith(' ')) decline();
      key = this.resolve(source);
    }
    if (typeof key !== 'string' || key === '<<' || key === '__proto__') decline();
    return { key: key as string, after: colon + 2 };
  }

  /** A literal block scalar (`|`, `|-`, `|+`) whose header is at `at`, in a node at column `indent`. */
  private literal(at: number, end: number, indent: number): string {
    const text = this.text;
    let i = at + 1;
    const chomp = text.charCodeAt(i);
    if (chomp === DASH || chomp === 43 /* + */) i++;
    if (!this.restIsComment(i, end) || end === text.length) decline();
    // Leading empty lines, then the first content line sets the indentation.
    let line = end + 1;
    const lines: string[] = [];
    let maxLeading = 0;
    let contentIndent = -1;
    while (line < text.length) {
      const e = this.lineEnd(line);
      const n = this.indentAt(line);
      if (line + n === e) {
        maxLeading = Math.max(maxLeading, n);
        lines.push('');
        line = e + 1;
        continue;
      }
      contentIndent = n;
      break;
    }
    if (contentIndent <= indent || maxLeading > contentIndent) decline();
    let lastContent = -1;
    let trailing = 0;
    for (;;) {
      if (line >= text.length) break;
      const e = this.lineEnd(line);
      const n = this.indentAt(line);
      const blank = line + n === e;
      if (!blank && n < contentIndent) break;
      if (e === text.length) decline(); // no final line break: left to the full parser
      if (blank && n > contentIndent) decline(); // a line of spaces only: content or not, left to the full parser
      if (blank) {
        lines.push('');
        trailing++;
      } else {
        lines.push(text.slice(line + contentIndent, e));
        lastContent = lines.length;
        trailing = 0;
      }
      line = e + 1;
    }
    if (lastContent < 0) decline();
    this.pos = line;
    const body = lines.slice(0, lastContent).join('\n');
    if (chomp === DASH) return body;
    if (chomp === 43) return body + '\n'.repeat(trailing + 1);
    return body + '\n';
  }
}

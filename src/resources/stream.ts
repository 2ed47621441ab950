/**
 * A YAML stream split into documents that can be edited one by one.
 *
 * Every document keeps the exact source text it came from. A document that is not changed is
 * written back byte for byte (comments, key order, quoting, blank lines); a changed one is
 * re-serialised from its syntax tree, which keeps its comments and the YAML 1.1 meaning of
 * untouched scalars (Kubernetes reads YAML as YAML 1.1: `0755` is octal, `on` is true).
 */
import {
  Composer,
  CST,
  Document,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  Parser,
  visit,
  type Node,
  type ToStringOptions,
} from 'yaml';
import { BugError, UserError } from '../util/errors.js';
import { NOT_BLOCK_YAML, plainResolver, readBlockDocument, type PlainResolver } from './block-yaml.js';
import { kubernetesTags } from './yaml-schema.js';

export interface StreamDocument {
  /** 1-based position in the stream, used in error messages. */
  readonly index: number;
  /** Source text of this document, including leading comments and directives. */
  readonly source: string;
  /** The syntax tree (composed from `source` when it is first asked for, or again after it was released). */
  readonly doc: Document.Parsed;
  /** The plain value (read with YAML 1.1 semantics and bounded alias expansion; a fresh copy each time). */
  value(): unknown;
  /** A document with no content (only a `---`, comments or blank lines). */
  readonly empty: boolean;
  /** Set by whoever edits the syntax tree; only changed documents are re-serialised. */
  changed: boolean;
  /**
   * Serialise the edited tree now and let it go: the output gets this text, and the document
   * cannot be edited or read again. An edited tree holds about 40 times the memory of its text,
   * and `generate` of 1,000 workloads held every one of them until the output was written.
   */
  settle(): void;
  /** What the output gets: the source, or the edited tree serialised. */
  text(): string;
}

/** No value read beforehand. */
const UNREAD: unique symbol = Symbol('unread');

/**
 * A document whose syntax tree can be dropped once it has been read (or never made): a tree
 * takes about 40 times the memory of its text, and a stream of thousands of documents nobody
 * edits would otherwise hold all of them until the output is written.
 */
class Doc implements StreamDocument {
  changed = false;
  readonly empty: boolean;
  constructor(
    readonly index: number,
    readonly source: string,
    private tree: Document.Parsed | undefined,
    private readonly streamName: string,
    /** The value the quick reader read, handed out once. */
    private plain: unknown = UNREAD,
  ) {
    this.empty = tree !== undefined && tree.contents === null;
  }

  /** The edited tree serialised, once the document is settled. */
  private written: string | undefined;

  get doc(): Document.Parsed {
    if (this.tree) return this.tree;
    this.refuseSettled();
    this.plain = UNREAD; // the tree may be edited: values come from it from now on
    // The text was read without errors before, so this is the same tree (offsets relative to `source`).
    const again = parseAllDocuments(this.source, COMPOSE_OPTIONS);
    if (!Array.isArray(again) || again.length !== 1 || again[0]!.errors.length > 0)
      throw new BugError(`${this.streamName}, document ${this.index}: its text does not parse again on its own`);
    this.tree = again[0]!;
    return this.tree;
  }

  value(): unknown {
    const location = { file: this.streamName, document: this.index };
    if (this.tree) return documentValue(this.tree, location);
    this.refuseSettled();
    const plain = this.plain;
    this.plain = UNREAD;
    if (plain !== UNREAD) return plain;
    const again = readBlockDocument(this.source, plainValues());
    return again !== NOT_BLOCK_YAML ? again : documentValue(this.doc, location);
  }

  release(): void {
    if (!this.changed) this.tree = undefined;
    this.plain = UNREAD;
  }

  settle(): void {
    if (!this.changed || this.written !== undefined) return;
    this.written = serializeDocument(this);
    this.tree = undefined;
    this.plain = UNREAD;
  }

  text(): string {
    if (!this.changed) return this.source;
    return this.written ?? serializeDocument(this);
  }

  /** The source no longer says what the document holds once its edits are settled. */
  private refuseSettled(): void {
    if (this.written !== undefined)
      throw new BugError(`${this.streamName}, document ${this.index}: read or edited after its edits were settled`);
  }
}

export interface ParsedStream {
  name: string;
  /** The whole text: the documents' sources and the tail, in order. */
  text: string;
  documents: StreamDocument[];
  /** The text of a stream without documents (only comments and blank lines); '' otherwise. */
  tail: string;
}

/** Parsing options of every YAML document we read (here, and nowhere else). */
export const YAML_PARSE_OPTIONS = {
  version: '1.1',
  customTags: kubernetesTags,
  uniqueKeys: true,
  prettyErrors: true,
} as const;

/**
 * What we compose with: the same, but without the package's duplicate-key check, which compares
 * each key of a mapping with every key before it: a mapping of 20,000 keys took 2.2 s, one of
 * 200,000 would take minutes. scanKeys finds repeated keys in linear time instead.
 */
const COMPOSE_OPTIONS = { ...YAML_PARSE_OPTIONS, uniqueKeys: false } as const;

/**
 * Up to this many keys in every mapping so far, a repeated key is reported with the package's
 * own check (its position differs from the key's in a few layouts, e.g. after an empty item of
 * a block sequence); past it, at the repeated key itself.
 */
const EXACT_DUPLICATE_KEYS = 4096;

/**
 * The keys of the mappings in `root`: where the first repeated one starts (undefined if none)
 * and the size of the largest mapping. Two keys are the same where the package's `uniqueKeys`
 * says so: two scalars whose values are `===` (so NaN never repeats); collections and aliases as
 * keys never repeat, being different nodes. Iterative: any depth the composer allows is walked.
 */
function scanKeys(root: unknown): { duplicate: number | undefined; largest: number } {
  let duplicate: number | undefined;
  let largest = 0;
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const node = pending.pop();
    if (isMap(node)) {
      largest = Math.max(largest, node.items.length);
      const seen = new Set<unknown>();
      for (const { key, value } of node.items) {
        if (isScalar(key) && !Number.isNaN(key.value)) {
          const at = key.range?.[0];
          if (!seen.has(key.value)) seen.add(key.value);
          else if (at !== undefined && (duplicate === undefined || at < duplicate)) duplicate = at;
        }
        pending.push(key, value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) pending.push(item); // (a spread of a long sequence overflows the stack)
    }
  }
  return { duplicate, largest };
}

/**
 * Never fold long values such as the base64 policy annotation; write flow collections as
 * `[a, b]` and `{a: b}`, the way people (and yamllint's default brackets/braces rules) write them.
 */
export const WRITE_OPTIONS = { lineWidth: 0, flowCollectionPadding: false } as const;

/** Bounds that keep hostile input (alias bombs) from exhausting memory. */
export const MAX_ALIAS_COUNT = 1000;

/**
 * The documents of `text`. `keepTree` is asked about each document right after it was read;
 * answering false releases its syntax tree, which is made again from the document's text if
 * anyone asks for it later. Without `keepTree` every tree is kept.
 *
 * Documents that the quick block reader takes (block-yaml.ts) get no tree until one is asked
 * for. At the first one it does not take, that document is composed on its own; when that
 * gives anything but one document without errors (an empty document, an error, anything odd),
 * the rest of the stream from there is composed as one, so errors and document boundaries are
 * the `yaml` package's.
 */
export function parseStream(name: string, text: string, keepTree?: KeepTree): ParsedStream {
  const documents: Doc[] = [];
  const starts = documentStarts(text);
  if (starts === undefined) return composeRest(name, text, 0, documents, keepTree);
  const resolve = plainValues();
  for (let k = 0; k < starts.length; k++) {
    const source = text.slice(starts[k], starts[k + 1] ?? text.length);
    const index = documents.length + 1;
    const plain = readBlockDocument(source, resolve);
    const requoted: number[] = [];
    let d: Doc;
    if (plain !== NOT_BLOCK_YAML) {
      d = new Doc(index, source, undefined, name, plain);
    } else {
      const alone = [...new Composer(COMPOSE_OPTIONS).compose(withQuickQuotes(new Parser().parse(source), requoted))];
      const doc = alone[0];
      if (
        alone.length !== 1 ||
        doc!.errors.length > 0 ||
        doc!.contents === null ||
        scanKeys(doc!.contents).duplicate !== undefined
      )
        return composeRest(name, text, starts[k]!, documents, keepTree);
      d = new Doc(index, source, doc as Document.Parsed, name);
    }
    admit(d, documents, keepTree, requoted);
  }
  return { name, text, documents, tail: '' };
}

/**
 * Adds a read document and asks `keepTree` about it: a tree that is not kept is released; one
 * that is kept says "double-quoted" again at the `requoted` offsets, for writing it back.
 */
function admit(d: Doc, documents: Doc[], keepTree: KeepTree | undefined, requoted: readonly number[]): void {
  documents.push(d);
  if (keepTree && !keepTree(d)) d.release();
  else if (requoted.length > 0) restoreDoubleQuotes(d.doc, new Set(requoted));
}

type KeepTree = (d: StreamDocument) => boolean;

/** A line that is neither blank nor a comment. */
const CONTENT_LINE = /^ *[^ #\n]/m;

/**
 * Where each document of `text` starts (the first at 0, then each `---` line), when every line
 * that starts a document is a plain `---` (spaces and a comment may follow) and no line is a
 * directive (`%`) or a document end (`...`); comments and blank lines before the first `---`
 * belong to the first document. Otherwise undefined, and the stream is composed as one.
 */
function documentStarts(text: string): number[] | undefined {
  if (text.includes('\r') || /^(?:%|\.\.\.)/m.test(text)) return undefined;
  const markers: number[] = [];
  const nextCandidate = (from: number) => {
    const i = text.indexOf('\n---', from);
    return i < 0 ? -1 : i + 1;
  };
  for (let at = text.startsWith('---') ? 0 : nextCandidate(0); at >= 0;) {
    const eol = text.indexOf('\n', at);
    const lineEnd = eol < 0 ? text.length : eol;
    const rest = text.slice(at + 3, lineEnd);
    if (rest === '' || rest[0] === ' ' || rest[0] === '\t') {
      if (!/^(?: +#.*| *)$/.test(rest)) return undefined;
      markers.push(at);
    }
    at = nextCandidate(lineEnd);
  }
  if (markers.length === 0) return CONTENT_LINE.test(text) ? [0] : undefined;
  // A first document before any marker, or the first marker's document with the comments before it.
  return CONTENT_LINE.test(text.slice(0, markers[0])) ? [0, ...markers] : [0, ...markers.slice(1)];
}

/**
 * The documents of `text` from `from` (the start of a document) to its end, composed as one
 * stream and added to `documents`; positions in errors count from the start of `text`. A
 * document ends where the next one starts (its `---`), the last one at the end of the text, not
 * where the package says its last node ends: after `key:` that is before the line break, and an
 * edited next document would be written onto that line.
 */
function composeRest(
  name: string,
  text: string,
  from: number,
  documents: Doc[],
  keepTree: KeepTree | undefined,
): ParsedStream {
  const rest = from === 0 ? text : text.slice(from);
  const lines = new LineCounter();
  let offset = 0;
  const requoted: number[] = [];
  let pending: Document.Parsed | undefined;
  const add = (doc: Document.Parsed, end: number) => {
    let mine = 0;
    while (mine < requoted.length && requoted[mine]! < end) mine++;
    const d = new Doc(documents.length + 1, rest.slice(offset, end), doc, name);
    offset = end;
    admit(d, documents, keepTree, requoted.splice(0, mine));
  };
  const tokens = withQuickQuotes(new Parser(lines.addNewLine).parse(rest), requoted);
  let largest = 0;
  let k = -1;
  for (const doc of new Composer(COMPOSE_OPTIONS).compose(tokens)) {
    k++;
    if (pending) add(pending, Math.max(pending.range[2], doc.range[0]));
    const keys = scanKeys(doc.contents);
    largest = Math.max(largest, keys.largest);
    let first: FirstError | undefined = doc.errors[0];
    if (keys.duplicate !== undefined) {
      const own: FirstError =
        first === undefined || keys.duplicate < first.pos[0]
          ? { message: 'Map keys must be unique', pos: [keys.duplicate, keys.duplicate + 1] }
          : first;
      first = (largest <= EXACT_DUPLICATE_KEYS ? packageError(rest, k) : undefined) ?? own;
    }
    if (first) {
      const message = first.message.split('\n')[0]!;
      const what = /call stack/i.test(message) ? 'nesting is too deep' : message;
      const at = first.pos[0] >= 0 ? lines.linePos(first.pos[0]) : undefined;
      const linesBefore = at && from > 0 ? countLines(text, from) : 0;
      const position = at ? ` (line ${at.line + linesBefore}, column ${at.col})` : '';
      throw new UserError(`invalid YAML: ${what}${position}`, { file: name, document: documents.length + 1 });
    }
    pending = doc as Document.Parsed;
  }
  if (pending) add(pending, rest.length);
  return { name, text, documents, tail: rest.slice(offset) };
}

/** A document's first error, as the package's errors give it (`pos`: offsets of its start and end). */
type FirstError = { message: string; pos: readonly [number, number] };

/** The first error of the k-th document of `text` by the package's own checks (duplicate keys included). */
function packageError(text: string, k: number): FirstError | undefined {
  let i = 0;
  for (const doc of new Composer(YAML_PARSE_OPTIONS).compose(withQuickQuotes(new Parser().parse(text), []))) {
    if (i++ === k) return doc.errors[0];
  }
  return undefined;
}

function countLines(text: string, before: number): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < before; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

let resolver: PlainResolver | undefined;
/** Plain scalars resolved by our schema and options, as the composer resolves them. */
function plainValues(): PlainResolver {
  if (!resolver) {
    const doc = newDocument();
    resolver = plainResolver(doc.schema.tags, doc.options);
  }
  return resolver;
}

/** A double-quoted scalar whose value is its text between the quotes: no escape, quote or line break. */
const LITERAL_DOUBLE_QUOTED = /^"[^"'\\\r\n]*"$/;

/**
 * The `yaml` package decodes a double-quoted scalar one character at a time (a 1 MB value makes a
 * million intermediate strings, three quarters of the time of a stream of such ConfigMaps goes
 * to the garbage collector). Where the value is just the text between the quotes, the token is
 * handed to the composer as the same text in single quotes, whose decoding is one slice: the
 * same value, the same offsets and errors. `requoted` collects their offsets, in order.
 */
function* withQuickQuotes(tokens: Generator<CST.Token>, requoted: number[]): Generator<CST.Token> {
  for (const token of tokens) {
    if (token.type === 'document') {
      const found: CST.FlowScalar[] = [];
      try {
        CST.visit(token, (item) => {
          for (const t of [item.key, item.value]) {
            if (t?.type === 'double-quoted-scalar' && LITERAL_DOUBLE_QUOTED.test(t.source)) found.push(t);
          }
        });
      } catch {
        found.length = 0; // nested too deep to walk: composed as it is (and refused there)
      }
      for (const t of found) {
        t.type = 'single-quoted-scalar';
        t.source = `'${t.source.slice(1, -1)}'`;
        requoted.push(t.offset);
      }
    }
    yield token;
  }
}

function restoreDoubleQuotes(doc: Document, offsets: ReadonlySet<number>): void {
  visit(doc, {
    Scalar(_key, node) {
      if (node.range && offsets.has(node.range[0])) node.type = 'QUOTE_DOUBLE';
    },
  });
}

/** The plain value of a document, read with YAML 1.1 semantics and bounded alias expansion. */
export function documentValue(doc: Document.Parsed, location: { file: string; document: number }): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    const what = err instanceof RangeError ? 'nesting is too deep' : (err as Error).message;
    throw new UserError(`cannot read document: ${what}`, location);
  }
}

/** The plain values of every document of a stream (empty documents left out). */
export function parseValues(name: string, text: string): unknown[] {
  return parseStream(name, text, () => false)
    .documents.filter((d) => !d.empty)
    .map((d) => d.value());
}

/** A new, empty document with our options, to build output in. */
export function newDocument(): Document {
  return new Document(undefined, YAML_PARSE_OPTIONS);
}

/** One syntax node written as a document of its own. */
export function nodeText(node: Node): string {
  const doc = newDocument();
  doc.contents = node;
  return doc.toString(WRITE_OPTIONS);
}

export function serializeStream(stream: ParsedStream): string {
  if (!stream.documents.some((d) => d.changed)) return stream.text;
  let out = '';
  for (const d of stream.documents) out += d.text();
  return out + stream.tail;
}

function serializeDocument(d: StreamDocument): string {
  const options: ToStringOptions = {
    ...WRITE_OPTIONS,
    indentSeq: !hasUnindentedSequence(d.source),
  };
  let text = d.doc.toString(options);
  // A document that follows another one needs its start marker to stay a separate document.
  if (d.index > 1 && !/^---(\s|$)/m.test(text)) text = `---\n${text}`;
  return text;
}

/** True when the source writes block sequences flush with their parent key (`key:\n- a`). */
function hasUnindentedSequence(source: string): boolean {
  return /^( *)[^\s#-][^\n]*:[ \t]*\n\1- /m.test(source);
}

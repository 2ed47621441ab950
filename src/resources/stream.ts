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
  LineCounter,
  parseAllDocuments,
  Parser,
  visit,
  type Node,
  type ToStringOptions,
} from 'yaml';
import { BugError, UserError } from '../util/errors.js';
import { kubernetesTags } from './yaml-schema.js';

export interface StreamDocument {
  /** 1-based position in the stream, used in error messages. */
  readonly index: number;
  /** Source text of this document, including leading comments and directives. */
  readonly source: string;
  /** The syntax tree (parsed again from `source` when it was released after the first read). */
  readonly doc: Document.Parsed;
  /** Set by whoever edits the syntax tree; only changed documents are re-serialised. */
  changed: boolean;
}

/**
 * A document whose syntax tree can be dropped once it has been read: a tree takes about 40
 * times the memory of its text, and a stream of thousands of documents nobody edits would
 * otherwise hold all of them until the output is written.
 */
class Doc implements StreamDocument {
  changed = false;
  constructor(
    readonly index: number,
    readonly source: string,
    private tree: Document.Parsed | undefined,
    private readonly streamName: string,
  ) {}

  get doc(): Document.Parsed {
    if (this.tree) return this.tree;
    // The text parsed without errors before, so this is the same tree (offsets relative to `source`).
    const again = parseAllDocuments(this.source, YAML_PARSE_OPTIONS);
    if (!Array.isArray(again) || again.length !== 1 || again[0]!.errors.length > 0)
      throw new BugError(`${this.streamName}, document ${this.index}: its text does not parse again on its own`);
    this.tree = again[0]!;
    return this.tree;
  }

  release(): void {
    if (!this.changed) this.tree = undefined;
  }
}

export interface ParsedStream {
  name: string;
  /** The whole text: the documents' sources and the tail, in order. */
  text: string;
  documents: StreamDocument[];
  /** Text after the last document (trailing comments, blank lines). */
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
 * Never fold long values such as the base64 policy annotation; write flow collections as
 * `[a, b]` and `{a: b}`, the way people (and yamllint's default brackets/braces rules) write them.
 */
export const WRITE_OPTIONS = { lineWidth: 0, flowCollectionPadding: false } as const;

/** Bounds that keep hostile input (alias bombs) from exhausting memory. */
export const MAX_ALIAS_COUNT = 1000;

/**
 * The documents of `text`, composed one at a time. `keepTree` is asked about each document
 * right after it was composed (its tree is there); answering false releases the tree, which
 * is parsed again from the document's text if anyone asks for it later. Without `keepTree`
 * every tree is kept.
 */
export function parseStream(name: string, text: string, keepTree?: (d: StreamDocument) => boolean): ParsedStream {
  const lines = new LineCounter();
  const composer = new Composer(YAML_PARSE_OPTIONS);
  const documents: Doc[] = [];
  let offset = 0;
  const requoted: number[] = [];
  const tokens = withQuickQuotes(new Parser(lines.addNewLine).parse(text), requoted);
  for (const doc of composer.compose(tokens)) {
    const index = documents.length + 1;
    const first = doc.errors[0];
    if (first) {
      const message = first.message.split('\n')[0]!;
      const what = /call stack/i.test(message) ? 'nesting is too deep' : message;
      const at = first.pos[0] >= 0 ? lines.linePos(first.pos[0]) : undefined;
      const position = at ? ` (line ${at.line}, column ${at.col})` : '';
      throw new UserError(`invalid YAML: ${what}${position}`, { file: name, document: index });
    }
    const end = doc.range[2];
    let mine = 0;
    while (mine < requoted.length && requoted[mine]! < end) mine++;
    const d = new Doc(index, text.slice(offset, end), doc as Document.Parsed, name);
    documents.push(d);
    offset = end;
    if (keepTree && !keepTree(d)) d.release();
    // A tree that is kept says "double-quoted" again where it was, for writing it back.
    else if (mine > 0) restoreDoubleQuotes(doc, new Set(requoted.slice(0, mine)));
    requoted.splice(0, mine);
  }
  return { name, text, documents, tail: text.slice(offset) };
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
  return parseStream(name, text)
    .documents.filter((d) => d.doc.contents !== null)
    .map((d) => documentValue(d.doc, { file: name, document: d.index }));
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
  for (const d of stream.documents) {
    out += d.changed ? serializeDocument(d) : d.source;
  }
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

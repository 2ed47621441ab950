/**
 * A YAML stream split into documents that can be edited one by one.
 *
 * Every document keeps the exact source text it came from. A document that is not changed is
 * written back byte for byte (comments, key order, quoting, blank lines); a changed one is
 * re-serialised from its syntax tree, which keeps its comments and the YAML 1.1 meaning of
 * untouched scalars (Kubernetes reads YAML as YAML 1.1: `0755` is octal, `on` is true).
 */
import { Document, parseAllDocuments, type Node, type ToStringOptions } from 'yaml';
import { UserError } from '../util/errors.js';
import { kubernetesTags } from './yaml-schema.js';

export interface StreamDocument {
  /** 1-based position in the stream, used in error messages. */
  index: number;
  /** Source text of this document, including leading comments and directives. */
  source: string;
  doc: Document.Parsed;
  /** Set by whoever edits the syntax tree; only changed documents are re-serialised. */
  changed: boolean;
}

export interface ParsedStream {
  name: string;
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

export function parseStream(name: string, text: string): ParsedStream {
  const docs = parseAllDocuments(text, YAML_PARSE_OPTIONS);
  if (!Array.isArray(docs)) return { name, documents: [], tail: text }; // empty stream
  const documents: StreamDocument[] = [];
  let offset = 0;
  docs.forEach((doc, i) => {
    const index = i + 1;
    const first = doc.errors[0];
    if (first) {
      const what = /call stack/i.test(first.message)
        ? 'nesting is too deep'
        : first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      throw new UserError(`invalid YAML: ${what}${positionOf(first)}`, { file: name, document: index });
    }
    const end = doc.range[2];
    documents.push({ index, source: text.slice(offset, end), doc, changed: false });
    offset = end;
  });
  return { name, documents, tail: text.slice(offset) };
}

function positionOf(err: { linePos?: [{ line: number; col: number }, ...unknown[]] }): string {
  const pos = err.linePos?.[0];
  return pos ? ` (line ${pos.line}, column ${pos.col})` : '';
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

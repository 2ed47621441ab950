/**
 * The quick block reader against the `yaml` package, the reader it stands in for: on generated
 * documents and on mutations of them, whatever it reads must be exactly what the package reads
 * (same value, and only where the package reads one document without errors), and it must read
 * most of the plain documents (or it would be a reader that declines everything). The same for
 * whole streams: documents, their sources, values, emptiness and errors.
 */
import assert from 'node:assert/strict';
import { LineCounter, parseAllDocuments } from 'yaml';
import { NOT_BLOCK_YAML, plainResolver, readBlockDocument } from '../../src/resources/block-yaml.js';
import { newDocument, parseStream, serializeStream, YAML_PARSE_OPTIONS } from '../../src/resources/stream.js';
import { UserError } from '../../src/util/errors.js';

const schemaDoc = newDocument();
const resolve = plainResolver(schemaDoc.schema.tags, schemaDoc.options);

/** xorshift32: the same cases on every run. */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const KEYS = [
  'name',
  'app.kubernetes.io/name',
  'data',
  'a b',
  'a:b',
  '-x',
  'yes',
  'on',
  'y',
  'n',
  'null',
  '~',
  '1',
  '0x1f',
  '<<',
  '__proto__',
  'k#x',
  'key ',
  "'quoted'",
  '"dq"',
  "'it''s'",
  '"a: b"',
  "''",
  '""',
  '---',
  'ünï',
  'x'.repeat(1100),
];
const VALUES = [
  'v',
  'hello world',
  '',
  '~',
  'null',
  'Null',
  'true',
  'True',
  'TRUE',
  'yes',
  'on',
  'Off',
  'y',
  'n',
  '0755',
  '0x1F',
  '0b101',
  '1_000',
  '12:30',
  '1:20:30',
  '2001-12-14',
  '2001-12-14t21:59:43.10-05:00',
  '1e5',
  'E0',
  '1E+3',
  '.inf',
  '-.Inf',
  '.NaN',
  '1.0',
  '1.50',
  '-1',
  '+1',
  '-0',
  '007',
  '1.5e-3',
  '12345678901234567890',
  '--port=80',
  '-',
  '-x',
  ':x',
  '?x',
  '? x',
  'a: b',
  'a:b',
  'a #c',
  'a#c',
  'http://x:80/y',
  "'single'",
  "'it''s'",
  "''",
  '"dq"',
  '""',
  '"a\\nb"',
  '"a #b"',
  "'a: b'",
  '[]',
  '{}',
  '[ ]',
  '[a]',
  '{a: b}',
  // Flow collections on one line, as Helm charts write them (and what is near them).
  '{app: web}',
  '[{port: 8080}]',
  '["a", \'b\']',
  '[a, b]',
  '[a,b]',
  '[ a , b ]',
  '{ a: b }',
  '{a: [1, 2], b: {c: d}}',
  '[[]]',
  '[{}]',
  '[a, [b, [c]]]',
  '[a, ]',
  '[, a]',
  '{a}',
  '{a: }',
  '{a: b, a: c}',
  '{y: n}',
  '{1: a}',
  '{"k": v}',
  '{"k":v}',
  "{'k''s': 'v''s'}",
  '[http://x]',
  '{a: b:c}',
  '[a #b]',
  '[a] # c',
  '[a]#c',
  '[a] b',
  '[-1, -x]',
  '[-, x]',
  '[- x]',
  '[? x]',
  '{<<: x}',
  '{__proto__: x}',
  '[ü]',
  '[a\tb]',
  '[yes, on, ~, null, 0755, 1e3, .inf]',
  '["a\\nb"]',
  '[a',
  'a]',
  '[a]]',
  '{a: b}}',
  '&a x',
  '*a',
  '!!str x',
  '! x',
  '@x',
  '`x',
  '%x',
  '>',
  '>-',
  'x:',
  'x :',
  'a\tb',
  '"tab\there"',
  ' padded ',
  'trailing   ',
  '# comment',
  'a  # two spaces',
  "'unterminated",
  '"unterminated',
  'ünïcödé',
  '\u0085',
  '\ufeffbom',
  'x\u007fy',
  '0o17',
  '+.5',
  '.5',
  '5.',
  '1,000',
  'a, b',
  'a]',
  '{',
  '|',
  '|-',
  '|+',
  '|2',
];

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

/** A literal block scalar header and body for a node at column `indent`. */
function literal(rnd: () => number, indent: number): string {
  const header = pick(rnd, ['|', '|-', '|+', '| # c', '|2', '>']);
  const step = 1 + Math.floor(rnd() * 3);
  const lines: string[] = [];
  const n = Math.floor(rnd() * 5);
  for (let i = 0; i < n; i++) {
    const kind = rnd();
    const pad = ' '.repeat(indent + step);
    if (kind < 0.15) lines.push('');
    else if (kind < 0.22) lines.push(' '.repeat(Math.floor(rnd() * (indent + step + 3))));
    else if (kind < 0.3) lines.push(`${pad}  more indented`);
    else if (kind < 0.36) lines.push(`${pad}# not a comment`);
    else if (kind < 0.4) lines.push(`${pad}\ttab`);
    else if (kind < 0.44) lines.push(`${' '.repeat(indent)}less`);
    else lines.push(`${pad}${pick(rnd, VALUES)}`);
  }
  return `${header}\n${lines.join('\n')}${lines.length > 0 ? '\n' : ''}${rnd() < 0.3 ? '\n' : ''}`;
}

function scalarOrLiteral(rnd: () => number, indent: number): string {
  const r = rnd();
  if (r < 0.12) return literal(rnd, indent);
  const comment = rnd() < 0.1 ? pick(rnd, [' # c', '  #c', '#c', ' #']) : '';
  return `${pick(rnd, VALUES)}${comment}\n`;
}

function mapping(rnd: () => number, indent: number, depth: number, first = true): string {
  const n = 1 + Math.floor(rnd() * 4);
  let out = '';
  const pad = ' '.repeat(indent);
  const keys = rnd() < 0.3 ? KEYS : KEYS.slice(0, 3);
  for (let i = 0; i < n; i++) {
    const key =
      rnd() < 0.85 ? `${pick(rnd, ['name', 'kind', 'data', 'spec', 'items', 'k1', 'k2'])}${i}` : pick(rnd, keys);
    const lead = i === 0 && !first ? '' : pad;
    if (rnd() < 0.08) out += `${pad}${pick(rnd, ['# comment', ''])}\n`;
    const r = rnd();
    if (depth > 0 && r < 0.25)
      out += `${lead}${key}:${rnd() < 0.1 ? ' # c' : ''}\n${mapping(rnd, indent + pick(rnd, [2, 4, 1]), depth - 1)}`;
    else if (depth > 0 && r < 0.45)
      out += `${lead}${key}:\n${sequence(rnd, rnd() < 0.5 ? indent : indent + 2, depth - 1)}`;
    else if (r < 0.5) out += `${lead}${key}:\n`;
    else out += `${lead}${key}: ${scalarOrLiteral(rnd, indent)}`;
  }
  return out;
}

function sequence(rnd: () => number, indent: number, depth: number): string {
  const n = 1 + Math.floor(rnd() * 3);
  let out = '';
  const pad = ' '.repeat(indent);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    const gap = pick(rnd, [' ', ' ', '   ']);
    if (depth > 0 && r < 0.35) out += `${pad}-${gap}${mapping(rnd, indent + 1 + gap.length, depth - 1, false)}`;
    else if (depth > 0 && r < 0.45) out += `${pad}-\n${mapping(rnd, indent + 2, depth - 1)}`;
    else if (r < 0.5) out += `${pad}-\n`;
    else if (r < 0.53) out += `${pad}- - x\n`;
    else out += `${pad}-${gap}${scalarOrLiteral(rnd, indent)}`;
  }
  return out;
}

function document(rnd: () => number): string {
  const head = pick(rnd, ['', '', '---\n', '# c\n---\n', '--- # c\n', '\n']);
  return head + (rnd() < 0.15 ? sequence(rnd, 0, 3) : mapping(rnd, rnd() < 0.05 ? 2 : 0, 3));
}

function mutate(rnd: () => number, text: string): string {
  const at = Math.floor(rnd() * (text.length + 1));
  const r = rnd();
  if (r < 0.3) return text.slice(0, at) + text.slice(at + 1);
  if (r < 0.7)
    return (
      text.slice(0, at) +
      pick(rnd, [' ', ':', '-', '#', '\t', "'", '"', '|', '\n', '  ', '\n- ', ': ']) +
      text.slice(at)
    );
  const lines = text.split('\n');
  const i = Math.floor(rnd() * lines.length);
  if (r < 0.85) lines[i] = lines[i]!.startsWith(' ') ? lines[i]!.slice(1) : ` ${lines[i]}`;
  else lines.splice(i, 0, lines[i]!);
  return lines.join('\n');
}

/** What the `yaml` package reads: the value of one document without errors, or undefined. */
function reference(text: string): { value: unknown } | undefined {
  const docs = parseAllDocuments(text, YAML_PARSE_OPTIONS);
  if (!Array.isArray(docs) || docs.length !== 1) return undefined;
  const doc = docs[0]!;
  if (doc.errors.length > 0 || doc.contents === null) return undefined;
  try {
    return { value: doc.toJS({ maxAliasCount: 1000 }) };
  } catch {
    return undefined;
  }
}

describe('quick block YAML reader', () => {
  it('reads only what the yaml package reads, with the same value, on generated and mutated documents', () => {
    const rnd = random(18);
    let generated = 0;
    let plainRead = 0;
    let plainValid = 0;
    let mutatedRead = 0;
    for (let n = 0; n < 4000; n++) {
      const base = document(rnd);
      const texts = [base, mutate(rnd, base), mutate(rnd, mutate(rnd, base))];
      for (const [i, text] of texts.entries()) {
        const ours = readBlockDocument(text, resolve);
        const theirs = reference(text);
        if (ours !== NOT_BLOCK_YAML) {
          assert.ok(theirs, `read a document the yaml package refuses or reads otherwise:\n${JSON.stringify(text)}`);
          assert.deepStrictEqual(ours, theirs.value, `different value for:\n${JSON.stringify(text)}`);
          if (i === 0) plainRead++;
          else mutatedRead++;
        }
        if (i === 0) {
          generated++;
          if (theirs) plainValid++;
        }
      }
    }
    // It must take most of what it is for, or it saves nothing: the generator draws odd keys and
    // values on purpose, so a third of the valid documents are outside the subset.
    assert.ok(plainRead > plainValid * 0.3, `read ${plainRead} of ${plainValid} valid generated documents`);
    assert.ok(mutatedRead > 500, `read ${mutatedRead} mutated documents`);
    assert.ok(generated === 4000);
  });

  // A search for a comment or a key's colon that ran on past the end of its line made the
  // reader quadratic in a document's size: 16,000 keys took 3 s, 64,000 keys 47 s, so each of
  // the first and the last document here would take minutes, past the test's timeout. (The
  // backslash search in double-quoted values ran on too; V8's one-character search made it
  // seconds, not minutes.) Every search stops at its line now. The expected values are written
  // out: the yaml package itself needs minutes for these (its duplicate-key check is quadratic).
  it('reads large documents line by line (no search past a line)', () => {
    const upTo = (n: number) => Array.from({ length: n }, (_, i) => i);
    const shapes: { shape: string; text: (keys: number[]) => string; value: (keys: number[]) => unknown }[] = [
      {
        shape: 'plain values without a comment',
        text: (keys) => `kind: ConfigMap\ndata:\n${keys.map((i) => `  key${i}: value ${i}\n`).join('')}`,
        value: (keys) => ({ kind: 'ConfigMap', data: Object.fromEntries(keys.map((i) => [`key${i}`, `value ${i}`])) }),
      },
      {
        shape: 'double-quoted values without a backslash',
        text: (keys) => `kind: ConfigMap\ndata:\n${keys.map((i) => `  key${i}: "v ${i}"\n`).join('')}`,
        value: (keys) => ({ kind: 'ConfigMap', data: Object.fromEntries(keys.map((i) => [`key${i}`, `v ${i}`])) }),
      },
      {
        shape: 'sequence items without a colon',
        text: (keys) => `kind: List\nitems:\n${keys.map((i) => `  - item ${i}\n`).join('')}`,
        value: (keys) => ({ kind: 'List', items: keys.map((i) => `item ${i}`) }),
      },
    ];
    for (const { shape, text, value } of shapes) {
      // The expected value is right: the yaml package reads the same from 100 lines.
      assert.deepStrictEqual(reference(text(upTo(100)))?.value, value(upTo(100)), shape);
      assert.deepStrictEqual(readBlockDocument(text(upTo(120_000)), resolve), value(upTo(120_000)), shape);
    }
  });

  it('reads what Kubernetes tools write', () => {
    const text = [
      '# Source: chart/templates/cm.yaml',
      '---',
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: "cm"',
      '  labels:',
      '    app.kubernetes.io/name: web  # why',
      "    helm.sh/chart: 'web-1.0.0'",
      '  annotations: {}',
      'data:',
      '  enabled: "true"',
      '  port: 8080',
      '  ratio: 1.50',
      '  mode: 0755',
      '  flag: on',
      '  config.yaml: |',
      '    server:',
      '      port: 80',
      '',
      '    # a line of the file',
      '  empty:',
      '  list:',
      '  - a',
      '  -   b: 1',
      '      c: [] ',
      '  -',
      '    - nested',
      'spec:',
      '  selector: {app: web}',
      '  ports: [{port: 8080, name: http}]',
      '  args: ["--port", \'8080\', -v]',
      '  securityContext: { runAsUser: 101, runAsNonRoot: true } # flow, padded',
      '  nested: [a, [b, {c: d}]]',
      '',
    ].join('\n');
    assert.deepStrictEqual(readBlockDocument(text, resolve), reference(text)!.value);
    const value = readBlockDocument(text, resolve) as { data: Record<string, unknown> };
    assert.equal(value.data['mode'], 493);
    assert.equal(value.data['flag'], true);
    assert.equal(value.data['config.yaml'], 'server:\n  port: 80\n\n# a line of the file\n');
    const spec = (value as unknown as { spec: Record<string, unknown> }).spec;
    assert.deepStrictEqual(spec['ports'], [{ port: 8080, name: 'http' }]);
    assert.deepStrictEqual(spec['args'], ['--port', '8080', '-v']);
  });

  it('leaves to the yaml package what it does not read (and what is an error)', () => {
    for (const text of [
      'a: &x 1\nb: *x\n',
      'a: !!str 1\n',
      'a: {b: c,\n  d: e}\n',
      'a: [b, ]\n',
      'a: {b: c, b: d}\n',
      'a: {y: c}\n',
      'a: [b] c\n',
      'a: "esc\\n"\n',
      'a: >\n  folded\n',
      'a: b\n  continued\n',
      'a: 1\na: 2\n',
      '<<: {a: 1}\n',
      '\ta: 1\n',
      'a: 1\r\n',
      'a:\n  b: 1\n c: 2\n',
      'a: 1\n- b\n',
      'a: b: c\n',
      '"a"b: 1\n',
      'a: |\n  x',
      'just a scalar\n',
      '',
      '# only a comment\n',
      '---\n',
    ]) {
      assert.equal(readBlockDocument(text, resolve), NOT_BLOCK_YAML, JSON.stringify(text));
    }
  });
});

const UNREADABLE = { unreadable: true };
function valueOrError(read: () => unknown): unknown {
  try {
    return read();
  } catch {
    return UNREADABLE;
  }
}

/** The documents of a stream as the `yaml` package alone splits and reads them (errors: the first one). */
function streamReference(
  text: string,
): { sources: string[]; values: unknown[]; empty: boolean[]; tail: string } | Error {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { ...YAML_PARSE_OPTIONS, lineCounter: lines });
  const list = Array.isArray(docs) ? docs : [];
  const out = { sources: [] as string[], values: [] as unknown[], empty: [] as boolean[], tail: '' };
  let offset = 0;
  for (const [i, doc] of list.entries()) {
    const first = doc.errors[0];
    if (first) {
      const at = lines.linePos(first.pos[0]);
      return new Error(`document ${i + 1} line ${at.line} column ${at.col}`);
    }
    // A document ends where the next one starts, the last one at the end of the text.
    const end = i + 1 < list.length ? Math.max(doc.range[2], list[i + 1]!.range[0]) : text.length;
    out.sources.push(text.slice(offset, end));
    offset = end;
    out.values.push(valueOrError(() => doc.toJS({ maxAliasCount: 1000 })));
    out.empty.push(doc.contents === null);
  }
  out.tail = text.slice(offset);
  return out;
}

describe('YAML stream read by the quick reader where it can', () => {
  it('splits and reads streams as the yaml package does, errors included', () => {
    const rnd = random(1818);
    const separators = [
      '---\n',
      '---\n',
      '--- # c\n',
      '---\n# Source: x\n',
      '---\n\n',
      '---  \n',
      '---\n---\n',
      '...\n---\n',
    ];
    let quick = 0;
    let total = 0;
    for (let n = 0; n < 1500; n++) {
      const parts: string[] = [];
      const count = 1 + Math.floor(rnd() * 5);
      for (let i = 0; i < count; i++) {
        let d = document(rnd).replace(/^(?:---\n|# c\n---\n|--- # c\n)/, '');
        if (rnd() < 0.15) d = mutate(rnd, d);
        parts.push(d);
      }
      let text = parts.reduce((all, d, i) => (i === 0 ? d : `${all}${pick(rnd, separators)}${d}`), '');
      if (rnd() < 0.2) text = pick(rnd, ['# lead\n', '---\n', '\n', '# a\n---\n']) + text;
      if (rnd() < 0.2) text += pick(rnd, ['# tail\n', '\n\n', '---\n', '---\n# t\n']);
      const expected = streamReference(text);
      let got: ReturnType<typeof parseStream> | UserError;
      try {
        got = parseStream('s.yaml', text, () => false);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        got = err;
      }
      if (expected instanceof Error) {
        assert.ok(got instanceof UserError, `no error for:\n${JSON.stringify(text)}\n${expected.message}`);
        const m = /^s\.yaml, document (\d+): .*\(line (\d+), column (\d+)\)$/s.exec(got.message);
        assert.ok(m, got.message);
        assert.equal(`document ${m[1]} line ${m[2]} column ${m[3]}`, expected.message, JSON.stringify(text));
        continue;
      }
      assert.ok(!(got instanceof UserError), `${(got as Error).message}\n${JSON.stringify(text)}`);
      const stream = got as ReturnType<typeof parseStream>;
      const what = JSON.stringify(text);
      assert.deepStrictEqual(
        stream.documents.map((d) => d.source),
        expected.sources,
        what,
      );
      assert.equal(stream.tail, expected.tail, what);
      assert.deepStrictEqual(
        stream.documents.map((d) => d.empty),
        expected.empty,
        what,
      );
      assert.deepStrictEqual(
        stream.documents.map((d) => (d.empty ? null : valueOrError(() => d.value()))),
        expected.values,
        what,
      );
      // Asked again (after the first value was handed out), and through the tree.
      assert.deepStrictEqual(
        stream.documents.map((d) => (d.empty ? null : valueOrError(() => d.value()))),
        expected.values,
        what,
      );
      assert.equal(serializeStream(stream), text);
      total += stream.documents.length;
      quick += stream.documents.filter(
        (d) => !d.empty && readBlockDocument(d.source, resolve) !== NOT_BLOCK_YAML,
      ).length;
    }
    assert.ok(quick > total * 0.25, `${quick} of ${total} documents read by the quick reader`);
  });
});

describe('YAML stream: large documents the quick reader leaves to the yaml package', () => {
  // The package's own duplicate-key check compares every key of a mapping with every key before
  // it: 20,000 keys took 2.2 s, and a mapping of 200,000 keys would take minutes, past the test's
  // timeout. The keys are checked with a set per mapping now; the differential test above checks
  // that the errors are the package's, at the package's positions.
  const keys = Array.from({ length: 200_000 }, (_, i) => i);
  // The anchor sends the document to the package.
  const text = `kind: ConfigMap\ndata: &d\n${keys.map((i) => `  key${i}: value ${i}\n`).join('')}`;

  it('composes a mapping of 200,000 keys', () => {
    assert.equal(readBlockDocument(text, resolve), NOT_BLOCK_YAML);
    const [doc] = parseStream('big.yaml', text).documents;
    assert.deepStrictEqual(doc!.value(), {
      kind: 'ConfigMap',
      data: Object.fromEntries(keys.map((i) => [`key${i}`, `value ${i}`])),
    });
  });

  // The key scan once took a sequence's items with a spread, which overflows the stack from
  // about 150,000 items (RangeError).
  it('composes a sequence of 150,000 items', () => {
    const items = Array.from({ length: 150_000 }, (_, i) => `i${i}`);
    const [doc] = parseStream('list.yaml', `kind: List\nitems: &x\n${items.map((i) => `- ${i}\n`).join('')}`).documents;
    assert.deepStrictEqual(doc!.value(), { kind: 'List', items });
  });

  it('finds a key repeated after 200,000 others, at its line', () => {
    assert.throws(
      () => parseStream('big.yaml', `${text}  key7: again\n`),
      (err: Error) =>
        err instanceof UserError &&
        err.message === 'big.yaml, document 1: invalid YAML: Map keys must be unique (line 200003, column 3)',
    );
  });
});

import assert from 'node:assert/strict';
import { BugError, type UserError } from '../../src/util/errors.js';
import { docs, gen, genText } from './harness.js';
import { parseAllDocuments } from 'yaml';
import { documentValue, parseStream, serializeStream, YAML_PARSE_OPTIONS } from '../../src/resources/stream.js';
import { decodeInitDataAnnotation, INITDATA_ANNOTATION, POLICY_KEY } from '../../src/policy/initdata.js';

const untouched = `# leading comment\n%YAML 1.1\n---\napiVersion: v1\nkind: ConfigMap   # trailing\nmetadata: {name: a, labels: {"x": 'y'}}\ndata:\n  mode: 0755\n  flag: on\n  list: [1, 2,   3]\n  anchor: &a hello\n  ref: *a\n...\n---\n\n# only a comment\n---\napiVersion: v1\nkind: Service\nmetadata:\n    name: svc\nspec:\n    ports:\n    -   port: 80\n`;

const confidential = `# Deployment comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app   # the name
spec:
  template:
    metadata:
      labels:
        app: x
    spec:
      runtimeClassName: contrast-cc
      containers:
      - name: main # keep me
        image: busybox:1.36
        env:
        - name: ENABLED
          value: "on"
      volumes:
      - name: cfg
        configMap:
          name: cfg
          defaultMode: 0755
`;

describe('YAML stream round trip', () => {
  it('parses and serialises an untouched stream byte for byte', () => {
    const s = parseStream('x.yaml', untouched);
    assert.equal(serializeStream(s), untouched);
    assert.equal(s.documents.length, 3);
  });

  it('leaves a stream without confidential workloads byte-identical through generate', async () => {
    const crlf = untouched.replace(/\n/g, '\r\n');
    assert.equal(await genText(untouched), untouched);
    assert.equal(await genText(crlf), crlf);
  });

  it('keeps every other document of a mixed stream byte-identical', async () => {
    const input = `${untouched}---\n${confidential}---\n# tail comment\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData: {k: "v"}\n`;
    const out = await genText(input);
    assert.ok(out.startsWith(untouched), 'documents before the edited one are unchanged');
    assert.ok(
      out.endsWith('---\n# tail comment\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData: {k: "v"}\n'),
    );
    assert.notEqual(out, input);
  });

  it('keeps comments and YAML 1.1 scalars of an edited document', async () => {
    const out = await genText(confidential);
    for (const kept of ['# Deployment comment', '# the name', '# keep me', 'defaultMode: 0755', 'value: "on"']) {
      assert.ok(out.includes(kept), `output keeps ${kept}`);
    }
    const [d] = docs(out);
    assert.equal(d.spec.template.spec.volumes[0].configMap.defaultMode, 0o755, '0755 is still octal 493');
    assert.equal(d.spec.template.spec.containers[0].env[0].value, 'on', '"on" is still a string');
    assert.equal(d.metadata.name, 'app');
  });

  it('is idempotent: a second run gives the same bytes', async () => {
    const once = await genText(confidential);
    const twice = await genText(once);
    assert.equal(twice, once);
    const r = await gen(once);
    assert.equal(r.outputs[0]!.changed, false);
  });

  it('treats an empty stream and empty documents as nothing to do', async () => {
    for (const text of ['', '\n', '---\n', '# just a comment\n', '---\n---\n']) {
      assert.equal(await genText(text), text);
    }
  });

  it('writes an edited document after one that ends in an empty value on a line of its own', async () => {
    // The yaml package ends a document that ends in `key:` before the line break; a document
    // edited after it was once written onto that line (`data:---`).
    const before = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n';
    for (const eol of ['\n', '\r\n']) {
      const input = `${before}---\n${confidential}`.replace(/\n/g, eol);
      const out = await genText(input);
      assert.ok(out.startsWith(`${before}---`.replace(/\n/g, eol)), JSON.stringify(out.slice(0, 120)));
      const docs = parseAllDocuments(out, YAML_PARSE_OPTIONS);
      assert.ok(Array.isArray(docs) && docs.length === 2 && docs.every((d) => d.errors.length === 0));
      assert.deepEqual(documentValue(docs[0]!, { file: 'out', document: 1 }), {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'cfg' },
        data: null,
      });
      assert.notEqual(out, input, 'the Deployment was edited');
    }
  });
});

describe('YAML stream: released syntax trees', () => {
  it('parses a released document again to the same value, and writes the stream back byte for byte', () => {
    const kept = parseStream('x.yaml', untouched);
    const released = parseStream('x.yaml', untouched, () => false);
    assert.equal(serializeStream(released), untouched);
    assert.equal(released.documents.length, kept.documents.length);
    released.documents.forEach((d, i) => {
      assert.deepEqual(d.doc.toJS(), kept.documents[i]!.doc.toJS(), `document ${d.index}`);
    });
  });

  it('asks about every document while its tree is there, and writes an edited released document', () => {
    const seen: number[] = [];
    const s = parseStream('x.yaml', untouched, (d) => {
      seen.push(d.index);
      return d.index === 1;
    });
    assert.deepEqual(seen, [1, 2, 3]);
    const last = s.documents[2]!;
    last.doc.setIn(['metadata', 'name'], 'other');
    last.changed = true;
    const out = serializeStream(s);
    assert.ok(out.startsWith(untouched.slice(0, untouched.indexOf('---\napiVersion: v1\nkind: Service'))));
    assert.match(out, /name: other/);
    assert.doesNotMatch(out, /name: svc/);
  });

  it('settles an edited document: its text is kept, its tree let go, and reading it again is a BugError', () => {
    const s = parseStream('x.yaml', untouched);
    const last = s.documents[2]!;
    last.doc.setIn(['metadata', 'name'], 'other');
    last.changed = true;
    const before = serializeStream(s);
    last.settle();
    assert.equal(serializeStream(s), before);
    assert.match(last.text(), /name: other/);
    assert.throws(
      () => last.doc,
      (err: unknown) => err instanceof BugError && /after its edits were settled/.test(err.message),
    );
    assert.throws(
      () => last.value(),
      (err: unknown) => err instanceof BugError,
    );
    // An unchanged document is not settled: it stays readable, and its text is its source.
    const first = s.documents[0]!;
    first.settle();
    assert.equal(first.text(), first.source);
    assert.deepEqual(first.doc.toJS(), s.documents[0]!.value());
  });

  it('still refuses invalid YAML anywhere in a long stream, naming the document and line', () => {
    const many = Array.from({ length: 50 }, (_, i) => `kind: ConfigMap\nmetadata: {name: c${i}}\n`).join('---\n');
    assert.throws(
      () => parseStream('x.yaml', `${many}---\nkind: ConfigMap\nkind: Secret\n`, () => false),
      (err: UserError) => {
        assert.match(err.message, /invalid YAML: .*unique.*\(line 152, column 1\)/i);
        assert.equal(err.location.document, 51);
        return true;
      },
    );
  });
});

describe('generate: ConfigMaps and Secrets read again when a pod refers to them', () => {
  const workload = `apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: shop}
spec:
  template:
    spec:
      runtimeClassName: contrast-cc
      containers:
      - name: main
        image: busybox:1.36
        envFrom:
        - configMapRef: {name: after}
        env:
        - name: FROM_SECRET
          valueFrom: {secretKeyRef: {name: listed, key: k}}
`;
  const before = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after, namespace: other}\ndata: {WRONG: "other namespace"}\n`;
  const after = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after, namespace: shop}\ndata: {FROM_CM: "hello-cm"}\n`;
  const list = `apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: listed}\n  stringData: {k: "hello-secret"}\n`;

  function policyOf(out: string): string {
    const d = docs(out).find((v) => v?.kind === 'Deployment');
    const annotation = d.spec.template.metadata.annotations[INITDATA_ANNOTATION];
    return decodeInitDataAnnotation(annotation).init.data[POLICY_KEY]!;
  }

  it('finds the ConfigMap after the workload (in its namespace) and the Secret inside a List', async () => {
    const out = await genText([before, workload, after, list].join('---\n'));
    const policy = policyOf(out);
    assert.ok(policy.includes('FROM_CM=hello-cm'), 'the ConfigMap of the pod namespace');
    assert.ok(policy.includes('FROM_SECRET=hello-secret'), 'the Secret inside the List');
    assert.ok(!policy.includes('other namespace'), 'not the ConfigMap of another namespace');
  });

  it('still fails when the referenced ConfigMap is only in another namespace', async () => {
    await assert.rejects(genText([before, workload, list].join('---\n')), /ConfigMap after is not in the input/);
  });
});

describe('YAML stream: double-quoted scalars', () => {
  const quoted = [
    'plain: "on"',
    'long: "' + 'abcdefghij'.repeat(20000) + '"',
    'escaped: "tab\\there \\u00e9 \\"quoted\\""',
    'apostrophe: "it\'s"',
    'spaces: "  two  "',
    '"quoted key": "v"',
    'folded: "one\n  two"',
    'list: ["a", "b c", {"k": "v"}]',
    'empty: ""',
  ].join('\n');
  const text = `kind: ConfigMap\nmetadata: {name: q}\ndata:\n${quoted
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}\n`;

  it('reads the same values as the yaml package read on its own', () => {
    const ours = parseStream('q.yaml', text, () => false).documents[0]!;
    const theirs = parseAllDocuments(text, YAML_PARSE_OPTIONS)[0]!;
    assert.equal(theirs.errors.length, 0);
    assert.deepEqual(
      documentValue(parseStream('q.yaml', text).documents[0]!.doc, { file: 'q', document: 1 }),
      theirs.toJS(),
    );
    assert.deepEqual(ours.doc.toJS(), theirs.toJS());
  });

  it('writes a kept, edited document with its double quotes where they were', () => {
    const s = parseStream('q.yaml', text);
    const d = s.documents[0]!;
    d.doc.setIn(['metadata', 'name'], 'changed');
    d.changed = true;
    const out = serializeStream(s);
    const theirs = parseAllDocuments(text, YAML_PARSE_OPTIONS)[0]!;
    theirs.setIn(['metadata', 'name'], 'changed');
    assert.equal(out, theirs.toString({ lineWidth: 0, flowCollectionPadding: false }));
    assert.match(out, /plain: "on"/);
    assert.match(out, /"quoted key": "v"/);
  });

  it('still refuses an unterminated double-quoted scalar, at the same place', () => {
    assert.throws(
      () => parseStream('q.yaml', 'kind: ConfigMap\ndata:\n  k: "open\n', () => false),
      /invalid YAML: Missing closing "quote \(line 4, column 1\)/,
    );
  });
});

/**
 * Issue 14, item 6: a document that generate edits keeps its flow style and its comments;
 * only the values that changed are new.
 */
import assert from 'node:assert/strict';
import { parseStream, serializeStream } from '../../src/resources/stream.js';
import { applyAt } from '../../src/resources/patch.js';
import { genText } from './harness.js';

function edit(text: string, path: (string | number)[], value: unknown): string {
  const stream = parseStream('x.yaml', text);
  const d = stream.documents[0]!;
  d.changed = applyAt(d.doc, path, value) || d.changed;
  return serializeStream(stream);
}

describe('edited documents keep their form (issue 14, item 6)', () => {
  it('flow sequences and mappings are written without padding: [x], {a: b}', () => {
    const text = 'kind: ConfigMap\nmetadata: {name: a, labels: {app: web}}\ndata:\n  list: [x, "y"]\n  mode: old\n';
    const out = edit(text, ['data', 'mode'], 'new');
    assert.equal(
      out,
      'kind: ConfigMap\nmetadata: {name: a, labels: {app: web}}\ndata:\n  list: [x, "y"]\n  mode: new\n',
    );
  });

  it('a new value keeps the comment of the line it replaces', () => {
    const text = 'kind: ConfigMap\ndata:\n  mode: old # why it is set\n  # about next\n  next: 1\n';
    const out = edit(text, ['data', 'mode'], 'new');
    assert.equal(out, 'kind: ConfigMap\ndata:\n  mode: new # why it is set\n  # about next\n  next: 1\n');
  });

  it('a scalar replaced by a mapping keeps its comment, a number stays a number', () => {
    const text = 'kind: ConfigMap\ndata:\n  a: x # comment of a\n  count: 1 # how many\n';
    const out = edit(text, ['data'], { a: { b: 'c' }, count: 2 });
    assert.match(out, /a:\n\s+# comment of a\n\s+b: c\n/);
    assert.match(out, /count: 2 # how many\n/);
  });

  it('generate: runtime class, image and args of an edited workload keep comments and flow style', async () => {
    const text = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata:
      labels: {app: x}
    spec:
      runtimeClassName: contrast-cc # confidential, please
      containers:
        - name: main
          image: busybox:1.36 # pinned by generate
          command: ["/bin/sh"]
          args: [-c, "echo hi"]
          securityContext: {runAsUser: 0}
`;
    const out = await genText(text);
    assert.match(out, /selector: \{matchLabels: \{app: x\}\}\n/);
    assert.match(out, /labels: \{app: x\}\n/);
    assert.match(out, /runtimeClassName: contrast-cc-metal-qemu-snp-[0-9a-f]{8} # confidential, please\n/);
    assert.match(out, /image: docker\.io\/library\/busybox:1\.36@sha256:[0-9a-f]{64} # pinned by generate\n/);
    assert.match(out, /command: \["\/bin\/sh"\]\n/);
    assert.match(out, /args: \[-c, "echo hi"\]\n/);
    assert.doesNotMatch(out, /\[ |\{ /, 'no padding inside brackets (yamllint brackets/braces)');
  });
});

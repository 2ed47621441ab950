import assert from 'node:assert/strict';
import { docs, gen, genText } from './harness.js';
import { parseStream, serializeStream } from '../../src/resources/stream.js';

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
});

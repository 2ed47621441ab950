/**
 * Property tests (fast-check, bounded runs): random valid manifests.
 * - every non-confidential document comes out byte for byte, whatever its formatting;
 * - generate is idempotent;
 * - the policy of every generated workload admits its own pod (generate checks this itself
 *   and fails otherwise, so a successful run is the evidence; the test re-checks the hashes).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { gen, genText, docs } from '../generate/harness.js';
import { decodeInitDataAnnotation, INITDATA_ANNOTATION } from '../../src/policy/initdata.js';

const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}[a-z0-9]$/);
const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const scalarish = fc.oneof(
  text,
  fc.constantFrom(
    'on',
    'yes',
    'no',
    'off',
    '0755',
    '1.10',
    '~',
    'null',
    '- x',
    '#x',
    '*a',
    '&b',
    "'q'",
    '"d"',
    '   ',
    '',
  ),
  fc.integer().map(String),
);

/** A ConfigMap written in one of several YAML styles, with comments. */
const configMapText = fc
  .record({
    name,
    data: fc.dictionary(fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/), scalarish, { maxKeys: 6 }),
    style: fc.constantFrom('block', 'flow', 'json'),
    comment: fc.boolean(),
  })
  .map(({ name: n, data, style, comment }) => {
    const obj = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n }, data };
    const body =
      style === 'json'
        ? `${JSON.stringify(obj)}\n`
        : stringify(obj, { collectionStyle: style === 'flow' ? 'flow' : 'block' });
    return comment ? `# config ${n}\n${body}` : body;
  });

const serviceText = fc
  .record({ name, port: fc.integer({ min: 1, max: 65535 }) })
  .map(
    ({ name: n, port }) =>
      `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${n}   # svc\nspec:\n  ports:\n  - port: ${port}\n`,
  );

const passthroughStream = fc
  .array(fc.oneof(configMapText, serviceText), { minLength: 1, maxLength: 6 })
  .map((parts) => parts.map((p, i) => (i === 0 ? p : `---\n${p}`)).join(''));

const KINDS = ['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'] as const;
const IMAGES = ['ghcr.io/kubectl-contrast/samples/api:1.0', 'busybox:1.36', 'app:1'];

const envVar = fc.record({ name: fc.stringMatching(/^[A-Z][A-Z0-9_]{0,10}$/), value: fc.string({ maxLength: 20 }) });

const workload = fc
  .record({
    kind: fc.constantFrom(...KINDS),
    name,
    image: fc.constantFrom(...IMAGES),
    env: fc.uniqueArray(envVar, { selector: (e) => e.name, maxLength: 4 }),
    args: fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
    mesh: fc.boolean(),
    skip: fc.boolean(),
  })
  .map((w) => {
    const user = w.image.includes('api') ? { runAsUser: 1000, runAsGroup: 1000 } : {};
    const template = {
      metadata: {
        annotations: {
          ...(w.mesh && !w.skip ? { 'contrast.edgeless.systems/servicemesh-ingress': 'web#8080#false' } : {}),
          ...(w.skip ? { 'contrast.edgeless.systems/skip-initializer': 'true' } : {}),
        },
      },
      spec: {
        runtimeClassName: 'contrast-cc',
        containers: [
          {
            name: 'main',
            image: w.image,
            args: w.args,
            env: w.env,
            ...(Object.keys(user).length ? { securityContext: user } : {}),
          },
        ],
      },
    };
    const meta = { name: w.name, namespace: 'prop' };
    switch (w.kind) {
      case 'Pod':
        return {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { ...meta, annotations: template.metadata.annotations },
          spec: template.spec,
        };
      case 'CronJob':
        return {
          apiVersion: 'batch/v1',
          kind: 'CronJob',
          metadata: meta,
          spec: { schedule: '@daily', jobTemplate: { spec: { template } } },
        };
      case 'Job':
        return { apiVersion: 'batch/v1', kind: 'Job', metadata: meta, spec: { template } };
      default:
        return { apiVersion: 'apps/v1', kind: w.kind, metadata: meta, spec: { template } };
    }
  });

describe('generate properties (fast-check)', function () {
  this.timeout(600_000);

  it('non-confidential documents round-trip byte for byte', async () => {
    await fc.assert(
      fc.asyncProperty(passthroughStream, async (stream) => {
        assert.equal(await genText(stream), stream);
      }),
      { numRuns: 60 },
    );
  });

  it('is idempotent and every policy in the manifest is attached to its workload', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(workload, { selector: (w) => `${w.kind}/${w.metadata.name}`, minLength: 1, maxLength: 3 }),
        configMapText,
        async (workloads, cm) => {
          const input = `${cm}---\n${workloads.map((w) => stringify(w, { version: '1.1' })).join('---\n')}`;
          const first = await gen(input);
          const out = first.outputs[0]!.text;
          assert.ok(out.startsWith(cm), 'the ConfigMap in front is untouched');
          const second = await genText(out);
          assert.equal(second, out, 'a second run gives the same bytes');
          const hashes = docs(out)
            .filter((d) => d.kind !== 'ConfigMap')
            .map((d) => {
              const t =
                d.kind === 'Pod' ? d : d.kind === 'CronJob' ? d.spec.jobTemplate.spec.template : d.spec.template;
              return decodeInitDataAnnotation(t.metadata.annotations[INITDATA_ANNOTATION]).hash;
            });
          assert.deepEqual([...new Set(hashes)].sort(), Object.keys(first.manifest.Policies).sort());
        },
      ),
      { numRuns: 15 },
    );
  });
});

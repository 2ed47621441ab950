import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { docs, gen, genText } from './harness.js';
import { INITDATA_ANNOTATION, decodeInitDataAnnotation } from '../../src/policy/initdata.js';
import { runtimeHandler, requirePlatform } from '../../src/platforms/platforms.js';

const podSpec = (runtimeClassName = 'contrast-cc') => ({
  runtimeClassName,
  containers: [{ name: 'main', image: 'busybox:1.36' }],
});
const template = (rc?: string) => ({ metadata: { labels: { app: 'x' } }, spec: podSpec(rc) });

/** Every workload kind, with where its pod template lives. */
const KINDS: { kind: string; apiVersion: string; build: (rc?: string) => object; templateOf: (o: any) => any }[] = [
  { kind: 'Pod', apiVersion: 'v1', build: (rc) => ({ spec: podSpec(rc) }), templateOf: (o) => o },
  ...['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet'].map((kind) => ({
    kind,
    apiVersion: 'apps/v1',
    build: (rc?: string) => ({ spec: { template: template(rc) } }),
    templateOf: (o: any) => o.spec.template,
  })),
  {
    kind: 'ReplicationController',
    apiVersion: 'v1',
    build: (rc) => ({ spec: { template: template(rc) } }),
    templateOf: (o) => o.spec.template,
  },
  {
    kind: 'Job',
    apiVersion: 'batch/v1',
    build: (rc) => ({ spec: { template: template(rc) } }),
    templateOf: (o) => o.spec.template,
  },
  {
    kind: 'CronJob',
    apiVersion: 'batch/v1',
    build: (rc) => ({ spec: { schedule: '* * * * *', jobTemplate: { spec: { template: template(rc) } } } }),
    templateOf: (o) => o.spec.jobTemplate.spec.template,
  },
];

function resource(k: (typeof KINDS)[number], name: string, rc?: string): object {
  return { apiVersion: k.apiVersion, kind: k.kind, metadata: { name, namespace: 'ns1' }, ...k.build(rc) };
}

describe('workload kinds', () => {
  const handler = runtimeHandler(requirePlatform('metal-qemu-snp'));

  for (const k of KINDS) {
    it(`${k.kind}: sets the runtime class, injects the Initializer and annotates the pod template`, async () => {
      const r = await gen(stringify(resource(k, 'w1')));
      const [out] = docs(r.outputs[0]!.text);
      const t = k.templateOf(out);
      assert.equal(t.spec.runtimeClassName, handler);
      assert.equal(t.spec.initContainers[0].name, 'contrast-initializer');
      const annotation = t.metadata.annotations[INITDATA_ANNOTATION];
      const decoded = decodeInitDataAnnotation(annotation);
      assert.equal(decoded.hash, r.workloads[0]!.policyHash);
      assert.deepEqual(Object.keys(r.manifest.Policies), [decoded.hash]);
      const group = k.apiVersion.includes('/') ? k.apiVersion.split('/')[0] : 'core';
      const version = k.apiVersion.split('/').pop();
      assert.equal(r.manifest.Policies[decoded.hash]!.WorkloadSecretID, `${group}/${version}/${k.kind}/ns1/w1`);
      assert.equal(await genText(r.outputs[0]!.text), r.outputs[0]!.text, 'idempotent');
    });

    it(`${k.kind}: without contrast-cc stays byte-identical`, async () => {
      const text = stringify(resource(k, 'plain', 'kata'));
      assert.equal(await genText(text), text);
    });
  }

  it('transforms the items of a kind: List, leaving other items alone', async () => {
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        resource(KINDS[1]!, 'a'),
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } },
        resource(KINDS[0]!, 'b'),
      ],
    };
    const r = await gen(stringify(list));
    const [out] = docs(r.outputs[0]!.text);
    assert.equal(out.items[0].spec.template.spec.runtimeClassName, handler);
    assert.deepEqual(out.items[1], list.items[1]);
    assert.equal(out.items[2].spec.runtimeClassName, handler);
    assert.equal(r.workloads.length, 2);
  });

  it('selects the platform per workload from contrast-cc-<platform>', async () => {
    const text = `${stringify(resource(KINDS[0]!, 'snp', 'contrast-cc-metal-qemu-snp-gpu'))}---\n${stringify(resource(KINDS[0]!, 'tdx', 'contrast-cc-metal-qemu-tdx'))}`;
    const r = await gen(text, { platform: undefined });
    const out = docs(r.outputs[0]!.text);
    assert.equal(out[0].spec.runtimeClassName, runtimeHandler(requirePlatform('metal-qemu-snp-gpu')));
    assert.equal(out[1].spec.runtimeClassName, runtimeHandler(requirePlatform('metal-qemu-tdx')));
    assert.ok(r.manifest.ReferenceValues.snp!.length > 0 && r.manifest.ReferenceValues.tdx!.length > 0);
  });

  it('updates the hash of a versioned runtime class from an older release', async () => {
    const old = stringify(resource(KINDS[0]!, 'p', 'contrast-cc-metal-qemu-snp-00000000'));
    const [out] = docs(await genText(old));
    assert.equal(out.spec.runtimeClassName, handler);
  });
});

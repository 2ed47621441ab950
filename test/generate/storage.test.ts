/**
 * Persistent storage annotations (upstream Contrast's secure-pv and image-store-size) and
 * StatefulSet volumeClaimTemplates through `generate`.
 */
import { strict as assert } from 'node:assert';
import { stringify } from 'yaml';
import { docs, gen, genText } from './harness.js';

const A = 'contrast.edgeless.systems/';

function statefulSet(
  annotations: Record<string, string>,
  spec: Record<string, unknown> = {},
  claims: string[] = ['state'],
): string {
  return stringify({
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'vault', namespace: 'default' },
    spec: {
      serviceName: 'vault',
      selector: { matchLabels: { app: 'vault' } },
      template: {
        metadata: { labels: { app: 'vault' }, annotations },
        spec: {
          runtimeClassName: 'contrast-cc',
          containers: [{ name: 'vault', image: 'app:1', volumeMounts: [{ name: 'share', mountPath: '/data' }] }],
          ...spec,
        },
      },
      volumeClaimTemplates: claims.map((name) => ({
        metadata: { name },
        spec: { accessModes: ['ReadWriteOnce'], volumeMode: 'Block', resources: { requests: { storage: '1Gi' } } },
      })),
    },
  });
}

async function rejects(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: Error) => {
    assert.match(err.message, message);
    return true;
  });
}

describe('generate: secure-pv', function () {
  this.timeout(120_000);

  it('gives the Initializer the device, the Bidirectional mount and privileges, and creates the emptyDir', async () => {
    const out = docs(await genText(statefulSet({ [`${A}secure-pv`]: 'state:share' })))[0];
    const spec = out.spec.template.spec;
    const init = spec.initContainers[0];
    assert.equal(init.name, 'contrast-initializer');
    assert.deepEqual(init.volumeDevices, [{ name: 'state', devicePath: '/dev/csi0' }]);
    assert.deepEqual(
      init.volumeMounts.find((m: { name: string }) => m.name === 'share'),
      { name: 'share', mountPath: '/state', mountPropagation: 'Bidirectional' },
    );
    assert.deepEqual(init.securityContext, { privileged: true });
    assert.equal(init.restartPolicy, 'Always');
    assert.deepEqual(init.startupProbe.exec.command, ['/bin/test', '-f', '/done']);
    assert.ok(
      init.env.some((e: { name: string; value: string }) => e.name === 'CRYPTSETUP_DEVICE' && e.value === '/dev/csi0'),
    );
    assert.deepEqual(
      spec.volumes.find((v: { name: string }) => v.name === 'share'),
      { name: 'share', emptyDir: { medium: 'Memory' } },
    );
  });

  it('is idempotent', async () => {
    const once = await genText(statefulSet({ [`${A}secure-pv`]: 'state:share' }));
    assert.equal(await genText(once), once);
  });

  it('accepts a device volume with a persistentVolumeClaim and an existing emptyDir', async () => {
    const text = statefulSet(
      { [`${A}secure-pv`]: 'dev:share' },
      {
        volumes: [
          { name: 'dev', persistentVolumeClaim: { claimName: 'x' } },
          { name: 'share', emptyDir: {} },
        ],
      },
      [],
    );
    const spec = docs(await genText(text))[0].spec.template.spec;
    assert.deepEqual(
      spec.volumes.find((v: { name: string }) => v.name === 'share'),
      { name: 'share', emptyDir: {} },
    );
  });

  const errors: [string, Record<string, string>, Record<string, unknown>, RegExp][] = [
    [
      'a value without a colon',
      { [`${A}secure-pv`]: 'state' },
      {},
      /secure-pv"\]: must be "<device volume>:<mount volume>"/,
    ],
    [
      'an unknown device',
      { [`${A}secure-pv`]: 'nope:share' },
      {},
      /device "nope" is neither a volume of the pod nor a volumeClaimTemplate/,
    ],
    [
      'a device volume that is no claim',
      { [`${A}secure-pv`]: 'dev:share' },
      { volumes: [{ name: 'dev', emptyDir: {} }] },
      /volumes\[0\]: volume "dev" must reference a persistentVolumeClaim or an iSCSI device/,
    ],
    [
      'a mount volume that is no emptyDir',
      { [`${A}secure-pv`]: 'state:share' },
      { volumes: [{ name: 'share', configMap: { name: 'c' } }] },
      /volumes\[0\]: volume "share" receives the decrypted device and must be an emptyDir/,
    ],
    [
      'no Initializer',
      { [`${A}secure-pv`]: 'state:share', [`${A}skip-initializer`]: 'true' },
      {},
      /secure-pv needs the Initializer/,
    ],
  ];
  for (const [name, annotations, spec, message] of errors) {
    it(`rejects ${name}, naming the field`, () => rejects(gen(statefulSet(annotations, spec)), message));
  }
});

describe('generate: image store', function () {
  this.timeout(120_000);
  const pod = (annotations: Record<string, string>) =>
    stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', annotations: { [`${A}skip-initializer`]: 'true', ...annotations } },
      spec: { runtimeClassName: 'contrast-cc', containers: [{ name: 'app', image: 'app:1' }] },
    });

  it("adds the holder container first and the ephemeral block volume, with the annotation's size", async () => {
    const spec = docs(await genText(pod({ [`${A}image-store-size`]: '20Gi' }), { injectImageStore: true }))[0].spec;
    assert.equal(spec.initContainers[0].name, 'contrast-image-store');
    assert.deepEqual(spec.initContainers[0].volumeDevices, [{ name: 'image-store', devicePath: '/dev/image_store' }]);
    assert.equal(spec.volumes[0].ephemeral.volumeClaimTemplate.spec.resources.requests.storage, '20Gi');
    assert.equal(spec.volumes[0].ephemeral.volumeClaimTemplate.spec.volumeMode, 'Block');
  });

  it('defaults to 10Gi, is off without --inject-image-store and with size "0", and is idempotent', async () => {
    const defaulted = await genText(pod({}), { injectImageStore: true });
    assert.equal(
      docs(defaulted)[0].spec.volumes[0].ephemeral.volumeClaimTemplate.spec.resources.requests.storage,
      '10Gi',
    );
    assert.equal(await genText(defaulted, { injectImageStore: true }), defaulted);
    assert.equal(docs(await genText(pod({ [`${A}image-store-size`]: '20Gi' })))[0].spec.initContainers, undefined);
    assert.equal(
      docs(await genText(pod({ [`${A}image-store-size`]: '0' }), { injectImageStore: true }))[0].spec.initContainers,
      undefined,
    );
  });

  it('rejects a size that is no quantity', () =>
    rejects(
      gen(pod({ [`${A}image-store-size`]: 'big' }), { injectImageStore: true }),
      /image-store-size"\]: must be a Kubernetes quantity/,
    ));
});

describe('generate: volumeClaimTemplates', function () {
  this.timeout(120_000);
  it("lets containers mount and attach the StatefulSet's claims by name", async () => {
    const text = statefulSet(
      {},
      {
        containers: [
          {
            name: 'db',
            image: 'app:1',
            volumeMounts: [{ name: 'data', mountPath: '/var/lib/db' }],
            volumeDevices: [{ name: 'raw', devicePath: '/dev/xvda' }],
          },
        ],
      },
      ['data', 'raw'],
    );
    const out = docs(await genText(text))[0];
    assert.ok(out.spec.template.metadata.annotations['io.katacontainers.config.hypervisor.cc_init_data']);
  });

  it('still rejects a mount of a claim that does not exist', () =>
    rejects(
      gen(
        statefulSet(
          {},
          {
            containers: [{ name: 'db', image: 'app:1', volumeMounts: [{ name: 'nope', mountPath: '/x' }] }],
          },
          ['data'],
        ),
      ),
      /volumeMounts\[0\]\.name: no volume named "nope" in the pod or its volumeClaimTemplates/,
    ));
});

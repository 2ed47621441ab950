import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { docs, gen, genText } from './harness.js';
import { UserError } from '../../src/util/errors.js';

const A = 'contrast.edgeless.systems/';

function deployment(
  opts: {
    annotations?: Record<string, string>;
    topAnnotations?: Record<string, string>;
    spec?: object;
    name?: string;
  } = {},
): string {
  return stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: opts.name ?? 'app',
      namespace: 'prod',
      ...(opts.topAnnotations ? { annotations: opts.topAnnotations } : {}),
    },
    spec: {
      template: {
        metadata: { annotations: opts.annotations ?? {} },
        spec: {
          runtimeClassName: 'contrast-cc',
          initContainers: [{ name: 'migrate', image: 'migrate:1' }],
          containers: [
            { name: 'main', image: 'app:1' },
            { name: 'side', image: 'side:1', volumeMounts: [{ name: 'data', mountPath: '/data' }] },
          ],
          volumes: [{ name: 'data', emptyDir: {} }],
          ...opts.spec,
        },
      },
    },
  });
}

async function podSpecOf(text: string, options = {}) {
  return docs(await genText(text, options))[0].spec.template.spec;
}

async function rejects(text: string, pattern: RegExp, options = {}): Promise<UserError> {
  try {
    await gen(text, options);
  } catch (err) {
    assert.ok(err instanceof UserError, `expected a UserError, got ${err}`);
    assert.match(err.message, pattern);
    return err;
  }
  assert.fail(`expected an error matching ${pattern}`);
}

describe('Initializer injection', () => {
  it('adds the Initializer first, with the secrets volume mounted in every container', async () => {
    const spec = await podSpecOf(deployment());
    assert.deepEqual(
      spec.initContainers.map((c: { name: string }) => c.name),
      ['contrast-initializer', 'migrate'],
    );
    const init = spec.initContainers[0];
    assert.deepEqual(init.env, [
      { name: 'COORDINATOR_HOST', value: 'coordinator-ready' },
      { name: 'CONTRAST_SERVICE_MESH_DISABLED', value: 'true' },
    ]);
    assert.deepEqual(init.resources, { requests: { memory: '128Mi' }, limits: { memory: '128Mi' } });
    assert.deepEqual(
      spec.volumes.find((v: { name: string }) => v.name === 'contrast-secrets'),
      { name: 'contrast-secrets', emptyDir: { medium: 'Memory' } },
    );
    for (const c of [...spec.initContainers, ...spec.containers]) {
      assert.ok(
        c.volumeMounts.some(
          (m: { name: string; mountPath: string }) => m.name === 'contrast-secrets' && m.mountPath === '/contrast',
        ),
        `${c.name} mounts /contrast`,
      );
    }
    assert.deepEqual(
      spec.containers[1].volumeMounts[0],
      { name: 'data', mountPath: '/data' },
      'existing mounts are kept',
    );
  });

  it('points COORDINATOR_HOST at the namespace of the Coordinator, or at --coordinator-host', async () => {
    const coordinator = stringify({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'coordinator', namespace: 'contrast' },
      spec: {
        template: {
          metadata: { annotations: { [`${A}pod-role`]: 'coordinator' } },
          spec: { runtimeClassName: 'contrast-cc', containers: [{ name: 'c', image: 'coord:1' }] },
        },
      },
    });
    const r = await gen(`${coordinator}---\n${deployment()}`);
    const [coord, app] = docs(r.outputs[0]!.text);
    assert.equal(coord.spec.template.spec.initContainers, undefined, 'the Coordinator gets no Initializer');
    assert.equal(app.spec.template.spec.initContainers[0].env[0].value, 'coordinator-ready.contrast');
    const roles = Object.values(r.manifest.Policies).map((p) => p.Role);
    assert.deepEqual(roles.filter(Boolean), ['coordinator']);
    const custom = await podSpecOf(deployment(), { coordinatorHost: 'coord.example:7777' });
    assert.equal(custom.initContainers[0].env[0].value, 'coord.example:7777');
  });

  it('is skipped by --skip-initializer and by the skip-initializer annotation', async () => {
    for (const [text, options] of [
      [deployment(), { skipInitializer: true }],
      [deployment({ annotations: { [`${A}skip-initializer`]: 'true' } }), {}],
    ] as const) {
      const spec = await podSpecOf(text, options);
      assert.deepEqual(
        spec.initContainers.map((c: { name: string }) => c.name),
        ['migrate'],
      );
      assert.equal(
        spec.volumes.some((v: { name: string }) => v.name === 'contrast-secrets'),
        false,
      );
    }
  });

  it('rejects a skip-initializer value other than true/false', async () => {
    await rejects(
      deployment({ annotations: { [`${A}skip-initializer`]: 'maybe' } }),
      /skip-initializer.*must be "true" or "false"/,
    );
  });

  it('rejects an annotation value that is not a string', async () => {
    const text = deployment().replace(
      'annotations: {}',
      'annotations:\n          contrast.edgeless.systems/skip-initializer: yes',
    );
    const err = await rejects(text, /annotation value must be a string; quote it: "true"/);
    assert.match(
      err.message,
      /field spec\.template\.metadata\.annotations\["contrast\.edgeless\.systems\/skip-initializer"\]/,
    );
  });

  it('rejects a user volume named contrast-secrets that is not an emptyDir', async () => {
    const err = await rejects(
      deployment({ spec: { volumes: [{ name: 'contrast-secrets', hostPath: { path: '/x' } }] } }),
      /reserved for Contrast/,
    );
    assert.match(
      err.message,
      /input\.yaml, document 1, Deployment prod\/app, field spec\.template\.spec\.volumes\[0\]/,
    );
  });

  it('accepts a user-defined emptyDir contrast-secrets and makes it memory-backed', async () => {
    const spec = await podSpecOf(
      deployment({
        spec: {
          volumes: [
            { name: 'contrast-secrets', emptyDir: {} },
            { name: 'data', emptyDir: {} },
          ],
        },
      }),
    );
    assert.deepEqual(spec.volumes, [
      { name: 'contrast-secrets', emptyDir: { medium: 'Memory' } },
      { name: 'data', emptyDir: {} },
    ]);
  });
});

describe('service mesh sidecar', () => {
  it('adds a native sidecar configured from the pod-template annotations', async () => {
    const spec = await podSpecOf(
      deployment({
        annotations: {
          [`${A}servicemesh-ingress`]: 'web#8080#false##metrics#9090#true',
          [`${A}servicemesh-egress`]: 'db#127.0.0.2:5432#postgres.prod:5432',
          [`${A}servicemesh-admin-interface-port`]: '9901',
        },
      }),
    );
    const mesh = spec.initContainers.find((c: { name: string }) => c.name === 'contrast-service-mesh');
    assert.equal(mesh.restartPolicy, 'Always');
    assert.deepEqual(mesh.env, [
      { name: 'CONTRAST_INGRESS_PROXY_CONFIG', value: 'web#8080#false##metrics#9090#true' },
      { name: 'CONTRAST_EGRESS_PROXY_CONFIG', value: 'db#127.0.0.2:5432#postgres.prod:5432' },
      { name: 'CONTRAST_ADMIN_PORT', value: '9901' },
    ]);
    assert.deepEqual(mesh.ports, [{ name: 'contrast-admin', containerPort: 9901 }]);
    assert.equal(spec.initContainers[0].name, 'contrast-initializer');
    assert.equal(
      spec.initContainers[0].env.some((e: { name: string }) => e.name === 'CONTRAST_SERVICE_MESH_DISABLED'),
      false,
    );
  });

  const invalid: [string, string, RegExp][] = [
    [
      'servicemesh-egress',
      'db#10.0.0.1:5432#db:5432',
      /listen address "10\.0\.0\.1" must be an IPv4 address in 127\.0\.0\.0\/8/,
    ],
    ['servicemesh-egress', 'db#127.0.0.1#db:5432', /must be host:port/],
    ['servicemesh-egress', 'db#127.0.0.1:99999#db:5432', /outside 1-65535/],
    ['servicemesh-egress', 'db#127.0.0.1:80', /must be name#listenIP:port#remoteHost:port/],
    ['servicemesh-egress', '#127.0.0.1:80#db:1', /name "" must be non-empty/],
    ['servicemesh-ingress', 'web#8080', /must be name#port#true\|false/],
    ['servicemesh-ingress', 'web#http#false', /port of ingress entry "web#http#false" "http" is not a port number/],
    ['servicemesh-ingress', 'web#8080#maybe', /last part must be true/],
    ['servicemesh-admin-interface-port', '0', /outside 1-65535/],
    ['servicemesh-admin-interface-port', 'abc', /is not a port number/],
  ];
  for (const [key, value, pattern] of invalid) {
    it(`rejects ${key}: "${value}" and names the field`, async () => {
      const err = await rejects(deployment({ annotations: { [`${A}${key}`]: value } }), pattern);
      assert.ok(err.message.includes(`spec.template.metadata.annotations["${A}${key}"]`), err.message);
      assert.ok(err.message.includes('Deployment prod/app'), err.message);
    });
  }

  it('needs the Initializer', async () => {
    await rejects(
      deployment({ annotations: { [`${A}servicemesh-ingress`]: '', [`${A}skip-initializer`]: 'true' } }),
      /service mesh needs the Initializer/,
    );
  });

  it('removes a stale sidecar when the annotations are gone', async () => {
    const withMesh = await genText(deployment({ annotations: { [`${A}servicemesh-ingress`]: '' } }));
    const d = docs(withMesh)[0];
    delete d.spec.template.metadata.annotations[`${A}servicemesh-ingress`];
    const spec = await podSpecOf(stringify(d));
    assert.equal(
      spec.initContainers.some((c: { name: string }) => c.name === 'contrast-service-mesh'),
      false,
    );
  });
});

describe('annotations, runtime classes and images', () => {
  it('warns about Contrast annotations on the workload metadata instead of the pod template', async () => {
    const r = await gen(deployment({ topAnnotations: { [`${A}servicemesh-ingress`]: 'web#80#false' } }));
    const w = r.diagnostics.warnings.find((x) => x.message.includes('has no effect'));
    assert.ok(w, 'a warning is emitted');
    assert.equal(w!.location.kind, 'Deployment');
    assert.equal(w!.location.name, 'app');
    assert.match(w!.message, /move it to spec\.template\.metadata\.annotations/);
  });

  it('uses the workload-secret-id annotation for the manifest entry', async () => {
    const r = await gen(deployment({ annotations: { [`${A}workload-secret-id`]: 'shared-db-key' } }));
    assert.equal(Object.values(r.manifest.Policies)[0]!.WorkloadSecretID, 'shared-db-key');
  });

  it('rejects an unknown runtime class variant, naming the field', async () => {
    const err = await rejects(
      deployment({ spec: { runtimeClassName: 'contrast-cc-aks-clh-snp' } }),
      /not a known Contrast runtime class/,
    );
    assert.match(err.message, /field spec\.template\.spec\.runtimeClassName/);
  });

  it('asks for --platform when a workload uses plain contrast-cc', async () => {
    await rejects(deployment(), /needs a platform: pass --platform/, { platform: undefined });
  });

  it('rejects the same workload defined twice', async () => {
    await rejects(`${deployment()}---\n${deployment()}`, /defined twice/);
  });

  it('rejects a container without an image', async () => {
    await rejects(
      deployment({ spec: { containers: [{ name: 'x' }] } }),
      /field spec\.template\.spec\.containers\[0\]\.image: container has no image/,
    );
  });
});

/**
 * Defaults that used to be silent (issue 14 item 5): where the Initializers dial, pod templates
 * in kinds generate does not transform, and every securityContext problem of a run at once.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { docs, workspace } from './harness.js';
import { Diagnostics } from '../../src/util/diagnostics.js';
import { UserError } from '../../src/util/errors.js';
import { generateFromInputs } from '../../src/generate/pipeline.js';
import { ImageResolver } from '../../src/images/index.js';
import { buildImage, buildLayer, buildTar, OciLayoutWriter } from '../../src/images/oci-build.js';
import { SAMPLE_IMAGES, testImageLayout } from '../helpers/images.js';
import { tempDir } from '../helpers/tmp.js';

const ROLE = 'contrast.edgeless.systems/pod-role';

function workload(
  name: string,
  namespace: string | undefined,
  spec: object = {},
  kind = 'Deployment',
  apiVersion = 'apps/v1',
): string {
  return stringify({
    apiVersion,
    kind,
    metadata: { name, ...(namespace !== undefined ? { namespace } : {}) },
    spec: {
      template: {
        metadata: {},
        spec: { runtimeClassName: 'contrast-cc', containers: [{ name: 'main', image: 'app:1' }], ...spec },
      },
    },
  });
}

function coordinator(namespace: string | undefined): string {
  return stringify({
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'coordinator', ...(namespace !== undefined ? { namespace } : {}) },
    spec: {
      template: {
        metadata: { annotations: { [ROLE]: 'coordinator' } },
        spec: { runtimeClassName: 'contrast-cc', containers: [{ name: 'c', image: 'coord:1' }] },
      },
    },
  });
}

/** generate with warnings collected. */
async function genWith(text: string, options: object = {}) {
  const warnings: string[] = [];
  const diagnostics = new Diagnostics((message, location = {}) => {
    warnings.push(`${location.kind ? `${location.kind} ${location.name}: ` : ''}${message}`);
  });
  const result = await generateFromInputs(
    [{ name: 'in.yaml', path: 'in.yaml', text }],
    {
      platform: 'insecure-sim',
      workspaceDir: workspace(),
      imageResolver: resolver(),
      ...options,
    },
    diagnostics,
  );
  const hosts: Record<string, string> = {};
  for (const d of docs(result.outputs[0]!.text)) {
    const init = (d.spec?.template?.spec?.initContainers ?? []).find(
      (c: { name: string }) => c.name === 'contrast-initializer',
    );
    if (init) hosts[d.metadata.name] = init.env.find((e: { name: string }) => e.name === 'COORDINATOR_HOST').value;
  }
  // The manifest's own note on a missing Coordinator is another matter (src/generate/manifest-step.ts).
  return {
    hosts,
    warnings: warnings.filter((w) => !/^no Coordinator resource found/.test(w)),
    text: result.outputs[0]!.text,
  };
}

let userLayout: string | undefined;
/** The test images, plus `named-user:1`, whose USER is a name from its /etc/passwd. */
function resolver(): ImageResolver {
  if (!userLayout) {
    const layer = buildLayer(
      buildTar([
        { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' },
        { path: 'etc/group', content: 'root:x:0:\napp:x:1000:\n' },
      ]),
    );
    const image = buildImage({ layers: [layer], config: { User: 'app', Entrypoint: ['/bin/app'] } });
    const w = new OciLayoutWriter();
    w.add(image.descriptor, image.blobs, 'docker.io/library/named-user:1');
    userLayout = join(tempDir('kc-user-image-'), 'layout');
    w.write(userLayout);
  }
  return new ImageResolver({
    ociLayouts: [testImageLayout(), userLayout, SAMPLE_IMAGES],
    offline: true,
    cacheDir: false,
    progress: false,
  });
}

describe('silent defaults made visible (issue 14 item 5)', function () {
  this.timeout(120_000);

  describe('the address the Initializers dial', () => {
    it('the Coordinator in the input with a namespace: coordinator-ready.<that namespace>, for workloads in any namespace, no warning', async () => {
      const r = await genWith(
        `${coordinator('contrast')}---\n${workload('a', 'prod')}---\n${workload('b', undefined)}`,
      );
      assert.deepEqual(r.hosts, { a: 'coordinator-ready.contrast', b: 'coordinator-ready.contrast' });
      assert.deepEqual(r.warnings, []);
    });

    it("no Coordinator in the input: the short name (the pod's own namespace), not coordinator-ready.default, with a warning", async () => {
      const r = await genWith(`${workload('a', 'prod')}---\n${workload('b', 'shop')}`);
      assert.deepEqual(r.hosts, { a: 'coordinator-ready', b: 'coordinator-ready' });
      assert.equal(r.warnings.length, 1, r.warnings.join('\n'));
      assert.match(
        r.warnings[0]!,
        /no Coordinator among the inputs: the Initializers dial coordinator-ready in their own namespace \(prod, shop\); if the Coordinator runs in another namespace, pass --coordinator-host coordinator-ready.<its namespace>/,
      );
    });

    it('a Helm chart without namespaces, with its Coordinator: the short name follows helm install -n, no warning', async () => {
      const r = await genWith(`${coordinator(undefined)}---\n${workload('a', undefined)}`);
      assert.deepEqual(r.hosts, { a: 'coordinator-ready' });
      assert.deepEqual(r.warnings, []);
    });

    it('a Coordinator without namespace but workloads that name one: a warning at the Coordinator', async () => {
      const r = await genWith(`${coordinator(undefined)}---\n${workload('a', 'prod')}`);
      assert.deepEqual(r.hosts, { a: 'coordinator-ready' });
      assert.equal(r.warnings.length, 1);
      assert.match(
        r.warnings[0]!,
        /^StatefulSet coordinator: the Coordinator has no namespace, .*workloads name namespace\(s\) prod: give the Coordinator its namespace/,
      );
    });

    it('--coordinator-host wins, without a warning', async () => {
      const r = await genWith(workload('a', 'prod'), { coordinatorHost: 'coordinator-ready.contrast' });
      assert.deepEqual(r.hosts, { a: 'coordinator-ready.contrast' });
      assert.deepEqual(r.warnings, []);
    });
  });

  describe('pod templates in kinds generate does not transform', () => {
    it('an Argo Rollout with runtimeClassName contrast-cc is named, with its field and spec.workloadRef as the way', async () => {
      const rollout = workload('canary', 'prod', {}, 'Rollout', 'argoproj.io/v1alpha1');
      const r = await genWith(`${coordinator('prod')}---\n${rollout}`);
      assert.equal(r.warnings.length, 1, r.warnings.join('\n'));
      assert.match(
        r.warnings[0]!,
        /^Rollout canary: Rollout is not a workload kind kubectl-contrast transforms \(Pod, .*\), so its pod template with runtimeClassName "contrast-cc" at spec\.template\.spec\.runtimeClassName is left as it is: no Initializer, no policy, .*spec\.workloadRef/,
      );
      assert.ok(r.text.includes(rollout.trim()), 'the Rollout passes through unchanged');
    });

    it('another custom resource with a platform runtime class deep inside is named too; one without a Contrast runtime class is not', async () => {
      const ksvc = stringify({
        apiVersion: 'serving.knative.dev/v1',
        kind: 'Service',
        metadata: { name: 'fn' },
        spec: {
          template: { spec: { runtimeClassName: 'contrast-cc-metal-qemu-tdx', containers: [{ image: 'app:1' }] } },
        },
      });
      const plain = stringify({
        apiVersion: 'example.com/v1',
        kind: 'Thing',
        metadata: { name: 't' },
        spec: { jobs: [{ template: { spec: { runtimeClassName: 'kata', containers: [] } } }] },
      });
      const r = await genWith(`${ksvc}---\n${plain}---\n${coordinator('x')}`);
      assert.equal(r.warnings.length, 1, r.warnings.join('\n'));
      assert.match(
        r.warnings[0]!,
        /^Service fn: Service is not a workload kind .*"contrast-cc-metal-qemu-tdx" at spec\.template\.spec\.runtimeClassName.*put the pod template into a Deployment/,
      );
    });
  });

  describe('securityContext problems', () => {
    it('are reported together: every container of every workload, each with its resource and field', async () => {
      const needsUser = {
        containers: [
          { name: 'main', image: 'named-user:1' },
          { name: 'side', image: 'named-user:1' },
        ],
      };
      const text = [
        coordinator('prod'),
        workload('first', 'prod', needsUser),
        workload('fine', 'prod'),
        workload('second', 'prod', { containers: [{ name: 'only', image: 'named-user:1' }] }),
      ].join('---\n');
      const err = await genWith(text).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof UserError, String(err));
      const lines = err.message.split('\n');
      assert.equal(lines[0], '2 workloads need changes:');
      assert.match(
        err.message,
        /Deployment prod\/first: 2 problems:\n {6}- field spec\.template\.spec\.containers\[0\]\.securityContext: the image's user database gives this container runAsUser: 1000, runAsGroup: 1000.*\n {6}- field spec\.template\.spec\.containers\[1\]\.securityContext: /,
      );
      assert.match(
        err.message,
        /Deployment prod\/second, field spec\.template\.spec\.containers\[0\]\.securityContext: the image's user database gives this container runAsUser: 1000/,
      );
      assert.doesNotMatch(err.message, /fine/);
    });

    it('one problem stays one plain error', async () => {
      const err = await genWith(workload('solo', 'prod', { containers: [{ name: 'main', image: 'named-user:1' }] }), {
        coordinatorHost: 'x',
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof UserError);
      assert.match(
        err.message,
        /^in\.yaml, document 1, Deployment prod\/solo, field spec\.template\.spec\.containers\[0\]\.securityContext: the image's user database/,
      );
    });
  });
});

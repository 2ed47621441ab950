/**
 * The kustomize transformer: KRM function mode (standalone kustomize --enable-exec, and a
 * ResourceList by hand) and legacy exec-plugin mode (kustomize and `kubectl kustomize`), over
 * samples/kustomize; both give what `generate` gives for the same resources.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { SAMPLE_IMAGES } from '../helpers/images.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { byKey, KUSTOMIZE_PLUGIN_HOME, KUSTOMIZE_SAMPLES, objects, ok, run, tool } from './tools.js';

const KRM_OVERLAY = join(KUSTOMIZE_SAMPLES, 'overlays', 'krm-function');
const EXEC_OVERLAY = join(KUSTOMIZE_SAMPLES, 'overlays', 'exec-plugin');

function policies(ws: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8')).Policies;
}

describe('kustomize transformer', function () {
  this.timeout(300_000);
  let dir: string;
  beforeEach(() => {
    dir = tempDir('kc-kust-');
  });
  afterEach(() => removeDir(dir));

  /** The overlay's resources without the transformer, made confidential by `generate`. */
  function expected(): { objects: ReturnType<typeof byKey>; ws: string } {
    const plain = join(dir, 'plain');
    mkdirSync(plain);
    writeFileSync(
      join(plain, 'kustomization.yaml'),
      `namespace: shop\nresources:\n  - ${relative(plain, join(KUSTOMIZE_SAMPLES, 'base'))}\n`,
    );
    const stream = ok(
      run(tool('kustomize'), ['build', '--load-restrictor', 'LoadRestrictionsNone', plain]),
      'kustomize build (plain)',
    );
    const ws = join(dir, 'ws-gen');
    const r = runCli(
      [
        'generate',
        '--platform',
        'metal-qemu-snp',
        '--workspace-dir',
        ws,
        '--oci-layout',
        SAMPLE_IMAGES,
        '--offline',
        '--no-cache',
        '-',
      ],
      { input: stream },
    );
    assert.equal(r.code, 0, r.stderr);
    return { objects: byKey(objects(r.stdout)), ws };
  }

  function env(ws: string): NodeJS.ProcessEnv {
    return { CONTRAST_WORKSPACE_DIR: ws, CONTRAST_CACHE_DIR: join(dir, 'cache') };
  }

  it('KRM function: kustomize build --enable-alpha-plugins --enable-exec', () => {
    const ws = join(dir, 'ws');
    const out = ok(
      run(tool('kustomize'), ['build', '--enable-alpha-plugins', '--enable-exec', KRM_OVERLAY], { env: env(ws) }),
      'kustomize build (KRM)',
    );
    const want = expected();
    assert.deepEqual(byKey(objects(out)), want.objects);
    assert.deepEqual(policies(ws), policies(want.ws));
    assert.match(readFileSync(join(ws, 'render.log'), 'utf8'), /KRM function\)\nok: 2 confidential workloads/);
  });

  it('legacy exec plugin: standalone kustomize and kubectl kustomize', () => {
    const want = expected();
    const ws = join(dir, 'ws');
    const out = ok(
      run(tool('kustomize'), ['build', '--enable-alpha-plugins', EXEC_OVERLAY], {
        env: { ...env(ws), KUSTOMIZE_PLUGIN_HOME },
      }),
      'kustomize build (exec plugin)',
    );
    assert.deepEqual(byKey(objects(out)), want.objects);
    assert.deepEqual(policies(ws), policies(want.ws));
    assert.match(readFileSync(join(ws, 'render.log'), 'utf8'), /exec plugin\)\nok: 2 confidential workloads/);
    const ws2 = join(dir, 'ws2');
    const viaKubectl = ok(
      run('kubectl', ['kustomize', '--enable-alpha-plugins', EXEC_OVERLAY], {
        env: { ...env(ws2), KUSTOMIZE_PLUGIN_HOME },
      }),
      'kubectl kustomize',
    );
    assert.deepEqual(byKey(objects(viaKubectl)), want.objects);
  });

  it('a failing transformer fails kustomize, with the reason on stderr and in render.log', () => {
    const overlay = join(dir, 'overlay');
    mkdirSync(overlay);
    writeFileSync(
      join(overlay, 'kustomization.yaml'),
      `resources:\n  - ${relative(overlay, join(KUSTOMIZE_SAMPLES, 'base'))}\ntransformers:\n  - contrast.yaml\n`,
    );
    writeFileSync(
      join(overlay, 'contrast.yaml'),
      `apiVersion: contrast.edgeless.systems/v1alpha1\nkind: ContrastTransformer\nmetadata:\n  name: contrast\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: ${join(KUSTOMIZE_PLUGIN_HOME, '..', '..', 'bin', 'kubectl-contrast')}\n        args: [kustomize]\nspec:\n  platform: metal-qemu-snp\n  offline: true\n  ociLayout: [x]\n`,
    );
    const ws = join(dir, 'ws');
    const r = run(
      tool('kustomize'),
      ['build', '--load-restrictor', 'LoadRestrictionsNone', '--enable-alpha-plugins', '--enable-exec', overlay],
      { env: env(ws) },
    );
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /unknown field "ociLayout"/);
    assert.match(readFileSync(join(ws, 'render.log'), 'utf8'), /unknown field "ociLayout"/);
  });

  describe('ResourceList by hand', () => {
    const resourceList = (extra = '') => `apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
  # the web tier
  - apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: shop
      annotations:
        config.kubernetes.io/index: '0'
        internal.config.kubernetes.io/index: '0'
        internal.config.kubernetes.io/path: 'web.yaml'
        internal.config.kubernetes.io/id: '1'
        config.k8s.io/id: '1'
        internal.config.kubernetes.io/annotations-migration-resource-id: '0'
    spec:
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
          annotations:
            contrast.edgeless.systems/servicemesh-ingress: ""
        spec:
          runtimeClassName: contrast-cc
          containers:
            - name: web # the server
              image: ghcr.io/kubectl-contrast/samples/web:1.0
              securityContext: {runAsUser: 101, runAsGroup: 101}
  - apiVersion: v1
    kind: ConfigMap
    metadata:
      name: mode
      annotations:
        internal.config.kubernetes.io/path: 'cm.yaml'
        config.kubernetes.io/index: '1'
    data:
      octal: 0755
      flag: on
functionConfig:
  apiVersion: contrast.edgeless.systems/v1alpha1
  kind: ContrastTransformer
  metadata:
    name: contrast
    annotations:
      config.kubernetes.io/local-config: "true"
  spec:
    platform: insecure-sim
    ociLayouts: [${SAMPLE_IMAGES}]
    offline: true
    cache: false
    workspaceDir: ${join(dir, 'ws')}
${extra}`;

    it('echoes every annotation and untouched item, transforms the workload and reports warnings as results', () => {
      const r = runCli(['kustomize'], { input: resourceList() });
      assert.equal(r.code, 0, r.stderr);
      const [out] = objects(r.stdout) as [
        { apiVersion: string; kind: string; items: Record<string, any>[]; results?: Record<string, any>[] },
      ];
      assert.equal(out.kind, 'ResourceList');
      assert.equal(out.apiVersion, 'config.kubernetes.io/v1');
      const [inList] = objects(resourceList()) as [{ items: Record<string, any>[] }];
      assert.equal(out.items.length, 2);
      assert.deepEqual(out.items[0]!.metadata.annotations, inList.items[0]!.metadata.annotations);
      assert.deepEqual(out.items[1], inList.items[1]);
      assert.match(out.items[0]!.spec.template.spec.runtimeClassName, /^contrast-cc-insecure-sim-/);
      assert.match(r.stdout, /octal: 0755/);
      assert.match(r.stdout, /flag: on/);
      assert.match(r.stdout, /# the server/);
      assert.ok(out.results && out.results.length > 0, 'warnings are results');
      for (const res of out.results!) assert.equal(res.severity, 'warning');
      assert.equal(Object.keys(policies(join(dir, 'ws'))).length, 1);
    });

    it('without functionConfig it uses the CONTRAST_* environment', () => {
      const text = resourceList().replace(/functionConfig:[\s\S]*$/, '');
      const r = runCli(['kustomize'], {
        input: text,
        env: {
          CONTRAST_PLATFORM: 'insecure-sim',
          CONTRAST_WORKSPACE_DIR: join(dir, 'ws'),
          CONTRAST_OCI_LAYOUT: SAMPLE_IMAGES,
          CONTRAST_OFFLINE: 'true',
          CONTRAST_NO_CACHE: 'true',
        },
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /contrast-cc-insecure-sim-/);
    });

    it('a failure prints nothing on stdout', () => {
      const r = runCli(['kustomize'], { input: resourceList().replace('platform: insecure-sim', 'platform: nope') });
      assert.notEqual(r.code, 0);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /nope/);
      assert.match(readFileSync(join(dir, 'ws', 'render.log'), 'utf8'), /nope/);
    });

    it('accepts a ConfigMap as functionConfig (kpt style)', () => {
      const text = resourceList().replace(
        /functionConfig:[\s\S]*$/,
        `functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: contrast}\n  data:\n    platform: insecure-sim\n    ociLayouts: ${SAMPLE_IMAGES}\n    offline: "true"\n    cache: "false"\n    workspaceDir: ${join(dir, 'ws')}\n`,
      );
      const r = runCli(['kustomize'], { input: text });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /contrast-cc-insecure-sim-/);
    });
  });
});

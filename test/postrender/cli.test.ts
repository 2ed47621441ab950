/** Renderer options (flags, environment, function config), hook warnings, and kubectl plugin completion. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { SAMPLE_IMAGES } from '../helpers/images.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { functionConfigToArgs, parseTransformArgs } from '../../src/cli/transform-options.js';
import { UsageError } from '../../src/util/errors.js';
import { pathWithBin, run } from './tools.js';

describe('renderer options', () => {
  it('environment variables are defaults, flags win', () => {
    const env = {
      CONTRAST_PLATFORM: 'metal-qemu-tdx',
      CONTRAST_OCI_LAYOUT: ['/a', '/b'].join(':'),
      CONTRAST_OFFLINE: 'yes',
      CONTRAST_NO_CACHE: '1',
      CONTRAST_INSECURE_REGISTRY: 'r1:5000,r2',
    };
    const fromEnv = parseTransformArgs([], env);
    assert.equal(fromEnv.platform, 'metal-qemu-tdx');
    assert.deepEqual(fromEnv['oci-layout'], ['/a', '/b']);
    assert.equal(fromEnv.offline, true);
    assert.equal(fromEnv.cache, false);
    assert.deepEqual(fromEnv['insecure-registry'], ['r1:5000', 'r2']);
    const flags = parseTransformArgs(['--platform=insecure-sim', '--offline=false'], env);
    assert.equal(flags.platform, 'insecure-sim');
    assert.equal(flags.offline, false);
    assert.equal(parseTransformArgs([], {})['workspace-dir'], '.');
  });

  it('function config fields become flags; relative paths are taken from the config directory', () => {
    const args = functionConfigToArgs({
      config: {
        kind: 'ContrastTransformer',
        spec: {
          platform: 'insecure-sim',
          workspaceDir: 'ws',
          ociLayouts: ['../images', '/abs'],
          offline: true,
          cache: false,
          coordinatorHost: 'c.ns',
        },
      },
      baseDir: '/k/overlay',
      origin: 'cfg',
    });
    const argv = parseTransformArgs(args, { CONTRAST_PLATFORM: 'metal-qemu-snp' });
    assert.equal(argv.platform, 'insecure-sim', 'config over environment');
    assert.equal(argv['workspace-dir'], '/k/overlay/ws');
    assert.deepEqual(argv['oci-layout'], ['/k/images', '/abs']);
    assert.equal(argv.cache, false);
    assert.equal(argv['coordinator-host'], 'c.ns');
  });

  it('rejects unknown fields, wrong types and bad values', () => {
    const cfg = (spec: unknown) => () =>
      parseTransformArgs(
        functionConfigToArgs({ config: { kind: 'ContrastTransformer', spec }, baseDir: '/', origin: 'cfg' }),
        {},
      );
    assert.throws(
      cfg({ platfrom: 'x' }),
      (e: unknown) => e instanceof UsageError && /unknown field "platfrom"/.test(e.message),
    );
    assert.throws(cfg({ ociLayouts: 'one' }), /expected a list/);
    assert.throws(cfg({ offline: 'maybe' }), /expected true or false/);
    assert.throws(cfg({ platform: 'nope' }), UsageError);
    assert.throws(cfg({ disableUpdates: true, workloadOwnerKeys: ['k.pem'] }), /exclude each other/);
    assert.throws(() => parseTransformArgs([], { CONTRAST_OFFLINE: 'sometimes' }), /CONTRAST_OFFLINE/);
  });
});

describe('Helm hooks in the post-renderer', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('kc-hook-');
  });
  afterEach(() => removeDir(dir));

  const hookJob = (podAnnotations: string) => `apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: default
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-5"
    postrenderer.helm.sh/postrender-filename: 'chart/templates/hook.yaml'
spec:
  template:
    metadata:
      annotations: ${podAnnotations}
    spec:
      runtimeClassName: contrast-cc
      restartPolicy: Never
      containers:
        - name: migrate
          image: ghcr.io/kubectl-contrast/samples/worker:1.0
          securityContext: {runAsUser: 1001, runAsGroup: 1001}
      securityContext: {supplementalGroups: [2000]}
`;
  const flags = () => [
    'helm-post-render',
    '--platform',
    'insecure-sim',
    '--workspace-dir',
    dir,
    '--oci-layout',
    SAMPLE_IMAGES,
    '--offline',
    '--no-cache',
  ];

  it('a confidential install hook with the Initializer is transformed, keeps its annotations, and is warned about', () => {
    const r = runCli(flags(), { input: hookJob('{}') });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /helm\.sh\/hook: pre-install,pre-upgrade\n {4}helm\.sh\/hook-weight: "-5"\n {4}postrenderer\.helm\.sh\/postrender-filename: 'chart\/templates\/hook\.yaml'\n/,
    );
    assert.match(r.stdout, /contrast-initializer/);
    assert.match(r.stderr, /Warning: .*Job default\/migrate.*pre-install,pre-upgrade hook with the Initializer/);
  });

  it('Helm and kustomize bookkeeping annotations on a bare Pod stay out of its policy', () => {
    const pod = (extra: string) => `apiVersion: v1
kind: Pod
metadata:
  name: smoke
  namespace: default
  annotations:
    helm.sh/hook: test${extra}
spec:
  runtimeClassName: contrast-cc
  restartPolicy: Never
  containers:
    - name: smoke
      image: ghcr.io/kubectl-contrast/samples/worker:1.0
      securityContext: {runAsUser: 1001, runAsGroup: 1001}
  securityContext: {supplementalGroups: [2000]}
`;
    const initdata = (text: string) => /cc_init_data: (\S+)/.exec(text)?.[1];
    const viaHelm = runCli(flags(), {
      input: pod(
        `\n    postrenderer.helm.sh/postrender-filename: 'chart/templates/test.yaml'\n    config.kubernetes.io/index: '0'`,
      ),
    });
    assert.equal(viaHelm.code, 0, viaHelm.stderr);
    assert.match(viaHelm.stdout, /postrenderer\.helm\.sh\/postrender-filename: 'chart\/templates\/test\.yaml'/);
    const viaGenerate = runCli(['generate', ...flags().slice(1), '-'], { input: pod('') });
    assert.equal(viaGenerate.code, 0, viaGenerate.stderr);
    assert.ok(initdata(viaHelm.stdout));
    assert.equal(initdata(viaHelm.stdout), initdata(viaGenerate.stdout));
  });

  it('no warning when the hook skips the Initializer', () => {
    const r = runCli(flags(), { input: hookJob('{contrast.edgeless.systems/skip-initializer: "true"}') });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /hook with the Initializer/);
  });
});

describe('Helm 4 plugin launcher', () => {
  it('fails with a reason on stderr and in render.log when it cannot find kubectl-contrast', () => {
    const dir = tempDir('kc-launcher-');
    try {
      const copy = join(dir, 'plugin');
      cpSync(join(REPO_ROOT, 'plugin'), copy, { recursive: true });
      const r = spawnSync(join(copy, 'bin', 'post-render'), ['helm-post-render'], {
        input: 'kind: ConfigMap\n',
        encoding: 'utf8',
        env: { PATH: '/usr/bin:/bin', CONTRAST_WORKSPACE_DIR: dir },
      });
      assert.equal(r.status, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /kubectl-contrast not found/);
      assert.match(readFileSync(join(dir, 'render.log'), 'utf8'), /kubectl-contrast not found/);
      // CONTRAST_BIN points it at an executable explicitly.
      const ok = spawnSync(join(copy, 'bin', 'post-render'), ['--version'], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH, CONTRAST_BIN: join(REPO_ROOT, 'bin', 'kubectl-contrast') },
      });
      assert.equal(ok.status, 0, ok.stderr);
    } finally {
      removeDir(dir);
    }
  });
});

describe('kubectl plugin completion', () => {
  function complete(args: string[]) {
    return spawnSync(join(REPO_ROOT, 'bin', 'kubectl_complete-contrast'), args, { encoding: 'utf8' });
  }

  it('kubectl_complete-contrast lists commands, flags and choices with a directive line', () => {
    const cmds = complete(['']);
    assert.equal(cmds.status, 0, cmds.stderr);
    const lines = cmds.stdout.trim().split('\n');
    assert.ok(
      lines.includes('generate') && lines.includes('helm-post-render') && lines.includes('kustomize'),
      cmds.stdout,
    );
    assert.ok(!lines.includes('__complete'));
    assert.equal(lines.at(-1), ':4');
    assert.deepEqual(complete(['gen']).stdout.trim().split('\n'), ['generate', ':4']);
    assert.ok(complete(['generate', '--pla']).stdout.split('\n').includes('--platform'));
    assert.ok(complete(['generate', '--platform', 'metal-qemu-s']).stdout.split('\n').includes('metal-qemu-snp'));
    // A new word after generate may be a file: no flags offered, file completion allowed.
    assert.equal(complete(['generate', 'samp']).stdout, ':0\n');
  });

  it('kubectl itself runs it for `kubectl contrast <TAB>`', () => {
    const r = run('kubectl', ['__complete', 'contrast', 'helm-p'], { env: { PATH: pathWithBin() } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^helm-post-render\nhelm-plugin\n:4\n/);
  });

  it('help says `kubectl contrast` when run as a plugin', () => {
    const r = runCli(['helm-post-render', '--help']);
    assert.match(r.stdout, /^kubectl contrast helm-post-render/);
    assert.match(r.stdout, /CONTRAST_PLATFORM/);
  });
});

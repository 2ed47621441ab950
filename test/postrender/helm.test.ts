/**
 * The post-renderer with the real Helm 3 and Helm 4 over samples/chart (hooks included):
 * the confidential resources and manifest.json are those `generate` makes from the same
 * `helm template` output; a failing render makes Helm fail and leaves the workspace alone.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, REPO_ROOT, runCli } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import {
  byKey,
  CHART,
  helmEnv,
  IMAGE_FLAGS,
  isHook,
  objects,
  ok,
  pathWithBin,
  POSTRENDERER,
  run,
  tool,
} from './tools.js';

const FILENAME_ANNOTATION = 'postrenderer.helm.sh/postrender-filename';
const PLATFORM = '--platform=insecure-sim';

function rendererArgs(ws: string): string[] {
  return [PLATFORM, `--workspace-dir=${ws}`, ...IMAGE_FLAGS].flatMap((a) => ['--post-renderer-args', a]);
}

function policies(ws: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8')).Policies;
}

/** `generate` over a stream, in its own workspace. */
function generate(stream: string, ws: string): string {
  const r = runCli(['generate', PLATFORM, '--workspace-dir', ws, ...IMAGE_FLAGS, '-'], { input: stream });
  return ok({ code: r.code, stdout: r.stdout, stderr: r.stderr }, 'generate');
}

describe('Helm post-renderer', function () {
  this.timeout(300_000);
  let dir: string;
  beforeEach(() => {
    dir = tempDir('kc-helm-');
  });
  afterEach(() => removeDir(dir));

  describe('Helm 3 (executable)', () => {
    it('transforms the chart like generate; hooks are not post-rendered by Helm 3 and stay as rendered', () => {
      const helm = tool('helm3');
      const env = helmEnv(join(dir, 'helm'));
      const ws = join(dir, 'ws');
      const rendered = ok(
        run(helm, ['template', 'demo', CHART, '--post-renderer', POSTRENDERER, ...rendererArgs(ws)], { env }),
        'helm3 template --post-renderer',
      );
      const plain = ok(run(helm, ['template', 'demo', CHART], { env }), 'helm3 template');

      const plainObjects = objects(plain);
      const hooks = plainObjects.filter(isHook);
      assert.equal(hooks.length, 1, 'the sample chart has one hook');
      // What Helm 3 post-renders: everything but the hooks.
      const wsGen = join(dir, 'ws-gen');
      const expected = byKey(objects(generate(plain.split(/^---\n(?=# Source: [^\n]*migrate-hook)/m)[0]!, wsGen)));
      const actual = byKey(objects(rendered));
      for (const [key, obj] of expected) assert.deepEqual(actual.get(key), obj, key);
      const hook = actual.get(`Job/default/demo-migrate`)!;
      assert.deepEqual(hook, byKey(hooks).get('Job/default/demo-migrate'), 'Helm 3 prints the hook as rendered');
      assert.equal(
        (hook as { spec: { template: { spec: { runtimeClassName: string } } } }).spec.template.spec.runtimeClassName,
        'contrast-cc',
      );
      assert.deepEqual(policies(ws), policies(wsGen));
      assert.match(readFileSync(join(ws, 'render.log'), 'utf8'), /ok: 4 confidential workloads/);
      assert.match(rendered, /^# Source: contrast-sample\/templates\/web\.yaml$/m, '# Source comments survive');
    });

    it('kubectl-contrast helm-post-render works as the post-renderer too (the krew way)', () => {
      const helm = tool('helm3');
      const env = { ...helmEnv(join(dir, 'helm')), PATH: pathWithBin() };
      const ws = join(dir, 'ws');
      const out = ok(
        run(
          helm,
          [
            'template',
            'demo',
            CHART,
            '--post-renderer',
            'kubectl-contrast',
            '--post-renderer-args',
            'helm-post-render',
            ...rendererArgs(ws),
          ],
          { env },
        ),
        'helm3 template',
      );
      assert.match(out, /runtimeClassName: contrast-cc-insecure-sim-[0-9a-f]{8}/);
      assert.equal(Object.keys(policies(ws)).length, 4);
    });

    it('takes its options from CONTRAST_* environment variables', () => {
      const helm = tool('helm3');
      const ws = join(dir, 'ws');
      const env = {
        ...helmEnv(join(dir, 'helm')),
        CONTRAST_PLATFORM: 'insecure-sim',
        CONTRAST_WORKSPACE_DIR: ws,
        CONTRAST_OCI_LAYOUT: IMAGE_FLAGS[0]!.slice('--oci-layout='.length),
        CONTRAST_OFFLINE: '1',
        CONTRAST_NO_CACHE: '1',
      };
      ok(run(helm, ['template', 'demo', CHART, '--post-renderer', POSTRENDERER], { env }), 'helm3 template');
      assert.equal(Object.keys(policies(ws)).length, 4);
    });

    it('a failing render fails helm, prints no manifests and leaves manifest.json as it was', () => {
      const helm = tool('helm3');
      const env = helmEnv(join(dir, 'helm'));
      const ws = join(dir, 'ws');
      ok(
        run(helm, ['template', 'demo', CHART, '--post-renderer', POSTRENDERER, ...rendererArgs(ws)], { env }),
        'first render',
      );
      const before = readFileSync(join(ws, 'manifest.json'));
      const mtime = statSync(join(ws, 'manifest.json')).mtimeMs;
      // The worker image cannot be found offline once it is replaced by one that does not exist.
      const bad = run(
        helm,
        [
          'template',
          'demo',
          CHART,
          '--set',
          'images.worker=samples/missing:9',
          '--post-renderer',
          POSTRENDERER,
          ...rendererArgs(ws),
        ],
        { env },
      );
      assert.notEqual(bad.code, 0);
      assert.equal(bad.stdout, '');
      assert.match(bad.stderr, /samples\/missing:9/);
      assert.deepEqual(readFileSync(join(ws, 'manifest.json')), before);
      assert.equal(statSync(join(ws, 'manifest.json')).mtimeMs, mtime);
      assert.match(readFileSync(join(ws, 'render.log'), 'utf8'), /Error: .*samples\/missing:9/);
    });

    it('two renders of the same chart give the same manifest.json, byte for byte', () => {
      const helm = tool('helm3');
      const env = helmEnv(join(dir, 'helm'));
      const ws = join(dir, 'ws');
      const first = ok(
        run(helm, ['template', 'demo', CHART, '--post-renderer', POSTRENDERER, ...rendererArgs(ws)], { env }),
        'first',
      );
      const manifest = readFileSync(join(ws, 'manifest.json'), 'utf8');
      const second = ok(
        run(helm, ['template', 'demo', CHART, '--post-renderer', POSTRENDERER, ...rendererArgs(ws)], { env }),
        'second',
      );
      assert.equal(readFileSync(join(ws, 'manifest.json'), 'utf8'), manifest);
      assert.equal(second, first);
    });
  });

  describe('Helm 4 (postrenderer/v1 plugin)', () => {
    function installPlugin(env: NodeJS.ProcessEnv): void {
      ok(
        run(tool('helm4'), ['plugin', 'install', join(REPO_ROOT, 'plugin')], { env }),
        'helm4 plugin install ./plugin',
      );
      const list = ok(run(tool('helm4'), ['plugin', 'list'], { env }), 'helm4 plugin list');
      assert.match(list, /^contrast\s+0\.1\.0\s+postrenderer\/v1/m);
    }

    it('plugin.yaml passes Helm 4 strict parsing and the plugin transforms the chart, hooks included, like generate', () => {
      const helm = tool('helm4');
      const env = helmEnv(join(dir, 'helm'));
      installPlugin(env);
      const ws = join(dir, 'ws');
      const rendered = ok(
        run(helm, ['template', 'demo', CHART, '--post-renderer', 'contrast', ...rendererArgs(ws)], { env }),
        'helm4 template --post-renderer contrast',
      );
      const plain = ok(run(helm, ['template', 'demo', CHART], { env }), 'helm4 template');
      const wsGen = join(dir, 'ws-gen');
      const expected = byKey(objects(generate(plain, wsGen)));
      const actual = byKey(objects(rendered), [FILENAME_ANNOTATION]);
      assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
      for (const [key, obj] of expected) assert.deepEqual(actual.get(key), obj, key);
      const hook = actual.get('Job/default/demo-migrate') as {
        metadata: { annotations: Record<string, string> };
        spec: { template: { spec: { runtimeClassName: string } } };
      };
      assert.deepEqual(hook.metadata.annotations, {
        'helm.sh/hook': 'pre-install',
        'helm.sh/hook-weight': '-5',
        'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
      });
      assert.match(hook.spec.template.spec.runtimeClassName, /^contrast-cc-insecure-sim-/);
      assert.deepEqual(policies(ws), policies(wsGen));
      assert.equal(Object.keys(policies(ws)).length, 5, 'four workloads and the hook');
      // Helm regroups the output by the filename annotation: it must have survived.
      assert.match(rendered, /^# Source: contrast-sample\/templates\/migrate-hook\.yaml$/m);
      assert.doesNotMatch(rendered, /generated-by-postrender/);
    });

    it('the plugin resolves kubectl-contrast through the linked plugin directory, without PATH', () => {
      const helm = tool('helm4');
      const env = helmEnv(join(dir, 'helm'));
      installPlugin(env);
      const ws = join(dir, 'ws');
      const out = ok(
        run(helm, ['template', 'demo', CHART, '--post-renderer', 'contrast', ...rendererArgs(ws)], {
          env: { ...env, PATH: '/usr/bin:/bin' },
        }),
        'helm4 template',
      );
      assert.match(out, /contrast-cc-insecure-sim-/);
    });

    it('a failing render fails helm with no output; the reason, hidden by Helm 4, is in render.log', () => {
      const helm = tool('helm4');
      const env = helmEnv(join(dir, 'helm'));
      installPlugin(env);
      const ws = join(dir, 'ws');
      ok(
        run(helm, ['template', 'demo', CHART, '--post-renderer', 'contrast', ...rendererArgs(ws)], { env }),
        'first render',
      );
      const before = readFileSync(join(ws, 'manifest.json'));
      const bad = run(
        helm,
        [
          'template',
          'demo',
          CHART,
          '--set',
          'images.worker=samples/missing:9',
          '--post-renderer',
          'contrast',
          ...rendererArgs(ws),
        ],
        { env },
      );
      assert.notEqual(bad.code, 0);
      assert.equal(bad.stdout, '');
      assert.match(bad.stderr, /plugin "contrast"/);
      assert.deepEqual(readFileSync(join(ws, 'manifest.json')), before);
      assert.match(readFileSync(join(ws, 'render.log'), 'utf8'), /Error: .*samples\/missing:9/);
    });

    it('a bad flag is a failure too, logged for Helm 4', () => {
      const helm = tool('helm4');
      const env = helmEnv(join(dir, 'helm'));
      installPlugin(env);
      const ws = join(dir, 'ws');
      const bad = run(
        helm,
        [
          'template',
          'demo',
          CHART,
          '--post-renderer',
          'contrast',
          '--post-renderer-args',
          '--platform=nope',
          '--post-renderer-args',
          `--workspace-dir=${ws}`,
        ],
        { env },
      );
      assert.notEqual(bad.code, 0);
      assert.equal(bad.stdout, '');
      assert.ok(!existsSync(join(ws, 'manifest.json')));
      assert.match(readFileSync(join(ws, 'render.log'), 'utf8'), /Error: Invalid values:[\s\S]*nope/);
    });

    it('kubectl contrast helm-plugin install installs a plugin that runs this executable', () => {
      const helm = tool('helm4');
      const env = helmEnv(join(dir, 'helm'));
      const pluginDir = join(dir, 'plugin-home');
      const r = runCli(['helm-plugin', 'install', '--helm', helm, '--dir', pluginDir], { env });
      assert.equal(r.code, 0, r.stderr);
      const yaml = readFileSync(join(pluginDir, 'contrast', 'plugin.yaml'), 'utf8');
      assert.match(yaml, /^type: postrenderer\/v1$/m);
      assert.ok(yaml.includes(JSON.stringify(realpathSync(CLI))), yaml);
      const ws = join(dir, 'ws');
      const out = ok(
        run(helm, ['template', 'demo', CHART, '--post-renderer', 'contrast', ...rendererArgs(ws)], { env }),
        'helm4 template',
      );
      assert.match(out, /contrast-cc-insecure-sim-/);
      // Again: replaces the installed plugin.
      assert.equal(runCli(['helm-plugin', 'install', '--helm', helm, '--dir', pluginDir], { env }).code, 0);
      const helm3 = runCli(['helm-plugin', 'install', '--helm', tool('helm3'), '--dir', pluginDir], { env });
      assert.equal(helm3.code, 1);
      assert.match(helm3.stderr, /Helm 3.*--post-renderer kubectl-contrast --post-renderer-args helm-post-render/);
    });
  });

  it('refuses an empty stream instead of printing an empty release', () => {
    const r = runCli(['helm-post-render', PLATFORM, '--workspace-dir', dir], { input: '\n' });
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /no manifests/);
    assert.match(readFileSync(join(dir, 'render.log'), 'utf8'), /no manifests/);
  });
});

/**
 * Issue 14, item 2: private keys never land in a source tree unnoticed. The kustomize
 * transformer (both modes) keeps its workspace out of the kustomization directory unless one is
 * configured, and every command that creates an owner key inside a git work tree, where git does
 * not ignore it, warns.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { SAMPLE_IMAGES } from '../helpers/images.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { defaultKustomizeWorkspace } from '../../src/cli/kustomize.js';

const WEB = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      runtimeClassName: contrast-cc
      containers:
        - name: web
          image: ghcr.io/kubectl-contrast/samples/web:1.0
          securityContext: {runAsUser: 101, runAsGroup: 101}
`;

const indent = (text: string, by: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((l, i) => (i === 0 ? `${by}- ${l}` : `${by}  ${l}`))
    .join('\n');

function resourceList(spec: string): string {
  return `apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n${indent(WEB, '  ')}\nfunctionConfig:\n  apiVersion: contrast.edgeless.systems/v1alpha1\n  kind: ContrastTransformer\n  metadata: {name: contrast}\n  spec:\n${spec}`;
}

const SPEC = `    platform: insecure-sim\n    ociLayouts: [${SAMPLE_IMAGES}]\n    offline: true\n    cache: false\n`;

/** A git repository with a kustomization directory in it, like a GitOps repository. */
function gitRepo(dir: string): { repo: string; kustomization: string } {
  const repo = join(dir, 'repo');
  const kustomization = join(repo, 'overlays', 'prod');
  mkdirSync(kustomization, { recursive: true });
  execFileSync('git', ['init', '-q', repo]);
  return { repo, kustomization };
}

function untracked(repo: string): string[] {
  return execFileSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: repo, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
}

describe('workspace defaults and keys in git work trees (issue 14, item 2)', function () {
  this.timeout(180_000);
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeEach(() => {
    dir = tempDir('kc-wsdef-');
    // No workspace from the environment; the per-user state directory is a temporary one.
    env = {
      CONTRAST_WORKSPACE_DIR: undefined,
      CONTRAST_RENDER_LOG: undefined,
      XDG_STATE_HOME: join(dir, 'state'),
      HOME: join(dir, 'home'),
    };
  });
  afterEach(() => removeDir(dir));

  it('KRM function without workspaceDir: nothing is written into the kustomization directory', () => {
    const { repo, kustomization } = gitRepo(dir);
    const r = runCli(['kustomize'], { cwd: kustomization, input: resourceList(SPEC), env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /contrast-cc-insecure-sim-/);
    assert.deepEqual(
      readdirSync(kustomization),
      [],
      'no keys, manifest.json, settings.json or render.log in the kustomization',
    );
    assert.deepEqual(untracked(repo), []);
    const ws = defaultKustomizeWorkspace(kustomization, env);
    assert.ok(ws.startsWith(join(dir, 'state', 'kubectl-contrast', 'kustomize')), ws);
    for (const f of ['manifest.json', 'workload-owner.pem', 'seedshare-owner.pem', 'render.log'])
      assert.ok(existsSync(join(ws, f)), f);
    assert.match(r.stderr, new RegExp(`workspace ${ws.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const printed = runCli(['kustomize', '--print-workspace', kustomization], { env });
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout, `${ws}\n`);
  });

  it('legacy exec plugin without workspaceDir: nothing is written into the kustomization directory', () => {
    const { repo, kustomization } = gitRepo(dir);
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      `apiVersion: contrast.edgeless.systems/v1alpha1\nkind: ContrastTransformer\nmetadata: {name: contrast}\nspec:\n${SPEC}`,
    );
    const r = runCli(['kustomize', config], {
      cwd: kustomization,
      input: WEB,
      env: { ...env, KUSTOMIZE_PLUGIN_CONFIG_ROOT: kustomization },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(kustomization), []);
    assert.deepEqual(untracked(repo), []);
    assert.ok(existsSync(join(defaultKustomizeWorkspace(kustomization, env), 'manifest.json')));
  });

  it('two kustomizations get two workspaces; the same one always the same', () => {
    const a = defaultKustomizeWorkspace('/src/app/overlays/prod', env);
    const b = defaultKustomizeWorkspace('/src/app/overlays/staging', env);
    assert.notEqual(a, b);
    assert.equal(defaultKustomizeWorkspace('/src/app/overlays/prod', env), a);
    assert.match(a, /prod-[0-9a-f]{12}$/);
  });

  it('a workspaceDir inside the git work tree warns that the keys are not ignored (a KRM result)', () => {
    const { repo, kustomization } = gitRepo(dir);
    const r = runCli(['kustomize'], {
      cwd: kustomization,
      input: resourceList(`${SPEC}    workspaceDir: contrast\n`),
      env,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /results:[\s\S]*workload-owner\.pem[\s\S]*inside the git work tree/);
    assert.ok(untracked(repo).some((l) => l.includes('workload-owner.pem')));
  });

  describe('generate', () => {
    const gen = (ws: string) =>
      runCli(
        [
          'generate',
          '--platform',
          'insecure-sim',
          '--offline',
          '--no-cache',
          '--oci-layout',
          SAMPLE_IMAGES,
          '--workspace-dir',
          ws,
          '-',
        ],
        { input: WEB, env },
      );

    it('warns when it creates keys inside a git work tree where they are not ignored, once', () => {
      const { repo } = gitRepo(dir);
      const first = gen(join(repo, 'deploy'));
      assert.equal(first.code, 0, first.stderr);
      assert.match(
        first.stderr,
        /Warning: the private key .*workload-owner\.pem is created inside the git work tree .*repo, where git does not ignore it/,
      );
      assert.match(first.stderr, /the private key .*seedshare-owner\.pem is created inside the git work tree/);
      const again = gen(join(repo, 'deploy'));
      assert.equal(again.code, 0, again.stderr);
      assert.doesNotMatch(again.stderr, /git work tree/, 'keys that exist are not created again');
    });

    it('no warning when git ignores the keys, or outside a git work tree', () => {
      const { repo } = gitRepo(dir);
      writeFileSync(join(repo, '.gitignore'), '*.pem\n');
      const ignored = gen(join(repo, 'deploy'));
      assert.equal(ignored.code, 0, ignored.stderr);
      assert.doesNotMatch(ignored.stderr, /git work tree/);
      const outside = gen(join(dir, 'elsewhere'));
      assert.equal(outside.code, 0, outside.stderr);
      assert.doesNotMatch(outside.stderr, /git work tree/);
      assert.equal(readFileSync(join(repo, '.gitignore'), 'utf8'), '*.pem\n');
    });
  });
});

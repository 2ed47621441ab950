/**
 * What kubectl users and upstream Contrast users type (issue 14 items 7 and 9): -v/--v and
 * --log-level as verbosity, a `version` command, yargs' messages without camel-case twins,
 * upstream v1.2's --reference-values names, --skip-service-mesh, -p/--policy and -s/--settings.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { usageMessage } from '../../src/cli/main.js';
import { platformIds } from '../../src/platforms/platforms.js';
import { defaultSettings } from '../../src/policy/settings.js';

const IMAGES = join(REPO_ROOT, 'samples', 'images');

describe('kubectl and upstream habits (issue 14 items 7, 9)', function () {
  this.timeout(300_000);
  let dir: string;
  before(() => {
    dir = tempDir('kc-habits-');
  });
  after(() => removeDir(dir));

  /** generate the plain samples to standard output in a fresh workspace. */
  function generate(name: string, extra: string[]) {
    const res = join(dir, `res-${name}`);
    cpSync(join(REPO_ROOT, 'samples', 'plain'), res, { recursive: true });
    const ws = join(dir, `ws-${name}`);
    const r = runCli([
      'generate',
      '--oci-layout',
      IMAGES,
      '--offline',
      '--no-cache',
      '--workspace-dir',
      ws,
      '-o',
      '-',
      ...extra,
      res,
    ]);
    const docs = r.code === 0 ? parseAllDocuments(r.stdout).map((d) => d.toJS() as Record<string, any>) : [];
    return { ...r, ws, docs };
  }
  const templateOf = (docs: Record<string, any>[], name: string) =>
    docs.find((d) => d.metadata?.name === name)!.spec.template.spec;
  const manifestOf = (ws: string) =>
    JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8')) as { Policies: Record<string, { SANs: string[] }> };

  describe('verbosity', () => {
    it('-v alone is not --version any more: it asks for a level', () => {
      for (const args of [['-v'], ['status', '-v']]) {
        const r = runCli(args);
        assert.equal(r.code, 2, r.stderr);
        assert.match(
          r.stderr,
          /-v takes a verbosity level as kubectl's \(e\.g\. -v=4\); the version is --version or `kubectl contrast version`/,
        );
        assert.equal(r.stdout, '');
      }
      assert.equal(
        runCli(['--version']).stdout.trim(),
        JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version,
      );
    });

    it('-v=4, --v 6 and --log-level debug print debug lines; lower levels and no flag do not', () => {
      const ws = join(dir, 'ws-none');
      const debugRuns = [['-v=4'], ['--v', '6'], ['--log-level', 'debug'], ['--log-level', '-4']];
      const quietRuns = [[], ['-v=2'], ['--log-level', 'warn'], ['--log-level', 'error']];
      // verify fails early (no manifest); the place that dials prints nothing before it, so use
      // a manifest from a generate run.
      const g = generate('verbosity', ['--platform', 'insecure-sim']);
      assert.equal(g.code, 0, g.stderr);
      for (const flags of [...debugRuns, ...quietRuns]) {
        const r = runCli(['verify', '-c', '127.0.0.1:1', '--workspace-dir', g.ws, ...flags]);
        assert.equal(r.code, 1, r.stderr);
        const debugging = debugRuns.includes(flags);
        assert.equal(
          /^debug: UserAPI at 127\.0\.0\.1:1: aTLS/m.test(r.stderr),
          debugging,
          `${flags.join(' ')}: ${r.stderr}`,
        );
        assert.equal(/^debug: UserError: /m.test(r.stderr), debugging, `${flags.join(' ')}: the stack of the error`);
      }
      assert.ok(!existsSync(ws));
      const bad = runCli(['status', '--log-level', 'loud']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--log-level "loud": use debug, info, warn or error/);
    });
  });

  describe('version', () => {
    it('prints the version, the commit of the build and the runtime class of every platform, also as JSON', () => {
      const text = runCli(['version']);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^Version: \d+\.\d+\.\d+/m);
      let head: string | undefined;
      try {
        head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
          .toString()
          .trim();
      } catch {
        head = undefined; // a copy without git: the build could not know its commit
      }
      const commit = /^Commit: ([0-9a-f]{40}|unknown)$/m.exec(text.stdout)?.[1];
      assert.ok(commit, text.stdout);
      if (head === undefined) assert.equal(commit, 'unknown');
      // The build is at most as old as HEAD: the commit is one of HEAD's history.
      else execFileSync('git', ['merge-base', '--is-ancestor', commit, head], { cwd: REPO_ROOT });
      const json = JSON.parse(runCli(['version', '-o', 'json']).stdout) as {
        runtimeClasses: Record<string, string>;
        commit: string;
      };
      assert.equal(json.commit, commit);
      assert.deepEqual(Object.keys(json.runtimeClasses).sort(), platformIds().sort());
      for (const [id, rc] of Object.entries(json.runtimeClasses)) {
        assert.match(rc, new RegExp(`^contrast-cc-${id}-[0-9a-f]{8}$`));
        assert.match(text.stdout, new RegExp(`^  ${id} +${rc}$`, 'm'));
      }
      // The runtime class version names is the one generate writes.
      const g = generate('version', ['--platform', 'insecure-sim']);
      assert.equal(g.code, 0, g.stderr);
      assert.equal(templateOf(g.docs, 'web').runtimeClassName, json.runtimeClasses['insecure-sim']);
    });
  });

  describe('usage errors', () => {
    it('name a mistyped flag once, as typed, not also in camel case', () => {
      const r = runCli(['generate', '--skip-service-meshes', '--add-owner-key', 'x', 'in.yaml']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^Error: Unknown arguments: skip-service-meshes, add-owner-key$/m);
      assert.doesNotMatch(r.stderr, /skipServiceMeshes|addOwnerKey/);
      assert.equal(usageMessage('Unknown arguments: foo-bar, fooBar'), 'Unknown argument: foo-bar');
      assert.equal(
        usageMessage('Unknown arguments: fooBar, x'),
        'Unknown arguments: fooBar, x',
        'a camel-case flag the user typed stays',
      );
      assert.equal(
        usageMessage('Missing required arguments: pod-name, podName, ns'),
        'Missing required arguments: pod-name, ns',
      );
    });
  });

  describe('upstream v1.2 generate flags', () => {
    it('--reference-values k3s-qemu-snp is metal-qemu-snp, with a note; any case of our ids works', () => {
      const a = generate('k3s', ['--reference-values', 'k3s-qemu-snp']);
      assert.equal(a.code, 0, a.stderr);
      assert.match(
        a.stderr,
        /k3s-qemu-snp is upstream v1\.2's name of the platform kubectl-contrast calls metal-qemu-snp/,
      );
      assert.match(templateOf(a.docs, 'web').runtimeClassName, /^contrast-cc-metal-qemu-snp-[0-9a-f]{8}$/);
      const b = generate('display', ['--platform', 'Metal-QEMU-SNP']);
      assert.equal(b.code, 0, b.stderr);
      assert.equal(b.stdout, a.stdout);
    });

    it('--reference-values aks-clh-snp says why not and what to use', () => {
      const r = runCli(['generate', '--reference-values', 'aks-clh-snp', 'in.yaml']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /aks-clh-snp: AKS with Cloud Hypervisor .* is not a platform of kubectl-contrast.*--platform metal-qemu-snp/,
      );
    });

    it('--skip-service-mesh leaves the sidecar out although the annotations ask for it', () => {
      const plain = generate('mesh', ['--platform', 'insecure-sim']);
      const skipped = generate('no-mesh', ['--platform', 'insecure-sim', '--skip-service-mesh']);
      assert.equal(skipped.code, 0, skipped.stderr);
      const names = (spec: any) => (spec.initContainers ?? []).map((c: { name: string }) => c.name);
      assert.ok(names(templateOf(plain.docs, 'web')).includes('contrast-service-mesh'));
      const web = templateOf(skipped.docs, 'web');
      assert.ok(!names(web).includes('contrast-service-mesh'), names(web).join());
      const init = web.initContainers.find((c: { name: string }) => c.name === 'contrast-initializer');
      assert.ok(
        init.env.some(
          (e: { name: string; value: string }) => e.name === 'CONTRAST_SERVICE_MESH_DISABLED' && e.value === 'true',
        ),
      );
      // The same through the environment, as the Helm post-renderer reads it.
      const input = ['web.yaml', 'api.yaml', 'coordinator.yaml']
        .map((f) => readFileSync(join(REPO_ROOT, 'samples', 'plain', f), 'utf8'))
        .join('---\n');
      const env = {
        CONTRAST_PLATFORM: 'insecure-sim',
        CONTRAST_OCI_LAYOUT: IMAGES,
        CONTRAST_OFFLINE: '1',
        CONTRAST_NO_CACHE: '1',
        CONTRAST_WORKSPACE_DIR: join(dir, 'ws-env'),
      };
      const withMesh = runCli(['helm-post-render'], { input, env });
      assert.equal(withMesh.code, 0, withMesh.stderr);
      assert.match(withMesh.stdout, /name: contrast-service-mesh/);
      const without = runCli(['helm-post-render'], { input, env: { ...env, CONTRAST_SKIP_SERVICE_MESH: 'true' } });
      assert.equal(without.code, 0, without.stderr);
      assert.doesNotMatch(without.stdout, /name: contrast-service-mesh/);
    });

    it('-p/--policy names settings.json and policy check instead', () => {
      for (const flag of ['-p', '--policy']) {
        const r = runCli(['generate', '--platform', 'insecure-sim', flag, 'rules.rego', 'in.yaml']);
        assert.equal(r.code, 2, r.stderr);
        assert.match(
          r.stderr,
          /the Rego rules are part of kubectl-contrast.*settings\.json \(-s\/--settings\).*kubectl contrast policy check/,
        );
      }
    });

    it('-c/--genpolicy-cache-path names --cache-dir', () => {
      const r = runCli(['generate', '--platform', 'insecure-sim', '-c', 'layers-cache.json', 'in.yaml']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /-c\/--genpolicy-cache-path: kubectl-contrast runs no genpolicy .*--cache-dir/);
    });

    it('-s/--settings FILE is the policy settings, and the workspace gets no settings.json of its own', () => {
      const defaults = generate('defaults', ['--platform', 'insecure-sim']);
      assert.equal(defaults.code, 0, defaults.stderr);
      assert.ok(existsSync(join(defaults.ws, 'settings.json')));
      const same = join(dir, 'same-settings.json');
      writeFileSync(same, `${JSON.stringify(defaultSettings(), null, 2)}\n`);
      const a = generate('s-same', ['--platform', 'insecure-sim', '-s', same]);
      assert.equal(a.code, 0, a.stderr);
      assert.ok(!existsSync(join(a.ws, 'settings.json')), 'no second settings file');
      assert.deepEqual(
        Object.keys(manifestOf(a.ws).Policies).sort(),
        Object.keys(manifestOf(defaults.ws).Policies).sort(),
      );
      const changed = join(dir, 'changed-settings.json');
      writeFileSync(changed, `${JSON.stringify({ ...defaultSettings(), defaultCaps: ['CAP_CHOWN'] }, null, 2)}\n`);
      const b = generate('s-changed', ['--platform', 'insecure-sim', '--settings', changed]);
      assert.equal(b.code, 0, b.stderr);
      assert.notDeepEqual(
        Object.keys(manifestOf(b.ws).Policies).sort(),
        Object.keys(manifestOf(defaults.ws).Policies).sort(),
        'the settings reach the policies',
      );
      const missing = generate('s-missing', ['--platform', 'insecure-sim', '-s', join(dir, 'nope.json')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /nope\.json.*policy settings \(--settings\)/);
    });
  });
});

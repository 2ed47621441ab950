/**
 * The single executable and its krew packaging: `npm run package` output, the krew manifest
 * against krew's rules, the archive installed the way krew installs it (files → install dir,
 * bin linked as kubectl-contrast on PATH) and run through kubectl, and the same CLI smoke tests
 * as bin/kubectl-contrast.
 *
 * `krew install --manifest … --archive …` itself cannot run here: krew cannot be built
 * (the Go module proxy refuses sigs.k8s.io/krew with 403). That test is pending until a krew
 * binary is in tools/bin.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { parse } from 'yaml';
import { CLI, newestMtime, REPO_ROOT } from '../helpers/cli.js';
import { SAMPLE_IMAGES } from '../helpers/images.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { krewPlatformOf, validateKrewManifest } from '../../scripts/package-sea.krew.mjs';
import { ok, run, TOOLS } from './tools.js';

const { os, arch } = krewPlatformOf();
const ARCHIVE = join(REPO_ROOT, 'dist-sea', `kubectl-contrast-${os}-${arch}.tar.gz`);
const MANIFEST = join(REPO_ROOT, 'krew-manifest.yaml');
const VERSION = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version as string;

/** Build the archive when it is missing or older than the sources. */
function ensurePackaged(): void {
  const stale = !existsSync(ARCHIVE) || statSync(ARCHIVE).mtimeMs < Math.max(newestMtime(join(REPO_ROOT, 'src')), statSync(join(REPO_ROOT, 'scripts', 'package-sea.mjs')).mtimeMs);
  if (stale) execFileSync('npm', ['run', '--silent', 'package'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
}

interface Platform { selector: { matchLabels: Record<string, string> }; uri: string; sha256: string; bin: string; files?: { from: string; to: string }[] }

function hostPlatform(manifest: { spec: { platforms: Platform[] } }): Platform {
  const p = manifest.spec.platforms.find((x) => x.selector.matchLabels.os === os && x.selector.matchLabels.arch === arch);
  assert.ok(p, `krew-manifest.yaml has no ${os}/${arch} platform`);
  return p;
}

describe('single executable and krew', function () {
  this.timeout(900_000);
  let dir: string;
  let installDir: string;
  let pathDir: string;
  let sea: string;

  before(() => {
    ensurePackaged();
    dir = tempDir('kc-sea-');
    // What krew does: unpack, copy `files` into the install dir, link `bin` as kubectl-<name>.
    const unpacked = join(dir, 'unpacked');
    mkdirSync(unpacked);
    execFileSync('tar', ['-xzf', ARCHIVE, '-C', unpacked]);
    const platform = hostPlatform(parse(readFileSync(MANIFEST, 'utf8')));
    installDir = join(dir, 'krew', 'store', 'contrast', `v${VERSION}`);
    mkdirSync(installDir, { recursive: true });
    for (const f of platform.files ?? [{ from: '*', to: '.' }]) {
      assert.ok(existsSync(join(unpacked, f.from)), `the archive has no ${f.from}`);
      cpSync(join(unpacked, f.from), join(installDir, f.to, f.to === '.' ? f.from : ''));
    }
    sea = join(installDir, platform.bin);
    pathDir = join(dir, 'krew', 'bin');
    mkdirSync(pathDir);
    symlinkSync(sea, join(pathDir, 'kubectl-contrast'));
  });
  after(() => removeDir(dir));

  it('krew-manifest.yaml is valid under krew\'s rules, names this version and this archive', () => {
    const manifest = parse(readFileSync(MANIFEST, 'utf8'));
    assert.deepEqual(validateKrewManifest(manifest, 'contrast.yaml'), []);
    assert.equal(manifest.spec.version, `v${VERSION}`);
    const p = hostPlatform(manifest);
    assert.equal(p.sha256, createHash('sha256').update(readFileSync(ARCHIVE)).digest('hex'));
    assert.match(p.uri, new RegExp(`/v${VERSION.replaceAll('.', '\\.')}/kubectl-contrast-${os}-${arch}\\.tar\\.gz$`));
  });

  it('the checker rejects what krew rejects', () => {
    const good = parse(readFileSync(MANIFEST, 'utf8'));
    const bad = (edit: (m: any) => void, pattern: RegExp) => {
      const m = structuredClone(good);
      edit(m);
      const problems = validateKrewManifest(m, 'contrast.yaml');
      assert.ok(problems.some((p) => pattern.test(p)), `${pattern}: ${problems.join('; ')}`);
    };
    bad((m) => { m.spec.version = VERSION; }, /leading "v"/);
    bad((m) => { m.spec.platforms[0].sha256 = 'ABC'; }, /sha256/);
    bad((m) => { m.spec.platforms[0].selector.matchLabels.distro = 'x'; }, /only use os and arch/);
    bad((m) => { m.spec.platforms.push(structuredClone(m.spec.platforms[0])); }, /overlap/);
    bad((m) => { m.spec.platforms[0].uri = 'https://x/y.exe'; }, /tar\.gz or \.zip/);
    bad((m) => { delete m.spec.platforms[0].bin; }, /bin is required/);
    bad((m) => { m.spec.shortDescription = 'a\nb'; }, /one line/);
    bad((m) => { m.spec.platforms[0].files = []; }, /must not be empty/);
    assert.ok(validateKrewManifest(good, 'kubectl-contrast.yaml').some((p) => /contrast\.yaml/.test(p)));
  });

  it('the installed files include a license (krew-index requirement) and an executable bin', () => {
    assert.ok(readdirSync(installDir).some((f) => /^(license(\.txt|\.md)?|licenses.*|copying.*)$/i.test(f)), readdirSync(installDir).join(', '));
    accessSync(sea, constants.X_OK);
  });

  it('kubectl finds the installed plugin: kubectl contrast --version', () => {
    const env = { PATH: `${pathDir}${delimiter}${process.env.PATH}` };
    assert.equal(ok(run('kubectl', ['contrast', '--version'], { env }), 'kubectl contrast --version').trim(), VERSION);
    assert.match(ok(run('kubectl', ['contrast', '--help'], { env }), 'kubectl contrast --help'), /^kubectl contrast <command>/);
  });

  it('krew install --manifest krew-manifest.yaml --archive … into a temporary KREW_ROOT', function () {
    const krew = join(TOOLS, 'krew');
    if (!existsSync(krew)) {
      // Blocked: `go install sigs.k8s.io/krew/cmd/krew` gets 403 from the Go module proxy.
      this.skip();
    }
    const root = join(dir, 'krew-root');
    const env = { KREW_ROOT: root, KREW_NO_UPGRADE_CHECK: '1' };
    ok(run(krew, ['install', '--manifest', MANIFEST, '--archive', ARCHIVE], { env }), 'krew install');
    const out = ok(run('kubectl', ['contrast', '--version'], { env: { ...env, PATH: `${join(root, 'bin')}${delimiter}${process.env.PATH}` } }), 'kubectl contrast --version');
    assert.equal(out.trim(), VERSION);
  });

  describe('same CLI behaviour as bin/kubectl-contrast', () => {
    function both(args: string[], input = '', env: NodeJS.ProcessEnv = {}) {
      const viaNode = spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8', env: { ...process.env, ...env }, cwd: REPO_ROOT });
      const viaSea = spawnSync(join(pathDir, 'kubectl-contrast'), args, { input, encoding: 'utf8', env: { ...process.env, ...env }, cwd: REPO_ROOT });
      return { node: viaNode, sea: viaSea };
    }

    it('--version, --help, usage errors, bad input', () => {
      for (const args of [['--version'], ['generate', '--help'], ['generate', '--platform', 'nope'], ['nonsense'], ['__complete', 'gen']]) {
        const r = both(args);
        assert.equal(r.sea.status, r.node.status, `${args.join(' ')}: ${r.sea.stderr}`);
        assert.equal(r.sea.stdout, r.node.stdout, args.join(' '));
      }
      const bad = both(['generate', '--workspace-dir', dir, '-'], 'kind: [\n');
      assert.equal(bad.sea.status, 1);
      assert.equal(bad.sea.stdout, '');
      assert.equal(bad.sea.stderr, bad.node.stderr);
    });

    it('generate over the samples, offline: the same resources (policies from the embedded rules and WebAssembly)', () => {
      const input = readFileSync(join(REPO_ROOT, 'samples', 'plain', 'web.yaml'), 'utf8');
      const args = (ws: string) => ['generate', '--platform', 'insecure-sim', '--workspace-dir', ws, '--oci-layout', SAMPLE_IMAGES, '--offline', '--no-cache', '-'];
      const wsNode = join(dir, 'ws-node');
      const wsSea = join(dir, 'ws-sea');
      const viaNode = spawnSync(process.execPath, [CLI, ...args(wsNode)], { input, encoding: 'utf8' });
      const viaSea = spawnSync(sea, args(wsSea), { input, encoding: 'utf8' });
      assert.equal(viaNode.status, 0, viaNode.stderr);
      assert.equal(viaSea.status, 0, viaSea.stderr);
      assert.equal(viaSea.stdout, viaNode.stdout);
      const policies = (ws: string) => JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8')).Policies;
      assert.deepEqual(policies(wsSea), policies(wsNode));
    });

    it('helm-post-render and kustomize modes run from the single executable', () => {
      const input = readFileSync(join(REPO_ROOT, 'samples', 'plain', 'api.yaml'), 'utf8');
      const ws = join(dir, 'ws-pr');
      const r = spawnSync(sea, ['helm-post-render', '--platform', 'insecure-sim', '--workspace-dir', ws, '--oci-layout', SAMPLE_IMAGES, '--offline', '--no-cache'], { input, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /contrast-cc-insecure-sim-/);
      const worker = readFileSync(join(REPO_ROOT, 'samples', 'plain', 'worker.yaml'), 'utf8');
      const list = `apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n${worker.split(/^---$/m)[0]!.replace(/^#.*\n/gm, '').replace(/^/gm, '    ').replace(/^ {4}/, '  - ')}\nfunctionConfig:\n  kind: ContrastTransformer\n  spec: {platform: insecure-sim, workspaceDir: ${ws}, ociLayouts: [${SAMPLE_IMAGES}], offline: true, cache: false}\n`;
      const k = spawnSync(sea, ['kustomize'], { input: list, encoding: 'utf8' });
      assert.equal(k.status, 0, k.stderr);
      assert.match(k.stdout, /kind: ResourceList[\s\S]*contrast-cc-insecure-sim-/);
    });
  });
});

/**
 * The single executable and its krew packaging: `npm run package` output (reproducible: two
 * builds give the same archive), the krew manifest it writes from the archive, the archive
 * installed by the real `krew install --manifest … --archive …` (krew from tools/bin, built by
 * scripts/setup.sh) and by hand the way krew installs it, run through kubectl, and the same CLI
 * smoke tests as bin/kubectl-contrast. Packaging never rewrites a file of the checkout.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { parse } from 'yaml';
import { CLI, newestMtime, REPO_ROOT, simGenerateArgs } from '../helpers/cli.js';
import { SAMPLE_IMAGES } from '../helpers/images.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { krewPlatformOf, validateKrewManifest } from '../../scripts/package-sea.krew.mjs';
import { ok, run, tool } from '../postrender/tools.js';

const { os, arch } = krewPlatformOf();
const ARCHIVE = join(REPO_ROOT, 'dist-sea', `kubectl-contrast-${os}-${arch}.tar.gz`);
/** What a release publishes: written by `npm run package` from the template and the archive. */
const MANIFEST = join(REPO_ROOT, 'dist-sea', 'contrast.yaml');
const TEMPLATE = join(REPO_ROOT, 'krew-manifest.yaml');
const VERSION = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version as string;

function packageSea(): void {
  execFileSync('npm', ['run', '--silent', 'package'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Build the archive when it is missing or older than the sources. */
function ensurePackaged(): void {
  const inputs = [
    newestMtime(join(REPO_ROOT, 'src')),
    ...[
      'scripts/package-sea.mjs',
      'scripts/package-sea.krew.mjs',
      'krew-manifest.yaml',
      'LICENSE',
      'NOTICE',
      'bin/kubectl_complete-contrast',
    ].map((f) => statSync(join(REPO_ROOT, f)).mtimeMs),
  ];
  const stale = !existsSync(ARCHIVE) || !existsSync(MANIFEST) || statSync(ARCHIVE).mtimeMs < Math.max(...inputs);
  if (stale) packageSea();
}

const sha256Of = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

interface Platform {
  selector: { matchLabels: Record<string, string> };
  uri: string;
  sha256: string;
  bin: string;
  files?: { from: string; to: string }[];
}

function hostPlatform(manifest: { spec: { platforms: Platform[] } }): Platform {
  const p = manifest.spec.platforms.find(
    (x) => x.selector.matchLabels.os === os && x.selector.matchLabels.arch === arch,
  );
  assert.ok(p, `the krew manifest has no ${os}/${arch} platform`);
  return p;
}

describe('single executable and krew', function () {
  this.timeout(900_000);
  let dir: string;
  let installDir: string;
  let pathDir: string;
  let sea: string;

  let template: Buffer;

  before(() => {
    template = readFileSync(TEMPLATE);
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

  it("the krew manifest is valid under krew's rules, names this version and this very archive", () => {
    const manifest = parse(readFileSync(MANIFEST, 'utf8'));
    assert.deepEqual(validateKrewManifest(manifest, 'contrast.yaml'), []);
    assert.equal(manifest.spec.version, `v${VERSION}`);
    const p = hostPlatform(manifest);
    assert.equal(p.sha256, sha256Of(ARCHIVE));
    assert.match(p.uri, new RegExp(`/v${VERSION.replaceAll('.', '\\.')}/kubectl-contrast-${os}-${arch}\\.tar\\.gz$`));
    assert.deepEqual(p.files?.map((f) => f.from).sort(), [
      'LICENSE',
      'NOTICE',
      'kubectl-contrast',
      'kubectl_complete-contrast',
    ]);
  });

  it('packaging is reproducible and leaves the checkout as it was', () => {
    // Two builds in a row from the same sources; a source edited meanwhile (by someone working in
    // this checkout) restarts the pair once.
    let builds: string[] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const sources = newestMtime(join(REPO_ROOT, 'src'));
      builds = [];
      for (let i = 0; i < 2; i++) {
        packageSea();
        builds.push(sha256Of(ARCHIVE));
      }
      if (newestMtime(join(REPO_ROOT, 'src')) === sources) break;
    }
    const [first, second] = builds;
    assert.equal(second, first, 'a second build of the same sources gives another archive');
    assert.equal(hostPlatform(parse(readFileSync(MANIFEST, 'utf8'))).sha256, first);
    assert.ok(readFileSync(TEMPLATE).equals(template), 'npm run package rewrote krew-manifest.yaml in the checkout');
  });

  it('the checker rejects what krew rejects', () => {
    const good = parse(readFileSync(MANIFEST, 'utf8'));
    assert.ok(
      validateKrewManifest(parse(template.toString('utf8')), 'contrast.yaml').some((p) =>
        /at least one platform/.test(p),
      ),
      'the template has no platforms of its own',
    );
    const bad = (edit: (m: any) => void, pattern: RegExp) => {
      const m = structuredClone(good);
      edit(m);
      const problems = validateKrewManifest(m, 'contrast.yaml');
      assert.ok(
        problems.some((p) => pattern.test(p)),
        `${pattern}: ${problems.join('; ')}`,
      );
    };
    bad((m) => {
      m.spec.version = VERSION;
    }, /leading "v"/);
    bad((m) => {
      m.spec.platforms[0].sha256 = 'ABC';
    }, /sha256/);
    bad((m) => {
      m.spec.platforms[0].selector.matchLabels.distro = 'x';
    }, /only use os and arch/);
    bad((m) => {
      m.spec.platforms.push(structuredClone(m.spec.platforms[0]));
    }, /overlap/);
    bad((m) => {
      m.spec.platforms[0].uri = 'https://x/y.exe';
    }, /tar\.gz or \.zip/);
    bad((m) => {
      delete m.spec.platforms[0].bin;
    }, /bin is required/);
    bad((m) => {
      m.spec.shortDescription = 'a\nb';
    }, /one line/);
    bad((m) => {
      m.spec.platforms[0].files = [];
    }, /must not be empty/);
    assert.ok(validateKrewManifest(good, 'kubectl-contrast.yaml').some((p) => /contrast\.yaml/.test(p)));
  });

  it('the installed files include the licence text (krew-index requirement) and an executable bin', () => {
    const license = readdirSync(installDir).find((f) => /^(license(\.txt|\.md)?|licenses.*|copying.*)$/i.test(f));
    assert.ok(license, readdirSync(installDir).join(', '));
    const text = readFileSync(join(installDir, license), 'utf8');
    assert.match(text, /Apache License\s+Version 2\.0, January 2004/);
    assert.match(text, /TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION/);
    assert.match(text, /END OF TERMS AND CONDITIONS/);
    assert.match(readFileSync(join(installDir, 'NOTICE'), 'utf8'), /Copyright \d{4} the kubectl-contrast authors/);
    accessSync(sea, constants.X_OK);
    accessSync(join(installDir, 'kubectl_complete-contrast'), constants.X_OK);
  });

  it('kubectl finds the installed plugin: kubectl contrast --version', () => {
    const env = { PATH: `${pathDir}${delimiter}${process.env.PATH}` };
    assert.equal(ok(run('kubectl', ['contrast', '--version'], { env }), 'kubectl contrast --version').trim(), VERSION);
    assert.match(
      ok(run('kubectl', ['contrast', '--help'], { env }), 'kubectl contrast --help'),
      /^kubectl contrast <command>/,
    );
  });

  it('krew install --manifest dist-sea/contrast.yaml --archive … into a temporary KREW_ROOT; completion after linking it', () => {
    const krew = tool('krew');
    const root = join(dir, 'krew-root');
    const env = { KREW_ROOT: root, KREW_NO_UPGRADE_CHECK: '1' };
    ok(run(krew, ['install', `--manifest=${MANIFEST}`, `--archive=${ARCHIVE}`], { env }), 'krew install');
    const pathEnv = { ...env, PATH: `${join(root, 'bin')}${delimiter}${process.env.PATH}` };
    assert.equal(
      ok(run('kubectl', ['contrast', '--version'], { env: pathEnv }), 'kubectl contrast --version').trim(),
      VERSION,
    );
    assert.ok(existsSync(join(root, 'receipts', 'contrast.yaml')), 'krew keeps a receipt of the install');
    // The link docs/krew.md and the caveats describe: krew links only `bin`.
    const store = dirname(realpathSync(join(root, 'bin', 'kubectl-contrast')));
    symlinkSync(join(store, 'kubectl_complete-contrast'), join(root, 'bin', 'kubectl_complete-contrast'));
    const completion = ok(run('kubectl_complete-contrast', ['gen'], { env: pathEnv }), 'kubectl_complete-contrast');
    assert.match(completion, /^generate$/m);
    // A manifest whose sha256 does not match the archive is refused.
    const wrong = readFileSync(MANIFEST, 'utf8').replace(/sha256: [0-9a-f]{64}/, `sha256: ${'0'.repeat(64)}`);
    const wrongPath = join(dir, 'contrast.yaml');
    execFileSync('sh', ['-c', 'cat > "$1"', 'sh', wrongPath], { input: wrong });
    const refused = run(krew, ['install', `--manifest=${wrongPath}`, `--archive=${ARCHIVE}`], {
      env: { KREW_ROOT: join(dir, 'krew-root-2'), KREW_NO_UPGRADE_CHECK: '1' },
    });
    assert.notEqual(refused.code, 0, 'krew installed an archive that does not match the manifest');
  });

  describe('same CLI behaviour as bin/kubectl-contrast', () => {
    function both(args: string[], input = '', env: NodeJS.ProcessEnv = {}) {
      const viaNode = spawnSync(process.execPath, [CLI, ...args], {
        input,
        encoding: 'utf8',
        env: { ...process.env, ...env },
        cwd: REPO_ROOT,
      });
      const viaSea = spawnSync(join(pathDir, 'kubectl-contrast'), args, {
        input,
        encoding: 'utf8',
        env: { ...process.env, ...env },
        cwd: REPO_ROOT,
      });
      return { node: viaNode, sea: viaSea };
    }

    it('--version, --help, usage errors, bad input', () => {
      for (const args of [
        ['--version'],
        ['generate', '--help'],
        ['generate', '--platform', 'nope'],
        ['nonsense'],
        ['__complete', 'gen'],
      ]) {
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
      const args = (ws: string) => [...simGenerateArgs(ws), '-'];
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

    it('with 20 pods, layer scans and self-check on worker threads from the executable’s own bundles: the same output', () => {
      // 16 pods and more go to the self-check worker; --no-cache makes every layer a scan.
      const web = readFileSync(join(REPO_ROOT, 'samples', 'plain', 'web.yaml'), 'utf8');
      const input = Array.from({ length: 20 }, (_, i) => web.replace(/^ {2}name: web$/m, `  name: web-${i}`)).join(
        '\n---\n',
      );
      const args = (ws: string) => [...simGenerateArgs(ws), '-'];
      const viaNode = spawnSync(process.execPath, [CLI, ...args(join(dir, 'ws-node-20'))], { input, encoding: 'utf8' });
      const viaSea = spawnSync(sea, args(join(dir, 'ws-sea-20')), { input, encoding: 'utf8' });
      assert.equal(viaNode.status, 0, viaNode.stderr);
      assert.equal(viaSea.status, 0, viaSea.stderr);
      assert.match(viaSea.stderr, /20 confidential workloads/);
      assert.equal(viaSea.stdout, viaNode.stdout);
    });

    it('helm-post-render and kustomize modes run from the single executable', () => {
      const input = readFileSync(join(REPO_ROOT, 'samples', 'plain', 'api.yaml'), 'utf8');
      const ws = join(dir, 'ws-pr');
      const r = spawnSync(
        sea,
        [
          'helm-post-render',
          '--platform',
          'insecure-sim',
          '--workspace-dir',
          ws,
          '--oci-layout',
          SAMPLE_IMAGES,
          '--offline',
          '--no-cache',
        ],
        { input, encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /contrast-cc-insecure-sim-/);
      const worker = readFileSync(join(REPO_ROOT, 'samples', 'plain', 'worker.yaml'), 'utf8');
      const list = `apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n${worker
        .split(/^---$/m)[0]!
        .replace(/^#.*\n/gm, '')
        .replace(/^/gm, '    ')
        .replace(
          /^ {4}/,
          '  - ',
        )}\nfunctionConfig:\n  kind: ContrastTransformer\n  spec: {platform: insecure-sim, workspaceDir: ${ws}, ociLayouts: [${SAMPLE_IMAGES}], offline: true, cache: false}\n`;
      const k = spawnSync(sea, ['kustomize'], { input: list, encoding: 'utf8' });
      assert.equal(k.status, 0, k.stderr);
      assert.match(k.stdout, /kind: ResourceList[\s\S]*contrast-cc-insecure-sim-/);
    });
  });
});

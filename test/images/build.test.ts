/**
 * npm run images (scripts/images/): the real images, from the single executable and the pinned
 * Debian packages. Two builds give the same digests; the images do not depend on the lock that
 * names them; a push lands in a real registry (Debian's docker-registry) and an independent
 * client (skopeo) reads back the very digests; the root filesystem runs what the images run.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildImages } from '../../scripts/images/build.js';
import { parsePinnedPackages } from '../../scripts/images/debian.js';
import { parseRegistryPrefix } from '../../scripts/images/push.js';
import { OUR_IMAGES } from '../../scripts/images/spec.js';
import { parseImageLock, replaceImage } from '../../src/platforms/images.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempDir } from './fixtures.js';

const DEB_CACHE = join(REPO_ROOT, '.cache', 'debs');
const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, ['--import=tsx', join(REPO_ROOT, 'scripts', 'images', 'build.ts'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    cwd: REPO_ROOT,
  });

describe('images: npm run images', function () {
  this.timeout(600_000);
  let tmp: ReturnType<typeof tempDir>;
  let registry: TestRegistry;
  let out: string;
  let stdout: string;
  before(async () => {
    tmp = tempDir();
    registry = await startRegistry();
    out = join(tmp.path, 'one');
    // The whole build as a user runs it: the executable (without its image lock) and the images.
    const r = run(['--out', out, '--push', `${registry.host}/mirror/kubectl-contrast`]);
    assert.equal(r.status, 0, r.stderr);
    stdout = r.stdout;
  });
  after(async () => {
    await registry?.stop();
    tmp?.remove();
  });

  it('prints and locks one pinned reference per image our manifests use', () => {
    const lock = parseImageLock(readFileSync(join(out, 'image-lock.json'), 'utf8'), 'image-lock.json');
    assert.deepEqual(stdout.trim().split('\n').sort(), Object.values(lock).sort());
    assert.deepEqual(Object.keys(lock).sort(), OUR_IMAGES.map((i) => i.key).sort());
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as {
      manifests: { digest: string; annotations: Record<string, string> }[];
    };
    for (const ref of Object.values(lock)) {
      const [name, digest] = ref.split('@') as [string, string];
      assert.ok(
        index.manifests.some((m) => m.digest === digest && m.annotations['org.opencontainers.image.ref.name'] === name),
        ref,
      );
    }
  });

  it('builds the same digests again, whatever lock the package holds (the images do not carry it)', async () => {
    const exe = join(REPO_ROOT, '.cache', 'images-sea', 'work', 'archive', 'kubectl-contrast');
    // The executable inside the images has no image lock: asked for an image, it says so.
    const noLock = spawnSync(exe, ['runtime', 'render', '--platform', 'insecure-sim'], {
      encoding: 'utf8',
      env: { ...process.env, CONTRAST_IMAGE_LOCK: '' },
    });
    assert.notEqual(noLock.status, 0);
    assert.match(noLock.stderr, /cannot read the image lock: ENOENT/);
    const again = await buildImages({ executable: readFileSync(exe), debCache: DEB_CACHE });
    assert.equal(again.lock, readFileSync(join(out, 'image-lock.json'), 'utf8'));
    const two = join(tmp.path, 'two');
    again.layout.write(two);
    assert.ok(readFileSync(join(two, 'index.json')).equals(readFileSync(join(out, 'index.json'))));
  });

  it('pushed every image; skopeo reads back the same digests and a replacements line points there', async () => {
    const lock = parseImageLock(readFileSync(join(out, 'image-lock.json'), 'utf8'), 'image-lock.json');
    const replacements = new Map(
      readFileSync(join(out, 'image-replacements.txt'), 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.split('=') as [string, string]),
    );
    for (const ref of Object.values(lock)) {
      const moved = replaceImage(ref, replacements);
      assert.equal(moved, ref.replace('ghcr.io/kubectl-contrast/', `${registry.host}/mirror/kubectl-contrast/`));
      const byTag = moved.split('@')[0]!;
      const r = await execa(
        'skopeo',
        ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${byTag}`],
        { env: { ...process.env, HOME: tmp.path } },
      );
      assert.equal(r.stdout.trim(), ref.split('@')[1], byTag);
    }
    const pulled = join(tmp.path, 'pulled');
    mkdirSync(pulled);
    await execa(
      'skopeo',
      [
        'copy',
        '--quiet',
        '--insecure-policy',
        '--src-tls-verify=false',
        `docker://${replaceImage(lock.coordinator, replacements).replace(/:v[^@]+@/, '@')}`,
        `oci:${pulled}:c`,
      ],
      { env: { ...process.env, HOME: tmp.path } },
    );
    const index = JSON.parse(readFileSync(join(pulled, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0]!.digest, lock.coordinator.split('@')[1]);
  });

  it('the main job (scripts/run-sample.sh): generate injects the images just built, offline', () => {
    const lockFile = join(out, 'image-lock.json');
    const lock = parseImageLock(readFileSync(lockFile, 'utf8'), lockFile);
    const ws = join(tmp.path, 'sample');
    const args = ['generate', '--platform', 'metal-qemu-snp', '--workspace-dir', ws, '--offline'];
    const samples = [
      '--oci-layout',
      join(REPO_ROOT, 'samples', 'images'),
      '-o',
      join(ws, 'resources.yaml'),
      'samples/plain',
    ];
    // Without the built layout the images the lock names are nowhere: refused, and it says where to get them.
    const missing = runCli([...args, ...samples], { env: { CONTRAST_IMAGE_LOCK: lockFile } });
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /could not be resolved[\s\S]*--oci-layout/);
    const r = runCli([...args, '--oci-layout', out, ...samples], { env: { CONTRAST_IMAGE_LOCK: lockFile } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /4 confidential workloads written/);
    const resources = readFileSync(join(ws, 'resources.yaml'), 'utf8');
    for (const key of ['initializer', 'serviceMesh'] as const)
      assert.ok(resources.includes(lock[key]), `${key} ${lock[key]} not injected`);
  });

  it('the root filesystems run what the images run (Node, iptables, test, catatonit)', function () {
    if (process.getuid?.() !== 0) this.skip();
    const lock = parseImageLock(readFileSync(join(out, 'image-lock.json'), 'utf8'), 'image-lock.json');
    const rootfs = (key: 'serviceMesh' | 'pause'): string => {
      const dir = join(tmp.path, `rootfs-${key}`);
      mkdirSync(dir);
      const manifest = JSON.parse(
        readFileSync(join(out, 'blobs', 'sha256', lock[key].split('@sha256:')[1]!), 'utf8'),
      ) as { layers: { digest: string }[] };
      for (const l of manifest.layers)
        execFileSync('tar', ['-xzf', join(out, 'blobs', 'sha256', l.digest.slice(7)), '-C', dir]);
      return dir;
    };
    const mesh = rootfs('serviceMesh');
    assert.equal(
      execFileSync('chroot', [mesh, '/usr/bin/kubectl-contrast', '--version'], { encoding: 'utf8' }).trim(),
      '0.1.0',
    );
    assert.match(execFileSync('chroot', [mesh, 'iptables', '--version'], { encoding: 'utf8' }), /nf_tables/);
    assert.equal(spawnSync('chroot', [mesh, 'test', '-f', '/etc/ssl/certs/ca-certificates.crt']).status, 0);
    assert.equal(spawnSync('chroot', [mesh, '/bin/test', '-f', '/ready']).status, 1);
    assert.match(readFileSync(join(mesh, 'etc', 'passwd'), 'utf8'), /^nobody:x:65534:65534:/m);
    const pause = rootfs('pause');
    assert.match(
      spawnSync('chroot', [pause, '/usr/bin/catatonit', '--version'], { encoding: 'utf8' }).stdout +
        spawnSync('chroot', [pause, '/usr/bin/catatonit', '--version'], { encoding: 'utf8' }).stderr,
      /catatonit/,
    );
  });
});

describe('images: pins and push targets', () => {
  it('reads the committed Debian pins and refuses malformed ones', () => {
    const text = readFileSync(join(REPO_ROOT, 'scripts', 'images', 'debian-packages.txt'), 'utf8');
    const pins = parsePinnedPackages(text, 'f');
    for (const spec of OUR_IMAGES) assert.ok(spec.packages.length > 0);
    assert.ok(pins.get('libc6'));
    const sha = 'a'.repeat(64);
    assert.throws(() => parsePinnedPackages(`libc6 1.0 ${sha}\nlibc6 1.1 ${sha}\n`, 'f'), /f:2: libc6 is pinned twice/);
    assert.throws(() => parsePinnedPackages(`libc6 1.0\n`, 'f'), /f:1: expected "name version sha256"/);
    assert.throws(() => parsePinnedPackages(`libc6 1.0 ${sha.toUpperCase()}\n`, 'f'), /64 lower-case hex/);
    assert.throws(() => parsePinnedPackages(`../x 1.0 ${sha}\n`, 'f'), /not a Debian package name/);
    assert.throws(() => parsePinnedPackages(`xx 1.0;rm ${sha}\n`, 'f'), /not a Debian version/);
  });

  it('refuses a .deb whose bytes differ from the pin, and drops it from the cache', async () => {
    const { fetchPackage } = await import('../../scripts/images/debian.js');
    const tmp = tempDir();
    try {
      const pin = { name: 'netbase', version: '6.4', sha256: '0'.repeat(64) };
      mkdirSync(tmp.path, { recursive: true });
      writeFileSync(join(tmp.path, `netbase_6.4_${'0'.repeat(16)}.deb`), 'not the package');
      assert.throws(
        () => fetchPackage(pin, tmp.path),
        /netbase 6\.4: the \.deb has SHA-256 [0-9a-f]{64}, the pin says 0{64}; removed it/,
      );
    } finally {
      tmp.remove();
    }
  });

  it('parses registry prefixes strictly', () => {
    assert.deepEqual(parseRegistryPrefix('127.0.0.1:5000/a/b'), { host: '127.0.0.1:5000', path: 'a/b' });
    assert.deepEqual(parseRegistryPrefix('registry.example'), { host: 'registry.example', path: '' });
    for (const bad of ['', 'http://x/y', 'x/Y', 'x//y', 'x/../y', 'x y'])
      assert.throws(() => parseRegistryPrefix(bad), /not a registry prefix/, bad);
  });
});

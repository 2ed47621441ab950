import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSampleLayout, sampleImageLock } from '../../scripts/build-sample-images.js';
import { defaultCacheDir, ImageResolver } from '../../src/images/index.js';
import { GROUP, PASSWD, basicImage, tempDir, writeIndexLayout, writeLayout } from './fixtures.js';

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? listFiles(p, `${prefix}${n}/`) : [`${prefix}${n}`];
    });
}

describe('images: OCI layout source and cache', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.remove());

  it('finds images by full reference and by bare tag', async () => {
    const a = basicImage('a');
    const b = basicImage('b');
    writeLayout(join(tmp.path, 'full'), [{ ref: 'ghcr.io/x/a:1.0', image: a }]);
    writeLayout(join(tmp.path, 'bare'), [{ ref: '2.0', image: b }]);
    const r = new ImageResolver({
      ociLayouts: [join(tmp.path, 'full'), join(tmp.path, 'bare')],
      cacheDir: join(tmp.path, 'cache'),
      offline: true,
      progress: false,
    });
    const ra = await r.resolve('ghcr.io/x/a:1.0');
    assert.equal(ra.manifestDigest, a.descriptor.digest);
    assert.equal(ra.configDigest, a.configDescriptor.digest);
    assert.equal(ra.pinned, `ghcr.io/x/a:1.0@${a.descriptor.digest}`);
    assert.deepEqual(ra.config, {
      User: 'app',
      Entrypoint: ['/bin/app'],
      Cmd: ['a'],
      Env: ['PATH=/bin', 'MARKER=a'],
      WorkingDir: '/work',
    });
    assert.equal(ra.passwd, PASSWD);
    assert.equal(ra.group, GROUP);
    const rb = await r.resolve('example.com/whatever/b:2.0');
    assert.equal(rb.manifestDigest, b.descriptor.digest);
    assert.equal(rb.pinned, `example.com/whatever/b:2.0@${b.descriptor.digest}`);
  });

  it('normalises Docker Hub names in annotations and references alike', async () => {
    const a = basicImage('hub');
    writeLayout(tmp.path, [{ ref: 'docker.io/library/nginx:1.27', image: a }]);
    const r = new ImageResolver({ ociLayouts: [tmp.path], cacheDir: false, offline: true });
    const res = await r.resolve('nginx:1.27');
    assert.equal(res.reference, 'nginx:1.27');
    assert.equal(res.pinned, `docker.io/library/nginx:1.27@${a.descriptor.digest}`);
  });

  it('resolves a digest-pinned reference and keeps its tag', async () => {
    const a = basicImage('pinned');
    writeLayout(tmp.path, [{ ref: 'ghcr.io/x/p:1', image: a }]);
    const r = new ImageResolver({ ociLayouts: [tmp.path], cacheDir: false, offline: true });
    const res = await r.resolve(`ghcr.io/x/p:1@${a.descriptor.digest}`);
    assert.equal(res.pinned, `ghcr.io/x/p:1@${a.descriptor.digest}`);
    await assert.rejects(r.resolve(`ghcr.io/x/p:1@sha256:${'1'.repeat(64)}`), /ghcr\.io\/x\/p:1@sha256:1111/);
  });

  it('picks the configured platform from an index in a layout', async () => {
    const { index, images } = writeIndexLayout(tmp.path, 'ghcr.io/x/multi:1', [
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'amd64' },
    ]);
    const amd = await new ImageResolver({ ociLayouts: [tmp.path], cacheDir: false, offline: true }).resolve(
      'ghcr.io/x/multi:1',
    );
    assert.equal(amd.manifestDigest, images[1]!.descriptor.digest);
    assert.equal(amd.indexDigest, index.descriptor.digest);
    assert.deepEqual(amd.config.Cmd, ['amd64']);
    const arm = await new ImageResolver({
      ociLayouts: [tmp.path],
      cacheDir: false,
      offline: true,
      platform: { os: 'linux', architecture: 'arm64' },
    }).resolve('ghcr.io/x/multi:1');
    assert.equal(arm.manifestDigest, images[0]!.descriptor.digest);
    await assert.rejects(
      new ImageResolver({
        ociLayouts: [tmp.path],
        cacheDir: false,
        offline: true,
        platform: { os: 'linux', architecture: 's390x' },
      }).resolve('ghcr.io/x/multi:1'),
      (err: Error) =>
        err.message.includes('ghcr.io/x/multi:1') &&
        err.message.includes('linux/s390x') &&
        err.message.includes('linux/arm64/v8'),
    );
  });

  it('reports an image missing from every source, naming it', async () => {
    writeLayout(tmp.path, [{ ref: 'ghcr.io/x/a:1', image: basicImage('a') }]);
    const r = new ImageResolver({ ociLayouts: [tmp.path], cacheDir: join(tmp.path, 'cache'), offline: true });
    await assert.rejects(
      r.resolve('ghcr.io/x/missing:1'),
      (err: Error) =>
        err.name === 'UserError' && err.message.includes('ghcr.io/x/missing:1') && err.message.includes('offline'),
    );
  });

  it('rejects a corrupted blob in a layout', async () => {
    const a = basicImage('a');
    writeLayout(tmp.path, [{ ref: 'ghcr.io/x/a:1', image: a }]);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(tmp.path, 'blobs', 'sha256', a.configDescriptor.digest.slice(7)), '{"config":{"User":"root"}}');
    await assert.rejects(
      new ImageResolver({ ociLayouts: [tmp.path], cacheDir: false }).resolve('ghcr.io/x/a:1'),
      /ghcr\.io\/x\/a:1.*digest/s,
    );
  });

  it('caches the scan result by config digest', async () => {
    const a = basicImage('a');
    writeLayout(join(tmp.path, 'l'), [{ ref: 'ghcr.io/x/a:1', image: a }]);
    const cacheDir = join(tmp.path, 'cache');
    await new ImageResolver({ ociLayouts: [join(tmp.path, 'l')], cacheDir }).resolve('ghcr.io/x/a:1');
    const rootfs = JSON.parse(
      readFileSync(join(cacheDir, 'images', 'v1', 'rootfs', `${a.configDescriptor.digest.slice(7)}.json`), 'utf8'),
    ) as Record<string, string>;
    assert.equal(rootfs['passwd'], PASSWD);
  });

  it('resolveAll deduplicates and keys results by the references as given', async () => {
    const a = basicImage('a');
    writeLayout(tmp.path, [{ ref: 'docker.io/library/app:1', image: a }]);
    const r = new ImageResolver({ ociLayouts: [tmp.path], cacheDir: false, offline: true });
    const m = await r.resolveAll(['app:1', 'docker.io/library/app:1', 'app:1']);
    assert.deepEqual([...m.keys()], ['app:1', 'docker.io/library/app:1']);
    assert.equal(m.get('app:1')!.reference, 'app:1');
    assert.equal(m.get('docker.io/library/app:1')!.manifestDigest, a.descriptor.digest);
  });

  it('refuses a bare tag that names different images, and prefers a full-name match', async () => {
    writeLayout(join(tmp.path, 'one'), [{ ref: '1.0', image: basicImage('one') }]);
    writeLayout(join(tmp.path, 'two'), [{ ref: '1.0', image: basicImage('two') }]);
    const both = new ImageResolver({
      ociLayouts: [join(tmp.path, 'one'), join(tmp.path, 'two')],
      cacheDir: false,
      offline: true,
    });
    await assert.rejects(
      both.resolve('ghcr.io/x/app:1.0'),
      (err: Error) => err.message.includes('ghcr.io/x/app:1.0') && /bare tag "1\.0"/.test(err.message),
    );
    const full = basicImage('full');
    writeLayout(join(tmp.path, 'three'), [{ ref: 'ghcr.io/x/app:1.0', image: full }]);
    const r = new ImageResolver({
      ociLayouts: [join(tmp.path, 'one'), join(tmp.path, 'two'), join(tmp.path, 'three')],
      cacheDir: false,
      offline: true,
    });
    assert.equal((await r.resolve('ghcr.io/x/app:1.0')).manifestDigest, full.descriptor.digest);
  });

  it('resolveAll reports every failing image at once', async () => {
    writeLayout(tmp.path, [{ ref: 'ghcr.io/x/ok:1', image: basicImage('ok') }]);
    const r = new ImageResolver({ ociLayouts: [tmp.path], cacheDir: false, offline: true });
    await assert.rejects(
      r.resolveAll(['ghcr.io/x/ok:1', 'ghcr.io/x/gone:1', 'ghcr.io/x/lost:2', 'Bad Ref']),
      (err: Error) =>
        err.message.startsWith('3 images could not be resolved') &&
        ['ghcr.io/x/gone:1', 'ghcr.io/x/lost:2', '"Bad Ref"'].every((s) => err.message.includes(s)),
    );
  });

  it('reports a directory that is not an OCI layout', async () => {
    await assert.rejects(
      new ImageResolver({ ociLayouts: [tmp.path], cacheDir: false, offline: true }).resolve('x:1'),
      (err: Error) => err.name === 'UserError' && err.message.includes(tmp.path) && /oci-layout/.test(err.message),
    );
  });

  it('default cache directory follows CONTRAST_CACHE_DIR, then XDG_CACHE_HOME', () => {
    assert.equal(defaultCacheDir({ CONTRAST_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' }), '/c');
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/kubectl-contrast');
    assert.match(defaultCacheDir({}), /\.cache\/kubectl-contrast$/);
  });

  describe('sample images', () => {
    const samples = join(import.meta.dirname, '..', '..', 'samples', 'images');

    it('the committed layout is exactly what the builder produces (deterministic)', () => {
      for (const d of ['one', 'two']) {
        buildSampleLayout().write(join(tmp.path, d));
        writeFileSync(join(tmp.path, d, 'image-lock.json'), sampleImageLock());
      }
      const files = listFiles(join(tmp.path, 'one'));
      assert.deepEqual(listFiles(join(tmp.path, 'two')), files);
      assert.deepEqual(listFiles(samples), files);
      for (const f of files) {
        const fresh = readFileSync(join(tmp.path, 'one', f));
        assert.ok(fresh.equals(readFileSync(join(tmp.path, 'two', f))), f);
        assert.ok(
          fresh.equals(readFileSync(join(samples, f))),
          `samples/images/${f} is stale; run npx tsx scripts/build-sample-images.ts`,
        );
      }
    });

    it('every sample resolves offline with the expected user', async () => {
      const r = new ImageResolver({ ociLayouts: [samples], cacheDir: false, offline: true });
      const m = await r.resolveAll([
        'ghcr.io/kubectl-contrast/samples/web:1.0',
        'ghcr.io/kubectl-contrast/samples/api:1.0',
        'ghcr.io/kubectl-contrast/samples/worker:1.0',
        'ghcr.io/kubectl-contrast/initializer:v0.1.0',
        'ghcr.io/kubectl-contrast/service-mesh-proxy:v0.1.0',
        'ghcr.io/kubectl-contrast/pause:v0.1.0',
      ]);
      assert.equal(m.get('ghcr.io/kubectl-contrast/samples/web:1.0')!.config.User, '101');
      assert.match(m.get('ghcr.io/kubectl-contrast/samples/api:1.0')!.passwd!, /^app:x:1000:1000:/m);
      const pause = m.get('ghcr.io/kubectl-contrast/pause:v0.1.0')!;
      assert.deepEqual(pause.config.Entrypoint, ['/usr/bin/catatonit', '-P']);
      assert.deepEqual(m.get('ghcr.io/kubectl-contrast/initializer:v0.1.0')!.config.Entrypoint, [
        '/usr/bin/kubectl-contrast',
        'initializer',
      ]);
      assert.equal(pause.config.User, '65535:65535');
      for (const img of m.values())
        assert.ok(statSync(join(samples, 'blobs', 'sha256', img.manifestDigest.slice(7))).size < 4096);
    });
  });
});

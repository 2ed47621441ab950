import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { ImageResolver } from '../../src/images/index.js';
import { buildTar, type LayerEntry } from '../../src/images/oci-build.js';
import { GROUP, PASSWD, basicImage, image, tempDir, writeLayout } from './fixtures.js';

describe('images: docker save archives', function () {
  this.timeout(60_000);
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.remove());

  const quiet = (): { warnings: string[]; warn: (m: string) => void } => {
    const warnings: string[] = [];
    return { warnings, warn: (m) => warnings.push(m) };
  };

  it('reads a legacy archive written by skopeo (uncompressed layers, symlinked layer paths)', async () => {
    const a = image(
      [
        [
          { path: 'etc/passwd', content: PASSWD },
          { path: 'etc/group', content: GROUP },
        ],
        [
          { path: 'etc/.wh.group', content: '' },
          { path: 'app/bin', content: 'x' },
        ],
      ],
      { User: 'app', Entrypoint: ['/app/bin'] },
    );
    writeLayout(join(tmp.path, 'layout'), [{ ref: 'a', image: a }]);
    const archive = join(tmp.path, 'a.tar');
    await execa(
      'skopeo',
      [
        'copy',
        '--quiet',
        '--insecure-policy',
        `oci:${join(tmp.path, 'layout')}:a`,
        `docker-archive:${archive}:registry.example.com/team/a:2.1`,
      ],
      { stdin: 'ignore' },
    );
    const { warnings: messages, warn } = quiet();
    const r = new ImageResolver({ dockerArchives: [archive], cacheDir: false, offline: true, warn });
    const res = await r.resolve('registry.example.com/team/a:2.1');
    assert.equal(res.configDigest, a.configDescriptor.digest);
    assert.equal(res.passwd, PASSWD);
    assert.equal(res.group, undefined);
    assert.deepEqual(res.config.Entrypoint, ['/app/bin']);
    assert.match(res.pinned, /^registry\.example\.com\/team\/a:2\.1@sha256:[a-f0-9]{64}$/);
    assert.ok(
      messages.some((m) => /synthesised/.test(m)),
      'warns that the digest is synthesised',
    );
  });

  it('reads a Docker 25+ archive (OCI layout inside) with the real digests', async () => {
    const a = basicImage('oci-in-tar');
    const b = basicImage('other');
    const entries: LayerEntry[] = [
      { path: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
      {
        path: 'index.json',
        content: JSON.stringify({
          schemaVersion: 2,
          manifests: [
            {
              ...a.descriptor,
              annotations: {
                'io.containerd.image.name': 'docker.io/library/app:3',
                'org.opencontainers.image.ref.name': '3',
              },
            },
            {
              ...b.descriptor,
              annotations: {
                'io.containerd.image.name': 'docker.io/team/other:1',
                'org.opencontainers.image.ref.name': '1',
              },
            },
          ],
        }),
      },
      { path: 'manifest.json', content: '[]' },
      ...[...a.blobs, ...b.blobs].map(([d, data]) => ({ path: `blobs/sha256/${d.slice(7)}`, content: data })),
    ];
    const archive = join(tmp.path, 'new.tar');
    writeFileSync(archive, buildTar(entries));
    const r = new ImageResolver({ dockerArchives: [archive], cacheDir: false, offline: true, warn: quiet().warn });
    const m = await r.resolveAll(['app:3', 'team/other:1']);
    assert.equal(m.get('app:3')!.pinned, `docker.io/library/app:3@${a.descriptor.digest}`);
    assert.equal(m.get('app:3')!.passwd, PASSWD);
    assert.equal(m.get('team/other:1')!.manifestDigest, b.descriptor.digest);
  });

  it('rejects a compressed archive and a file that is not an archive, naming the file', async () => {
    const gz = join(tmp.path, 'image.tar.gz');
    writeFileSync(gz, gzipSync(buildTar([{ path: 'manifest.json', content: '[]' }])));
    await assert.rejects(
      new ImageResolver({ dockerArchives: [gz], cacheDir: false, offline: true }).resolve('x:1'),
      (err: Error) => err.message.includes(gz) && /gunzip|decompress/.test(err.message),
    );
    const junk = join(tmp.path, 'junk.tar');
    writeFileSync(junk, Buffer.alloc(2048, 7));
    await assert.rejects(
      new ImageResolver({ dockerArchives: [junk], cacheDir: false, offline: true }).resolve('x:1'),
      (err: Error) => err.message.includes(junk),
    );
  });
});

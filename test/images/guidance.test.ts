/**
 * The image errors a new user meets offline or with a local registry (issue 14 item 4): they
 * name the flags that help, and the skopeo command they print works as written.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { execa } from 'execa';
import { ImageResolver } from '../../src/images/index.js';
import { pushLayout, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { basicImage, tempDir, writeLayout } from './fixtures.js';

const FAST_RETRY = { baseDelayMs: 5, maxDelayMs: 20 };

describe('images: guidance in error messages', function () {
  this.timeout(120_000);
  let tmp: ReturnType<typeof tempDir>;
  before(() => {
    tmp = tempDir();
  });
  after(() => tmp.remove());

  const resolver = (extra: ConstructorParameters<typeof ImageResolver>[0] = {}) =>
    new ImageResolver({
      cacheDir: join(tmp.path, 'cache'),
      progress: false,
      retry: FAST_RETRY,
      dockerConfigPath: join(tmp.path, 'no-config.json'),
      ...extra,
    });

  describe('an image missing offline', () => {
    let reg: TestRegistry;
    before(async () => {
      reg = await startRegistry();
      writeLayout(join(tmp.path, 'src'), [{ ref: 'app', image: basicImage('app') }]);
      await pushLayout(join(tmp.path, 'src'), 'app', `${reg.host}/team/app:1.0`);
    });
    after(async () => {
      await reg.stop();
    });

    it('names --oci-layout, --docker-archive and a skopeo copy that fills a layout the resolver then finds', async () => {
      const ref = `${reg.host}/team/app:1.0`;
      const err = await resolver({ offline: true })
        .resolveAll([ref, `${reg.host}/team/other:2.0`])
        .then(
          () => undefined,
          (e: Error) => e,
        );
      assert.ok(err, 'resolution fails offline');
      assert.match(err.message, /2 images could not be resolved/);
      assert.match(err.message, /--oci-layout DIR/);
      assert.match(err.message, /--docker-archive FILE/);
      const copy = /skopeo copy (docker:\/\/\S+) (oci:DIR:\S+)/.exec(err.message);
      assert.ok(copy, err.message);
      assert.equal(copy[1], `docker://${ref}`);

      // Follow the hint (the registry speaks plain HTTP here, hence --src-tls-verify=false).
      const layout = join(tmp.path, 'filled');
      await execa(
        'skopeo',
        ['copy', '--quiet', '--insecure-policy', '--src-tls-verify=false', copy[1]!, copy[2]!.replace('DIR', layout)],
        { env: { ...process.env, HOME: tmp.path }, stdin: 'ignore' },
      );
      const found = await resolver({ offline: true, ociLayouts: [layout] }).resolveAll([ref]);
      assert.equal(found.get(ref)!.source, `OCI layout ${layout}`);
    });

    it('a digest-pinned reference gets a skopeo source without the tag (skopeo takes one or the other)', async () => {
      const ref = `ghcr.io/acme/web:1.0@sha256:${'a'.repeat(64)}`;
      const err = await resolver({ offline: true })
        .resolveAll([ref])
        .then(
          () => undefined,
          (e: Error) => e,
        );
      assert.match(err!.message, /not in the image cache and --offline is set/);
      assert.match(
        err!.message,
        new RegExp(`skopeo copy docker://ghcr\\.io/acme/web@sha256:a{64} oci:DIR:ghcr\\.io/acme/web:1\\.0\\n`),
      );
    });

    it('other failures get no offline advice', async () => {
      const err = await resolver({ offline: true })
        .resolveAll(['bad reference!', 'Upper/Case'])
        .then(
          () => undefined,
          (e: Error) => e,
        );
      assert.ok(err);
      assert.doesNotMatch(err.message, /skopeo/);
    });
  });

  describe('a plain-HTTP registry reached over HTTPS', () => {
    let server: Server;
    let host: string;
    let connections = 0;
    before(async () => {
      server = createServer((_req, res) => {
        res.end('{}');
      });
      server.on('connection', () => {
        connections++;
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      host = `127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    after(() => {
      server.close();
    });

    it('says the registry seems to speak HTTP and names --insecure-registry HOST, without retrying', async () => {
      const err = await resolver({ retry: { ...FAST_RETRY, attempts: 5 } })
        .resolveAll([`${host}/team/app:1.0`])
        .then(
          () => undefined,
          (e: Error) => e,
        );
      assert.ok(err);
      assert.match(
        err.message,
        new RegExp(
          `cannot reach ${host}: EPROTO.*seems to speak plain HTTP.*--insecure-registry ${host.replace(/\./g, '\\.')}`,
          's',
        ),
      );
      assert.equal(connections, 1, 'one attempt: the same handshake fails the same way every time');
    });
  });
});

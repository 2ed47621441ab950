/**
 * Image resolution against a real registry (Debian's docker-registry on loopback), with
 * images built here as OCI layouts and pushed with skopeo.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageResolver, type ImageResolverOptions, type ResolvedImage } from '../../src/images/index.js';
import { busySockets } from '../../src/images/http.js';
import {
  freePort,
  pushLayout,
  startProxy,
  startRegistry,
  type CountingProxy,
  type TestRegistry,
} from '../helpers/registry.js';
import { GROUP, PASSWD, basicImage, image, tempDir, writeIndexLayout, writeLayout } from './fixtures.js';

const FAST_RETRY = { baseDelayMs: 5, maxDelayMs: 20 };

const withoutSource = (m: Map<string, ResolvedImage>): Map<string, ResolvedImage> =>
  new Map([...m].map(([k, { source: _ignored, ...rest }]) => [k, rest]));

describe('images: registry source', function () {
  this.timeout(120_000);
  let tmp: ReturnType<typeof tempDir>;
  let reg: TestRegistry;
  const a = basicImage('a');
  const b = basicImage('b', 'root');
  const layered = image(
    [
      [
        { path: 'etc/passwd', content: PASSWD },
        { path: 'etc/group', content: GROUP },
        { path: 'bin/sh', content: '#!' },
      ],
      [{ path: 'etc/.wh.passwd', content: '' }],
      [{ path: 'usr/share/doc/readme', content: 'docs' }],
    ],
    { User: '0' },
  );
  let platforms: ReturnType<typeof writeIndexLayout>;
  // two images on one base layer
  const baseEntries = [
    { path: 'etc/passwd', content: PASSWD },
    { path: 'etc/group', content: GROUP },
  ];
  const shared1 = image([baseEntries, [{ path: 'app/one', content: '1' }]]);
  const shared2 = image([baseEntries, [{ path: 'app/two', content: '2' }]]);
  // passwd and group at the start of one big layer: the download stops right after them
  const early = image([
    [
      { path: 'etc/group', content: GROUP },
      { path: 'etc/passwd', content: PASSWD },
      { path: 'zz/data', content: randomBytes(6_000_000) },
    ],
  ]);
  // passwd at the bottom, a top layer of incompressible data that must be read through
  const big = image([
    [
      { path: 'etc/passwd', content: PASSWD },
      { path: 'etc/group', content: GROUP },
    ],
    [{ path: 'data/blob', content: randomBytes(400_000) }],
  ]);

  const resolver = (extra: ImageResolverOptions = {}): ImageResolver =>
    new ImageResolver({
      insecureRegistries: [reg.host],
      cacheDir: join(tmp.path, 'cache'),
      progress: false,
      retry: FAST_RETRY,
      dockerConfigPath: join(tmp.path, 'no-config.json'),
      ...extra,
    });

  before(async () => {
    tmp = tempDir();
    reg = await startRegistry();
    writeLayout(join(tmp.path, 'layout'), [
      { ref: 'a', image: a },
      { ref: 'b', image: b },
      { ref: 'layered', image: layered },
      { ref: 'big', image: big },
      { ref: 'early', image: early },
      { ref: 'shared1', image: shared1 },
      { ref: 'shared2', image: shared2 },
    ]);
    platforms = writeIndexLayout(join(tmp.path, 'multi'), 'multi', [
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'ppc64le' },
    ]);
    await Promise.all([
      pushLayout(join(tmp.path, 'layout'), 'a', `${reg.host}/team/a:1.0`),
      pushLayout(join(tmp.path, 'layout'), 'a', `${reg.host}/team/a:also`),
      pushLayout(join(tmp.path, 'layout'), 'b', `${reg.host}/team/b:1.0`),
      pushLayout(join(tmp.path, 'layout'), 'layered', `${reg.host}/team/layered:1.0`),
      pushLayout(join(tmp.path, 'layout'), 'big', `${reg.host}/team/big:1.0`),
      pushLayout(join(tmp.path, 'layout'), 'early', `${reg.host}/team/early:1.0`),
      pushLayout(join(tmp.path, 'layout'), 'shared1', `${reg.host}/team/shared1:1.0`),
      pushLayout(join(tmp.path, 'layout'), 'shared2', `${reg.host}/team/shared2:1.0`),
      pushLayout(join(tmp.path, 'multi'), 'multi', `${reg.host}/team/multi:1.0`, { all: true }),
    ]);
  });
  after(async () => {
    await reg?.stop();
    tmp?.remove();
  });
  beforeEach(() => mkdirSync(join(tmp.path, 'cache'), { recursive: true }));
  afterEach(async () => {
    const { rmSync } = await import('node:fs');
    rmSync(join(tmp.path, 'cache'), { recursive: true, force: true });
  });

  it('resolves a tag to the manifest digest, config, passwd and group', async () => {
    const res = await resolver().resolve(`${reg.host}/team/a:1.0`);
    assert.equal(res.manifestDigest, a.descriptor.digest);
    assert.equal(res.configDigest, a.configDescriptor.digest);
    assert.equal(res.pinned, `${reg.host}/team/a:1.0@${a.descriptor.digest}`);
    assert.equal(res.config.User, 'app');
    assert.deepEqual(res.config.Cmd, ['a']);
    assert.equal(res.passwd, PASSWD);
    assert.equal(res.group, GROUP);
    assert.equal(res.source, `registry ${reg.host}`);
  });

  it('stops downloading a layer once passwd and group are found', async () => {
    const r = resolver({ cacheDir: false });
    const res = await r.resolve(`${reg.host}/team/early:1.0`);
    assert.equal(res.passwd, PASSWD);
    assert.equal(res.group, GROUP);
    assert.equal(r.stats.layersScanned, 1);
    assert.ok(r.stats.bytesRead < 2_000_000, `read ${r.stats.bytesRead} of about 6 MB`);
  });

  it('applies whiteouts across layers fetched from the registry', async () => {
    const res = await resolver().resolve(`${reg.host}/team/layered:1.0`);
    assert.equal(res.passwd, undefined);
    assert.equal(res.group, GROUP);
  });

  it('chooses linux/amd64 from a multi-platform index by default, another platform on request', async () => {
    const amd = await resolver().resolve(`${reg.host}/team/multi:1.0`);
    assert.equal(amd.manifestDigest, platforms.images[1]!.descriptor.digest);
    assert.equal(amd.indexDigest, platforms.index.descriptor.digest);
    assert.equal(amd.pinned, `${reg.host}/team/multi:1.0@${platforms.images[1]!.descriptor.digest}`);
    assert.deepEqual(amd.config.Cmd, ['amd64']);
    const arm = await resolver({ platform: { os: 'linux', architecture: 'arm64' } }).resolve(
      `${reg.host}/team/multi:1.0`,
    );
    assert.deepEqual(arm.config.Cmd, ['arm64v8']);
    assert.match(arm.passwd!, /^arch:x:1000:/m);
    await assert.rejects(
      resolver({ platform: { os: 'windows', architecture: 'amd64' } }).resolve(`${reg.host}/team/multi:1.0`),
      (err: Error) => err.message.includes(`${reg.host}/team/multi:1.0`) && err.message.includes('linux/ppc64le'),
    );
  });

  it("resolves a reference pinned to an index digest and keeps the user's digest", async () => {
    const ref = `${reg.host}/team/multi:1.0@${platforms.index.descriptor.digest}`;
    const res = await resolver().resolve(ref);
    assert.equal(res.pinned, ref);
    assert.equal(res.manifestDigest, platforms.images[1]!.descriptor.digest);
  });

  it('names the image when it does not exist, without retrying', async () => {
    const proxy = await startProxy(reg.host);
    try {
      const r = resolver({ insecureRegistries: [proxy.host] });
      await assert.rejects(
        r.resolve(`${proxy.host}/team/nothing:1.0`),
        (err: Error) =>
          err.name === 'UserError' &&
          err.message.includes(`${proxy.host}/team/nothing:1.0`) &&
          /not found/.test(err.message),
      );
      await assert.rejects(r.resolve(`${proxy.host}/team/a:no-such-tag`), (err: Error) =>
        err.message.includes('team/a:no-such-tag'),
      );
      assert.equal(proxy.requests.filter((q) => q.includes('nothing')).length, 1);
    } finally {
      await proxy.close();
    }
  });

  describe('cache and offline mode', () => {
    it('a second run resolves from the cache alone when the registry is gone', async () => {
      const refs = [
        `${reg.host}/team/a:1.0`,
        `${reg.host}/team/multi:1.0`,
        `${reg.host}/team/b:1.0@${b.descriptor.digest}`,
      ];
      const first = await resolver().resolveAll(refs);
      await reg.pause();
      try {
        const offline = resolver({ offline: true });
        const second = await offline.resolveAll(refs);
        assert.deepEqual(withoutSource(second), withoutSource(first));
        for (const r of second.values()) assert.equal(r.source, 'image cache');
        assert.equal(offline.registry.requests, 0);
        // Without --offline the tag lookup fails to connect and falls back to the cached digest.
        const warnings: string[] = [];
        const online = resolver({ warn: (m) => warnings.push(m), retry: { attempts: 2, baseDelayMs: 5 } });
        assert.deepEqual(
          withoutSource(await online.resolveAll(refs.slice(0, 2))),
          withoutSource(new Map([...first].slice(0, 2))),
        );
        assert.equal(warnings.length, 2);
        assert.match(warnings[0]!, /cached digest/);
        // A digest-pinned reference in the cache never needs the network.
        const pinned = resolver();
        await pinned.resolve(refs[2]!);
        assert.equal(pinned.registry.requests, 0);
        await assert.rejects(
          resolver({ offline: true }).resolve(`${reg.host}/team/b:1.0`),
          (err: Error) => err.message.includes(`${reg.host}/team/b:1.0`) && err.message.includes('offline'),
        );
      } finally {
        await reg.restart();
      }
    });

    it('online, a cached tag costs one HEAD request and no blob downloads', async () => {
      const proxy = await startProxy(reg.host);
      try {
        const ref = `${proxy.host}/team/layered:1.0`;
        await resolver({ insecureRegistries: [proxy.host] }).resolve(ref);
        const before = proxy.requests.length;
        assert.ok(proxy.requests.some((q) => q.startsWith('GET') && q.includes('/blobs/')));
        const again = await resolver({ insecureRegistries: [proxy.host] }).resolve(ref);
        assert.equal(again.group, GROUP);
        assert.deepEqual(proxy.requests.slice(before), ['HEAD /v2/team/layered/manifests/1.0']);
        // The HEAD response must release its socket, or the process lingers until the idle timeout.
        await new Promise((r) => setImmediate(r));
        assert.equal(busySockets(), 0);
      } finally {
        await proxy.close();
      }
    });
  });

  describe('parallelism', () => {
    let proxy: CountingProxy;
    beforeEach(async () => {
      proxy = await startProxy(reg.host);
    });
    afterEach(async () => {
      await proxy.close();
    });

    it('resolves each digest once however many references point to it', async () => {
      const h = proxy.host;
      const refs = [
        `${h}/team/a:1.0`,
        `${h}/team/a:also`,
        `${h}/team/a:1.0`,
        `${h}/team/a:1.0@${a.descriptor.digest}`,
        `${h}/team/b:1.0`,
        `${h}/team/a:1.0`,
      ];
      const m = await resolver({ insecureRegistries: [h], cacheDir: false }).resolveAll(refs);
      assert.equal(m.size, 4);
      for (const [k, v] of m)
        assert.equal(v.manifestDigest, k.includes('/b:') ? b.descriptor.digest : a.descriptor.digest);
      const count = (s: string): number => proxy.requests.filter((q) => q.includes(s)).length;
      // Each tag is asked once (the pinned reference may fetch its manifest by digest);
      // the config and the layer of each digest are downloaded once.
      assert.equal(count('/team/a/manifests/1.0'), 1);
      assert.equal(count('/team/a/manifests/also'), 1);
      assert.ok(count(`/team/a/manifests/${a.descriptor.digest}`) <= 1);
      for (const img of [a, b]) {
        assert.equal(count(img.configDescriptor.digest), 1, proxy.requests.join('\n'));
        const layer = (JSON.parse(img.manifest.toString()) as { layers: { digest: string }[] }).layers[0]!.digest;
        assert.equal(count(layer), 1);
      }
    });

    it('scans a base layer shared by several images once', async () => {
      const baseLayer = (JSON.parse(shared1.manifest.toString()) as { layers: { digest: string }[] }).layers[0]!.digest;
      assert.equal(
        (JSON.parse(shared2.manifest.toString()) as { layers: { digest: string }[] }).layers[0]!.digest,
        baseLayer,
      );
      const r = resolver({ insecureRegistries: [proxy.host], cacheDir: false });
      const m = await r.resolveAll([`${proxy.host}/team/shared1:1.0`, `${proxy.host}/team/shared2:1.0`]);
      for (const img of m.values()) assert.equal(img.passwd, PASSWD);
      assert.equal(proxy.requests.filter((q) => q.includes(baseLayer)).length, 1, proxy.requests.join('\n'));
      assert.equal(r.stats.layersScanned, 3);
    });

    it('keeps at most `concurrency` images in flight', async () => {
      let inFlight = 0;
      let max = 0;
      proxy.rule = (method, path) => {
        if (method === 'GET' && path.includes('/manifests/')) {
          inFlight++;
          max = Math.max(max, inFlight);
          setTimeout(() => inFlight--, 100);
          return { delayMs: 100 };
        }
        return undefined;
      };
      const h = proxy.host;
      const tags = ['1.0', 'also'];
      const refs = ['a', 'b', 'layered', 'multi']
        .flatMap((n) => tags.map((t) => `${h}/team/${n}:${t}`))
        .filter((r) => !/(b|layered|multi):also/.test(r));
      await resolver({ insecureRegistries: [h], cacheDir: false, concurrency: 2 }).resolveAll(refs);
      assert.ok(max <= 2, `max in flight ${max}`);
      assert.ok(max >= 1);
    });

    it('retries transient registry errors with backoff', async () => {
      proxy.rule = (_m, path, attempt) =>
        path.startsWith('/v2/team/') && attempt <= 2 ? { status: attempt === 1 ? 503 : 429 } : undefined;
      const res = await resolver({ insecureRegistries: [proxy.host], cacheDir: false }).resolve(
        `${proxy.host}/team/a:1.0`,
      );
      assert.equal(res.manifestDigest, a.descriptor.digest);
      assert.ok(proxy.requests.filter((q) => q === 'GET /v2/team/a/manifests/1.0').length === 3);
    });

    it('starts a layer over when the connection breaks or stalls mid-download', async () => {
      const layer = (JSON.parse(big.manifest.toString()) as { layers: { digest: string }[] }).layers.at(-1)!.digest;
      for (const fault of [{ cutAfterBytes: 50_000 }, { stallAfterBytes: 50_000 }]) {
        proxy.requests.length = 0;
        let seen = 0;
        proxy.rule = (_m, path) => (path.includes(layer) && ++seen === 1 ? fault : undefined);
        const warnings: string[] = [];
        const res = await resolver({
          insecureRegistries: [proxy.host],
          cacheDir: false,
          stallTimeoutMs: 300,
          warn: (m) => warnings.push(m),
        }).resolve(`${proxy.host}/team/big:1.0`);
        assert.equal(res.passwd, PASSWD);
        assert.equal(proxy.requests.filter((q) => q.includes(layer)).length, 2, JSON.stringify(fault));
        assert.equal(warnings.length, 1);
        assert.match(warnings[0]!, /retrying/);
      }
    });

    it('follows blob redirects to another origin', async () => {
      const storage = await startProxy(reg.host);
      try {
        proxy.rule = (_m, path) =>
          path.includes('/blobs/') ? { redirect: `http://${storage.host}${path}` } : undefined;
        const res = await resolver({ insecureRegistries: [proxy.host], cacheDir: false }).resolve(
          `${proxy.host}/team/layered:1.0`,
        );
        assert.equal(res.group, GROUP);
        assert.ok(storage.requests.some((q) => q.includes('/blobs/')));
        assert.ok(proxy.requests.some((q) => q.includes('/blobs/')));
      } finally {
        await storage.close();
      }
    });

    it('survives a slow registry', async () => {
      proxy.rule = () => ({ delayMs: 150 });
      const res = await resolver({ insecureRegistries: [proxy.host], cacheDir: false }).resolve(
        `${proxy.host}/team/b:1.0`,
      );
      assert.equal(res.config.User, 'root');
    });

    it('gives up on a registry that keeps failing, naming the image and the status', async () => {
      proxy.rule = (_m, path) => (path.includes('/blobs/') ? { status: 503 } : undefined);
      const r = resolver({
        insecureRegistries: [proxy.host],
        cacheDir: false,
        retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 10 },
      });
      await assert.rejects(
        r.resolve(`${proxy.host}/team/a:1.0`),
        (err: Error) =>
          err.name === 'UserError' && err.message.includes(`${proxy.host}/team/a:1.0`) && err.message.includes('503'),
      );
      assert.equal(proxy.requests.filter((q) => q.includes(a.configDescriptor.digest)).length, 3);
    });

    it('fails clearly when the registry is not reachable at all', async () => {
      const dead = `127.0.0.1:${await freePort()}`;
      const r = resolver({ insecureRegistries: [dead], cacheDir: false, retry: { attempts: 2, baseDelayMs: 5 } });
      await assert.rejects(
        r.resolve(`${dead}/team/a:1.0`),
        (err: Error) => err.message.includes(`${dead}/team/a:1.0`) && /ECONNREFUSED/.test(err.message),
      );
    });
  });
});

describe('images: registry authentication', function () {
  this.timeout(120_000);
  const creds = { username: 'alice', password: 's3cret:with:colons' };
  const img = basicImage('private');
  let tmp: ReturnType<typeof tempDir>;
  before(() => {
    tmp = tempDir();
    writeLayout(join(tmp.path, 'layout'), [{ ref: 'p', image: img }]);
  });
  after(() => tmp?.remove());

  const dockerConfig = (host: string, user: string, password: string): string => {
    const path = join(tmp.path, `config-${host.replace(/\W/g, '_')}-${user}.json`);
    writeFileSync(
      path,
      JSON.stringify({
        auths: { [`http://${host}`]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } },
      }),
    );
    return path;
  };

  for (const mode of ['basic', 'bearer'] as const) {
    describe(`${mode} auth`, () => {
      let reg: TestRegistry;
      before(async () => {
        reg = await startRegistry(mode === 'basic' ? { basicAuth: creds } : { tokenAuth: creds });
        await pushLayout(join(tmp.path, 'layout'), 'p', `${reg.host}/private/app:1`, { creds });
      });
      after(async () => {
        await reg?.stop();
      });

      const resolve = (configPath: string) =>
        new ImageResolver({
          insecureRegistries: [reg.host],
          cacheDir: false,
          dockerConfigPath: configPath,
          retry: FAST_RETRY,
        }).resolve(`${reg.host}/private/app:1`);

      it('uses credentials from the Docker config file', async () => {
        const before = reg.tokenRequests();
        const res = await resolve(dockerConfig(reg.host, creds.username, creds.password));
        assert.equal(res.manifestDigest, img.descriptor.digest);
        assert.equal(res.passwd, PASSWD);
        if (mode === 'bearer') assert.equal(reg.tokenRequests() - before, 1, 'one token for the repository');
      });

      it('reports wrong credentials, naming the image and without leaking the password', async () => {
        await assert.rejects(
          resolve(dockerConfig(reg.host, creds.username, 'wrong')),
          (err: Error) =>
            err.message.includes(`${reg.host}/private/app:1`) &&
            /401|refused/.test(err.message) &&
            !err.message.includes('wrong'),
        );
      });

      it('reports missing credentials', async () => {
        await assert.rejects(
          resolve(join(tmp.path, 'absent.json')),
          (err: Error) =>
            err.message.includes(`${reg.host}/private/app:1`) && /credentials|docker login/.test(err.message),
        );
      });

      if (mode === 'bearer') {
        it('exchanges an identity token (refresh token) for an access token', async () => {
          const path = join(tmp.path, 'identity-config.json');
          writeFileSync(
            path,
            JSON.stringify({ auths: { [reg.host]: { auth: '', identitytoken: `refresh-${creds.username}` } } }),
          );
          assert.equal((await resolve(path)).manifestDigest, img.descriptor.digest);
          writeFileSync(path, JSON.stringify({ auths: { [reg.host]: { identitytoken: 'refresh-mallory' } } }));
          await assert.rejects(
            resolve(path),
            (err: Error) => err.message.includes(`${reg.host}/private/app:1`) && !err.message.includes('mallory'),
          );
        });
      }

      if (mode === 'basic') {
        it('asks a credential helper named in credHelpers', async () => {
          const bin = join(tmp.path, 'bin');
          mkdirSync(bin, { recursive: true });
          const helper = join(bin, 'docker-credential-fake');
          writeFileSync(
            helper,
            `#!/bin/sh\nread server\n[ "$1" = get ] && [ "$server" = "${reg.host}" ] && printf '{"Username":"${creds.username}","Secret":"${creds.password}"}' && exit 0\necho "credentials not found in native keychain"; exit 1\n`,
          );
          chmodSync(helper, 0o755);
          const path = join(tmp.path, 'helper-config.json');
          writeFileSync(path, JSON.stringify({ credHelpers: { [reg.host]: 'fake' } }));
          const oldPath = process.env['PATH'];
          process.env['PATH'] = `${bin}:${oldPath}`;
          try {
            assert.equal((await resolve(path)).manifestDigest, img.descriptor.digest);
          } finally {
            process.env['PATH'] = oldPath;
          }
        });
      }
    });
  }
});

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { DirectoryCache, KdsClient, verifySnp } from '../../src/attestation/index.js';
import { CollateralUnavailableError } from '../../src/attestation/errors.js';
import { parseSnpReport } from '../../src/attestation/snp/report.js';
import { vcekPath } from '../../src/attestation/snp/kds.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { rejects } from './assertions.js';
import { FakeClock, fakeKds, forgedMilanCrl, notFound } from './kds-fakes.js';
import { SNP_NOW, SNP_VECTORS, read } from './vectors.js';

const v = SNP_VECTORS[1]!; // virtee Milan v2: VCEK (DER) and chain

/** A fake KDS serving the vector's VCEK and chain (404 for everything else). */
function vectorKds(clock?: FakeClock, status = 200) {
  const report = parseSnpReport(v.report);
  const routes = new Map<string, Buffer>([
    [vcekPath('Milan', report)!, new X509Certificate(v.vcek).raw],
    ['/vcek/v1/Milan/cert_chain', v.chain],
    ['/vcek/v1/Genoa/cert_chain', read('amd/go-sev-guest/ask_ark_genoa.pem')],
  ]);
  return fakeKds((path) => {
    if (status !== 200) return new Response('err', { status });
    const body = routes.get(path);
    return body ? new Response(body) : notFound();
  }, clock);
}

describe('SEV-SNP certificate sources: cache directory and AMD KDS', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('kc-snp-');
  });
  afterEach(() => removeDir(dir));

  it('verifies offline from a cache directory', async () => {
    const cache = new DirectoryCache(dir);
    const report = parseSnpReport(v.report);
    mkdirSync(join(dir, 'Milan', 'vcek'), { recursive: true });
    writeFileSync(cache.vcekFile('Milan', report), new X509Certificate(v.vcek).raw);
    writeFileSync(cache.chainFile('Milan', 'vcek'), v.chain);
    const r = await verifySnp({ report: v.report }, null, {}, { collateral: cache, product: 'Milan', now: SNP_NOW });
    assert.equal(r.product, 'Milan');
    assert.equal(r.crlChecked, false);
    assert.match(r.crl.reason ?? '', /offline/);
  });

  it('fails clearly when the cache lacks the VCEK', async () => {
    await rejects(
      () =>
        verifySnp(
          { report: v.report },
          null,
          {},
          { collateral: new DirectoryCache(dir), product: 'Milan', now: SNP_NOW },
        ),
      'snp.vcek.missing',
    );
  });

  it('fetches from KDS once, stores in the cache and serves later verifications offline', async () => {
    const clock = new FakeClock();
    const kds = vectorKds(clock);
    const cache = new DirectoryCache(dir);
    const client = new KdsClient({ cache, fetch: kds.fetch, baseUrl: 'https://kds.test', clock });
    const r = await clock.drive(
      verifySnp({ report: v.report }, null, {}, { collateral: client, product: 'Milan', now: SNP_NOW }),
    );
    // VCEK, chain and CRL (404 here) were asked for once each.
    assert.deepEqual(
      kds.calls.map((c) => c.path.replace(/\?.*/, '')),
      [
        vcekPath('Milan', parseSnpReport(v.report))!.replace(/\?.*/, ''),
        '/vcek/v1/Milan/cert_chain',
        '/vcek/v1/Milan/crl',
      ],
    );
    assert.equal(r.crlChecked, false);
    assert.match(r.crl.reason ?? '', /AMD KDS has no CRL/);
    // The second time the certificates come from the cache and the 404 for the CRL is remembered.
    await clock.drive(
      verifySnp({ report: v.report }, null, {}, { collateral: client, product: 'Milan', now: SNP_NOW }),
    );
    assert.equal(kds.calls.length, 3);
    assert.ok(readFileSync(cache.chainFile('Milan', 'vcek')).equals(v.chain));
    await verifySnp({ report: v.report }, null, {}, { collateral: cache, product: 'Milan', now: SNP_NOW });
  });

  it('spaces the requests of a queue by minIntervalMs on the injected clock, without waiting when idle', async () => {
    const clock = new FakeClock();
    const kds = vectorKds(clock);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: 'https://kds.test', minIntervalMs: 2000, clock });
    const all = Promise.all([
      client.certChain('Milan', 'vcek'),
      client.certChain('Genoa', 'vcek'),
      client.fetchCrl('Milan', 'vcek'),
    ]);
    await clock.run();
    await all;
    assert.deepEqual(
      kds.calls.map((c) => c.at),
      [0, 2000, 4000],
    );
    // Idle for longer than the interval: the next request starts at once, without a sleep.
    await clock.advance(10_000);
    const sleeps = clock.sleeps.length;
    await client.certChain('Milan', 'vlek');
    assert.equal(kds.calls.at(-1)!.at, 14_000);
    assert.deepEqual(clock.sleeps.slice(sleeps), [10_000], 'only the request timeout was armed, no spacing sleep');
  });

  it('keeps VCEK requests and chain/CRL requests in separate queues', async () => {
    const clock = new FakeClock();
    const kds = vectorKds(clock);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: 'https://kds.test', minIntervalMs: 2000, clock });
    const both = Promise.all([client.vcek('Milan', parseSnpReport(v.report)), client.certChain('Milan', 'vcek')]);
    await clock.run();
    await both;
    assert.deepEqual(
      kds.calls.map((c) => c.at),
      [0, 0],
    );
  });

  it('de-duplicates concurrent identical requests', async () => {
    const clock = new FakeClock();
    const kds = vectorKds(clock);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: 'https://kds.test', clock });
    const all = Promise.all([
      client.certChain('Milan', 'vcek'),
      client.certChain('Milan', 'vcek'),
      client.certChain('Milan', 'vcek'),
    ]);
    await clock.run();
    const [a, b, c] = await all;
    assert.equal(kds.calls.length, 1);
    assert.ok(a && b && c && Buffer.from(a).equals(v.chain));
  });

  it('reports KDS outages as CollateralUnavailableError and a 404 as missing', async () => {
    const client = new KdsClient({
      fetch: vectorKds(undefined, 503).fetch,
      baseUrl: 'https://kds.test',
      clock: new FakeClock(),
    });
    const err = await rejects(() => client.certChain('Genoa', 'vcek'), 'snp.kds');
    assert.ok(err instanceof CollateralUnavailableError);
    assert.match(err.message, /answered 503/);
    const notFoundClient = new KdsClient({
      fetch: vectorKds().fetch,
      baseUrl: 'https://kds.test',
      clock: new FakeClock(),
    });
    assert.equal(await notFoundClient.certChain('Turin', 'vcek'), undefined);
  });

  it('reports an unreachable KDS as CollateralUnavailableError', async () => {
    const fetch = (async () => {
      throw new TypeError('fetch failed');
    }) as unknown as typeof globalThis.fetch;
    const client = new KdsClient({ fetch, baseUrl: 'https://kds.test', clock: new FakeClock() });
    const err = await rejects(() => client.certChain('Milan', 'vcek'), 'snp.kds');
    assert.ok(err instanceof CollateralUnavailableError);
    assert.match(err.message, /cannot fetch the certificate chain .*fetch failed/);
  });

  it('never lets a fetched chain replace the pinned ARK', async () => {
    const genoaChain = read('amd/go-sev-guest/ask_ark_genoa.pem');
    const kds = fakeKds((path) => (path.endsWith('/cert_chain') ? new Response(genoaChain) : notFound()));
    const clock = new FakeClock();
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: 'https://kds.test', clock });
    await rejects(
      () =>
        clock.drive(
          verifySnp(
            { report: v.report },
            null,
            {},
            { vcek: v.vcek, collateral: client, product: 'Milan', now: SNP_NOW },
          ),
        ),
      'snp.ask.subject',
    );
    // The CRL is looked up only once the chain and the report's signature verified.
    assert.deepEqual(
      kds.calls.map((c) => c.path),
      ['/vcek/v1/Milan/cert_chain'],
    );
  });

  it('reads the stored CRL without the network, whether or not it is current', async () => {
    const crl = forgedMilanCrl(new Date('2020-01-01'), new Date('2020-02-01')); // long expired
    const cache = new DirectoryCache(dir);
    mkdirSync(join(dir, 'Milan', 'vcek'), { recursive: true });
    writeFileSync(cache.crlFile('Milan', 'vcek'), crl);
    const kds = vectorKds();
    const client = new KdsClient({ cache, fetch: kds.fetch, baseUrl: 'https://kds.test', clock: new FakeClock() });
    assert.ok(Buffer.from((await client.crl('Milan', 'vcek'))!).equals(crl));
    assert.equal(await client.crl('Milan', 'vlek'), undefined);
    assert.equal(kds.calls.length, 0);
  });
});

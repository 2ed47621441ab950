/**
 * The AMD KDS client and the cache directory in detail: URLs and paths, which answers count as
 * unavailability, retry hints, size caps at their boundary, bodies that are not what was asked
 * for, and the per-product memory of fetched CRLs. Complements kds-queue.test.ts.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AttestationError, CollateralUnavailableError } from '../../src/attestation/errors.js';
import {
  DirectoryCache,
  KDS_BASE_URL,
  KDS_DEFAULTS,
  KdsClient,
  SYSTEM_CLOCK,
  chainPath,
  crlPath,
  vcekPath,
} from '../../src/attestation/snp/kds.js';
import { parseSnpReport } from '../../src/attestation/snp/report.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { rejects } from './assertions.js';
import { FakeClock, Held, fakeKds, forgedMilanCrl, notFound, settle, withRandomChipId } from './kds-fakes.js';
import { SNP_NOW, SNP_VECTORS, read } from './vectors.js';

const BASE = 'https://kds.test';
const v = SNP_VECTORS[1]!; // virtee Milan v2
const report = parseSnpReport(v.report);
const vcekDer = new X509Certificate(v.vcek).raw;

describe('AMD KDS client: requests and answers', () => {
  it("asks AMD's KDS by default, at the paths of AMD publication 57230", async () => {
    assert.equal(KDS_BASE_URL, 'https://kdsintf.amd.com');
    assert.equal(chainPath('Genoa', 'vlek'), '/vlek/v1/Genoa/cert_chain');
    assert.equal(crlPath('Turin', 'vcek'), '/vcek/v1/Turin/crl');
    const urls: string[] = [];
    const fetch = (async (url: string) => {
      urls.push(String(url));
      return notFound();
    }) as unknown as typeof globalThis.fetch;
    const client = new KdsClient({ fetch, clock: new FakeClock() });
    assert.equal(await client.certChain('Milan', 'vcek'), undefined);
    assert.equal(await client.vcek('Milan', report), undefined);
    assert.deepEqual(urls, [
      'https://kdsintf.amd.com/vcek/v1/Milan/cert_chain',
      `https://kdsintf.amd.com${vcekPath('Milan', report)}`,
    ]);
  });

  it('answers a 404 without a body as "not there"', async () => {
    const client = new KdsClient({
      fetch: fakeKds(() => new Response(null, { status: 404 })).fetch,
      baseUrl: BASE,
      clock: new FakeClock(),
    });
    assert.equal(await client.certChain('Milan', 'vcek'), undefined);
  });

  it('takes 408, 429 and 5xx as unavailability, and other 4xx as a refusal remembered for notFoundTtlMs', async () => {
    for (const status of [408, 429, 500, 503, 599]) {
      const client = new KdsClient({
        fetch: fakeKds(() => new Response(null, { status })).fetch,
        baseUrl: BASE,
        clock: new FakeClock(),
      });
      const err = await rejects(() => client.certChain('Milan', 'vcek'), 'snp.kds');
      assert.ok(err instanceof CollateralUnavailableError, String(status));
      assert.equal(err.detail, `AMD KDS answered ${status} for the certificate chain ${BASE}/vcek/v1/Milan/cert_chain`);
    }
    const clock = new FakeClock();
    const kds = fakeKds(() => new Response('no', { status: 403 }), clock);
    const client = new KdsClient({
      fetch: kds.fetch,
      baseUrl: BASE,
      clock,
      notFoundTtlMs: 600_000,
      failureBackoffMs: 30_000,
    });
    const err = await rejects(() => client.certChain('Milan', 'vcek'), 'snp.kds');
    assert.ok(!(err instanceof CollateralUnavailableError));
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      [`AMD KDS refused the certificate chain ${BASE}/vcek/v1/Milan/cert_chain`, '200', '403'],
    );
    await clock.advance(60_000);
    await rejects(() => client.certChain('Milan', 'vcek'), 'snp.kds');
    assert.equal(kds.calls.length, 1, 'still remembered after the failure backoff: a refusal is a verdict');
    await clock.advance(600_000);
    await rejects(() => client.certChain('Milan', 'vcek'), 'snp.kds');
    assert.equal(kds.calls.length, 2);
  });

  it('keeps the cause of a network failure and says when asking again can help', async () => {
    const clock = new FakeClock();
    const cause = new TypeError('fetch failed');
    const client = new KdsClient({
      fetch: (async () => {
        throw cause;
      }) as unknown as typeof globalThis.fetch,
      baseUrl: BASE,
      clock,
      failureBackoffMs: 30_000,
    });
    const err = await rejects(() => client.vcek('Milan', report), 'snp.kds');
    assert.equal(err.cause, cause);
    await clock.advance(10_000);
    const again = await rejects(() => client.vcek('Milan', report), 'snp.kds.backoff');
    assert.ok(again instanceof CollateralUnavailableError);
    assert.equal(again.retryAfterMs, 20_000);
    assert.equal(
      again.detail,
      `not asking AMD KDS for the VCEK ${vcekPath('Milan', report)} again for 20000 ms: the last attempt failed (cannot fetch the VCEK ${BASE}${vcekPath('Milan', report)} from AMD KDS (fetch failed))`,
    );
    assert.equal(again.cause, err);
  });

  it('accepts a body of exactly the cap, announced or not, and refuses one byte more', async () => {
    const chain = v.chain;
    const kds = fakeKds((path) =>
      path.endsWith('/cert_chain')
        ? new Response(chain, { headers: { 'content-length': String(chain.length) } })
        : new Response(vcekDer),
    );
    const exact = new KdsClient({
      fetch: kds.fetch,
      baseUrl: BASE,
      clock: new FakeClock(),
      maxCertBytes: chain.length,
      minIntervalMs: 0,
    });
    assert.deepEqual(Buffer.from((await exact.certChain('Milan', 'vcek'))!), chain);
    const tight = new KdsClient({
      fetch: kds.fetch,
      baseUrl: BASE,
      clock: new FakeClock(),
      maxCertBytes: chain.length - 1,
      minIntervalMs: 0,
    });
    const err = await rejects(() => tight.certChain('Milan', 'vcek'), 'snp.kds.size');
    assert.match(err.detail, new RegExp(`announced ${chain.length} bytes`));
    const vcekExact = new KdsClient({
      fetch: kds.fetch,
      baseUrl: BASE,
      clock: new FakeClock(),
      maxCertBytes: vcekDer.length,
      minIntervalMs: 0,
    });
    assert.deepEqual(Buffer.from((await vcekExact.vcek('Milan', report))!), vcekDer);
    // An announced size without a body is refused for its size, not as a broken connection.
    const bodiless = new KdsClient({
      fetch: fakeKds(() => new Response(null, { headers: { 'content-length': '999999' } })).fetch,
      baseUrl: BASE,
      clock: new FakeClock(),
    });
    await rejects(() => bodiless.certChain('Milan', 'vcek'), 'snp.kds.size');
  });

  it('refuses bodies that are not what was asked for', async () => {
    const three = Buffer.concat([v.chain, v.chain.subarray(0, v.chain.indexOf('-----END CERTIFICATE-----') + 26)]);
    const answers: Record<string, () => Response> = {
      '/vcek/v1/Milan/cert_chain': () => new Response(three),
      '/vcek/v1/Genoa/cert_chain': () => new Response(null),
      '/vcek/v1/Turin/cert_chain': () => new Response(read('amd/go-sev-guest/ask_ark_genoa.pem').subarray(0, 10)),
    };
    const kds = fakeKds((path) => answers[path]?.() ?? notFound());
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock: new FakeClock(), minIntervalMs: 0 });
    const err = await rejects(() => client.certChain('Milan', 'vcek'), 'snp.kds.invalid');
    assert.match(
      err.detail,
      /^AMD KDS sent something unusable for the certificate chain .*: the certificate chain .* is not a well-formed certificate: 3 certificates, expected 1 to 2$/,
    );
    await rejects(() => client.certChain('Genoa', 'vcek'), 'snp.kds.invalid');
    await rejects(() => client.certChain('Turin', 'vcek'), 'snp.kds.invalid');
    // One certificate (the ASK alone) is a chain too.
    const one = read('amd/ms-tee-attestation-verification/milan_ask.pem');
    const single = new KdsClient({
      fetch: fakeKds(() => new Response(one)).fetch,
      baseUrl: BASE,
      clock: new FakeClock(),
    });
    assert.deepEqual(Buffer.from((await single.certChain('Milan', 'vcek'))!), one);
  });

  it('queues at most maxQueued requests, and says how long to wait', async () => {
    const clock = new FakeClock();
    const held = new Held();
    const kds = fakeKds((_p, signal) => held.handle(signal), clock);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock, maxQueued: 2, minIntervalMs: 3000 });
    const waiting = [0, 1, 2].map(() =>
      client.vcek('Milan', parseSnpReport(withRandomChipId(v.report))).catch((e) => e),
    );
    await settle();
    const r = parseSnpReport(withRandomChipId(v.report));
    const err = await rejects(() => client.vcek('Milan', r), 'snp.kds.busy');
    assert.ok(err instanceof CollateralUnavailableError);
    assert.equal(err.retryAfterMs, 3 * 3000);
    assert.equal(
      err.detail,
      `2 distinct AMD KDS requests are already waiting; not queueing the VCEK ${vcekPath('Milan', r)}`,
    );
    // Served one by one, minIntervalMs apart.
    for (let i = 0; i < 3; i++) {
      await settle();
      held.release(notFound);
      await clock.advance(3000);
    }
    assert.deepEqual(await Promise.all(waiting), [undefined, undefined, undefined]);
    assert.deepEqual(
      kds.calls.map((c) => c.at),
      [0, 3000, 6000],
    );
  });

  it('keeps nothing of a CRL that it refused', async () => {
    // No CRL in the vectors is signed by AMD, so every fetched CRL here is refused.
    const kds = fakeKds(() => new Response(forgedMilanCrl(SNP_NOW, new Date(SNP_NOW.getTime() + 1e9))));
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock: new FakeClock() });
    await rejects(() => client.fetchCrl('Milan', 'vcek'), 'snp.kds.invalid');
    assert.equal(await client.crl('Milan', 'vcek'), undefined);
    assert.equal(await client.crl('Genoa', 'vcek'), undefined);
  });
});

describe('AMD KDS: the system clock', () => {
  it('tells the time in milliseconds and sleeps until aborted', async () => {
    const before = Date.now();
    const t = SYSTEM_CLOCK.now();
    assert.ok(before <= t && t <= Date.now());
    const abort = new AbortController();
    const sleeping = SYSTEM_CLOCK.sleep(3_600_000, abort.signal);
    abort.abort();
    await assert.rejects(sleeping, (e: Error) => e.name === 'AbortError');
  });
});

describe('SEV-SNP cache directory', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('kc-kdsc-');
  });
  afterEach(() => removeDir(dir));

  it('lays out VCEKs by chip id and reported TCB, chains and CRLs by product and key type', () => {
    const cache = new DirectoryCache(dir);
    assert.equal(
      cache.vcekFile('Milan', report),
      join(dir, 'Milan', 'vcek', `${report.chipId.toString('hex')}-${report.reportedTcb.toString('hex')}.der`),
    );
    assert.equal(
      cache.vcekFile('Turin', report),
      join(
        dir,
        'Turin',
        'vcek',
        `${report.chipId.subarray(0, 8).toString('hex')}-${report.reportedTcb.toString('hex')}.der`,
      ),
    );
    assert.equal(cache.chainFile('Genoa', 'vlek'), join(dir, 'Genoa', 'vlek', 'cert_chain.pem'));
    assert.equal(cache.crlFile('Milan', 'vcek'), join(dir, 'Milan', 'vcek', 'crl.der'));
  });

  it('returns what is stored and nothing for what is not', async () => {
    const cache = new DirectoryCache(dir);
    const crl = forgedMilanCrl(SNP_NOW, new Date(SNP_NOW.getTime() + 1e9));
    cache.store(cache.crlFile('Milan', 'vcek'), crl);
    cache.store(cache.chainFile('Milan', 'vcek'), v.chain);
    cache.store(cache.vcekFile('Milan', report), vcekDer);
    assert.deepEqual(await cache.crl('Milan', 'vcek'), crl);
    assert.deepEqual(await cache.certChain('Milan', 'vcek'), v.chain);
    assert.deepEqual(await cache.vcek('Milan', report), vcekDer);
    assert.equal(await cache.crl('Milan', 'vlek'), undefined);
    assert.equal(await cache.certChain('Genoa', 'vcek'), undefined);
  });

  it('reports a cache it cannot read instead of taking it as empty', async () => {
    const cache = new DirectoryCache(dir);
    mkdirSync(cache.chainFile('Milan', 'vcek'), { recursive: true }); // a directory where the file should be
    await assert.rejects(
      cache.certChain('Milan', 'vcek'),
      (e: NodeJS.ErrnoException) => e.code === 'EISDIR' && !(e instanceof AttestationError),
    );
    const client = new KdsClient({
      cache,
      fetch: fakeKds(() => notFound()).fetch,
      baseUrl: BASE,
      clock: new FakeClock(),
    });
    await assert.rejects(client.certChain('Milan', 'vcek'), (e: NodeJS.ErrnoException) => e.code === 'EISDIR');
  });

  it('is consulted by the client before the network, and kept up to date by it', async () => {
    const cache = new DirectoryCache(dir);
    const kds = fakeKds((path) => (path.endsWith('/cert_chain') ? new Response(v.chain) : new Response(vcekDer)));
    const client = new KdsClient({ cache, fetch: kds.fetch, baseUrl: BASE, clock: new FakeClock(), minIntervalMs: 0 });
    assert.deepEqual(Buffer.from((await client.vcek('Milan', report))!), vcekDer);
    assert.deepEqual(Buffer.from((await client.certChain('Milan', 'vcek'))!), v.chain);
    assert.equal(kds.calls.length, 2);
    assert.deepEqual(await cache.vcek('Milan', report), vcekDer);
    assert.deepEqual(await client.vcek('Milan', report), vcekDer);
    assert.equal(kds.calls.length, 2);
    assert.ok(KDS_DEFAULTS.maxCrlBytes > KDS_DEFAULTS.maxCertBytes);
  });
});

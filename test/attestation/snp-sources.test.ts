import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { DirectoryCache, KdsClient, verifySnp } from '../../src/attestation/index.js';
import { parseSnpReport } from '../../src/attestation/snp/report.js';
import { vcekPath } from '../../src/attestation/snp/kds.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { checkIs, rejects } from './assertions.js';
import { SNP_NOW, SNP_VECTORS, read } from './vectors.js';

const v = SNP_VECTORS[1]!; // virtee Milan v2: VCEK (DER) and chain

/** A fake KDS: serves the vector's VCEK and chain, counts and timestamps requests. */
function fakeKds(status = 200) {
  const calls: { url: string; at: number }[] = [];
  const report = parseSnpReport(v.report);
  const routes = new Map<string, Buffer>([
    [`https://kds.test${vcekPath('Milan', report)}`, new X509Certificate(v.vcek).raw],
    ['https://kds.test/vcek/v1/Milan/cert_chain', v.chain],
  ]);
  const fetch = (async (url: string) => {
    calls.push({ url, at: Date.now() });
    const body = routes.get(url);
    if (status !== 200) return new Response('err', { status });
    return body ? new Response(body) : new Response('not found', { status: 404 });
  }) as unknown as typeof globalThis.fetch;
  return { fetch, calls };
}

describe('SEV-SNP certificate sources: cache directory and AMD KDS', () => {
  let dir: string;
  beforeEach(() => { dir = tempDir('kc-snp-'); });
  afterEach(() => removeDir(dir));

  it('verifies offline from a cache directory', async () => {
    const cache = new DirectoryCache(dir);
    const report = parseSnpReport(v.report);
    mkdirSync(join(dir, 'Milan', 'vcek'), { recursive: true });
    writeFileSync(cache.vcekFile('Milan', report), new X509Certificate(v.vcek).raw);
    writeFileSync(cache.chainFile('Milan', 'vcek'), v.chain);
    const r = await verifySnp({ report: v.report }, null, {}, { collateral: cache, product: 'Milan', now: SNP_NOW });
    assert.equal(r.product, 'Milan');
  });

  it('fails clearly when the cache lacks the VCEK', async () => {
    await rejects(() => verifySnp({ report: v.report }, null, {}, { collateral: new DirectoryCache(dir), product: 'Milan', now: SNP_NOW }), 'snp.vcek.missing');
  });

  it('fetches from KDS once, stores in the cache and serves later verifications offline', async () => {
    const kds = fakeKds();
    const cache = new DirectoryCache(dir);
    const client = new KdsClient({ cache, fetch: kds.fetch, baseUrl: 'https://kds.test', minIntervalMs: 0 });
    await verifySnp({ report: v.report }, null, {}, { collateral: client, product: 'Milan', now: SNP_NOW });
    // VCEK, chain and CRL (404 here) were asked for once each.
    assert.equal(kds.calls.length, 3);
    await verifySnp({ report: v.report }, null, {}, { collateral: client, product: 'Milan', now: SNP_NOW });
    assert.equal(kds.calls.filter((c) => !c.url.endsWith('/crl')).length, 2, 'certificates come from the cache the second time');
    assert.ok(readFileSync(cache.chainFile('Milan', 'vcek')).equals(v.chain));
    await verifySnp({ report: v.report }, null, {}, { collateral: cache, product: 'Milan', now: SNP_NOW });
  });

  it('spaces requests and de-duplicates concurrent ones', async () => {
    const kds = fakeKds();
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: 'https://kds.test', minIntervalMs: 50 });
    await Promise.all([client.certChain('Milan', 'vcek'), client.certChain('Milan', 'vcek'), client.crl('Milan', 'vcek')]);
    assert.equal(kds.calls.length, 2);
    assert.ok(kds.calls[1]!.at - kds.calls[0]!.at >= 45, `requests ${kds.calls[1]!.at - kds.calls[0]!.at} ms apart`);
  });

  it('reports KDS errors as attestation errors and a 404 as missing', async () => {
    const client = new KdsClient({ fetch: fakeKds(503).fetch, baseUrl: 'https://kds.test', minIntervalMs: 0 });
    await assert.rejects(client.certChain('Genoa', 'vcek'), checkIs('snp.kds'));
    const notFound = new KdsClient({ fetch: fakeKds().fetch, baseUrl: 'https://kds.test', minIntervalMs: 0 });
    assert.equal(await notFound.certChain('Genoa', 'vcek'), undefined);
  });

  it('never lets a fetched chain replace the pinned ARK', async () => {
    const genoaChain = read('amd/go-sev-guest/ask_ark_genoa.pem');
    const fetch = (async (url: string) => (url.endsWith('/cert_chain') ? new Response(genoaChain) : new Response('', { status: 404 }))) as unknown as typeof globalThis.fetch;
    const client = new KdsClient({ fetch, baseUrl: 'https://kds.test', minIntervalMs: 0 });
    await rejects(() => verifySnp({ report: v.report }, null, {}, { vcek: v.vcek, collateral: client, product: 'Milan', now: SNP_NOW }), 'snp.ask.subject');
  });
});

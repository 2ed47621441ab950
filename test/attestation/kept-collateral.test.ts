/**
 * Collateral kept between verifications, one rule for AMD KDS and Intel PCS
 * (src/attestation/kept-collateral.ts): refresh ahead of nextUpdate (24 h, at most hourly),
 * the kept copy while a refresh fails, and a cache directory that cannot be written costing a
 * fetch after a restart, never an admission.
 *
 * "Cannot be written" is a cache directory that is a dangling symbolic link: reads find
 * nothing (ENOENT), every write fails, also for root (tests run as root in CI).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CollateralFetcher } from '../../src/attestation/collateral-fetcher.js';
import { AttestationError } from '../../src/attestation/errors.js';
import { KeptCollateral, REFRESH_DEFAULTS, type KeptItem } from '../../src/attestation/kept-collateral.js';
import { resolveSnpCrl, DEFAULT_CRL_GRACE_MS } from '../../src/attestation/snp/crl.js';
import { DirectoryCache, KDS_DEFAULTS, KdsClient, crlPath, vcekPath } from '../../src/attestation/snp/kds.js';
import { parseSnpReport } from '../../src/attestation/snp/report.js';
import { verifySnp } from '../../src/attestation/snp/verify.js';
import { PCS_DEFAULTS, PcsClient, TdxCollateralDirectory } from '../../src/attestation/tdx/pcs.js';
import { verifyTdxWithCollateral } from '../../src/attestation/tdx/verify.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { rejects } from './assertions.js';
import { FakeClock, fakeKds, forgedMilanCrl, notFound } from './kds-fakes.js';
import { startLocalPcs } from './pcs-server.js';
import { SNP_NOW, SNP_VECTORS, TDX, TDX_COLLATERAL_TIME } from './vectors.js';
import { parseTdxQuote } from '../../src/attestation/tdx/quote.js';

const HOUR = 3600_000;
const at = (h: number) => new Date(SNP_NOW.getTime() + h * HOUR);
const v = SNP_VECTORS[1]!; // virtee Milan v2
const report = parseSnpReport(v.report);
const CRL = crlPath('Milan', 'vcek');

describe('kept collateral: one refresh rule for KDS and PCS', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('kc-kept-');
  });
  afterEach(() => removeDir(dir));

  /** A cache directory every write to fails: a symbolic link to a directory that does not exist. */
  const unwritable = () => {
    const path = join(dir, 'cache');
    symlinkSync(join(dir, 'gone', 'away'), path);
    return path;
  };

  it('shares its defaults with both clients', () => {
    assert.deepEqual(REFRESH_DEFAULTS, { refreshBeforeMs: 24 * HOUR, minRefreshIntervalMs: HOUR });
    for (const d of [KDS_DEFAULTS, PCS_DEFAULTS]) {
      assert.deepEqual(
        { refreshBeforeMs: d.refreshBeforeMs, minRefreshIntervalMs: d.minRefreshIntervalMs },
        REFRESH_DEFAULTS,
      );
    }
  });

  describe('the rule itself (a service answering with its version number)', () => {
    let clock: FakeClock;
    let served: number;
    let asked: number;
    let stored: Map<string, number>;
    let writable: boolean;
    let kept: KeptCollateral;
    beforeEach(() => {
      clock = new FakeClock();
      served = 1;
      asked = 0;
      stored = new Map();
      writable = true;
      const fetcher = new CollateralFetcher({
        service: 'test service',
        checks: { failed: 't', busy: 't.busy', backoff: 't.backoff', size: 't.size', invalid: 't.invalid' },
        minIntervalMs: 0,
        timeoutMs: 1000,
        maxQueued: 8,
        notFoundTtlMs: 0,
        failureBackoffMs: 0,
        clock,
        fetch: (async () => {
          asked++;
          return served > 0 ? new Response(String(served)) : new Response('down', { status: 503 });
        }) as unknown as typeof fetch,
      });
      kept = new KeptCollateral(fetcher);
    });
    // Version n is valid until hour 10 * n.
    const spec: () => KeptItem<number> = () => ({
      key: 'k',
      url: 'https://service.test/k',
      lane: 'l',
      item: 'thing',
      maxBytes: 16,
      stored: () => stored.get('k'),
      nextUpdate: (n) => at(10 * n),
      accept: ({ body }) => {
        const n = Number(body.toString());
        if (!Number.isInteger(n)) throw new AttestationError('t', 'not a version');
        return n;
      },
      store: (n) => {
        if (writable) stored.set('k', n);
        return writable;
      },
    });

    it('fetches once, serves the kept copy until 24 h before nextUpdate, then refreshes at most hourly', async () => {
      assert.equal(await kept.get(spec(), at(0)), 1);
      assert.equal(await kept.get(spec(), at(-14.5)), 1, 'nextUpdate (hour 10) more than 24 h away');
      assert.equal(asked, 1);
      served = 4;
      // Hour 0 is 10 h before nextUpdate: due, but the first fetch was just now.
      assert.equal(await kept.get(spec(), at(0)), 1);
      assert.equal(asked, 1);
      await clock.advance(HOUR);
      assert.equal(await kept.get(spec(), at(0)), 4, 'refreshed before it expired');
      assert.equal(stored.get('k'), 4, 'and written to the cache directory');
      assert.equal(asked, 2);
    });

    it("serves the kept copy while it is current and the refresh fails; past nextUpdate the failure is the caller's", async () => {
      await kept.get(spec(), at(0));
      await clock.advance(HOUR);
      served = 0;
      assert.equal(await kept.get(spec(), at(9)), 1);
      assert.equal(asked, 2);
      await clock.advance(HOUR);
      await rejects(() => kept.get(spec(), at(11)), 't');
    });

    it('keeps what it fetched in memory when the cache directory cannot be written', async () => {
      writable = false;
      assert.equal(await kept.get(spec(), at(0)), 1);
      assert.equal(stored.size, 0);
      assert.equal(await kept.get(spec(), at(0)), 1);
      assert.equal(kept.peek(spec()), 1);
      assert.equal(asked, 1);
    });
  });

  describe('AMD KDS (SEV-SNP)', () => {
    const vcekDer = new X509Certificate(v.vcek).raw;
    const kdsServing = (clock: FakeClock) =>
      fakeKds((path) => {
        if (path === vcekPath('Milan', report)) return new Response(vcekDer);
        if (path === '/vcek/v1/Milan/cert_chain') return new Response(v.chain);
        // AMD's real CRLs are not in the vectors: whatever KDS sends as a CRL is refused (snp.kds.invalid).
        if (path === CRL) return new Response(forgedMilanCrl(at(-1), at(24 * 7)));
        return notFound();
      }, clock);

    it('admits with a cache directory that cannot be written, and keeps the certificates in memory', async () => {
      const clock = new FakeClock();
      const kds = kdsServing(clock);
      const client = new KdsClient({
        cache: new DirectoryCache(unwritable()),
        fetch: kds.fetch,
        baseUrl: 'https://kds.test',
        clock,
        minIntervalMs: 0,
      });
      const r = await verifySnp({ report: v.report }, null, {}, { collateral: client, product: 'Milan', now: SNP_NOW });
      assert.equal(r.product, 'Milan');
      await verifySnp({ report: v.report }, null, {}, { collateral: client, product: 'Milan', now: SNP_NOW });
      assert.equal(kds.count(/^\/vcek\/v1\/Milan\/[0-9a-f]{128}\?/), 1, 'the VCEK is fetched once');
      assert.equal(kds.count(/cert_chain$/), 1, 'the chain is fetched once');
      assert.ok(!existsSync(join(dir, 'gone')));
    });

    it('refreshes a cached CRL within 24 h of its nextUpdate, at most hourly, and uses it while the refresh fails', async () => {
      const cache = new DirectoryCache(dir);
      mkdirSync(join(dir, 'Milan', 'vcek'), { recursive: true });
      const clock = new FakeClock();
      const kds = kdsServing(clock);
      const client = new KdsClient({ cache, fetch: kds.fetch, baseUrl: 'https://kds.test', clock, minIntervalMs: 0 });
      const input = (now: Date) => ({
        product: 'Milan' as const,
        kind: 'vcek' as const,
        now,
        policy: 'require' as const,
        graceMs: DEFAULT_CRL_GRACE_MS,
        source: client,
      });
      writeFileSync(cache.crlFile('Milan', 'vcek'), forgedMilanCrl(at(-24 * 6), at(30)));
      // 30 h before nextUpdate: used as it is.
      let d = await resolveSnpCrl(input(SNP_NOW));
      assert.deepEqual({ source: d.status.source, checked: d.status.checked }, { source: 'cache', checked: true });
      assert.equal(kds.count(/\/crl$/), 0);
      // 12 h before nextUpdate: KDS is asked; what it sends is refused, the cached CRL is still current and used.
      d = await resolveSnpCrl(input(at(18)));
      assert.deepEqual({ source: d.status.source, checked: d.status.checked }, { source: 'cache', checked: true });
      assert.equal(kds.count(/\/crl$/), 1);
      await resolveSnpCrl(input(at(18)));
      assert.equal(kds.count(/\/crl$/), 1, 'not again within the hour');
      await clock.advance(HOUR);
      await resolveSnpCrl(input(at(19)));
      assert.equal(kds.count(/\/crl$/), 2);
      // Past nextUpdate there is no current CRL: 'require' refuses, as "retry later".
      await clock.advance(HOUR);
      await rejects(() => resolveSnpCrl(input(at(31))), 'snp.crl.stale');
    });
  });

  describe('Intel PCS (TDX)', () => {
    it('admits a genuine quote with a cache directory that cannot be written, fetching each item once', async () => {
      const pcs = await startLocalPcs();
      try {
        const quote = TDX.sprQuote();
        const client = new PcsClient({
          baseUrl: pcs.baseUrl,
          rootCrlUrl: pcs.rootCrlUrl,
          cache: new TdxCollateralDirectory(unwritable()),
          minIntervalMs: 0,
          clock: new FakeClock(),
        });
        const opts = {
          now: TDX_COLLATERAL_TIME,
          crlPolicy: 'require' as const,
          acceptedTcbStatuses: ['UpToDate', 'NotSupported'] as const,
          source: client,
        };
        const ref = [{ MrTd: parseTdxQuote(quote).body.mrTd.toString('hex') }];
        const r = await verifyTdxWithCollateral({ quote }, ref, {}, opts);
        assert.deepEqual(r.crlChecked, { root: true, pck: true });
        await verifyTdxWithCollateral({ quote }, ref, {}, opts);
        assert.equal(pcs.requests.length, 4);
      } finally {
        await pcs.close();
      }
    });
  });
});

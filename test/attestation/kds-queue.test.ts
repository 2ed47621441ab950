/**
 * The AMD KDS client under abuse: forged reports from unauthenticated peers must not be able to
 * queue unbounded work, delay genuine evidence, or make us download or cache anything large or
 * unusable. Time is a fake clock; nothing here waits for real time.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { AttestationError, CollateralUnavailableError } from '../../src/attestation/errors.js';
import { DirectoryCache, KdsClient, KDS_DEFAULTS, vcekPath } from '../../src/attestation/snp/kds.js';
import { parseSnpReport } from '../../src/attestation/snp/report.js';
import { verifySnp } from '../../src/attestation/snp/verify.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { buildCertTable, rejects } from './assertions.js';
import { FakeClock, Held, fakeKds, forgedMilanCrl, notFound, settle, withRandomChipId } from './kds-fakes.js';
import { SNP_NOW, SNP_VECTORS, pemBlocks } from './vectors.js';

const milanV3 = SNP_VECTORS[2]!;
const BASE = 'https://kds.test';
const isVcek = (path: string) => /^\/vcek\/v1\/\w+\/[0-9a-f]{16,128}\?/.test(path);

/** Tracks whether a promise has settled, without waiting for it. */
function track<T>(p: Promise<T>) {
  const t: { settled: boolean; error?: unknown; value?: T; promise: Promise<T> } = { settled: false, promise: p };
  p.then(
    (v) => {
      t.settled = true;
      t.value = v;
    },
    (e) => {
      t.settled = true;
      t.error = e;
    },
  );
  return t;
}

/** A KDS whose VCEK answers are held until the test releases them; everything else is 404. */
function holdingKds(clock: FakeClock) {
  const held = new Held();
  const kds = fakeKds((path, signal) => (isVcek(path) ? held.handle(signal) : notFound()), clock);
  return { held, kds };
}

/** The genuine Milan v3 report with its VCEK and ASK in an extended-report certificate table. */
function genuineWithTable() {
  const ask = new X509Certificate(pemBlocks('amd/ms-tee-attestation-verification/milan_ask.pem')[0]!).raw;
  const vcek = new X509Certificate(milanV3.vcek).raw;
  return {
    report: milanV3.report,
    certTable: buildCertTable([
      ['63da758d-e664-4564-adc5-f4b93be8accd', vcek],
      ['4ab7b379-bbac-4fe4-a02f-05aef327c782', ask],
    ]),
  };
}

describe('AMD KDS queue: bounded, deduplicated, fail-fast', () => {
  it('queues at most maxQueued distinct VCEK fetches for forged reports; the rest fail fast with CollateralUnavailableError', async () => {
    const clock = new FakeClock();
    const { held, kds } = holdingKds(clock);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock, maxQueued: 8 });
    const forged = Array.from({ length: 40 }, () =>
      track(verifySnp({ report: withRandomChipId(milanV3.report) }, null, {}, { collateral: client, now: SNP_NOW })),
    );
    await settle();
    // One request is being served, eight wait; no time has passed and nothing was released.
    assert.equal(kds.count(/./), 1);
    const failedFast = forged.filter((f) => f.settled);
    assert.equal(failedFast.length, 40 - 9);
    for (const f of failedFast) {
      assert.ok(f.error instanceof CollateralUnavailableError, String(f.error));
      assert.ok(f.error instanceof AttestationError);
      assert.equal(f.error.check, 'snp.kds.busy');
      assert.ok((f.error.retryAfterMs ?? 0) > 0);
    }
    // KDS answers 404 for made-up chips: the waiting requests are served one by one, spaced.
    for (let i = 0; i < 9; i++) {
      held.release(notFound);
      await clock.run(KDS_DEFAULTS.minIntervalMs);
    }
    const waited = forged.filter((f) => !failedFast.includes(f));
    for (const f of waited) await rejects(() => f.promise, 'snp.vcek.missing');
    assert.equal(kds.count(/./), 9, 'never more fetches than one in flight plus maxQueued waiting');
    const starts = kds.calls.map((c) => c.at);
    for (let i = 1; i < starts.length; i++)
      assert.ok(starts[i]! - starts[i - 1]! >= KDS_DEFAULTS.minIntervalMs, `request ${i} at ${starts[i]}`);
  });

  it('verifies genuine evidence that carries its VCEK while the VCEK queue is full', async () => {
    const clock = new FakeClock();
    const { held, kds } = holdingKds(clock);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock, maxQueued: 8 });
    const forged = Array.from({ length: 9 }, () =>
      track(verifySnp({ report: withRandomChipId(milanV3.report) }, null, {}, { collateral: client, now: SNP_NOW })),
    );
    await settle();
    assert.ok(forged.every((f) => !f.settled));
    // The queue is full: evidence without its VCEK is turned away at once...
    await rejects(
      () => verifySnp({ report: milanV3.report }, null, {}, { collateral: client, now: SNP_NOW }),
      'snp.kds.busy',
    );
    // ...but evidence with its VCEK never enters that queue (its CRL request uses the other one).
    const r = await clock.drive(verifySnp(genuineWithTable(), null, {}, { collateral: client, now: SNP_NOW }));
    assert.equal(r.product, 'Milan');
    assert.equal(r.crlChecked, false);
    assert.deepEqual(
      kds.calls.filter((c) => !isVcek(c.path)).map((c) => c.path),
      ['/vcek/v1/Milan/crl'],
    );
    assert.equal(kds.count(new RegExp(Buffer.from(parseSnpReport(milanV3.report).chipId).toString('hex'))), 0);
    held.release(notFound);
    await clock.run(KDS_DEFAULTS.minIntervalMs);
  });

  it('lets identical requests share one fetch', async () => {
    const clock = new FakeClock();
    const { held, kds } = holdingKds(clock);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock, maxQueued: 1 });
    const report = withRandomChipId(milanV3.report);
    const same = Array.from({ length: 10 }, () =>
      track(verifySnp({ report }, null, {}, { collateral: client, now: SNP_NOW })),
    );
    await settle();
    assert.ok(
      same.every((f) => !f.settled),
      'duplicates take no place in the queue',
    );
    assert.equal(kds.count(/./), 1);
    held.release(notFound);
    for (const f of same) await rejects(() => f.promise, 'snp.vcek.missing');
    assert.equal(kds.count(/./), 1);
  });

  it('remembers a 404 for notFoundTtlMs, then asks again', async () => {
    const clock = new FakeClock();
    const kds = fakeKds(notFound, clock);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock, notFoundTtlMs: 60_000 });
    const report = withRandomChipId(milanV3.report);
    await rejects(() => verifySnp({ report }, null, {}, { collateral: client, now: SNP_NOW }), 'snp.vcek.missing');
    await rejects(() => verifySnp({ report }, null, {}, { collateral: client, now: SNP_NOW }), 'snp.vcek.missing');
    assert.equal(kds.count(/./), 1);
    await clock.advance(60_000);
    await rejects(
      () => clock.drive(verifySnp({ report }, null, {}, { collateral: client, now: SNP_NOW })),
      'snp.vcek.missing',
    );
    assert.equal(kds.count(/./), 2);
  });

  it('remembers another 4xx refusal as a verdict on the request, not as unavailability', async () => {
    const clock = new FakeClock();
    const kds = fakeKds(() => new Response('bad', { status: 400 }), clock);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock });
    const report = parseSnpReport(withRandomChipId(milanV3.report));
    for (let i = 0; i < 2; i++) {
      const err = await rejects(() => client.vcek('Milan', report), 'snp.kds');
      assert.ok(!(err instanceof CollateralUnavailableError));
      assert.equal(err.actual, '400');
    }
    assert.equal(kds.count(/./), 1);
  });

  it('refuses oversized bodies, declared or streamed, and stops reading them', async () => {
    const clock = new FakeClock();
    let pulled = 0;
    const kds = fakeKds((path) => {
      if (path.includes('Milan/cert_chain')) {
        const n = KDS_DEFAULTS.maxCertBytes + 1;
        return new Response(Buffer.alloc(n), { headers: { 'content-length': String(n) } });
      }
      if (path.includes('Genoa/cert_chain')) {
        // No Content-Length: 1 KiB chunks without end.
        return new Response(
          new ReadableStream({
            pull(c) {
              pulled++;
              c.enqueue(new Uint8Array(1024));
            },
          }),
        );
      }
      return new Response(Buffer.alloc(KDS_DEFAULTS.maxCrlBytes + 1)); // streamed, no Content-Length
    }, clock);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock, minIntervalMs: 0 });
    const declared = await rejects(() => client.certChain('Milan', 'vcek'), 'snp.kds.size');
    assert.ok(declared instanceof CollateralUnavailableError);
    assert.match(declared.message, /announced 65537 bytes .*at most 65536 bytes are accepted/);
    const streamed = await rejects(() => client.certChain('Genoa', 'vcek'), 'snp.kds.size');
    assert.match(streamed.message, /sent more than 65536 bytes/);
    assert.ok(pulled <= KDS_DEFAULTS.maxCertBytes / 1024 + 3, `read ${pulled} chunks`);
    await rejects(() => client.fetchCrl('Turin', 'vcek'), 'snp.kds.size');
    // The caps are options; a CRL just under the default cap is not refused for its size.
    const small = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock, maxCrlBytes: KDS_DEFAULTS.maxCrlBytes + 1 });
    await rejects(() => small.fetchCrl('Milan', 'vcek'), 'snp.kds.invalid');
  });

  it('gives up on a request after timeoutMs of the injected clock', async () => {
    const clock = new FakeClock();
    const held = new Held();
    const kds = fakeKds((_path, signal) => held.handle(signal), clock);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock, timeoutMs: 5000 });
    const pending = track(client.certChain('Milan', 'vcek'));
    await clock.advance(4999);
    assert.equal(pending.settled, false);
    await clock.advance(1);
    const err = await rejects(() => pending.promise, 'snp.kds');
    assert.ok(err instanceof CollateralUnavailableError);
    assert.match(err.message, /did not deliver .* within 5000 ms/);
    assert.equal(kds.calls[0]!.signal?.aborted, true);
  });

  it('backs off after a failure (longer when KDS sends Retry-After) and then asks again', async () => {
    const clock = new FakeClock();
    let status = 503;
    const kds = fakeKds(
      () => new Response('busy', { status, headers: status === 429 ? { 'retry-after': '120' } : {} }),
      clock,
    );
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock, failureBackoffMs: 30_000 });
    await rejects(() => client.certChain('Milan', 'vcek'), 'snp.kds');
    const backoff = await rejects(() => client.certChain('Milan', 'vcek'), 'snp.kds.backoff');
    assert.ok(backoff instanceof CollateralUnavailableError);
    assert.equal(backoff.retryAfterMs, 30_000);
    assert.equal(kds.count(/./), 1);
    await clock.advance(30_000);
    status = 429;
    await rejects(() => clock.drive(client.certChain('Milan', 'vcek')), 'snp.kds');
    assert.equal(kds.count(/./), 2);
    await clock.advance(31_000);
    await rejects(() => client.certChain('Milan', 'vcek'), 'snp.kds.backoff');
    await clock.advance(90_000);
    status = 404;
    assert.equal(await clock.drive(client.certChain('Milan', 'vcek')), undefined);
    assert.equal(kds.count(/./), 3);
  });

  it('does not cache bodies that are not what was asked for', async () => {
    const dir = tempDir('kc-kds-');
    try {
      const clock = new FakeClock();
      const crl = forgedMilanCrl(new Date('2026-11-01'), new Date('2026-12-01'));
      const kds = fakeKds(
        (path) => new Response(path.endsWith('/crl') ? crl : Buffer.from('<html>maintenance</html>')),
        clock,
      );
      const cache = new DirectoryCache(dir);
      const client = new KdsClient({ cache, fetch: kds.fetch, baseUrl: BASE, clock, minIntervalMs: 0 });
      const report = parseSnpReport(milanV3.report);
      const vcek = await rejects(() => client.vcek('Milan', report), 'snp.kds.invalid');
      assert.ok(vcek instanceof CollateralUnavailableError);
      await rejects(() => client.certChain('Milan', 'vcek'), 'snp.kds.invalid');
      const forged = await rejects(() => client.fetchCrl('Milan', 'vcek'), 'snp.kds.invalid');
      assert.match(forged.message, /not signed by the pinned ARK-Milan/);
      assert.ok(!existsSync(cache.vcekFile('Milan', report)));
      assert.ok(!existsSync(cache.chainFile('Milan', 'vcek')));
      assert.ok(!existsSync(cache.crlFile('Milan', 'vcek')));
      assert.equal(await client.crl('Milan', 'vcek'), undefined, 'nor kept in memory');
    } finally {
      removeDir(dir);
    }
  });

  it('builds no request for a masked chip id', async () => {
    const kds = fakeKds(notFound);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock: new FakeClock() });
    const masked = Buffer.from(milanV3.report);
    masked.fill(0, 0x1a0, 0x1e0);
    assert.equal(vcekPath('Milan', parseSnpReport(masked)), undefined);
    assert.equal(await client.vcek('Milan', parseSnpReport(masked)), undefined);
    assert.equal(kds.calls.length, 0);
  });
});

describe('SEV-SNP verification: checks that cost nothing come before any collateral lookup', () => {
  const refFor = (over: object = {}) => ({
    ProductName: 'Milan',
    TrustedMeasurement: milanV3.report.subarray(0x90, 0xc0).toString('hex'),
    MinimumTCB: { BootloaderVersion: 0, TEEVersion: 0, SNPVersion: 0, MicrocodeVersion: 0 },
    GuestPolicy: { SMT: true },
    PlatformInfo: { SMTEnabled: true, TSMEEnabled: true },
    ...over,
  });
  const reportData = milanV3.report.subarray(0x50, 0x90);
  const hostData = milanV3.report.subarray(0xc0, 0xe0);

  function counting() {
    const clock = new FakeClock();
    const kds = fakeKds(notFound, clock);
    return { kds, clock, client: new KdsClient({ fetch: kds.fetch, baseUrl: BASE, clock }) };
  }

  it('rejects forged reports that do not copy the bound fields without a single request', async () => {
    const { kds, client } = counting();
    const forged = withRandomChipId(milanV3.report);
    const o = { collateral: client, now: SNP_NOW };
    const cases: [Buffer, object, unknown[] | null, string][] = [
      [Buffer.alloc(100), {}, null, 'snp.report.parse'],
      [forged, { reportData: Buffer.alloc(64, 7) }, null, 'snp.reportdata'],
      [forged, { reportData, hostData: Buffer.alloc(32, 7) }, null, 'snp.hostdata'],
      [forged, { reportData, hostData, vmpl: 2 }, null, 'snp.vmpl'],
      [forged, { reportData }, [refFor({ TrustedMeasurement: '11'.repeat(48) })], 'snp.measurement'],
      [forged, { reportData }, [refFor({ ProductName: 'Genoa' })], 'snp.product'],
      [forged, { reportData }, [refFor({ GuestPolicy: { SMT: false } })], 'snp.policy.smt'],
      [
        forged,
        {},
        [refFor({ MinimumTCB: { BootloaderVersion: 9, TEEVersion: 0, SNPVersion: 0, MicrocodeVersion: 0 } })],
        'snp.tcb.minimum',
      ],
    ];
    for (const [report, exp, refs, check] of cases) {
      await rejects(() => verifySnp({ report }, refs as never, exp, o), check);
    }
    const unsigned = Buffer.from(forged);
    unsigned.writeUInt32LE(7 << 2, 0x48);
    await rejects(() => verifySnp({ report: unsigned }, null, {}, o), 'snp.report.signingkey');
    assert.equal(kds.calls.length, 0);
  });

  it('fetches for a report that passes them, and reaches the same verdict as before for genuine evidence', async () => {
    const { kds, client, clock } = counting();
    // Genuine report, VCEK not in the evidence and not at KDS (404): the lookup happens.
    await rejects(
      () =>
        clock.drive(
          verifySnp(
            { report: milanV3.report },
            [refFor()],
            { reportData, hostData },
            { collateral: client, now: SNP_NOW },
          ),
        ),
      'snp.vcek.missing',
    );
    assert.equal(kds.count(/./), 1);
    // With its certificates, the same report and expectations verify, matching entry 0.
    const r = await clock.drive(
      verifySnp(
        genuineWithTable(),
        [refFor({ TrustedMeasurement: '00'.repeat(48) }), refFor()],
        { reportData, hostData },
        { collateral: client, now: SNP_NOW },
      ),
    );
    assert.equal(r.referenceValueIndex, 1);
  });

  it('keeps the old order when no collateral source is consulted, and says when it is', async () => {
    // A wrong VCEK and a wrong HOST_DATA: offline the signature fails first, as always...
    const wrongVcek = { vcek: SNP_VECTORS[1]!.vcek, certChain: milanV3.chain, now: SNP_NOW };
    await rejects(
      () => verifySnp({ report: milanV3.report }, null, { hostData: Buffer.alloc(32) }, wrongVcek),
      'snp.report.signature',
    );
    // ...and with a source that would only be asked for the CRL too: the CRL is looked up only
    // for an authentic report (check-order.test.ts), so the signature fails first, unasked.
    const { kds, client } = counting();
    await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          { hostData: Buffer.alloc(32) },
          { ...wrongVcek, collateral: client },
        ),
      'snp.report.signature',
    );
    assert.equal(kds.calls.length, 0);
    // Before asking a source for a certificate, HOST_DATA is judged first.
    await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          { hostData: Buffer.alloc(32) },
          { now: SNP_NOW, collateral: client },
        ),
      'snp.hostdata',
    );
    assert.equal(kds.calls.length, 0);
  });
});

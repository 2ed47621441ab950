/**
 * The SEV-SNP CRL policy: which CRL is used (supplied, cache, fetched), when it is refreshed,
 * the grace period, and what 'require' and the default 'if-available' do without one.
 *
 * No CRL signed by AMD is in the test vectors, so a CRL that passes the signature check cannot
 * be built: the choice is tested on resolveSnpCrl (which does not check signatures), the date
 * and revocation check on checkSnpCrl with a forged hierarchy, and end to end verifySnp shows
 * which CRL it used by naming it when that CRL's (forged) signature fails.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AttestationError, CollateralUnavailableError } from '../../src/attestation/errors.js';
import { verifyEvidence } from '../../src/attestation/dispatch.js';
import { encode } from '../../src/util/protobuf.js';
import { checkSnpCrl } from '../../src/attestation/snp/chain.js';
import type { SnpCollateralSource } from '../../src/attestation/snp/collateral.js';
import { DEFAULT_CRL_GRACE_MS, resolveSnpCrl, type SnpCrlInput } from '../../src/attestation/snp/crl.js';
import { DirectoryCache, KdsClient } from '../../src/attestation/snp/kds.js';
import { verifySnp } from '../../src/attestation/snp/verify.js';
import { parseCrl, subjectDer } from '../../src/attestation/x509.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { forgeAmdHierarchy, rejects } from './assertions.js';
import { forgeCrl } from './der-builder.js';
import { FakeClock, fakeKds, forgedMilanCrl, notFound } from './kds-fakes.js';
import { SNP_NOW, SNP_VECTORS } from './vectors.js';
import { OID_SNP_EVIDENCE } from '../../src/attestation/tees.js';
import { SnpEvidenceSchema } from '../../src/attestation/snp/evidence.js';

const HOUR = 3600_000;
const at = (offsetHours: number) => new Date(SNP_NOW.getTime() + offsetHours * HOUR);
/** Current at SNP_NOW. */
const current = () => forgedMilanCrl(at(-24), at(24 * 6));
/** Expired `hoursAgo` before SNP_NOW. */
const expired = (hoursAgo: number) => forgedMilanCrl(at(-hoursAgo - 24 * 7), at(-hoursAgo));
const down = () =>
  new CollateralUnavailableError('snp.kds', 'cannot fetch the CRL from AMD KDS (fetch failed)', {
    retryAfterMs: 30_000,
  });

/** A collateral source with a stored CRL and a network behind it, counting calls. */
function source(stored?: Buffer, network?: () => Buffer | undefined) {
  const calls = { crl: 0, fetchCrl: 0 };
  const src: SnpCollateralSource = {
    vcek: async () => undefined,
    certChain: async () => undefined,
    crl: async () => {
      calls.crl++;
      return stored;
    },
    ...(network
      ? {
          fetchCrl: async () => {
            calls.fetchCrl++;
            return network();
          },
        }
      : {}),
  };
  return { src, calls };
}

const input = (over: Partial<SnpCrlInput>): SnpCrlInput => ({
  product: 'Milan',
  kind: 'vcek',
  now: SNP_NOW,
  policy: 'if-available',
  graceMs: DEFAULT_CRL_GRACE_MS,
  ...over,
});
const bytesOf = (crl: ReturnType<typeof parseCrl> | undefined) => crl?.tbs.toString('hex');

describe('SEV-SNP CRL policy: which CRL is used', () => {
  it('uses a supplied CRL that is current without consulting the source', async () => {
    const supplied = current();
    const { src, calls } = source(current(), () => current());
    const d = await resolveSnpCrl(input({ supplied, source: src }));
    assert.equal(d.status.source, 'supplied');
    assert.equal(d.status.checked, true);
    assert.equal(d.status.stale, undefined);
    assert.equal(d.status.reason, undefined);
    assert.deepEqual(d.status.nextUpdate, at(24 * 6));
    assert.deepEqual(d.at, SNP_NOW);
    assert.equal(bytesOf(d.crl), bytesOf(parseCrl(supplied)));
    assert.deepEqual(calls, { crl: 0, fetchCrl: 0 });
  });

  it('uses a current CRL of an offline source', async () => {
    const cached = current();
    const { src, calls } = source(cached);
    const d = await resolveSnpCrl(input({ source: src }));
    assert.equal(d.status.source, 'cache');
    assert.equal(d.status.checked, true);
    assert.equal(bytesOf(d.crl), bytesOf(parseCrl(cached)));
    assert.deepEqual(calls, { crl: 1, fetchCrl: 0 });
  });

  it('lets a network source decide whether its current CRL needs a refresh, and names a kept one as cached', async () => {
    // The source's fetchCrl returns its kept copy (KdsClient: until 24 h before nextUpdate; kept-collateral.test.ts).
    const cached = current();
    const { src, calls } = source(cached, () => cached);
    const d = await resolveSnpCrl(input({ source: src }));
    assert.equal(d.status.source, 'cache');
    assert.equal(bytesOf(d.crl), bytesOf(parseCrl(cached)));
    assert.deepEqual(calls, { crl: 1, fetchCrl: 1 });
    // A refresh that fails while the cached CRL is current costs nothing.
    const failing = source(cached, () => {
      throw down();
    });
    assert.equal((await resolveSnpCrl(input({ source: failing.src, policy: 'require' }))).status.source, 'cache');
  });

  it('prefers a current cached CRL over an out-of-date supplied one', async () => {
    const { src, calls } = source(current());
    const d = await resolveSnpCrl(input({ supplied: expired(1), source: src }));
    assert.equal(d.status.source, 'cache');
    assert.equal(calls.fetchCrl, 0);
  });

  it('refreshes a cached CRL past its nextUpdate', async () => {
    const fresh = current();
    const { src, calls } = source(expired(1), () => fresh);
    const d = await resolveSnpCrl(input({ source: src }));
    assert.equal(d.status.source, 'fetched');
    assert.equal(d.status.checked, true);
    assert.equal(d.status.stale, undefined);
    assert.equal(bytesOf(d.crl), bytesOf(parseCrl(fresh)));
    assert.equal(calls.fetchCrl, 1);
  });

  it('fetches when nothing is cached, and ignores a cached CRL that does not parse', async () => {
    const { src, calls } = source(Buffer.from('garbage'), () => current());
    const d = await resolveSnpCrl(input({ source: src }));
    assert.equal(d.status.source, 'fetched');
    assert.equal(calls.fetchCrl, 1);
  });

  it('refuses a supplied CRL that does not parse (explicit input is never skipped)', async () => {
    await rejects(() => resolveSnpCrl(input({ supplied: Buffer.from('garbage') })), 'snp.crl');
  });
});

describe('SEV-SNP CRL policy: refresh fails', () => {
  it('if-available: uses an out-of-date CRL within the grace period and says so', async () => {
    const { src } = source(expired(23), () => {
      throw down();
    });
    const d = await resolveSnpCrl(input({ source: src }));
    assert.equal(d.status.checked, true);
    assert.equal(d.status.stale, true);
    assert.equal(d.status.source, 'cache');
    assert.deepEqual(d.status.nextUpdate, at(-23));
    assert.deepEqual(d.at, at(-23), 'checked as of its own nextUpdate');
    assert.match(d.status.reason!, /expired at .* used within the 24 h grace period/);
    assert.match(d.status.reason!, /refreshing it from AMD KDS failed: .*fetch failed/);
  });

  it('if-available: beyond the grace period it is consulted for revocations only, and the check counts as not done', async () => {
    const { src } = source(expired(25), () => {
      throw down();
    });
    const d = await resolveSnpCrl(input({ source: src }));
    assert.equal(d.status.checked, false);
    assert.equal(d.status.stale, true);
    assert.ok(d.crl, 'still checked for what it lists');
    assert.match(d.status.reason!, /beyond the 24 h grace period/);
  });

  it('if-available: the grace period is an option', async () => {
    const { src } = source(expired(25), () => {
      throw down();
    });
    const d = await resolveSnpCrl(input({ source: src, graceMs: 48 * HOUR }));
    assert.equal(d.status.checked, true);
    const none = await resolveSnpCrl(
      input({
        source: source(expired(1), () => {
          throw down();
        }).src,
        graceMs: 0,
      }),
    );
    assert.equal(none.status.checked, false);
  });

  it('if-available offline (a cache directory without network): the same grace rules', async () => {
    const { src } = source(expired(2));
    const d = await resolveSnpCrl(input({ source: src }));
    assert.equal(d.status.checked, true);
    assert.equal(d.status.stale, true);
    assert.match(d.status.reason!, /cannot fetch CRLs \(offline\)/);
  });

  it('require: refuses an out-of-date CRL, as "retry later" when the refresh was unavailable', async () => {
    const { src } = source(expired(1), () => {
      throw down();
    });
    const err = await rejects(() => resolveSnpCrl(input({ source: src, policy: 'require' })), 'snp.crl.stale');
    assert.ok(err instanceof CollateralUnavailableError);
    assert.equal((err as CollateralUnavailableError).retryAfterMs, 30_000);
    // Offline there is nothing to retry: a plain verdict.
    const offline = await rejects(
      () => resolveSnpCrl(input({ supplied: expired(1), policy: 'require' })),
      'snp.crl.stale',
    );
    assert.ok(!(offline instanceof CollateralUnavailableError));
  });

  it('treats a CRL from KDS that is itself out of date like any other out-of-date CRL', async () => {
    const { src } = source(undefined, () => expired(2));
    const d = await resolveSnpCrl(input({ source: src }));
    assert.equal(d.status.source, 'fetched');
    assert.equal(d.status.stale, true);
    assert.match(d.status.reason!, /the CRL AMD KDS serves is not current either/);
    await rejects(() => resolveSnpCrl(input({ source: src, policy: 'require' })), 'snp.crl.stale');
  });
});

describe('SEV-SNP CRL policy: no CRL at all', () => {
  it('if-available: goes on without a revocation check and says why', async () => {
    const { src } = source(undefined, () => {
      throw down();
    });
    const d = await resolveSnpCrl(input({ source: src }));
    assert.equal(d.crl, undefined);
    assert.equal(d.status.checked, false);
    assert.equal(d.status.source, undefined);
    assert.match(d.status.reason!, /no CRL for Milan VCEK: .*refreshing it from AMD KDS failed/);
  });

  it('require: fails, as "retry later" only when KDS could not be asked', async () => {
    const unreachable = await rejects(
      () =>
        resolveSnpCrl(
          input({
            source: source(undefined, () => {
              throw down();
            }).src,
            policy: 'require',
          }),
        ),
      'snp.crl.missing',
    );
    assert.ok(unreachable instanceof CollateralUnavailableError);
    const noneAtKds = await rejects(
      () => resolveSnpCrl(input({ source: source(undefined, () => undefined).src, policy: 'require' })),
      'snp.crl.missing',
    );
    assert.ok(!(noneAtKds instanceof CollateralUnavailableError));
    assert.match(noneAtKds.message, /AMD KDS has no CRL for Milan VCEK/);
    const noSource = await rejects(() => resolveSnpCrl(input({ policy: 'require' })), 'snp.crl.missing');
    assert.ok(!(noSource instanceof CollateralUnavailableError));
    assert.match(noSource.message, /no collateral source/);
  });

  it('does not mistake other errors of the source for unavailability', async () => {
    const src: SnpCollateralSource = {
      vcek: async () => undefined,
      certChain: async () => undefined,
      crl: async () => {
        throw new Error('EACCES');
      },
    };
    await assert.rejects(resolveSnpCrl(input({ source: src })), /EACCES/);
    // Neither when fetching: only the source's trouble with KDS means "no fresh CRL".
    const claim = source(undefined, () => {
      throw new AttestationError('snp.hostdata', 'HOST_DATA does not match');
    });
    await rejects(() => resolveSnpCrl(input({ source: claim.src })), 'snp.hostdata');
    const refused = source(undefined, () => {
      throw new AttestationError('snp.kds', 'AMD KDS refused the CRL', '200', '400');
    });
    const d = await resolveSnpCrl(input({ source: refused.src }));
    assert.match(d.status.reason!, /refreshing it from AMD KDS failed: .*refused/);
  });
});

describe('SEV-SNP CRL check: dates and revocation (forged hierarchy)', () => {
  const forged = forgeAmdHierarchy(SNP_VECTORS[2]!);
  const crlOf = (next: Date, revoked: bigint[] = []) =>
    parseCrl(
      forgeCrl({
        issuer: subjectDer(forged.ark),
        signingKey: forged.arkKey,
        alg: 'rsa-pss-sha384',
        thisUpdate: at(-24 * 8),
        nextUpdate: next,
        revoked,
      }),
    );
  const askSerial = BigInt(`0x${forged.ask.serialNumber}`);

  it('accepts an out-of-date CRL only as of its own nextUpdate', () => {
    const crl = crlOf(at(-2));
    assert.throws(() => checkSnpCrl(crl, forged.ark, forged.ask, SNP_NOW), /out of date/);
    assert.doesNotThrow(() => checkSnpCrl(crl, forged.ark, forged.ask, at(-2)));
  });

  it('still honours the revocations of an out-of-date CRL', async () => {
    const crl = crlOf(at(-100), [askSerial]);
    assert.throws(() => checkSnpCrl(crl, forged.ark, forged.ask, at(-100)), /revoked/);
    // What resolveSnpCrl hands over beyond the grace period is checked this way.
    const der = forgeCrl({
      issuer: subjectDer(forged.ark),
      signingKey: forged.arkKey,
      alg: 'rsa-pss-sha384',
      thisUpdate: at(-24 * 8),
      nextUpdate: at(-100),
      revoked: [askSerial],
    });
    const d = await resolveSnpCrl(input({ supplied: der }));
    assert.equal(d.status.checked, false);
    assert.throws(() => checkSnpCrl(d.crl!, forged.ark, forged.ask, d.at!), /revoked/);
  });
});

describe('SEV-SNP verification end to end with the CRL policy', () => {
  const v = SNP_VECTORS[1]!; // virtee Milan v2
  const base = { vcek: v.vcek, certChain: v.chain, now: SNP_NOW };
  let dir: string;
  beforeEach(() => {
    dir = tempDir('kc-crl-');
  });
  afterEach(() => removeDir(dir));

  function unreachableKds() {
    const clock = new FakeClock();
    const kds = fakeKds(() => {
      throw new TypeError('fetch failed');
    }, clock);
    return { clock, kds, client: new KdsClient({ fetch: kds.fetch, baseUrl: 'https://kds.test', clock }) };
  }

  it('default policy: an unreachable KDS and no CRL do not fail verification, and the result says so', async () => {
    const { kds, client } = unreachableKds();
    const r = await verifySnp({ report: v.report }, null, {}, { ...base, collateral: client });
    assert.equal(r.crlChecked, false);
    assert.equal(r.crl.checked, false);
    assert.match(r.crl.reason!, /no CRL for Milan VCEK.*cannot fetch the CRL .*fetch failed/);
    assert.equal(kds.calls.length, 1);
    // Within the backoff the next verification does not wait for KDS at all.
    const again = await verifySnp({ report: v.report }, null, {}, { ...base, collateral: client });
    assert.match(again.crl.reason!, /snp\.kds\.backoff/);
    assert.equal(kds.calls.length, 1);
  });

  it("'require': the same situation fails with CollateralUnavailableError", async () => {
    const { client } = unreachableKds();
    const err = await rejects(
      () => verifySnp({ report: v.report }, null, {}, { ...base, collateral: client, crlPolicy: 'require' }),
      'snp.crl.missing',
    );
    assert.ok(err instanceof CollateralUnavailableError);
    // Without any source there is nothing to retry.
    const offline = await rejects(
      () => verifySnp({ report: v.report }, null, {}, { ...base, crlPolicy: 'require' }),
      'snp.crl.missing',
    );
    assert.ok(offline instanceof AttestationError && !(offline instanceof CollateralUnavailableError));
  });

  it('default policy without any source: verified, crlChecked false with a reason', async () => {
    const r = await verifySnp({ report: v.report }, null, {}, base);
    assert.deepEqual({ checked: r.crl.checked, source: r.crl.source }, { checked: false, source: undefined });
    assert.match(r.crl.reason!, /none supplied, none cached; no collateral source/);
  });

  it('uses a supplied CRL: its check runs and names it (the forged signature fails)', async () => {
    const err = await rejects(() => verifySnp({ report: v.report }, null, {}, { ...base, crl: current() }), 'snp.crl');
    assert.match(err.message, /the supplied CRL: CRL signature does not verify/);
  });

  it('uses a current cached CRL without asking KDS', async () => {
    const cache = new DirectoryCache(dir);
    mkdirSync(join(dir, 'Milan', 'vcek'), { recursive: true });
    writeFileSync(cache.crlFile('Milan', 'vcek'), current());
    const clock = new FakeClock();
    const kds = fakeKds(notFound, clock);
    const client = new KdsClient({ cache, fetch: kds.fetch, baseUrl: 'https://kds.test', clock });
    const err = await rejects(
      () => verifySnp({ report: v.report }, null, {}, { ...base, collateral: client }),
      'snp.crl',
    );
    assert.match(err.message, /the cached CRL: CRL signature does not verify/);
    assert.equal(kds.calls.length, 0);
  });

  it('uses an out-of-date cached CRL within the grace period when KDS is unreachable', async () => {
    const cache = new DirectoryCache(dir);
    mkdirSync(join(dir, 'Milan', 'vcek'), { recursive: true });
    writeFileSync(cache.crlFile('Milan', 'vcek'), expired(3));
    const clock = new FakeClock();
    const kds = fakeKds(() => {
      throw new TypeError('fetch failed');
    }, clock);
    const client = new KdsClient({ cache, fetch: kds.fetch, baseUrl: 'https://kds.test', clock });
    const err = await rejects(
      () => verifySnp({ report: v.report }, null, {}, { ...base, collateral: client }),
      'snp.crl',
    );
    assert.match(err.message, /the cached CRL: CRL signature does not verify/, 'it was chosen, and checked');
    assert.equal(kds.calls.length, 1, 'after one refresh attempt');
    await rejects(
      () => verifySnp({ report: v.report }, null, {}, { ...base, collateral: client, crlPolicy: 'require' }),
      'snp.crl.stale',
    );
  });

  it('does not let an unusable CRL from KDS fail admission under the default policy', async () => {
    const clock = new FakeClock();
    const kds = fakeKds((path) => (path.endsWith('/crl') ? new Response(current()) : notFound()), clock);
    const client = new KdsClient({ fetch: kds.fetch, baseUrl: 'https://kds.test', clock });
    const r = await verifySnp({ report: v.report }, null, {}, { ...base, collateral: client });
    assert.equal(r.crlChecked, false);
    assert.match(r.crl.reason!, /snp\.kds\.invalid.*not signed by the pinned ARK-Milan/);
    await clock.advance(60_000);
    const err = await rejects(
      () => verifySnp({ report: v.report }, null, {}, { ...base, collateral: client, crlPolicy: 'require' }),
      'snp.crl.missing',
    );
    assert.ok(err instanceof CollateralUnavailableError);
  });

  it('consults an out-of-date supplied CRL past the grace period for its revocations, offline', async () => {
    // The forged CRL is consulted for revocations and fails its signature check: chosen, but
    // a genuine one would leave crlChecked false. Shown on the decision itself:
    const d = await resolveSnpCrl(input({ supplied: expired(48) }));
    assert.equal(d.status.checked, false);
    await rejects(() => verifySnp({ report: v.report }, null, {}, { ...base, crl: expired(48) }), 'snp.crl');
  });

  it('passes the policy through the dispatcher options unchanged', async () => {
    const value = encode(SnpEvidenceSchema, { report: v.report, certTable: Buffer.alloc(0) });
    const refs = {
      snp: [
        {
          ProductName: 'Milan',
          TrustedMeasurement: v.report.subarray(0x90, 0xc0).toString('hex'),
          MinimumTCB: { BootloaderVersion: 0, TEEVersion: 0, SNPVersion: 0, MicrocodeVersion: 0 },
        },
      ],
    };
    const reportData = v.report.subarray(0x50, 0x90);
    const ok = await verifyEvidence(OID_SNP_EVIDENCE, value, refs as never, Buffer.from(reportData), { snp: base });
    assert.equal(ok.tee, 'snp');
    await rejects(
      () =>
        verifyEvidence(OID_SNP_EVIDENCE, value, refs as never, Buffer.from(reportData), {
          snp: { ...base, crlPolicy: 'require' },
        }),
      'snp.crl.missing',
    );
    // "Retry later" reaches the dispatcher's caller as such.
    const { client } = unreachableKds();
    const err = await rejects(
      () =>
        verifyEvidence(OID_SNP_EVIDENCE, value, refs as never, Buffer.from(reportData), {
          snp: { ...base, collateral: client, crlPolicy: 'require' },
        }),
      'snp.crl.missing',
    );
    assert.ok(err instanceof CollateralUnavailableError);
  });
});

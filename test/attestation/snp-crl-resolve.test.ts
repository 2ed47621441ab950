/**
 * The CRL choice (resolveSnpCrl) at its edges: boundaries of "current", CRLs issued in the
 * future, several out-of-date CRLs, the exact reasons, and which errors of a source count as
 * "KDS is unavailable". Complements snp-crl-policy.test.ts.
 */
import assert from 'node:assert/strict';
import { AttestationError, CollateralUnavailableError } from '../../src/attestation/errors.js';
import type { SnpCollateralSource } from '../../src/attestation/snp/collateral.js';
import {
  DEFAULT_CRL_GRACE_MS,
  SNP_CRL_POLICIES,
  describeCrlSource,
  resolveSnpCrl,
  type SnpCrlInput,
} from '../../src/attestation/snp/crl.js';
import { parseCrl, subjectDer } from '../../src/attestation/x509.js';
import { X509Certificate } from 'node:crypto';
import { int, oid, seq, time, tlv } from './der-builder.js';
import { rejects } from './assertions.js';
import { forgedMilanCrl } from './kds-fakes.js';
import { SNP_NOW, pemBlocks } from './vectors.js';

const HOUR = 3600_000;
const at = (h: number) => new Date(SNP_NOW.getTime() + h * HOUR);
const input = (over: Partial<SnpCrlInput>): SnpCrlInput => ({
  product: 'Milan',
  kind: 'vcek',
  now: SNP_NOW,
  policy: 'if-available',
  graceMs: DEFAULT_CRL_GRACE_MS,
  ...over,
});
const tbsOf = (der: Buffer | undefined) => (der ? parseCrl(der).tbs.toString('hex') : undefined);

/** A CRL naming the Milan ARK without nextUpdate (signature irrelevant here). */
function crlWithoutNextUpdate(thisUpdate: Date): Buffer {
  const alg = seq(oid('1.2.840.113549.1.1.10'), seq());
  const ark = new X509Certificate(pemBlocks('amd/go-sev-guest/ask_ark_milan.pem')[1]!);
  const tbs = seq(int(1), alg, subjectDer(ark), time(thisUpdate));
  return seq(tbs, alg, tlv(0x03, Buffer.from([0, 1, 2])));
}

function source(o: { cached?: Buffer; fetch?: () => Promise<Buffer | undefined> }) {
  const calls: string[] = [];
  const src: SnpCollateralSource = {
    vcek: async () => undefined,
    certChain: async () => undefined,
    crl: async () => {
      calls.push('crl');
      return o.cached;
    },
    ...(o.fetch
      ? {
          fetchCrl: async () => {
            calls.push('fetch');
            return o.fetch!();
          },
        }
      : {}),
  };
  return { src, calls };
}

describe('SEV-SNP CRL choice: edges', () => {
  it('names the policies and the sources', () => {
    assert.deepEqual([...SNP_CRL_POLICIES], ['require', 'if-available']);
    assert.deepEqual((['supplied', 'cache', 'fetched'] as const).map(describeCrlSource), [
      'the supplied CRL',
      'the cached CRL',
      'the CRL from AMD KDS',
    ]);
  });

  it('counts a CRL as current from its thisUpdate to its nextUpdate inclusive, and forever without nextUpdate', async () => {
    for (const crl of [
      forgedMilanCrl(SNP_NOW, at(24)),
      forgedMilanCrl(at(-24), SNP_NOW),
      crlWithoutNextUpdate(at(-24 * 365)),
    ]) {
      const { src, calls } = source({ cached: forgedMilanCrl(at(-1), at(1)) });
      const d = await resolveSnpCrl(input({ supplied: crl, source: src }));
      assert.equal(d.status.source, 'supplied');
      assert.equal(d.status.checked, true);
      assert.deepEqual(d.at, SNP_NOW);
      assert.deepEqual(calls, [], 'a current supplied CRL is used without asking the source');
    }
    const d = await resolveSnpCrl(input({ supplied: crlWithoutNextUpdate(at(-1)) }));
    assert.ok(!('nextUpdate' in d.status));
  });

  it('looks further when the supplied CRL is issued in the future, and uses it only if nothing else is there', async () => {
    const future = forgedMilanCrl(at(1), at(48));
    const { src } = source({ cached: forgedMilanCrl(at(-1), at(1)) });
    const d = await resolveSnpCrl(input({ supplied: future, source: src }));
    assert.equal(d.status.source, 'cache');
    const alone = await resolveSnpCrl(input({ supplied: future }));
    assert.equal(alone.status.source, 'supplied');
    assert.equal(tbsOf(future), alone.crl?.tbs.toString('hex'));
    assert.deepEqual(alone.at, SNP_NOW, 'checked as of now: it then fails as not yet valid');
  });

  it('of several out-of-date CRLs takes the one that expired last, ignoring CRLs issued in the future', async () => {
    const older = forgedMilanCrl(at(-24 * 8), at(-3));
    const newer = forgedMilanCrl(at(-24 * 8), at(-2));
    const future = forgedMilanCrl(at(2), at(24 * 30));
    let d = await resolveSnpCrl(input({ supplied: older, source: source({ cached: newer }).src }));
    assert.equal(d.status.source, 'cache');
    assert.deepEqual(d.at, at(-2));
    d = await resolveSnpCrl(input({ supplied: newer, source: source({ cached: older }).src }));
    assert.equal(d.status.source, 'supplied');
    d = await resolveSnpCrl(input({ supplied: future, source: source({ cached: older }).src }));
    assert.equal(d.status.source, 'cache');
    assert.equal(d.status.stale, true);
    assert.deepEqual(d.at, at(-3));
  });

  it('uses an out-of-date CRL up to exactly the grace period, and says so in hours or minutes', async () => {
    const crl = forgedMilanCrl(at(-24 * 8), at(-24));
    const within = await resolveSnpCrl(input({ supplied: crl }));
    assert.equal(within.status.checked, true);
    assert.match(within.status.reason!, /; used within the 24 h grace period$/);
    const halfHour = await resolveSnpCrl(
      input({ supplied: forgedMilanCrl(at(-24 * 8), at(-0.25)), graceMs: 30 * 60_000 }),
    );
    assert.equal(halfHour.status.checked, true);
    assert.match(halfHour.status.reason!, /; used within the 30 min grace period$/);
    const beyond = await resolveSnpCrl(input({ supplied: forgedMilanCrl(at(-24 * 8), at(-1)), graceMs: 30 * 60_000 }));
    assert.equal(beyond.status.checked, false);
    assert.match(beyond.status.reason!, /beyond the 30 min grace period/);
  });

  it('explains every step in the reason, separated by semicolons', async () => {
    const d = await resolveSnpCrl(input({ source: source({ cached: Buffer.from('junk') }).src }));
    assert.equal(d.status.checked, false);
    assert.match(
      d.status.reason!,
      /^no CRL for Milan VCEK: none supplied, none cached; the cached CRL cannot be parsed \(.+\); the collateral source cannot fetch CRLs \(offline\)$/,
    );
    const n = await resolveSnpCrl(input({}));
    assert.equal(
      n.status.reason,
      'no CRL for Milan VCEK: none supplied, none cached; no collateral source to get one from',
    );
    const stale = await resolveSnpCrl(
      input({ supplied: forgedMilanCrl(at(-24 * 8), at(-1)), source: source({ fetch: async () => undefined }).src }),
    );
    assert.match(
      stale.status.reason!,
      /^the supplied CRL for Milan VCEK expired at .* \(nextUpdate\) and no current one is available: AMD KDS has no CRL for Milan VCEK; used within/,
    );
  });

  it('under require, names the out-of-date CRL in the refusal', async () => {
    const err = await rejects(
      () => resolveSnpCrl(input({ policy: 'require', supplied: forgedMilanCrl(at(-24 * 8), at(-1)) })),
      'snp.crl.stale',
    );
    assert.match(err.detail, /^crlPolicy 'require' needs a current CRL; the supplied CRL for Milan VCEK expired at /);
    assert.ok(!(err instanceof CollateralUnavailableError));
  });

  it('treats only the source\'s KDS trouble as "no fresh CRL", and only unavailability as "retry later"', async () => {
    // A refusal by KDS (4xx): noted, not rethrown, and not "retry later".
    const refused = source({
      fetch: async () => {
        throw new AttestationError('snp.kds', 'AMD KDS refused the CRL');
      },
    });
    const d = await resolveSnpCrl(input({ source: refused.src }));
    assert.match(
      d.status.reason!,
      /refreshing it from AMD KDS failed: attestation check snp\.kds failed: AMD KDS refused the CRL$/,
    );
    assert.doesNotMatch(d.status.reason!, /has no CRL/);
    const err = await rejects(
      () => resolveSnpCrl(input({ policy: 'require', source: refused.src })),
      'snp.crl.missing',
    );
    assert.ok(!(err instanceof CollateralUnavailableError));
    // Any snp.kds… check counts as the source's KDS trouble.
    const other = source({
      fetch: async () => {
        throw new AttestationError('snp.kds.other', 'x');
      },
    });
    assert.equal((await resolveSnpCrl(input({ source: other.src }))).status.checked, false);
    // Unavailability without a retry hint stays without one.
    const down = source({
      fetch: async () => {
        throw new CollateralUnavailableError('snp.kds', 'down');
      },
    });
    const e2 = await rejects(() => resolveSnpCrl(input({ policy: 'require', source: down.src })), 'snp.crl.missing');
    assert.ok(e2 instanceof CollateralUnavailableError);
    assert.equal(e2.retryAfterMs, undefined);
    assert.ok(e2.cause instanceof CollateralUnavailableError);
  });

  it('refuses a fetched CRL that does not parse under snp.crl', async () => {
    const err = await rejects(
      () => resolveSnpCrl(input({ source: source({ fetch: async () => Buffer.from('junk') }).src })),
      'snp.crl',
    );
    assert.match(err.detail, /^the CRL cannot be parsed/);
  });
});

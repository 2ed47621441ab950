/** The small shared pieces of src/attestation: errors, bytes, hex matching, bounded caches, evidence files, pinned roots. */
import assert from 'node:assert/strict';
import { AttestationError, CollateralUnavailableError, ensure } from '../../src/attestation/errors.js';
import { asBuffer, bytesEqual, fromHex, isAllZero, toHex } from '../../src/attestation/bytes.js';
import { expectHexEqual, firstMatchingEntry } from '../../src/attestation/matching.js';
import { BoundedCache } from '../../src/attestation/bounded-cache.js';
import { decodeBinaryOrHex, splitSnpEvidence } from '../../src/attestation/evidence-file.js';
import { AMD_ARKS } from '../../src/attestation/roots/amd.js';
import { pinnedCertificate } from '../../src/attestation/roots/pinned.js';
import { UserError } from '../../src/util/errors.js';
import { rejects } from './assertions.js';
import { SNP_VECTORS } from './vectors.js';

describe('attestation errors', () => {
  it('carry check, detail, expected and actual, all in the message', () => {
    const e = new AttestationError('snp.x', 'it failed', 'this', 'that');
    assert.ok(e instanceof UserError);
    assert.equal(e.name, 'AttestationError');
    assert.equal(e.message, 'attestation check snp.x failed: it failed; expected this; actual that');
    assert.equal(new AttestationError('c', 'd').message, 'attestation check c failed: d');
    assert.equal(new AttestationError('c', 'd', 'e').message, 'attestation check c failed: d; expected e');
    assert.equal(new AttestationError('c', 'd', undefined, 'a').message, 'attestation check c failed: d; actual a');
    assert.equal(new AttestationError('c', 'd', '', '').message, 'attestation check c failed: d; expected ; actual ');
    const cause = new Error('inner');
    assert.equal(new AttestationError('c', 'd', undefined, undefined, { cause }).cause, cause);
  });

  it('ensure throws only when the condition fails', async () => {
    ensure(true, 'c', 'd');
    const err = await rejects(() => ensure(false, 'the.check', 'why', 'x', 'y'), 'the.check');
    assert.deepEqual([err.detail, err.expected, err.actual], ['why', 'x', 'y']);
  });

  it('collateral unavailability is an attestation error with a cause and a non-negative whole retry hint', () => {
    const cause = new Error('down');
    const e = new CollateralUnavailableError('snp.kds', 'KDS is down', { cause, retryAfterMs: 1500.2 });
    assert.ok(e instanceof AttestationError);
    assert.equal(e.name, 'CollateralUnavailableError');
    assert.equal(e.message, 'attestation check snp.kds failed: KDS is down');
    assert.equal(e.cause, cause);
    assert.equal(e.retryAfterMs, 1501);
    assert.equal(new CollateralUnavailableError('c', 'd', { retryAfterMs: -5 }).retryAfterMs, 0);
    const bare = new CollateralUnavailableError('c', 'd');
    assert.equal(bare.retryAfterMs, undefined);
    assert.equal(bare.cause, undefined);
    assert.ok(!('cause' in bare));
  });
});

describe('byte helpers', () => {
  it('decodes strict hex only', () => {
    assert.deepEqual(fromHex('00aBff'), Buffer.from([0, 0xab, 0xff]));
    assert.deepEqual(fromHex(''), Buffer.alloc(0));
    for (const bad of ['abc', 'zz', 'a g0', '0x00', 'ab\n', 'gg00', '00gg']) assert.equal(fromHex(bad), null, bad);
  });

  it('compares, renders and views bytes without copying', () => {
    const u = new Uint8Array([9, 1, 2, 3]).subarray(1);
    assert.equal(toHex(u), '010203');
    assert.ok(bytesEqual(u, Buffer.from([1, 2, 3])));
    assert.ok(!bytesEqual(u, Buffer.from([1, 2])));
    assert.ok(isAllZero(Buffer.alloc(3)));
    assert.ok(isAllZero(Buffer.alloc(0)));
    assert.ok(!isAllZero(Buffer.from([0, 0, 1])));
    const view = asBuffer(u);
    assert.ok(Buffer.isBuffer(view));
    assert.deepEqual(view, Buffer.from([1, 2, 3]));
    u[0] = 7;
    assert.equal(view[0], 7, 'a view, not a copy');
    const b = Buffer.from([4]);
    assert.equal(asBuffer(b), b);
  });
});

describe('reference-value matching', () => {
  it('compares hex reference values, refusing malformed ones', async () => {
    expectHexEqual('x.m', 'M', 'AB01', Buffer.from([0xab, 0x01]));
    let err = await rejects(() => expectHexEqual('x.m', 'MEASUREMENT', 'AB02', Buffer.from([0xab, 0x01])), 'x.m');
    assert.deepEqual([err.detail, err.expected, err.actual], ['MEASUREMENT does not match', 'ab02', 'ab01']);
    err = await rejects(() => expectHexEqual('x.m', 'M', 'zz', Buffer.alloc(1)), 'x.m');
    assert.equal(err.expected, 'zz');
  });

  it('returns the first entry that validates, and refuses an empty list', async () => {
    const seen: number[] = [];
    assert.equal(
      firstMatchingEntry('snp', [1, 2, 3], (r) => {
        seen.push(r);
        if (r < 2) throw new AttestationError('snp.x', 'no');
      }),
      1,
    );
    assert.deepEqual(seen, [1, 2]);
    let err = await rejects(() => firstMatchingEntry('snp', [], () => undefined), 'snp.referencevalues');
    assert.equal(err.detail, 'no SNP reference values to validate against');
    err = await rejects(() => firstMatchingEntry('tdx', [], () => undefined), 'tdx.referencevalues');
    assert.equal(err.detail, 'no TDX reference values to validate against');
  });

  it('reports one failure as it is and several by entry', async () => {
    const fail = (r: number) => {
      throw new AttestationError(`tdx.f${r}`, `entry ${r}`);
    };
    const one = await rejects(() => firstMatchingEntry('tdx', [0], fail), 'tdx.f0');
    assert.equal(one.detail, 'entry 0');
    const many = await rejects(() => firstMatchingEntry('tdx', [0, 1], fail), 'tdx.referencevalues');
    assert.equal(
      many.detail,
      'no reference-value entry matches: [0] attestation check tdx.f0 failed: entry 0; [1] attestation check tdx.f1 failed: entry 1',
    );
  });

  it('does not swallow programming errors', () => {
    assert.throws(
      () =>
        firstMatchingEntry('snp', [1, 2], () => {
          throw new TypeError('bug');
        }),
      TypeError,
    );
  });
});

describe('bounded caches', () => {
  it('keep at most capacity entries, forgetting the least recently used', () => {
    const c = new BoundedCache<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    assert.equal(c.get('a'), 1); // a is now the most recent
    c.set('c', 3);
    assert.equal(c.get('b'), undefined, 'b was the least recently used');
    assert.equal(c.get('a'), 1);
    assert.equal(c.get('c'), 3);
    c.set('c', 4);
    c.set('d', 5);
    assert.equal(c.get('a'), undefined);
    assert.deepEqual([c.get('c'), c.get('d')], [4, 5]);
  });

  it('does not store anything when a key is missing', () => {
    const c = new BoundedCache<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    assert.equal(c.get('missing'), undefined);
    c.set('c', 3);
    assert.deepEqual([c.get('a'), c.get('b'), c.get('c')], [undefined, 2, 3]);
  });

  it('holds exactly capacity entries', () => {
    const c = new BoundedCache<number, number>(3);
    for (let i = 0; i < 3; i++) c.set(i, i);
    assert.deepEqual(
      [0, 1, 2].map((i) => c.get(i)),
      [0, 1, 2],
    );
    assert.equal(c.get(9), undefined);
  });
});

describe('evidence files', () => {
  const report = SNP_VECTORS[2]!.report;

  it('reads hex text, with any whitespace, and keeps binary as it is', () => {
    assert.deepEqual(decodeBinaryOrHex(Buffer.from(' ab cd\n0e\tF0\r\n')), Buffer.from([0xab, 0xcd, 0x0e, 0xf0]));
    assert.deepEqual(decodeBinaryOrHex(Buffer.from('abc')), Buffer.from('abc'), 'odd length: not hex');
    assert.deepEqual(decodeBinaryOrHex(Buffer.from('  \n')), Buffer.from('  \n'));
    assert.deepEqual(decodeBinaryOrHex(Buffer.alloc(0)), Buffer.alloc(0));
    assert.deepEqual(decodeBinaryOrHex(report), report);
  });

  it('splits a report from its certificate table', async () => {
    const only = splitSnpEvidence(report);
    assert.deepEqual(only.report, report);
    assert.ok(!('certTable' in only));
    const withTable = splitSnpEvidence(Buffer.concat([report, Buffer.from([1, 2])]));
    assert.deepEqual(withTable.certTable, Buffer.from([1, 2]));
    const err = await rejects(() => splitSnpEvidence(report.subarray(0, 1183)), 'snp.report.parse');
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['the evidence is shorter than one report', '>= 1184 bytes', '1183 bytes'],
    );
  });
});

describe('pinned roots', () => {
  it('parses a root once and checks it against its pin', () => {
    const copy = { pem: AMD_ARKS.Milan.pem, sha256: AMD_ARKS.Milan.sha256 };
    const cert = pinnedCertificate(copy);
    assert.equal(pinnedCertificate(copy), cert);
    assert.equal(cert.subject.split('\n').at(-1), 'CN=ARK-Milan');
    assert.throws(
      () => pinnedCertificate({ pem: 'not a certificate', sha256: 'ff'.repeat(32) }),
      (e: unknown) => e instanceof AttestationError && e.message.includes(`pinned root ${'ff'.repeat(32)}`),
    );
    assert.throws(
      () => pinnedCertificate({ pem: AMD_ARKS.Genoa.pem, sha256: AMD_ARKS.Milan.sha256 }),
      (e: unknown) =>
        e instanceof Error &&
        !(e instanceof AttestationError) &&
        e.message === `pinned root certificate does not match its fingerprint ${AMD_ARKS.Milan.sha256}`,
    );
  });
});

/**
 * CRLs (src/attestation/x509.ts): parsing (crl.parse), the signature algorithms AMD and Intel
 * use (RSA-PSS with its parameters, ECDSA), dates at their boundaries, and revocation by
 * serial number.
 */
import assert from 'node:assert/strict';
import { X509Certificate, constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { checkCrl, normalizeSerial, parseCrl, parseCrlFor } from '../../src/attestation/x509.js';
import { children, readSingle } from '../../src/attestation/der.js';
import { explicit, forgeCertificate, forgeCrl, int, name, oid, seq, time, tlv } from './der-builder.js';
import { rejects } from './assertions.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const T1 = new Date('2026-02-01T00:00:00Z');
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ec384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
const caOf = (keys: { publicKey: KeyObject; privateKey: KeyObject }, cn = 'Test CA') =>
  forgeCertificate({
    subject: name(cn),
    issuer: name(cn),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    alg: 'ecdsa-sha256',
    ca: true,
  });
const rsaCa = caOf(rsa);
const leaf = (serial: bigint | Buffer, cn = 'leaf') =>
  forgeCertificate({
    subject: name(cn),
    issuer: name('Test CA'),
    publicKey: ec256.publicKey,
    signingKey: ec256.privateKey,
    alg: 'ecdsa-sha256',
    serial,
  });

const SHA = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
} as const;
/** RSASSA-PSS AlgorithmIdentifier with optional hash, MGF and salt parameters. */
function pssAlg(p: { hash?: string; salt?: Buffer | number } = {}): Buffer {
  const params: Buffer[] = [];
  if (p.hash) params.push(explicit(0, seq(oid(p.hash))));
  if (p.hash) params.push(explicit(1, seq(oid('1.2.840.113549.1.1.8'), seq(oid(p.hash)))));
  if (p.salt !== undefined) params.push(explicit(2, Buffer.isBuffer(p.salt) ? p.salt : int(p.salt)));
  return seq(oid('1.2.840.113549.1.1.10'), ...(params.length || p.hash === undefined ? [seq(...params)] : []));
}

/** A CRL from parts, signed over its TBS by `signer` (a function of the TBS bytes). */
function crlDer(o: {
  alg: Buffer;
  issuer?: Buffer;
  version?: boolean;
  thisUpdate?: Buffer | null;
  nextUpdate?: Buffer | null;
  revoked?: Buffer | null;
  extra?: Buffer[];
  signer: (tbs: Buffer) => Buffer;
  unused?: number;
}) {
  const tbs = seq(
    ...(o.version === false ? [] : [int(1)]),
    o.alg,
    o.issuer ?? name('Test CA'),
    ...(o.thisUpdate === null ? [] : [o.thisUpdate ?? time(T0)]),
    ...(o.nextUpdate === null ? [] : [o.nextUpdate ?? time(T1)]),
    ...(o.revoked ? [o.revoked] : []),
    ...(o.extra ?? []),
  );
  return seq(tbs, o.alg, tlv(0x03, Buffer.from([o.unused ?? 0]), o.signer(tbs)));
}
const pss =
  (hash: string, saltLength: number, key = rsa.privateKey) =>
  (tbs: Buffer) =>
    sign(hash, tbs, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });

describe('CRL parsing', () => {
  it('reads issuer, dates, revoked serials, the signed bytes and the signature', () => {
    const der = forgeCrl({
      issuer: name('Test CA'),
      signingKey: ec256.privateKey,
      alg: 'ecdsa-sha256',
      thisUpdate: T0,
      nextUpdate: T1,
      revoked: [0x1234n, Buffer.from('00ab', 'hex'), 0x0fn],
    });
    const crl = parseCrl(der);
    assert.deepEqual(crl.issuer, name('Test CA'));
    assert.deepEqual(crl.thisUpdate, T0);
    assert.deepEqual(crl.nextUpdate, T1);
    assert.deepEqual([...crl.revoked], ['1234', 'ab', 'f']);
    const [tbsNode, , sigNode] = children(readSingle(der));
    assert.deepEqual(crl.tbs, tbsNode!.raw);
    assert.deepEqual(crl.signature, sigNode!.content.subarray(1));
    assert.equal(crl.signatureAlgorithm.raw.toString('hex'), '300a06082a8648ce3d040302');
  });

  it('reads CRLs without version, nextUpdate or revoked list, and GeneralizedTime dates', () => {
    const signer = (tbs: Buffer) => sign('sha256', tbs, ec256.privateKey);
    const alg = seq(oid('1.2.840.10045.4.3.2'));
    const bare = parseCrl(crlDer({ alg, version: false, nextUpdate: null, signer }));
    assert.deepEqual(bare.thisUpdate, T0);
    assert.equal(bare.nextUpdate, undefined);
    assert.ok(!('nextUpdate' in bare));
    assert.equal(bare.revoked.size, 0);
    const late = parseCrl(crlDer({ alg, nextUpdate: time(new Date('2051-03-04T05:06:07Z')), signer }));
    assert.deepEqual(late.nextUpdate, new Date('2051-03-04T05:06:07Z'));
    // A revoked list right after thisUpdate (no nextUpdate).
    const noNext = parseCrl(crlDer({ alg, nextUpdate: null, revoked: seq(seq(int(0x42), time(T0))), signer }));
    assert.deepEqual([...noNext.revoked], ['42']);
    assert.equal(noNext.nextUpdate, undefined);
    // crlExtensions [0] right after the dates is not a revoked list.
    const ext = parseCrl(crlDer({ alg, extra: [explicit(0, seq())], signer }));
    assert.equal(ext.revoked.size, 0);
    assert.deepEqual(ext.nextUpdate, T1);
  });

  it('refuses CRLs of the wrong shape with crl.parse', async () => {
    const alg = seq(oid('1.2.840.10045.4.3.2'));
    const signer = () => Buffer.from([1, 2, 3]);
    let err = await rejects(() => parseCrl(seq(seq(int(1)), alg)), 'crl.parse');
    assert.equal(err.detail, 'CertificateList must have three fields');
    err = await rejects(() => parseCrl(seq(seq(int(1)), alg, tlv(0x03, Buffer.from([0])), int(1))), 'crl.parse');
    assert.equal(err.detail, 'CertificateList must have three fields');
    err = await rejects(() => parseCrl(seq(seq(), alg, tlv(0x03, Buffer.from([0, 1])))), 'crl.parse');
    assert.equal(err.detail, 'tbsCertList is missing fields');
    err = await rejects(() => parseCrl(crlDer({ alg, thisUpdate: null, nextUpdate: null, signer })), 'crl.parse');
    assert.equal(err.detail, 'tbsCertList is missing fields');
    err = await rejects(() => parseCrl(seq(seq(int(1), alg), alg, tlv(0x03, Buffer.from([0, 1])))), 'crl.parse');
    assert.equal(err.detail, 'tbsCertList is missing fields');
    err = await rejects(() => parseCrl(crlDer({ alg, unused: 1, signer })), 'crl.parse');
    assert.equal(err.detail, 'CRL signature has unused bits');
  });

  it("refuses malformed elements with the DER reader's reason", async () => {
    const alg = seq(oid('1.2.840.10045.4.3.2'));
    let err = await rejects(() => parseCrl(seq(int(1), alg, tlv(0x03, Buffer.from([0])))), 'asn1.decode');
    assert.match(err.detail, /^tbsCertList: tag 0x2, want 0x30/);
    err = await rejects(
      () => parseCrl(seq(seq(int(1), alg, name('x'), time(T0)), alg, tlv(0x04, Buffer.from([0])))),
      'asn1.decode',
    );
    assert.match(err.detail, /^CRL signature: /);
    err = await rejects(
      () =>
        parseCrl(
          crlDer({ alg, revoked: seq(seq(tlv(0x04, Buffer.from([1])), time(T0))), signer: () => Buffer.from([1]) }),
        ),
      'asn1.decode',
    );
    assert.match(err.detail, /^revoked serial: /);
    await rejects(() => parseCrl(Buffer.from('not a CRL')), 'asn1.decode');
  });

  it("reports a parse failure under the caller's check", async () => {
    const err = await rejects(() => parseCrlFor('snp.crl', Buffer.from([0x30, 0x00])), 'snp.crl');
    assert.equal(
      err.detail,
      'the CRL cannot be parsed (attestation check crl.parse failed: CertificateList must have three fields)',
    );
    assert.ok(err.cause instanceof Error);
    assert.equal(
      parseCrlFor(
        'x',
        forgeCrl({
          issuer: name('a'),
          signingKey: ec256.privateKey,
          alg: 'ecdsa-sha256',
          thisUpdate: T0,
          nextUpdate: T1,
          revoked: [],
        }),
      ).revoked.size,
      0,
    );
  });

  it('normalises serials to lower-case hex without leading zeros', () => {
    assert.equal(normalizeSerial('00AB'), 'ab');
    assert.equal(normalizeSerial('0000'), '0');
    assert.equal(normalizeSerial('0'), '0');
    assert.equal(normalizeSerial('1002'), '1002');
    assert.equal(normalizeSerial('0F0'), 'f0');
  });
});

describe('CRL signatures', () => {
  const ok = (der: Buffer, issuer: X509Certificate) =>
    assert.doesNotThrow(() => checkCrl(parseCrl(der), issuer, T0, [], 'c'));
  const bad = async (der: Buffer, issuer: X509Certificate) => {
    const err = await rejects(() => checkCrl(parseCrl(der), issuer, T0, [], 'test.crl'), 'test.crl');
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['CRL signature does not verify', `signed by ${issuer.subject}`, 'bad signature'],
    );
  };

  it('verifies ECDSA P-256/SHA-256 and P-384/SHA-384 CRLs', async () => {
    const ca256 = caOf(ec256);
    const ca384 = caOf(ec384);
    ok(
      forgeCrl({
        issuer: name('Test CA'),
        signingKey: ec256.privateKey,
        alg: 'ecdsa-sha256',
        thisUpdate: T0,
        nextUpdate: T1,
        revoked: [],
      }),
      ca256,
    );
    ok(
      forgeCrl({
        issuer: name('Test CA'),
        signingKey: ec384.privateKey,
        alg: 'ecdsa-sha384',
        thisUpdate: T0,
        nextUpdate: T1,
        revoked: [],
      }),
      ca384,
    );
    await bad(
      forgeCrl({
        issuer: name('Test CA'),
        signingKey: ec384.privateKey,
        alg: 'ecdsa-sha384',
        thisUpdate: T0,
        nextUpdate: T1,
        revoked: [],
      }),
      ca256,
    );
    // The algorithm says SHA-384, the signature was made with SHA-256.
    await bad(
      crlDer({ alg: seq(oid('1.2.840.10045.4.3.3')), signer: (tbs) => sign('sha256', tbs, ec384.privateKey) }),
      ca384,
    );
  });

  it('verifies RSA-PSS with the hash and salt length its parameters name', async () => {
    ok(
      forgeCrl({
        issuer: name('Test CA'),
        signingKey: rsa.privateKey,
        alg: 'rsa-pss-sha384',
        thisUpdate: T0,
        nextUpdate: T1,
        revoked: [],
      }),
      rsaCa,
    );
    ok(crlDer({ alg: pssAlg({ hash: SHA.sha256, salt: 32 }), signer: pss('sha256', 32) }), rsaCa);
    ok(crlDer({ alg: pssAlg({ hash: SHA.sha512, salt: 64 }), signer: pss('sha512', 64) }), rsaCa);
    ok(crlDer({ alg: pssAlg({ hash: SHA.sha256, salt: 200 }), signer: pss('sha256', 200) }), rsaCa);
    // A salt length of zero, and a hash without a salt length (which then defaults to 20).
    ok(crlDer({ alg: pssAlg({ hash: SHA.sha256, salt: 0 }), signer: pss('sha256', 0) }), rsaCa);
    ok(crlDer({ alg: pssAlg({ hash: SHA.sha256 }), signer: pss('sha256', 20) }), rsaCa);
    // No parameters: SHA-1 and a 20-byte salt (RFC 4055 defaults).
    ok(crlDer({ alg: pssAlg(), signer: pss('sha1', 20) }), rsaCa);
    ok(crlDer({ alg: pssAlg({ salt: 20 }), signer: pss('sha1', 20) }), rsaCa);
    await bad(crlDer({ alg: pssAlg({ hash: SHA.sha256, salt: 33 }), signer: pss('sha256', 32) }), rsaCa);
    await bad(crlDer({ alg: pssAlg({ hash: SHA.sha384, salt: 48 }), signer: pss('sha256', 48) }), rsaCa);
    await bad(crlDer({ alg: pssAlg(), signer: pss('sha256', 20) }), rsaCa);
  });

  it('refuses RSA-PSS with an unknown hash or an oversized salt length, and other algorithms', async () => {
    await bad(crlDer({ alg: pssAlg({ hash: '1.2.3.4', salt: 32 }), signer: pss('sha256', 32) }), rsaCa);
    await bad(
      crlDer({
        alg: pssAlg({ hash: SHA.sha256, salt: tlv(0x02, Buffer.from([0, 0, 32])) }),
        signer: pss('sha256', 32),
      }),
      rsaCa,
    );
    await bad(
      crlDer({ alg: pssAlg({ hash: SHA.sha256, salt: tlv(0x02, Buffer.from([0, 0, 1])) }), signer: pss('sha256', 1) }),
      rsaCa,
    );
    // A PSS signature under another algorithm's name is not checked as PSS.
    await bad(crlDer({ alg: seq(oid('1.2.840.113549.1.1.11')), signer: pss('sha1', 20) }), rsaCa);
    // sha256WithRSAEncryption is not an algorithm AMD or Intel sign CRLs with.
    await bad(
      crlDer({
        alg: seq(oid('1.2.840.113549.1.1.11'), tlv(0x05, Buffer.alloc(0))),
        signer: (tbs) => sign('sha256', tbs, rsa.privateKey),
      }),
      rsaCa,
    );
    // An ECDSA signature checked with an RSA key, and malformed parameters, are refusals, not crashes.
    await bad(
      forgeCrl({
        issuer: name('Test CA'),
        signingKey: ec256.privateKey,
        alg: 'ecdsa-sha256',
        thisUpdate: T0,
        nextUpdate: T1,
        revoked: [],
      }),
      rsaCa,
    );
    await bad(
      crlDer({ alg: seq(oid('1.2.840.113549.1.1.10'), seq(explicit(0, int(5)))), signer: pss('sha256', 32) }),
      rsaCa,
    );
  });

  it('refuses a CRL of another issuer before looking at its signature', async () => {
    const err = await rejects(
      () =>
        checkCrl(
          parseCrl(
            forgeCrl({
              issuer: name('Other CA'),
              signingKey: rsa.privateKey,
              alg: 'rsa-pss-sha384',
              thisUpdate: T0,
              nextUpdate: T1,
              revoked: [],
            }),
          ),
          rsaCa,
          T0,
          [],
          'test.crl',
        ),
      'test.crl',
    );
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['CRL issuer does not match the certificate that should sign it', 'CN=Test CA', 'a different issuer name'],
    );
  });
});

describe('CRL dates and revocations', () => {
  const crl = (revoked: (bigint | Buffer)[] = [], nextUpdate: Date | null = T1) =>
    parseCrl(
      nextUpdate
        ? forgeCrl({
            issuer: name('Test CA'),
            signingKey: rsa.privateKey,
            alg: 'rsa-pss-sha384',
            thisUpdate: T0,
            nextUpdate,
            revoked,
          })
        : crlDer({ alg: pssAlg({ hash: SHA.sha384, salt: 48 }), nextUpdate: null, signer: pss('sha384', 48) }),
    );

  it('is current from thisUpdate to nextUpdate, inclusive', async () => {
    checkCrl(crl(), rsaCa, T0, [], 'c');
    checkCrl(crl(), rsaCa, T1, [], 'c');
    let err = await rejects(() => checkCrl(crl(), rsaCa, new Date(T0.getTime() - 1000), [], 'test.crl'), 'test.crl');
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['CRL is not yet valid', 'thisUpdate <= 2025-12-31T23:59:59.000Z', '2026-01-01T00:00:00.000Z'],
    );
    err = await rejects(() => checkCrl(crl(), rsaCa, new Date(T1.getTime() + 1000), [], 'test.crl'), 'test.crl');
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['CRL is out of date (past nextUpdate)', 'nextUpdate >= 2026-02-01T00:00:01.000Z', '2026-02-01T00:00:00.000Z'],
    );
    // Without nextUpdate there is no end.
    checkCrl(crl([], null), rsaCa, new Date('2040-01-01T00:00:00Z'), [], 'c');
  });

  it('refuses every listed certificate and only those, by normalised serial', async () => {
    const high = leaf(Buffer.from('00ab', 'hex')); // DER needs the leading zero: 0xAB has the top bit set
    const list = crl([0x1234n, Buffer.from('00ab', 'hex'), 0x12n]);
    const err = await rejects(() => checkCrl(list, rsaCa, T0, [leaf(0x77n), high], 'test.crl'), 'test.crl');
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['certificate CN=leaf is revoked', 'not revoked', 'serial ab revoked'],
    );
    await rejects(() => checkCrl(list, rsaCa, T0, [leaf(0x1234n)], 'test.crl'), 'test.crl');
    // 0x1002 is not 0x12, whatever the zeros.
    checkCrl(list, rsaCa, T0, [leaf(0x1002n), leaf(0x120n), leaf(0x1n)], 'c');
  });
});

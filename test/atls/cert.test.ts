/**
 * aTLS certificates: what we build (self-signed, CN Contrast, now ± 2 h, evidence in an OCTET
 * STRING) and what we accept from a peer (strictly one certificate, self-signed by its own key,
 * evidence extensions that are OCTET STRINGs). Every refusal is atls.certificate.
 */
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { createAtlsCert, createAtlsCertDer, parseAtlsCert } from '../../src/atls/cert.js';
import { AttestationError } from '../../src/attestation/errors.js';
import { derToPem } from '../../src/attestation/certificate.js';
import { children, readSingle } from '../../src/attestation/der.js';
import { extensions } from '../../src/attestation/x509.js';
import { spkiDer } from '../../src/atls/binding.js';
import { forgeAtlsCertificate as forged, octet, seq, tlv } from '../attestation/der-builder.js';
import { rejects } from '../attestation/assertions.js';
import { OID_SIMULATED_EVIDENCE, OID_SNP_EVIDENCE, OID_TDX_EVIDENCE } from '../../src/attestation/tees.js';

const NOW = new Date('2026-03-04T05:06:07.000Z');
const HOURS_2 = 2 * 3600 * 1000;

const keys = {
  p256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  p384: () => generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  rsa: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
};

/** The DER of the outer signatureAlgorithm of a certificate. */
const outerAlg = (der: Buffer) => children(readSingle(der))[1]!.raw.toString('hex');

describe('aTLS certificates: what we build', () => {
  for (const [kind, alg] of [
    ['p256', '300a06082a8648ce3d040302'], // ecdsa-with-SHA256
    ['p384', '300a06082a8648ce3d040303'], // ecdsa-with-SHA384
    ['rsa', '300d06092a864886f70d01010b0500'], // sha256WithRSAEncryption, NULL parameters
  ] as const) {
    it(`builds a self-signed ${kind} certificate named Contrast, valid now ± 2 h, with the right signature algorithm`, () => {
      const key = keys[kind]();
      const der = createAtlsCertDer(key.privateKey, undefined, NOW);
      const cert = new X509Certificate(der);
      assert.equal(cert.subject, 'CN=Contrast');
      assert.equal(cert.issuer, 'CN=Contrast');
      assert.equal(new Date(cert.validFrom).getTime(), NOW.getTime() - HOURS_2);
      assert.equal(new Date(cert.validTo).getTime(), NOW.getTime() + HOURS_2);
      assert.ok(cert.verify(key.publicKey));
      assert.ok(cert.publicKey.equals(key.publicKey));
      assert.equal(outerAlg(der), alg);
      assert.equal(extensions(cert).size, 0, 'no evidence, no extensions');
      const peer = parseAtlsCert(der);
      assert.deepEqual(peer.spki, spkiDer(key.publicKey));
      assert.deepEqual(peer.evidence, []);
    });
  }

  it('carries the evidence in a non-critical extension whose value is an OCTET STRING of the evidence', () => {
    const key = keys.p256();
    const value = Buffer.from('some evidence bytes');
    const cert = new X509Certificate(createAtlsCertDer(key.privateKey, { oid: OID_TDX_EVIDENCE, value }, NOW));
    const ext = extensions(cert).get(OID_TDX_EVIDENCE);
    assert.ok(ext);
    assert.equal(ext.critical, false);
    assert.deepEqual(ext.value, octet(value));
  });

  it('writes validity dates in UTCTime (month, day and time fields in order)', () => {
    const key = keys.p256();
    const now = new Date('2031-12-09T22:07:03.000Z');
    const cert = new X509Certificate(createAtlsCertDer(key.privateKey, undefined, now));
    assert.equal(new Date(cert.validFrom).toISOString(), '2031-12-09T20:07:03.000Z');
    assert.equal(new Date(cert.validTo).toISOString(), '2031-12-10T00:07:03.000Z');
  });

  it('is valid at the current time by default', () => {
    const cert = new X509Certificate(createAtlsCertDer(keys.p256().privateKey));
    const now = Date.now();
    assert.ok(new Date(cert.validFrom).getTime() < now && now < new Date(cert.validTo).getTime());
  });

  it('returns the same certificate as PEM', async () => {
    const key = keys.rsa(); // PKCS#1 v1.5 signatures are deterministic
    const evidence = { oid: OID_SNP_EVIDENCE, value: Buffer.from('x') };
    assert.equal(
      await createAtlsCert(key.privateKey, evidence, NOW),
      derToPem(createAtlsCertDer(key.privateKey, evidence, NOW)),
    );
  });

  it('refuses keys other than ECDSA P-256/P-384 and RSA', () => {
    assert.throws(
      () => createAtlsCertDer(generateKeyPairSync('ed25519').privateKey),
      (err: Error) => err.message === 'aTLS keys must be ECDSA P-256/P-384 or RSA, not ed25519 ',
    );
    assert.throws(
      () => createAtlsCertDer(generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey),
      (err: Error) => err.message === 'aTLS keys must be ECDSA P-256/P-384 or RSA, not ec secp521r1',
    );
  });
});

describe('aTLS certificates: what we accept from a peer', () => {
  it('reads the key and every evidence extension, in order, and ignores other extensions', () => {
    const key = keys.p384();
    const der = forged(key, {
      extensions: [
        { oid: OID_SNP_EVIDENCE, value: octet(Buffer.from('snp')) },
        { oid: '1.2.3.4', value: seq() }, // not evidence, and not an OCTET STRING either
        { oid: OID_SIMULATED_EVIDENCE, value: octet(Buffer.from('sim')) },
        { oid: OID_TDX_EVIDENCE, value: octet(Buffer.alloc(0)) },
      ],
    });
    const peer = parseAtlsCert(der);
    assert.ok(peer.publicKey.equals(key.publicKey));
    assert.deepEqual(peer.spki, spkiDer(key.publicKey));
    assert.deepEqual(peer.evidence, [
      { oid: OID_SNP_EVIDENCE, value: Buffer.from('snp') },
      { oid: OID_SIMULATED_EVIDENCE, value: Buffer.from('sim') },
      { oid: OID_TDX_EVIDENCE, value: Buffer.alloc(0) },
    ]);
  });

  it("refuses bytes that are not one strict DER certificate, keeping the parser's reason", async () => {
    const der = createAtlsCertDer(keys.p256().privateKey, undefined, NOW);
    for (const [bytes, reason] of [
      [
        Buffer.from('not a certificate'),
        /^the peer certificate is not a well-formed certificate: it does not start with a DER SEQUENCE$/,
      ],
      [
        Buffer.concat([der, Buffer.from([0])]),
        /^the peer certificate is not a well-formed certificate: 1 trailing bytes after element$/,
      ],
      [
        Buffer.from(derToPem(der)),
        /^the peer certificate is not a well-formed certificate: PEM where DER is expected$/,
      ],
    ] as const) {
      const err = await rejects(() => parseAtlsCert(bytes), 'atls.certificate');
      assert.match(err.detail, reason);
      assert.ok(
        err.cause instanceof AttestationError && err.cause.check === 'x509.parse',
        'the parser error is the cause',
      );
    }
  });

  it('refuses a certificate that is not signed by its own key', async () => {
    const err = await rejects(
      () => parseAtlsCert(forged(keys.p256(), { signingKey: keys.p256().privateKey })),
      'atls.certificate',
    );
    assert.equal(err.detail, 'the peer certificate is not self-signed by its own key');
  });

  it('refuses a certificate whose evidence is signed by another key even when the evidence is intact', async () => {
    const victim = createAtlsCertDer(
      keys.p256().privateKey,
      { oid: OID_SNP_EVIDENCE, value: Buffer.from('genuine evidence') },
      NOW,
    );
    // Same bytes, but the subject key replaced by the attacker's (same size, so the DER stays valid).
    const attacker = keys.p256();
    const spkiVictim = children(children(readSingle(victim))[0]!)[6]!.raw;
    const tampered = Buffer.from(victim);
    spkiDer(attacker.publicKey).copy(tampered, victim.indexOf(spkiVictim));
    await rejects(() => parseAtlsCert(tampered), 'atls.certificate');
  });

  it('refuses an evidence extension that is not an OCTET STRING', async () => {
    const err = await rejects(
      () =>
        parseAtlsCert(
          forged(keys.p256(), { extensions: [{ oid: OID_SNP_EVIDENCE, value: seq(octet(Buffer.from('x'))) }] }),
        ),
      'atls.certificate',
    );
    assert.equal(err.detail, `the evidence extension ${OID_SNP_EVIDENCE} is not an OCTET STRING`);
    await rejects(
      () =>
        parseAtlsCert(
          forged(keys.p256(), { extensions: [{ oid: OID_TDX_EVIDENCE, value: tlv(0x0c, Buffer.from('x')) }] }),
        ),
      'atls.certificate',
    );
  });

  it('refuses an evidence extension with bytes after its OCTET STRING', async () => {
    // The DER reader refuses it before the OCTET STRING check (check asn1.decode).
    const err = await rejects(
      () =>
        parseAtlsCert(
          forged(keys.p256(), {
            extensions: [{ oid: OID_SNP_EVIDENCE, value: Buffer.concat([octet(Buffer.from('x')), Buffer.from([0])]) }],
          }),
        ),
      'asn1.decode',
    );
    assert.match(err.detail, /trailing bytes/);
  });

  it('refuses a certificate whose public key cannot be read', async () => {
    const der = createAtlsCertDer(keys.p256().privateKey, undefined, NOW);
    const point = der.indexOf(Buffer.from('03420004', 'hex'));
    assert.ok(point > 0);
    const bad = Buffer.from(der);
    bad[point + 3] = 0x05; // not an uncompressed point: Node throws when the key is used
    const err = await rejects(() => parseAtlsCert(bad), 'atls.certificate');
    assert.equal(err.detail, 'the peer certificate has an unusable public key or signature');
    assert.ok(err.cause instanceof Error);
  });
});

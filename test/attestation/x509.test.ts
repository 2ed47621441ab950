import assert from 'node:assert/strict';
import { X509Certificate, createHash, generateKeyPairSync, sign } from 'node:crypto';
import {
  checkIssuedBy,
  checkValidity,
  commonName,
  extensions,
  fingerprint256,
  oneLine,
  parseDerCertificate,
  publicKeyOf,
  subjectDer,
} from '../../src/attestation/x509.js';
import { AMD_ARKS } from '../../src/attestation/roots/amd.js';
import { pinnedCertificate } from '../../src/attestation/roots/pinned.js';
import { bool, explicit, forgeCertificate, int, name, octet, oid, seq, tlv } from './der-builder.js';
import { checkIs, rejects } from './assertions.js';

describe('certificate chain links', () => {
  const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ca = forgeCertificate({
    subject: name('CA'),
    issuer: name('CA'),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    alg: 'ecdsa-sha256',
    ca: true,
  });
  const leaf = (extensions = [] as { oid: string; critical?: boolean; value: Buffer }[]) =>
    forgeCertificate({
      subject: name('leaf'),
      issuer: name('CA'),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      alg: 'ecdsa-sha256',
      extensions,
    });

  it('accepts a correctly signed child of a CA', () => {
    checkIssuedBy(leaf(), ca, 'test', 'leaf');
  });

  it('rejects an unknown critical extension, but not an unknown non-critical one', () => {
    checkIssuedBy(leaf([{ oid: '1.2.3.4', value: seq() }]), ca, 'test', 'leaf');
    assert.throws(
      () => checkIssuedBy(leaf([{ oid: '1.2.3.4', critical: true, value: seq() }]), ca, 'test', 'leaf'),
      checkIs('test'),
    );
  });

  it('rejects an issuer that is not a CA, a name mismatch and a wrong key', () => {
    const notCa = forgeCertificate({
      subject: name('CA'),
      issuer: name('CA'),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      alg: 'ecdsa-sha256',
    });
    assert.throws(() => checkIssuedBy(leaf(), notCa, 'test', 'leaf'), /not a CA/);
    const other = forgeCertificate({
      subject: name('Other'),
      issuer: name('Other'),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      alg: 'ecdsa-sha256',
      ca: true,
    });
    assert.throws(() => checkIssuedBy(leaf(), other, 'test', 'leaf'), /issuer name does not match/);
    const otherKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const impostor = forgeCertificate({
      subject: name('CA'),
      issuer: name('CA'),
      publicKey: otherKeys.publicKey,
      signingKey: otherKeys.privateKey,
      alg: 'ecdsa-sha256',
      ca: true,
    });
    assert.throws(() => checkIssuedBy(leaf(), impostor, 'test', 'leaf'), /signature does not verify/);
  });
});

describe('certificate helpers: extensions, names, validity, keys', () => {
  const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ca = forgeCertificate({
    subject: name('CA'),
    issuer: name('CA'),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    alg: 'ecdsa-sha256',
    ca: true,
  });

  it('reads the extensions of v3 certificates, with unique ids before them, and none of v1 certificates', () => {
    const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
    const alg = seq(oid('1.2.840.10045.4.3.2'));
    const validity = seq(tlv(0x17, Buffer.from('250101000000Z')), tlv(0x17, Buffer.from('350101000000Z')));
    const make = (version: Buffer[], tail: Buffer[]) => {
      const tbs = seq(...version, int(5), alg, name('issuer'), validity, name('subject'), spki, ...tail);
      return parseDerCertificate(seq(tbs, alg, tlv(0x03, Buffer.from([0]), sign('sha256', tbs, keys.privateKey))), 'c');
    };
    const v1 = make([], []);
    assert.equal(extensions(v1).size, 0);
    assert.deepEqual(subjectDer(v1), name('subject'));
    const withIds = make(
      [explicit(0, int(2))],
      [tlv(0x81, Buffer.from([0, 1])), explicit(3, seq(seq(oid('1.2.3.4'), bool(true), octet(Buffer.from('v')))))],
    );
    assert.deepEqual([...extensions(withIds)], [['1.2.3.4', { critical: true, value: Buffer.from('v') }]]);
    assert.deepEqual(subjectDer(withIds), name('subject'));
    assert.equal(extensions(withIds), extensions(withIds), 'read once per certificate');
  });

  it('reads an explicit critical FALSE (outside strict parsing) as not critical, and refuses duplicates', () => {
    const spki = keys.publicKey.export({ type: 'spki', format: 'der' });
    const alg = seq(oid('1.2.840.10045.4.3.2'));
    const validity = seq(tlv(0x17, Buffer.from('250101000000Z')), tlv(0x17, Buffer.from('350101000000Z')));
    const make = (exts: Buffer[]) => {
      const tbs = seq(
        explicit(0, int(2)),
        int(5),
        alg,
        name('i'),
        validity,
        name('s'),
        spki,
        explicit(3, seq(...exts)),
      );
      return new X509Certificate(seq(tbs, alg, tlv(0x03, Buffer.from([0]), sign('sha256', tbs, keys.privateKey))));
    };
    assert.equal(extensions(make([seq(oid('1.2.3.4'), bool(false), octet(seq()))])).get('1.2.3.4')?.critical, false);
    assert.equal(extensions(make([seq(oid('1.2.3.4'), octet(seq()))])).get('1.2.3.4')?.critical, false);
    // OpenSSL reads a certificate with a duplicated extension; the extension reader does not.
    const dup = make([seq(oid('1.2.3.4'), octet(seq())), seq(oid('1.2.3.4'), octet(seq()))]);
    assert.throws(
      () => extensions(dup),
      (e: unknown) => checkIs('x509.parse')(e) && /duplicate extension 1\.2\.3\.4/.test((e as Error).message),
    );
  });

  it('renders names on one line and finds the common name', () => {
    assert.equal(oneLine('C=US\nO=AMD\nCN=ARK-Milan'), 'C=US, O=AMD, CN=ARK-Milan');
    assert.equal(commonName('C=US\nCN=ARK-Milan'), 'ARK-Milan');
    assert.equal(commonName('C=US\nO=CN=x'), undefined);
  });

  it('fingerprints the DER bytes with SHA-256', () => {
    assert.equal(fingerprint256(pinnedCertificate(AMD_ARKS.Milan)), AMD_ARKS.Milan.sha256);
    assert.equal(fingerprint256(ca), createHash('sha256').update(ca.raw).digest('hex'));
  });

  it('checks validity inclusively at both ends', async () => {
    const c = forgeCertificate({
      subject: name('x'),
      issuer: name('CA'),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      alg: 'ecdsa-sha256',
      notBefore: new Date('2026-01-01T00:00:00Z'),
      notAfter: new Date('2026-02-01T00:00:00Z'),
    });
    checkValidity(c, new Date('2026-01-01T00:00:00Z'), 'v', 'the thing');
    checkValidity(c, new Date('2026-02-01T00:00:00Z'), 'v', 'the thing');
    let err = await rejects(
      () => checkValidity(c, new Date('2025-12-31T23:59:59Z'), 'test.validity', 'the thing'),
      'test.validity',
    );
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      [
        'the thing is not valid at 2025-12-31T23:59:59.000Z',
        '2026-01-01T00:00:00.000Z .. 2026-02-01T00:00:00.000Z',
        '2025-12-31T23:59:59.000Z',
      ],
    );
    err = await rejects(
      () => checkValidity(c, new Date('2026-02-01T00:00:01Z'), 'test.validity', 'the thing'),
      'test.validity',
    );
    assert.equal(err.detail, 'the thing is not valid at 2026-02-01T00:00:01.000Z');
  });

  it("turns an unreadable key into a failure of the caller's check", async () => {
    const der = Buffer.from(ca.raw);
    const point = der.indexOf(Buffer.from('03420004', 'hex'));
    der[point + 3] = 0x05;
    const broken = new X509Certificate(der);
    const err = await rejects(() => publicKeyOf(broken, 'test.key', 'the issuer'), 'test.key');
    assert.match(err.detail, /^the issuer has an unreadable public key \(.+\)$/);
    assert.ok(err.cause instanceof Error);
    assert.ok(publicKeyOf(ca, 'x', 'y').equals(keys.publicKey));
  });
});

describe('certificate chain links: reasons', () => {
  const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ca = forgeCertificate({
    subject: name('CA'),
    issuer: name('CA'),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    alg: 'ecdsa-sha256',
    ca: true,
  });
  const leaf = (
    o: {
      extensions?: { oid: string; critical?: boolean; value: Buffer }[];
      issuer?: string;
      signingKey?: import('node:crypto').KeyObject;
    } = {},
  ) =>
    forgeCertificate({
      subject: name('leaf'),
      issuer: name(o.issuer ?? 'CA'),
      publicKey: keys.publicKey,
      signingKey: o.signingKey ?? keys.privateKey,
      alg: 'ecdsa-sha256',
      extensions: o.extensions ?? [],
    });

  it('accepts critical basicConstraints and keyUsage, and nothing else critical', async () => {
    checkIssuedBy(
      leaf({
        extensions: [
          { oid: '2.5.29.19', critical: true, value: seq() },
          { oid: '2.5.29.15', critical: true, value: tlv(0x03, Buffer.from([7, 0x80])) },
        ],
      }),
      ca,
      't',
      'leaf',
    );
    const err = await rejects(
      () =>
        checkIssuedBy(
          leaf({ extensions: [{ oid: '2.5.29.37', critical: true, value: seq() }] }),
          ca,
          'test.link',
          'the leaf',
        ),
      'test.link',
    );
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      [
        'the leaf: the certificate has an unknown critical extension',
        'only basicConstraints and keyUsage critical',
        '2.5.29.37',
      ],
    );
  });

  it('names a non-CA issuer, a name mismatch and a bad signature', async () => {
    const notCa = forgeCertificate({
      subject: name('CA'),
      issuer: name('CA'),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      alg: 'ecdsa-sha256',
    });
    let err = await rejects(() => checkIssuedBy(leaf(), notCa, 'test.link', 'the leaf'), 'test.link');
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['the leaf: issuer certificate is not a CA', 'CA:TRUE', 'CA:FALSE'],
    );
    err = await rejects(() => checkIssuedBy(leaf({ issuer: 'Other' }), ca, 'test.link', 'the leaf'), 'test.link');
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['the leaf: issuer name does not match', 'CN=CA', 'CN=Other'],
    );
    err = await rejects(
      () =>
        checkIssuedBy(
          leaf({ signingKey: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey }),
          ca,
          'test.link',
          'the leaf',
        ),
      'test.link',
    );
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['the leaf: signature does not verify with the issuer key', 'signed by CN=CA', 'bad signature'],
    );
  });
});

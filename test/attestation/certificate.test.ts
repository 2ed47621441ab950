/**
 * Strict certificate parsing against a corpus of confused certificates: each one either is
 * refused with its reason, or (when it is a valid DER certificate that merely carries a PEM
 * block somewhere inside) is read as the outer certificate and nothing else.
 */
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import {
  MAX_CERTIFICATE_BYTES,
  derToPem,
  parseCertificateFile,
  parseDerCertificate,
  parsePemCertificates,
} from '../../src/attestation/certificate.js';
import { bool, explicit, int, name, octet, oid, seq, set, tlv, utf8 } from './der-builder.js';
import { checkIs } from './assertions.js';
import { TDX } from './vectors.js';
import { parseTdxQuote } from '../../src/attestation/tdx/quote.js';

const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));
const VALIDITY = seq(tlv(0x17, Buffer.from('250101000000Z')), tlv(0x17, Buffer.from('350101000000Z')));

interface Parts {
  version?: Buffer | null;
  serial?: Buffer;
  innerAlg?: Buffer;
  outerAlg?: Buffer;
  subject?: Buffer;
  validity?: Buffer;
  extensions?: Buffer[];
  /** Raw extensions field, instead of `extensions`. */
  extField?: Buffer;
  trailer?: Buffer[];
  unusedBits?: number;
}

function keyPair() {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** A self-signed certificate built from parts, so each test can break exactly one of them. */
function build(key: { publicKey: KeyObject; privateKey: KeyObject }, p: Parts = {}): Buffer {
  const exts = p.extField ?? (p.extensions?.length ? explicit(3, seq(...p.extensions)) : undefined);
  const tbs = seq(
    ...(p.version === null ? [] : [p.version ?? explicit(0, int(2))]),
    p.serial ?? int(0x1234),
    p.innerAlg ?? ECDSA_SHA256,
    name('Contrast'),
    p.validity ?? VALIDITY,
    p.subject ?? name('Contrast'),
    key.publicKey.export({ type: 'spki', format: 'der' }),
    ...(exts ? [exts] : []),
  );
  return seq(
    tbs,
    p.outerAlg ?? ECDSA_SHA256,
    tlv(0x03, Buffer.from([p.unusedBits ?? 0]), sign('sha256', tbs, key.privateKey)),
    ...(p.trailer ?? []),
  );
}

const ext = (id: string, value: Buffer, critical?: Buffer) =>
  seq(oid(id), ...(critical ? [critical] : []), octet(value));
const refused = (reason: RegExp) => (err: unknown) => checkIs('x509.parse')(err) && reason.test((err as Error).message);

describe('strict certificate parsing: a corpus of confused certificates', () => {
  const outer = keyPair();
  const inner = keyPair();
  const innerPem = derToPem(build(inner, { subject: name('inner') }));

  it('reads a well-formed certificate, and Node reads it the same way', () => {
    const der = build(outer);
    const cert = parseDerCertificate(der, 'cert');
    assert.ok(cert.raw.equals(der));
    assert.ok(cert.publicKey.equals(outer.publicKey));
  });

  it('reads a certificate with a PEM certificate inside an extension as the outer one only', () => {
    const der = build(outer, { extensions: [ext('1.2.3.4', Buffer.from(`\n${innerPem}`))] });
    // The hazard itself: Node's constructor on the raw bytes finds the embedded PEM first.
    assert.ok(
      new X509Certificate(der).publicKey.equals(inner.publicKey),
      'Node no longer prefers embedded PEM: revisit this test',
    );
    const cert = parseDerCertificate(der, 'cert');
    assert.ok(cert.publicKey.equals(outer.publicKey));
    assert.ok(cert.raw.equals(der));
  });

  it('reads a certificate with a PEM certificate inside its subject as the outer one only', () => {
    const der = build(outer, { subject: seq(set(seq(oid('2.5.4.3'), utf8(`x\n${innerPem}`)))) });
    assert.ok(new X509Certificate(der).publicKey.equals(inner.publicKey));
    assert.ok(parseDerCertificate(der, 'cert').publicKey.equals(outer.publicKey));
  });

  const corpus: [string, () => Buffer, RegExp][] = [
    ['a second certificate appended', () => Buffer.concat([build(outer), build(inner)]), /trailing bytes/],
    ['one byte appended', () => Buffer.concat([build(outer), Buffer.from([0])]), /trailing bytes/],
    [
      'a fourth field after the signature',
      () => build(outer, { trailer: [tlv(0x05, Buffer.alloc(0))] }),
      /SEQUENCE \{ tbsCertificate/,
    ],
    [
      'a long-form length where the short form fits (BER)',
      () => {
        const der = build(outer, { serial: Buffer.from([0x02, 0x81, 0x02, 0x12, 0x34]) });
        return der;
      },
      /non-minimal length/,
    ],
    [
      'an indefinite length (BER)',
      () => {
        const der = build(outer);
        return Buffer.concat([
          Buffer.from([0x30, 0x80]),
          der.subarray(der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2),
          Buffer.from([0, 0]),
        ]);
      },
      /indefinite length/,
    ],
    [
      'a constructed OCTET STRING in an extension (BER)',
      () => build(outer, { extensions: [seq(oid('1.2.3.4'), tlv(0x24, octet(Buffer.from('ab'))))] }),
      /constructed encoding/,
    ],
    [
      'a serial number with a redundant leading zero',
      () => build(outer, { serial: tlv(0x02, Buffer.from([0x00, 0x12])) }),
      /not minimally encoded/,
    ],
    [
      'a critical flag encoded as 01 instead of ff',
      () => build(outer, { extensions: [ext('1.2.3.4', seq(), tlv(0x01, Buffer.from([0x01])))] }),
      /BOOLEAN/,
    ],
    [
      'an explicit critical=FALSE',
      () => build(outer, { extensions: [ext('1.2.3.4', seq(), bool(false))] }),
      /default critical=FALSE/,
    ],
    [
      'a duplicated extension',
      () => build(outer, { extensions: [ext('1.2.3.4', seq()), ext('1.2.3.4', seq(int(1)))] }),
      /duplicate extension 1\.2\.3\.4/,
    ],
    ['an empty extensions list', () => build(outer, { extField: explicit(3, seq()) }), /empty extensions/],
    [
      'an explicit version 1 (DER omits the default)',
      () => build(outer, { version: explicit(0, int(0)) }),
      /version 0/,
    ],
    [
      'extensions in a version 1 certificate',
      () => build(outer, { version: null, extensions: [ext('1.2.3.4', seq())] }),
      /extensions in a version 1/,
    ],
    [
      'different inner and outer signature algorithms',
      () => build(outer, { outerAlg: seq(oid('1.2.840.10045.4.3.3')) }),
      /signature algorithms differ/,
    ],
    [
      'a validity time without seconds',
      () =>
        build(outer, { validity: seq(tlv(0x17, Buffer.from('2501010000Z')), tlv(0x17, Buffer.from('350101000000Z'))) }),
      /time encoding/,
    ],
    ['a signature with unused bits', () => build(outer, { unusedBits: 1 }), /BIT STRING|unused bits/],
    ['PEM where DER is expected', () => Buffer.from(innerPem), /PEM where DER/],
    ['bytes that are no certificate', () => Buffer.from('hello'), /does not start with a DER SEQUENCE/],
    [
      'more than the size limit',
      () => build(outer, { extensions: [ext('1.2.3.4', Buffer.alloc(MAX_CERTIFICATE_BYTES))] }),
      /more than the 65536 accepted/,
    ],
  ];
  for (const [what, make, reason] of corpus) {
    it(`refuses ${what}`, () => {
      assert.throws(() => parseDerCertificate(make(), 'the peer certificate'), refused(reason));
    });
  }

  it('names the input in every refusal', () => {
    assert.throws(
      () => parseDerCertificate(Buffer.from('x'), 'the VCEK from the certificate table'),
      /the VCEK from the certificate table is not a well-formed certificate/,
    );
  });
});

describe('strict PEM certificate files', () => {
  const a = derToPem(build(keyPair()));
  const b = derToPem(build(keyPair()));

  it('reads exactly the expected number of blocks, with whitespace between them', () => {
    assert.equal(parsePemCertificates(Buffer.from(`${a}\n\n${b}  \n`), 'chain', { count: 2 }).length, 2);
    assert.equal(parsePemCertificates(Buffer.from(a.replace(/\n/g, '\r\n')), 'chain', { count: 1 }).length, 1);
    assert.throws(
      () => parsePemCertificates(Buffer.from(`${a}${b}`), 'the ASK file', { count: 1 }),
      refused(/the ASK file .* 2 certificates, expected 1/),
    );
    assert.throws(
      () => parsePemCertificates(Buffer.from(a), 'chain', { count: { min: 2, max: 3 } }),
      refused(/1 certificate, expected 2 to 3/),
    );
    assert.throws(() => parsePemCertificates(Buffer.from(''), 'chain', { count: 1 }), refused(/0 certificates/));
  });

  it('refuses text outside the blocks, other block types and NUL padding where the format has none', () => {
    assert.throws(
      () => parsePemCertificates(Buffer.from(`subject=CN=x\n${a}`), 'f', { count: 1 }),
      refused(/unexpected content at offset 0/),
    );
    assert.throws(
      () => parsePemCertificates(Buffer.from(`${a}trailing`), 'f', { count: 1 }),
      refused(/unexpected content/),
    );
    assert.throws(
      () => parsePemCertificates(Buffer.from(a.replace(/CERTIFICATE/g, 'X509 CRL')), 'f', { count: 1 }),
      refused(/a X509 CRL block where only CERTIFICATE blocks belong/),
    );
    assert.throws(() => parsePemCertificates(Buffer.from(`${a}\0`), 'f', { count: 1 }), refused(/unexpected content/));
    assert.equal(parsePemCertificates(Buffer.from(`${a}\0\0`), 'f', { count: 1, trailingNul: true }).length, 1);
  });

  it('refuses non-canonical base64 and a block whose DER is not one certificate', () => {
    // A certificate whose length leaves "==" padding: the character before it has four unused bits.
    let der = build(keyPair());
    for (let n = 1; der.length % 3 !== 1; n++) der = build(keyPair(), { serial: int(BigInt(256) ** BigInt(n)) });
    const b64 = der.toString('base64');
    const i = b64.length - 3;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const sloppy = `${b64.slice(0, i)}${alphabet[alphabet.indexOf(b64[i]!) | 1]}==`;
    assert.ok(Buffer.from(sloppy, 'base64').equals(der), 'the altered text must decode to the same bytes');
    const pem = (text: string) =>
      Buffer.from(`-----BEGIN CERTIFICATE-----\n${text.replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`);
    assert.equal(parsePemCertificates(pem(b64), 'f', { count: 1 }).length, 1);
    assert.throws(
      () => parsePemCertificates(pem(sloppy), 'f', { count: 1 }),
      refused(/block 1 is not canonical base64/),
    );
    assert.throws(
      () => parsePemCertificates(pem(`${b64.slice(0, 10)}*${b64.slice(11)}`), 'f', { count: 1 }),
      refused(/unexpected content/),
    );
    const withTrailer = derToPem(Buffer.concat([der, Buffer.from([0])]));
    assert.throws(() => parsePemCertificates(Buffer.from(withTrailer), 'f', { count: 1 }), refused(/trailing bytes/));
  });

  it('takes a file as PEM only when it starts with the PEM boundary', () => {
    const der = build(keyPair());
    assert.ok(parseCertificateFile(der, 'VCEK file').raw.equals(der));
    assert.ok(parseCertificateFile(Buffer.from(`\n${derToPem(der)}`), 'VCEK file').raw.equals(der));
    assert.throws(
      () => parseCertificateFile(Buffer.from(`junk\n${derToPem(der)}`), 'VCEK file'),
      refused(/VCEK file .*does not start with a DER SEQUENCE/),
    );
  });

  it('reads the PCK chain of every genuine TDX quote as exactly three certificates', () => {
    for (const quote of [TDX.sprQuote(), TDX.v5Quote(), TDX.cosQuote()]) {
      const chain = parseTdxQuote(quote).pckChainPem;
      assert.equal(parsePemCertificates(chain, 'PCK chain', { count: 3, trailingNul: true }).length, 3);
    }
  });
});

describe('strict certificate parsing: each field of the shape, with its exact reason', () => {
  const key = keyPair();
  const spki = key.publicKey.export({ type: 'spki', format: 'der' });
  const v3 = explicit(0, int(2));
  /** A certificate from raw TBS fields; the signature bytes are not checked by the parser. */
  const cert = (tbsFields: Buffer[], o: { outer?: (tbs: Buffer) => Buffer[]; sig?: Buffer } = {}) => {
    const tbs = seq(...tbsFields);
    return seq(...(o.outer ? o.outer(tbs) : [tbs, ECDSA_SHA256, tlv(0x03, o.sig ?? Buffer.from([0, 0x30, 0x02]))]));
  };
  const fields = (
    over: Partial<
      Record<'version' | 'serial' | 'alg' | 'issuer' | 'validity' | 'subject' | 'spki', Buffer | null>
    > = {},
    tail: Buffer[] = [],
  ) => {
    // A fresh serial each time: the parser caches certificates by their bytes, and every test must see the parser run.
    const f = {
      version: v3,
      serial: int(BigInt(`0x${randomBytes(6).toString('hex')}`) | 1n),
      alg: ECDSA_SHA256,
      issuer: name('Contrast'),
      validity: VALIDITY,
      subject: name('Contrast'),
      spki,
      ...over,
    };
    return [f.version, f.serial, f.alg, f.issuer, f.validity, f.subject, f.spki]
      .filter((x): x is Buffer => x !== null)
      .concat(tail);
  };
  const refusedWith = (der: Buffer, reason: string) => {
    assert.throws(
      () => parseDerCertificate(der, 'the VCEK'),
      (err: unknown) => {
        assert.ok(checkIs('x509.parse')(err), String(err));
        assert.equal((err as { detail: string }).detail, `the VCEK is not a well-formed certificate: ${reason}`);
        return true;
      },
    );
  };
  const TOP = 'a certificate is SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }';

  it('accepts the shapes it allows: v1 without extensions, v2 and v3 with unique ids, GeneralizedTime, critical TRUE', () => {
    const gen = seq(tlv(0x18, Buffer.from('20250101000000Z')), tlv(0x18, Buffer.from('20500101000000Z')));
    for (const der of [
      cert(fields({ version: null })),
      cert(fields({ version: explicit(0, int(1)) }, [tlv(0x81, Buffer.from([0, 1])), tlv(0x82, Buffer.from([0, 2]))])),
      cert(fields({}, [tlv(0x81, Buffer.from([0, 1])), explicit(3, seq(ext('1.2.3.4', seq())))])),
      cert(fields({ validity: gen })),
      cert(fields({}, [explicit(3, seq(ext('2.5.29.19', seq(), bool(true))))])),
    ]) {
      assert.ok(parseDerCertificate(der, 'c').raw.equals(der));
    }
  });

  it('refuses a top level that is not tbsCertificate, signatureAlgorithm, signatureValue', () => {
    const tbs = seq(...fields());
    refusedWith(cert([], { outer: () => [tbs, ECDSA_SHA256] }), TOP);
    refusedWith(cert([], { outer: () => [set(...fields()), ECDSA_SHA256, tlv(0x03, Buffer.from([0, 1]))] }), TOP);
    refusedWith(cert([], { outer: (t) => [t, set(oid('1.2.840.10045.4.3.2')), tlv(0x03, Buffer.from([0, 1]))] }), TOP);
    refusedWith(cert([], { outer: (t) => [t, ECDSA_SHA256, tlv(0x04, Buffer.from([0, 1]))] }), TOP);
    refusedWith(cert(fields(), { sig: Buffer.from([1, 0x02]) }), 'the signature has unused bits');
  });

  it('refuses malformed or impossible versions', () => {
    refusedWith(cert(fields({ version: explicit(0, int(2), int(2)) })), 'malformed version');
    refusedWith(cert(fields({ version: explicit(0, tlv(0x04, Buffer.from([2]))) })), 'malformed version');
    refusedWith(cert(fields({ version: explicit(0, tlv(0x02, Buffer.from([1, 0]))) })), 'malformed version');
    refusedWith(cert(fields({ version: explicit(0) })), 'malformed version');
    refusedWith(
      cert(fields({ version: explicit(0, int(3)) })),
      'version 3 (an explicit v1 is not DER, later versions do not exist)',
    );
  });

  it('names each missing or mistyped TBS field', () => {
    refusedWith(cert(fields({ serial: null })), 'tbsCertificate.serialNumber is missing or has the wrong type');
    refusedWith(
      cert(fields({ serial: tlv(0x04, Buffer.from([7])) })),
      'tbsCertificate.serialNumber is missing or has the wrong type',
    );
    refusedWith(cert(fields({ alg: int(1) })), 'tbsCertificate.signature is missing or has the wrong type');
    refusedWith(cert(fields({ issuer: int(1) })), 'tbsCertificate.issuer is missing or has the wrong type');
    refusedWith(cert(fields({ validity: int(1) })), 'tbsCertificate.validity is missing or has the wrong type');
    refusedWith(cert(fields({ subject: int(1) })), 'tbsCertificate.subject is missing or has the wrong type');
    refusedWith(cert(fields({ spki: null })), 'tbsCertificate.subjectPublicKeyInfo is missing or has the wrong type');
    refusedWith(
      cert(fields({ version: null, serial: null })),
      'tbsCertificate.serialNumber is missing or has the wrong type',
    );
    refusedWith(cert([]), 'tbsCertificate.serialNumber is missing or has the wrong type');
  });

  it('refuses a validity that is not two times', () => {
    const t = tlv(0x17, Buffer.from('250101000000Z'));
    refusedWith(cert(fields({ validity: seq(t) })), 'malformed validity');
    refusedWith(cert(fields({ validity: seq(t, t, t) })), 'malformed validity');
    refusedWith(cert(fields({ validity: seq(t, int(1)) })), 'malformed validity');
    refusedWith(cert(fields({ validity: seq(int(1), t) })), 'malformed validity');
  });

  it('refuses unique ids and extensions in versions that do not have them, and fields out of order', () => {
    refusedWith(
      cert(fields({ version: null }, [tlv(0x81, Buffer.from([0, 1]))])),
      'issuerUniqueID in a version 1 certificate',
    );
    refusedWith(
      cert(fields({ version: null }, [tlv(0x82, Buffer.from([0, 1]))])),
      'subjectUniqueID in a version 1 certificate',
    );
    refusedWith(
      cert(fields({ version: explicit(0, int(1)) }, [explicit(3, seq(ext('1.2.3.4', seq())))])),
      'extensions in a version 2 certificate',
    );
    refusedWith(
      cert(fields({}, [explicit(3, seq(ext('1.2.3.4', seq()))), tlv(0x82, Buffer.from([0, 1]))])),
      'unexpected field with tag 0x82 in tbsCertificate',
    );
    refusedWith(cert(fields({}, [explicit(4, seq())])), 'unexpected field with tag 0xa4 in tbsCertificate');
    refusedWith(cert(fields({}, [int(9)])), 'unexpected field with tag 0x2 in tbsCertificate');
  });

  it('refuses malformed extensions lists and extensions', () => {
    refusedWith(
      cert(fields({}, [explicit(3, seq(ext('1.2.3.4', seq())), seq(ext('1.2.3.5', seq())))])),
      'malformed extensions',
    );
    refusedWith(cert(fields({}, [explicit(3, int(1))])), 'malformed extensions');
    refusedWith(cert(fields({}, [explicit(3, seq(int(1)))])), 'malformed extension');
    refusedWith(cert(fields({}, [explicit(3, seq(seq(oid('1.2.3.4'))))])), 'malformed extension');
    refusedWith(
      cert(fields({}, [explicit(3, seq(seq(oid('1.2.3.4'), bool(true), octet(seq()), octet(seq()))))])),
      'malformed extension',
    );
    refusedWith(cert(fields({}, [explicit(3, seq(seq(int(1), octet(seq()))))])), 'malformed extension');
    refusedWith(cert(fields({}, [explicit(3, seq(seq(oid('1.2.3.4'), seq())))])), 'malformed extension');
    refusedWith(cert(fields({}, [explicit(3, seq(seq(oid('1.2.3.4'), int(1), octet(seq()))))])), 'malformed extension');
    refusedWith(cert(fields({}, [explicit(3, seq(seq(oid('1.2.3.4'), bool(true), int(1))))])), 'malformed extension');
  });

  it("keeps the DER reader's reason, once, with the reader's error as the cause", () => {
    const bad = build(keyPair(), { serial: tlv(0x02, Buffer.from([0x00, 0x12])) });
    assert.throws(
      () => parseDerCertificate(bad, 'the VCEK'),
      (err: unknown) => {
        const e = err as { check: string; detail: string; cause?: unknown };
        assert.equal(e.check, 'x509.parse');
        assert.equal(e.detail, 'the VCEK is not a well-formed certificate: INTEGER is not minimally encoded');
        assert.ok(checkIs('asn1.decode')(e.cause));
        return true;
      },
    );
    // A refusal of the shape itself has no cause.
    assert.throws(
      () => parseDerCertificate(cert(fields({ version: explicit(0, int(3)) })), 'c'),
      (err: unknown) => !('cause' in (err as object)),
    );
  });

  it("refuses what Node cannot read, with Node's error as the cause", () => {
    assert.throws(
      () => parseDerCertificate(cert(fields({ spki: seq() })), 'the VCEK'),
      (err: unknown) => {
        const e = err as { check: string; detail: string; cause?: unknown };
        assert.equal(e.check, 'x509.parse');
        assert.match(e.detail, /^the VCEK is not a well-formed certificate: .+/);
        assert.ok(e.cause instanceof Error);
        return true;
      },
    );
  });

  it('takes PEM-looking input as PEM only when it starts with five dashes', () => {
    refusedWith(Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB'), 'PEM where DER is expected');
    refusedWith(Buffer.from('----- not quite a PEM block, and long enough'), 'PEM where DER is expected');
    refusedWith(Buffer.from('x-----BEGIN CERTIFICATE-----'), 'it does not start with a DER SEQUENCE');
  });

  it('accepts a certificate of exactly the size limit and refuses one byte more', () => {
    const sized = (total: number) => {
      let pad = total - 400;
      for (;;) {
        const der = build(keyPair(), { extensions: [ext('1.2.3.4', Buffer.alloc(pad))] });
        if (der.length === total) return der;
        pad += total - der.length;
      }
    };
    assert.equal(parseDerCertificate(sized(MAX_CERTIFICATE_BYTES), 'c').raw.length, MAX_CERTIFICATE_BYTES);
    refusedWith(
      sized(MAX_CERTIFICATE_BYTES + 1),
      `${MAX_CERTIFICATE_BYTES + 1} bytes, more than the ${MAX_CERTIFICATE_BYTES} accepted`,
    );
  });

  it('returns the same object for the same bytes', () => {
    const der = build(keyPair());
    assert.equal(parseDerCertificate(der, 'a'), parseDerCertificate(Buffer.from(der), 'b'));
  });
});

describe('strict PEM certificate files: exact reasons', () => {
  const a = derToPem(build(keyPair()));
  const b = derToPem(build(keyPair()));

  it('writes 64 characters per line', () => {
    const pem = derToPem(Buffer.alloc(96, 0xff));
    assert.equal(pem, `-----BEGIN CERTIFICATE-----\n${'/'.repeat(64)}\n${'/'.repeat(64)}\n-----END CERTIFICATE-----\n`);
    assert.equal(derToPem(Buffer.alloc(3, 0xff)), '-----BEGIN CERTIFICATE-----\n////\n-----END CERTIFICATE-----\n');
  });

  it('counts blocks in the message, singular and plural', () => {
    const reason = (text: string, count: number | { min: number; max: number }) => {
      try {
        parsePemCertificates(Buffer.from(text), 'chain', { count });
      } catch (err) {
        return (err as { detail: string }).detail;
      }
      return 'accepted';
    };
    assert.equal(reason(`${a}${b}`, 1), 'chain is not a well-formed certificate: 2 certificates, expected 1');
    assert.equal(reason(a, 2), 'chain is not a well-formed certificate: 1 certificate, expected 2');
    assert.equal(
      reason(a, { min: 2, max: 3 }),
      'chain is not a well-formed certificate: 1 certificate, expected 2 to 3',
    );
    assert.equal(
      reason(`${a}${b}${a}${b}`, { min: 1, max: 3 }),
      'chain is not a well-formed certificate: 4 certificates, expected 1 to 3',
    );
  });

  it('names the certificate of a chain that fails', () => {
    const broken = derToPem(Buffer.concat([build(keyPair()), Buffer.from([0])]));
    assert.throws(
      () => parsePemCertificates(Buffer.from(`${a}${broken}`), 'the chain', { count: 2 }),
      refused(/^attestation check x509\.parse failed: the chain \(certificate 2\) is not a well-formed certificate/),
    );
    assert.throws(
      () => parsePemCertificates(Buffer.from(broken), 'the chain', { count: 1 }),
      refused(/^attestation check x509\.parse failed: the chain is not a well-formed certificate/),
    );
  });

  it('removes NUL padding only at the end', () => {
    assert.equal(parsePemCertificates(Buffer.from(`${a}${b}\0\0\0`), 'f', { count: 2, trailingNul: true }).length, 2);
    assert.throws(
      () => parsePemCertificates(Buffer.from(`${a}\0${b}`), 'f', { count: 2, trailingNul: true }),
      refused(/unexpected content/),
    );
  });

  it('refuses PEM text of more than 16 times the certificate limit', () => {
    const huge = Buffer.alloc(16 * MAX_CERTIFICATE_BYTES + 1, 0x20);
    assert.throws(
      () => parsePemCertificates(huge, 'f', { count: 1 }),
      refused(new RegExp(`${16 * MAX_CERTIFICATE_BYTES + 1} bytes of PEM, more than accepted`)),
    );
    assert.throws(
      () => parsePemCertificates(Buffer.alloc(16 * MAX_CERTIFICATE_BYTES, 0x20), 'f', { count: 1 }),
      refused(/0 certificates, expected 1/),
    );
  });
});

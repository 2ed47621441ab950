/**
 * VCEK and VLEK certificates: subject, key and AMD's extensions are read strictly before the
 * chain is checked. Certificates here are forged (our keys, AMD's extension values), which is
 * enough: every refusal happens before a signature is looked at.
 */
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { AMD_OID, readAmdKeyCertificate } from '../../src/attestation/snp/vcek.js';
import { verifySnp } from '../../src/attestation/snp/verify.js';
import { extensions } from '../../src/attestation/x509.js';
import { forgeCertificate, ia5, int, name, octet, oid, seq, set, tlv, utf8 } from './der-builder.js';
import { rejects } from './assertions.js';
import { SNP_NOW, SNP_VECTORS } from './vectors.js';

const milanV3 = SNP_VECTORS[2]!;
const signer = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
/** AMD's VCEK extension values of the genuine Milan VCEK (productName Milan-B0, blSPL 4 …, 64-byte hwID). */
const genuineExtensions = () =>
  new Map([...extensions(new X509Certificate(milanV3.vcek))].map(([id, e]) => [id, e.value]));

function keyCert(
  o: { subject?: Buffer; cn?: string; publicKey?: KeyObject; exts?: Map<string, Buffer> } = {},
): X509Certificate {
  const exts = o.exts ?? genuineExtensions();
  return forgeCertificate({
    subject: o.subject ?? name(o.cn ?? 'SEV-VCEK'),
    issuer: name('SEV-Milan'),
    publicKey: o.publicKey ?? signer.publicKey,
    signingKey: signer.privateKey,
    alg: 'ecdsa-sha384',
    extensions: [...exts].map(([id, value]) => ({ oid: id, value })),
  });
}
const edited = (edit: (m: Map<string, Buffer>) => void) => {
  const m = genuineExtensions();
  edit(m);
  return m;
};

async function refusal(cert: X509Certificate, check: string, detail: string, expected?: string, actual?: string) {
  const err = await rejects(() => readAmdKeyCertificate(cert), check);
  assert.equal(err.detail, detail);
  if (expected !== undefined) assert.equal(err.expected, expected);
  if (actual !== undefined) assert.equal(err.actual, actual);
}

describe('SEV-SNP key certificates: subject and key', () => {
  it('reads a VCEK: product name, SPLs and hwID', () => {
    const c = readAmdKeyCertificate(keyCert());
    assert.equal(c.kind, 'vcek');
    assert.equal(c.productName, 'Milan-B0');
    assert.deepEqual(c.spl, { bootloader: 4, tee: 0, snp: 24, microcode: 219 });
    assert.ok(!('fmc' in c.spl));
    assert.deepEqual(c.hwId, genuineExtensions().get(AMD_OID.hwId));
    assert.ok(!('cspId' in c));
  });

  it('refuses a certificate that is neither a VCEK nor a VLEK', async () => {
    await refusal(
      keyCert({ cn: 'SEV-Milan' }),
      'snp.vcek.subject',
      'signing certificate has the wrong subject',
      'CN=SEV-VCEK or CN=SEV-VLEK',
      'CN=SEV-Milan',
    );
    await refusal(
      keyCert({ cn: 'sev-vcek' }),
      'snp.vcek.subject',
      'signing certificate has the wrong subject',
      undefined,
      'CN=sev-vcek',
    );
    await refusal(
      keyCert({ subject: seq(set(seq(oid('2.5.4.10'), utf8('Advanced Micro Devices')))) }),
      'snp.vcek.subject',
      'signing certificate has the wrong subject',
      undefined,
      'CN=<none>',
    );
  });

  it('refuses a key that is not ECDSA P-384', async () => {
    await refusal(
      keyCert({ publicKey: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey }),
      'snp.vcek.key',
      'signing certificate key is not ECDSA P-384',
      'ec secp384r1',
      'ec prime256v1',
    );
    await refusal(
      keyCert({ publicKey: generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey }),
      'snp.vcek.key',
      'signing certificate key is not ECDSA P-384',
      'ec secp384r1',
      'rsa',
    );
    await refusal(
      keyCert({ publicKey: generateKeyPairSync('ed25519').publicKey }),
      'snp.vcek.key',
      'signing certificate key is not ECDSA P-384',
      'ec secp384r1',
      'ed25519',
    );
  });

  it('refuses a certificate whose key cannot be read', async () => {
    const der = Buffer.from(keyCert().raw);
    const point = der.indexOf(Buffer.from('036200', 'hex'));
    assert.ok(point > 0);
    der[point + 3] = 0x05; // not a point encoding
    const err = await rejects(() => readAmdKeyCertificate(new X509Certificate(der)), 'snp.vcek.key');
    assert.match(err.detail, /^the signing certificate has an unreadable public key \(.+\)$/);
  });

  it('refuses the wrong subject before looking anywhere else, also inside verifySnp', async () => {
    const err = await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          {},
          { vcek: keyCert({ cn: 'Contrast' }).raw, certChain: milanV3.chain, now: SNP_NOW },
        ),
      'snp.vcek.subject',
    );
    assert.equal(err.actual, 'CN=Contrast');
    await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          {},
          {
            vcek: keyCert({ publicKey: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey }).raw,
            certChain: milanV3.chain,
            now: SNP_NOW,
          },
        ),
      'snp.vcek.key',
    );
    await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          {},
          {
            vcek: keyCert({ exts: edited((m) => m.delete(AMD_OID.hwId)) }).raw,
            certChain: milanV3.chain,
            now: SNP_NOW,
          },
        ),
      'snp.vcek.extensions',
    );
  });
});

describe('SEV-SNP key certificates: AMD extensions', () => {
  it('requires the product name, as a string', async () => {
    await refusal(
      keyCert({ exts: edited((m) => m.delete(AMD_OID.productName)) }),
      'snp.vcek.extensions',
      'certificate lacks the productName extension (1.3.6.1.4.1.3704.1.2)',
    );
    await refusal(
      keyCert({ exts: edited((m) => m.set(AMD_OID.productName, int(3))) }),
      'snp.vcek.extensions',
      'productName is not a string',
      'IA5String',
      'tag 0x2',
    );
    await refusal(
      keyCert({ exts: edited((m) => m.set(AMD_OID.productName, octet(Buffer.from('Milan')))) }),
      'snp.vcek.extensions',
      'productName is not a string',
      'IA5String',
      'tag 0x4',
    );
    for (const s of [ia5('Genoa'), utf8('Genoa'), tlv(0x13, Buffer.from('Genoa'))]) {
      assert.equal(
        readAmdKeyCertificate(keyCert({ exts: edited((m) => m.set(AMD_OID.productName, s)) })).productName,
        'Genoa',
      );
    }
  });

  it('requires the four SPLs, 0 to 255 each, and reads the optional FMC SPL', async () => {
    for (const [key, label] of [
      ['blSpl', 'blSPL'],
      ['teeSpl', 'teeSPL'],
      ['snpSpl', 'snpSPL'],
      ['ucodeSpl', 'ucodeSPL'],
    ] as const) {
      await refusal(
        keyCert({ exts: edited((m) => m.delete(AMD_OID[key])) }),
        'snp.vcek.extensions',
        `certificate lacks the ${label} extension (${AMD_OID[key]})`,
      );
      await refusal(
        keyCert({ exts: edited((m) => m.set(AMD_OID[key], int(256))) }),
        'snp.vcek.extensions',
        `${label} is out of range`,
        '0..255',
        '256',
      );
      const c = readAmdKeyCertificate(keyCert({ exts: edited((m) => m.set(AMD_OID[key], int(255))) }));
      assert.equal(Object.values(c.spl).filter((v) => v === 255).length, 1, label);
    }
    await refusal(
      keyCert({ exts: edited((m) => m.set(AMD_OID.fmcSpl, int(300))) }),
      'snp.vcek.extensions',
      'fmcSPL is out of range',
      '0..255',
      '300',
    );
    assert.equal(readAmdKeyCertificate(keyCert({ exts: edited((m) => m.set(AMD_OID.fmcSpl, int(7))) })).spl.fmc, 7);
    // An SPL that is no non-negative INTEGER is refused by the DER reader.
    await rejects(
      () =>
        readAmdKeyCertificate(keyCert({ exts: edited((m) => m.set(AMD_OID.blSpl, tlv(0x02, Buffer.from([0x80])))) })),
      'asn1.decode',
    );
  });

  it('reads the hwID raw (8 or 64 bytes) or wrapped in an OCTET STRING', async () => {
    const id64 = Buffer.alloc(64, 0x5c);
    const id8 = Buffer.alloc(8, 0x3d);
    const hw = (v: Buffer) => readAmdKeyCertificate(keyCert({ exts: edited((m) => m.set(AMD_OID.hwId, v)) })).hwId;
    assert.deepEqual(hw(id64), id64);
    assert.deepEqual(hw(id8), id8);
    assert.deepEqual(hw(octet(id64)), id64);
    assert.deepEqual(hw(octet(id8)), id8);
    for (const n of [0, 7, 9, 63, 65, 67]) {
      await refusal(
        keyCert({ exts: edited((m) => m.set(AMD_OID.hwId, Buffer.alloc(n, 1))) }),
        'snp.vcek.extensions',
        'hwID has an unexpected length',
        '8 or 64 bytes',
        `${n} bytes`,
      );
    }
    // Wrapper-sized, but not an OCTET STRING.
    const e = await rejects(() => hw(tlv(0x0c, id64)), 'asn1.decode');
    assert.match(e.detail, /^hwID: tag 0xc, want 0x4$/);
    await rejects(() => hw(tlv(0x0c, id8)), 'asn1.decode');
  });

  it('requires the hwID of a VCEK and the CSP id of a VLEK', async () => {
    await refusal(
      keyCert({ exts: edited((m) => m.delete(AMD_OID.hwId)) }),
      'snp.vcek.extensions',
      'VCEK lacks the hwID extension (1.3.6.1.4.1.3704.1.4)',
    );
    const vlekExts = () => edited((m) => m.delete(AMD_OID.hwId));
    await refusal(
      keyCert({ cn: 'SEV-VLEK', exts: vlekExts() }),
      'snp.vcek.extensions',
      'VLEK lacks the CSP_ID extension (1.3.6.1.4.1.3704.1.5)',
    );
    await refusal(
      keyCert({
        cn: 'SEV-VLEK',
        exts: edited((m) => {
          m.delete(AMD_OID.hwId);
          m.set(AMD_OID.cspId, int(1));
        }),
      }),
      'snp.vcek.extensions',
      'CSP_ID is not a string',
      'IA5String',
      'tag 0x2',
    );
    const vlek = readAmdKeyCertificate(
      keyCert({
        cn: 'SEV-VLEK',
        exts: edited((m) => {
          m.delete(AMD_OID.hwId);
          m.set(AMD_OID.cspId, ia5('csp-1'));
        }),
      }),
    );
    assert.equal(vlek.kind, 'vlek');
    assert.equal(vlek.cspId, 'csp-1');
    assert.ok(!('hwId' in vlek));
    // An empty CSP id names no provider.
    await refusal(
      keyCert({
        cn: 'SEV-VLEK',
        exts: edited((m) => {
          m.delete(AMD_OID.hwId);
          m.set(AMD_OID.cspId, ia5(''));
        }),
      }),
      'snp.vcek.extensions',
      'VLEK lacks the CSP_ID extension (1.3.6.1.4.1.3704.1.5)',
    );
    // A VCEK that also names a CSP keeps it.
    assert.equal(readAmdKeyCertificate(keyCert({ exts: edited((m) => m.set(AMD_OID.cspId, ia5(''))) })).cspId, '');
  });
});

/**
 * The AMD chain (key certificate ← ASK/ASVK ← pinned ARK), product lines, TCB decoding and the
 * extended-report certificate table: refusals with their reasons, and the boundaries.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { crlSignedByArk, checkSnpCrl, intermediateName, verifySnpChain } from '../../src/attestation/snp/chain.js';
import { parseCertTable, CERT_TABLE_GUID } from '../../src/attestation/snp/cert-table.js';
import {
  SNP_PRODUCTS,
  isSnpProduct,
  productFromCpuid,
  productLine,
  usesTurinLayout,
} from '../../src/attestation/snp/product.js';
import { decodeTcb, firstBelow, firstDifferent, formatTcb } from '../../src/attestation/snp/tcb.js';
import { verifySnp } from '../../src/attestation/snp/verify.js';
import { AMD_ARKS } from '../../src/attestation/roots/amd.js';
import { pinnedCertificate } from '../../src/attestation/roots/pinned.js';
import { parseCrl } from '../../src/attestation/x509.js';
import { buildCertTable, forgeAmdHierarchy, rejects } from './assertions.js';
import { forgedMilanCrl } from './kds-fakes.js';
import { SNP_NOW, SNP_VECTORS, pemBlocks, read } from './vectors.js';

const virtee = SNP_VECTORS[1]!; // v2 Milan
const milanV3 = SNP_VECTORS[2]!;
const cert = (pem: string) => new X509Certificate(pem);
const milanAsk = () => cert(pemBlocks('amd/go-sev-guest/ask_ark_milan.pem')[0]!);
const milanArk = () => cert(pemBlocks('amd/go-sev-guest/ask_ark_milan.pem')[1]!);
const milanAsvk = () => cert(pemBlocks('amd/go-sev-guest/ask_ark_milan_vlek.pem')[0]!);
const virteeVcek = () => new X509Certificate(virtee.vcek);

describe('SEV-SNP chain: names, pinned ARK, signatures and validity', () => {
  it('names the intermediate per product and key type', () => {
    assert.equal(intermediateName('Milan', 'vcek'), 'SEV-Milan');
    assert.equal(intermediateName('Turin', 'vlek'), 'SEV-VLEK-Turin');
  });

  it('verifies a genuine chain and returns the pinned ARK, accepting an identical copy of it', () => {
    const pinned = pinnedCertificate(AMD_ARKS.Milan);
    assert.equal(
      verifySnpChain({ product: 'Milan', kind: 'vcek', signer: virteeVcek(), ask: milanAsk(), now: SNP_NOW }),
      pinned,
    );
    assert.equal(
      verifySnpChain({
        product: 'Milan',
        kind: 'vcek',
        signer: virteeVcek(),
        ask: milanAsk(),
        ark: milanArk(),
        now: SNP_NOW,
      }),
      pinned,
    );
    assert.equal(
      verifySnpChain({
        product: 'Milan',
        kind: 'vcek',
        signer: virteeVcek(),
        ask: milanAsk(),
        ark: pinned,
        now: SNP_NOW,
      }),
      pinned,
    );
  });

  it('refuses an intermediate for another product or key type, naming both', async () => {
    let err = await rejects(
      () => verifySnpChain({ product: 'Milan', kind: 'vcek', signer: virteeVcek(), ask: milanAsvk(), now: SNP_NOW }),
      'snp.ask.subject',
    );
    assert.equal(err.detail, 'the ASK is for another product or key type');
    assert.deepEqual([err.expected, err.actual], ['CN=SEV-Milan', 'CN=SEV-VLEK-Milan']);
    err = await rejects(
      () => verifySnpChain({ product: 'Milan', kind: 'vlek', signer: virteeVcek(), ask: milanAsk(), now: SNP_NOW }),
      'snp.ask.subject',
    );
    assert.equal(err.detail, 'the ASVK is for another product or key type');
    assert.deepEqual([err.expected, err.actual], ['CN=SEV-VLEK-Milan', 'CN=SEV-Milan']);
    err = await rejects(
      () => verifySnpChain({ product: 'Milan', kind: 'vcek', signer: virteeVcek(), ask: virteeVcek(), now: SNP_NOW }),
      'snp.ask.subject',
    );
    assert.equal(err.actual, 'CN=SEV-VCEK');
  });

  it('refuses an ARK that is not the pinned one, naming both fingerprints', async () => {
    const forged = forgeAmdHierarchy(milanV3);
    const err = await rejects(
      () =>
        verifySnpChain({
          product: 'Milan',
          kind: 'vcek',
          signer: virteeVcek(),
          ask: milanAsk(),
          ark: forged.ark,
          now: SNP_NOW,
        }),
      'snp.ark.pinned',
    );
    assert.equal(err.detail, "the supplied ARK is not AMD's pinned ARK-Milan");
    assert.equal(err.expected, `sha256 ${AMD_ARKS.Milan.sha256}`);
    assert.match(err.actual!, /^sha256 [0-9a-f]{64} \(ARK-Milan\)$/);
    const genoaArk = cert(pemBlocks('amd/go-sev-guest/ask_ark_genoa.pem').at(-1)!);
    const e2 = await rejects(
      () =>
        verifySnpChain({
          product: 'Milan',
          kind: 'vcek',
          signer: virteeVcek(),
          ask: milanAsk(),
          ark: genoaArk,
          now: SNP_NOW,
        }),
      'snp.ark.pinned',
    );
    assert.equal(e2.actual, `sha256 ${AMD_ARKS.Genoa.sha256} (ARK-Genoa)`);
    const e3 = await rejects(
      () =>
        verifySnpChain({
          product: 'Milan',
          kind: 'vcek',
          signer: virteeVcek(),
          ask: milanAsk(),
          ark: virteeVcek(),
          now: SNP_NOW,
        }),
      'snp.ark.pinned',
    );
    assert.match(e3.actual!, /\(SEV-VCEK\)$/);
    const { generateKeyPairSync } = await import('node:crypto');
    const { forgeCertificate, oid, seq, set, utf8 } = await import('./der-builder.js');
    const k = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const nameless = forgeCertificate({
      subject: seq(set(seq(oid('2.5.4.10'), utf8('AMD')))),
      issuer: seq(set(seq(oid('2.5.4.10'), utf8('AMD')))),
      publicKey: k.publicKey,
      signingKey: k.privateKey,
      alg: 'ecdsa-sha384',
    });
    const e4 = await rejects(
      () =>
        verifySnpChain({
          product: 'Milan',
          kind: 'vcek',
          signer: virteeVcek(),
          ask: milanAsk(),
          ark: nameless,
          now: SNP_NOW,
        }),
      'snp.ark.pinned',
    );
    assert.match(e4.actual!, /\(no CN\)$/);
  });

  it('names the link whose signature fails', async () => {
    const forged = forgeAmdHierarchy(milanV3);
    let err = await rejects(
      () => verifySnpChain({ product: 'Milan', kind: 'vcek', signer: virteeVcek(), ask: forged.ask, now: SNP_NOW }),
      'snp.ask.signature',
    );
    assert.match(err.detail, /^SEV-Milan must be signed by ARK-Milan: signature does not verify with the issuer key$/);
    err = await rejects(
      () => verifySnpChain({ product: 'Milan', kind: 'vcek', signer: forged.vcek, ask: milanAsk(), now: SNP_NOW }),
      'snp.vcek.signature',
    );
    assert.equal(err.detail, 'the VCEK must be signed by SEV-Milan: signature does not verify with the issuer key');
    err = await rejects(
      () => verifySnpChain({ product: 'Milan', kind: 'vlek', signer: forged.vcek, ask: milanAsvk(), now: SNP_NOW }),
      'snp.vcek.signature',
    );
    assert.match(err.detail, /^the VLEK must be signed by SEV-VLEK-Milan: /);
  });

  it('checks ARK, ASK and key certificate validity in that order', async () => {
    // ARK-Milan from 2020-10-22T17:23:05Z, SEV-Milan from 18:24:20Z the same day.
    let err = await rejects(
      () =>
        verifySnpChain({
          product: 'Milan',
          kind: 'vcek',
          signer: virteeVcek(),
          ask: milanAsk(),
          now: new Date('2020-10-22T17:23:04Z'),
        }),
      'snp.ark.validity',
    );
    assert.match(err.detail, /^ARK-Milan is not valid at 2020-10-22T17:23:04\.000Z$/);
    err = await rejects(
      () =>
        verifySnpChain({
          product: 'Milan',
          kind: 'vcek',
          signer: virteeVcek(),
          ask: milanAsk(),
          now: new Date('2020-10-22T18:00:00Z'),
        }),
      'snp.ask.validity',
    );
    assert.equal(err.detail, 'SEV-Milan is not valid at 2020-10-22T18:00:00.000Z');
    assert.equal(err.expected, '2020-10-22T18:24:20.000Z .. 2045-10-22T18:24:20.000Z');
    err = await rejects(
      () =>
        verifySnpChain({
          product: 'Milan',
          kind: 'vcek',
          signer: virteeVcek(),
          ask: milanAsk(),
          now: new Date('2020-10-22T18:24:21Z'),
        }),
      'snp.vcek.validity',
    );
    assert.match(err.detail, /^the VCEK is not valid at /);
  });

  it('reports an intermediate that is not yet valid through verifySnp', async () => {
    await rejects(
      () =>
        verifySnp(
          { report: virtee.report },
          null,
          {},
          { vcek: virtee.vcek, certChain: virtee.chain, now: new Date('2020-10-22T18:00:00Z') },
        ),
      'snp.ask.validity',
    );
  });

  it('checks a CRL against the ASK, and only the ASK', async () => {
    const forged = forgeAmdHierarchy(milanV3);
    const { forgeCrl } = await import('./der-builder.js');
    const { subjectDer } = await import('../../src/attestation/x509.js');
    const crlListing = (serials: bigint[]) =>
      parseCrl(
        forgeCrl({
          issuer: subjectDer(forged.ark),
          signingKey: forged.arkKey,
          alg: 'rsa-pss-sha384',
          thisUpdate: new Date('2026-01-01'),
          nextUpdate: new Date('2027-01-01'),
          revoked: serials,
        }),
      );
    const askSerial = BigInt(`0x${forged.ask.serialNumber}`);
    const err = await rejects(() => checkSnpCrl(crlListing([askSerial]), forged.ark, forged.ask, SNP_NOW), 'snp.crl');
    assert.match(err.detail, /is revoked$/);
    // Revoking the key certificate's serial does not revoke the ASK.
    assert.doesNotThrow(() =>
      checkSnpCrl(crlListing([BigInt(`0x${forged.vcek.serialNumber}`)]), forged.ark, forged.ask, SNP_NOW),
    );
  });

  it('says whether a CRL is signed by the pinned ARK, refusing forged ones', () => {
    assert.equal(
      crlSignedByArk('Milan', parseCrl(forgedMilanCrl(new Date('2026-01-01'), new Date('2027-01-01')))),
      false,
    );
    assert.equal(
      crlSignedByArk('Genoa', parseCrl(forgedMilanCrl(new Date('2026-01-01'), new Date('2027-01-01')))),
      false,
    );
  });
});

describe('SEV-SNP product lines', () => {
  it('maps every CPUID model of families 0x19 and 0x1A', () => {
    const expected = (family: number, model: number) => {
      if (family === 0x19 && model <= 0x0f) return 'Milan';
      if (family === 0x19 && ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf))) return 'Genoa';
      if (family === 0x1a && model <= 0x11) return 'Turin';
      return undefined;
    };
    // The table above is the specification; spot checks pin its boundaries.
    for (const [f, m, p] of [
      [0x19, 0x00, 'Milan'],
      [0x19, 0x0f, 'Milan'],
      [0x19, 0x10, 'Genoa'],
      [0x19, 0x1f, 'Genoa'],
      [0x19, 0x20, undefined],
      [0x19, 0x9f, undefined],
      [0x19, 0xa0, 'Genoa'],
      [0x19, 0xaf, 'Genoa'],
      [0x19, 0xb0, undefined],
      [0x1a, 0x00, 'Turin'],
      [0x1a, 0x11, 'Turin'],
      [0x1a, 0x12, undefined],
      [0x18, 0x01, undefined],
      [0x1b, 0x00, undefined],
    ] as const) {
      assert.equal(productFromCpuid(f, m), p, `family 0x${f.toString(16)} model 0x${m.toString(16)}`);
    }
    for (const family of [0x17, 0x18, 0x19, 0x1a, 0x1b]) {
      for (let model = 0; model < 256; model++) assert.equal(productFromCpuid(family, model), expected(family, model));
    }
  });

  it('knows Milan, Genoa and Turin, and Turin alone uses the FMC layout', () => {
    assert.deepEqual([...SNP_PRODUCTS], ['Milan', 'Genoa', 'Turin']);
    for (const p of ['Milan', 'Genoa', 'Turin']) assert.ok(isSnpProduct(p), p);
    for (const p of ['milan', 'Venice', '', 'Milan-B0']) assert.ok(!isSnpProduct(p), p);
    assert.deepEqual(SNP_PRODUCTS.map(usesTurinLayout), [false, false, true]);
  });

  it('takes the line of a product name, up to its first dash', () => {
    assert.equal(productLine('Milan-B0'), 'Milan');
    assert.equal(productLine('Genoa'), 'Genoa');
    assert.equal(productLine('Turin-C1-x'), 'Turin');
    assert.equal(productLine('-B0'), '');
    assert.equal(productLine(''), '');
  });
});

describe('SEV-SNP TCB values', () => {
  it('decodes exactly eight bytes', () => {
    assert.throws(
      () => decodeTcb(Buffer.alloc(7), 'Milan'),
      (e: Error) => e instanceof RangeError && e.message === 'TCB_VERSION is 8 bytes',
    );
    assert.throws(() => decodeTcb(Buffer.alloc(9), 'Turin'), RangeError);
    assert.deepEqual(decodeTcb(Buffer.from('0102030405060708', 'hex'), 'Genoa'), {
      bootloader: 1,
      tee: 2,
      snp: 7,
      microcode: 8,
    });
    assert.deepEqual(decodeTcb(Buffer.from('0102030405060708', 'hex'), 'Turin'), {
      fmc: 1,
      bootloader: 2,
      tee: 3,
      snp: 4,
      microcode: 8,
    });
  });

  it('compares per component, FMC first, and ignores components the minimum does not name', () => {
    const t = { fmc: 2, bootloader: 4, tee: 1, snp: 24, microcode: 219 };
    assert.equal(firstBelow(t, {}), undefined);
    assert.equal(firstBelow(t, { microcode: 220 }), 'microcode');
    assert.equal(firstBelow(t, { fmc: 3, microcode: 220 }), 'fmc');
    assert.equal(firstBelow(t, { tee: 2, snp: 25 }), 'tee');
    assert.equal(
      firstBelow({ bootloader: 4, tee: 1, snp: 24, microcode: 219 }, { fmc: 1 }),
      'fmc',
      'a missing FMC counts as 0',
    );
    assert.equal(firstBelow({ bootloader: 4, tee: 1, snp: 24, microcode: 219 }, { fmc: 0 }), undefined);
    assert.equal(firstDifferent(t, { ...t }), undefined);
    assert.equal(firstDifferent(t, { ...t, snp: 25 }), 'snp');
    assert.equal(firstDifferent(t, { bootloader: 4, tee: 1, snp: 24, microcode: 219 }), 'fmc');
    assert.equal(formatTcb(t), 'fmc=2 bootloader=4 tee=1 snp=24 microcode=219');
    assert.equal(formatTcb({ snp: 3 }), 'snp=3');
  });
});

describe('SEV-SNP certificate table', () => {
  const guid = CERT_TABLE_GUID.vcek;

  it("knows AMD's GUIDs", () => {
    assert.deepEqual(CERT_TABLE_GUID, {
      vcek: '63da758d-e664-4564-adc5-f4b93be8accd',
      vlek: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
      ask: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
      ark: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
    });
  });

  it('reads an empty table (just the terminator) and entries up to the end of the data', () => {
    assert.equal(parseCertTable(Buffer.alloc(24)).size, 0);
    const der = Buffer.from([1, 2, 3]);
    const t = parseCertTable(
      buildCertTable([
        [guid, der],
        [CERT_TABLE_GUID.ask, Buffer.from([4])],
      ]),
    );
    assert.deepEqual([...t.keys()], [guid, CERT_TABLE_GUID.ask]);
    assert.deepEqual(t.get(guid), der);
    assert.deepEqual(t.get(CERT_TABLE_GUID.ask), Buffer.from([4]));
  });

  it('ends only at an all-zero entry: a zero GUID, offset or length alone is an entry', () => {
    const table = (entries: [Buffer, number, number][]) => {
      const b = Buffer.alloc(24 * (entries.length + 1) + 8, 0);
      entries.forEach(([g, off, len], i) => {
        g.copy(b, i * 24);
        b.writeUInt32LE(off, i * 24 + 16);
        b.writeUInt32LE(len, i * 24 + 20);
      });
      return b;
    };
    const zero = Buffer.alloc(16);
    const one = Buffer.from(guid.replace(/-/g, ''), 'hex');
    assert.deepEqual([...parseCertTable(table([[zero, 0, 4]])).keys()], ['00000000-0000-0000-0000-000000000000']);
    assert.deepEqual([...parseCertTable(table([[zero, 4, 0]])).keys()], ['00000000-0000-0000-0000-000000000000']);
    assert.deepEqual(parseCertTable(table([[one, 0, 0]])).get(guid), Buffer.alloc(0));
    const partial = Buffer.from(zero);
    partial[15] = 1;
    assert.equal(parseCertTable(table([[partial, 0, 0]])).size, 1);
  });

  it('refuses a table without terminator, with a duplicate, or pointing outside itself', async () => {
    const der = Buffer.from([1, 2, 3]);
    const good = buildCertTable([[guid, der]]);
    const unterminated = Buffer.alloc(24 + 23);
    Buffer.from(guid.replace(/-/g, ''), 'hex').copy(unterminated); // offset 0, length 0: an entry, then 23 bytes
    let err = await rejects(() => parseCertTable(unterminated), 'snp.certtable.parse');
    assert.equal(err.detail, 'certificate table has no terminating all-zero entry');
    await rejects(() => parseCertTable(Buffer.alloc(23)), 'snp.certtable.parse');
    err = await rejects(
      () =>
        parseCertTable(
          buildCertTable([
            [guid, der],
            [guid, der],
          ]),
        ),
      'snp.certtable.parse',
    );
    assert.equal(err.detail, `certificate table lists ${guid} twice`);
    const outside = Buffer.from(good);
    outside.writeUInt32LE(good.length - 2, 16); // offset: the last two bytes, length 3
    err = await rejects(() => parseCertTable(outside), 'snp.certtable.parse');
    assert.equal(err.detail, `certificate table entry ${guid} points outside the table`);
    assert.deepEqual([err.expected, err.actual], [`end <= ${good.length}`, `end ${good.length + 1}`]);
    const exact = Buffer.from(good);
    exact.writeUInt32LE(good.length - 3, 16);
    assert.deepEqual(parseCertTable(exact).get(guid), der);
  });

  it('ignores empty entries when looking for certificates in the evidence', async () => {
    const table = buildCertTable([
      [guid, Buffer.alloc(0)],
      [CERT_TABLE_GUID.ask, Buffer.alloc(0)],
    ]);
    await rejects(
      () => verifySnp({ report: milanV3.report, certTable: table }, null, {}, { now: SNP_NOW }),
      'snp.vcek.missing',
    );
    // A non-empty entry must be a certificate.
    const junk = buildCertTable([[guid, Buffer.from('junk')]]);
    const err = await rejects(
      () => verifySnp({ report: milanV3.report, certTable: junk }, null, {}, { now: SNP_NOW }),
      'x509.parse',
    );
    assert.match(err.detail, /^VCEK from the certificate table is not a well-formed certificate/);
    // An empty table is no table.
    const r = await verifySnp(
      { report: milanV3.report, certTable: Buffer.alloc(0) },
      null,
      {},
      { vcek: milanV3.vcek, certChain: milanV3.chain, now: SNP_NOW },
    );
    assert.equal(r.product, 'Milan');
  });

  it('reads the VCEK and the ASK of the Turin vectors from a table', () => {
    const vcek = read('amd/virtee-sev/vcek_turin.der');
    assert.ok(
      parseCertTable(buildCertTable([[guid, vcek]]))
        .get(guid)
        ?.equals(vcek),
    );
  });
});

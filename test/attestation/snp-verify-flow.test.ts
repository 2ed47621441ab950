/**
 * verifySnp as a whole: where certificates come from (explicit inputs, the certificate table,
 * the collateral source), the product line of reports without CPUID, the claim checks that run
 * before anything is looked up, and what the result reports.
 */
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import type { SnpCollateralSource } from '../../src/attestation/snp/collateral.js';
import { CERT_TABLE_GUID } from '../../src/attestation/snp/cert-table.js';
import { parseSnpReport } from '../../src/attestation/snp/report.js';
import { decodeTcb } from '../../src/attestation/snp/tcb.js';
import { AMD_OID, readAmdKeyCertificate } from '../../src/attestation/snp/vcek.js';
import { matchCertificateToReport, verifySnp } from '../../src/attestation/snp/verify.js';
import { extensions } from '../../src/attestation/x509.js';
import { forgeCertificate, ia5, name, oid, seq, set, utf8 } from './der-builder.js';
import { buildCertTable, forgeAmdHierarchy, rejects } from './assertions.js';
import { SNP_NOW, SNP_VECTORS, pemBlocks, read } from './vectors.js';

const virtee = SNP_VECTORS[1]!; // v2 Milan
const milanV3 = SNP_VECTORS[2]!;
const genoaV3 = SNP_VECTORS[3]!;
const der = (pemOrDer: Buffer) => new X509Certificate(pemOrDer).raw;
const milanAskPem = () => pemBlocks('amd/ms-tee-attestation-verification/milan_ask.pem')[0]!;
const milanArkPem = () => pemBlocks('amd/go-sev-guest/ask_ark_milan.pem')[1]!;
const GUID = CERT_TABLE_GUID;

/** A collateral source that serves what it is given and counts every call. */
function source(items: { vcek?: Buffer; chain?: Buffer; crl?: Buffer } = {}) {
  const calls: string[] = [];
  const src: SnpCollateralSource = {
    vcek: async (product, report) => {
      calls.push(`vcek ${product} ${report.version}`);
      return items.vcek;
    },
    certChain: async (product, kind) => {
      calls.push(`chain ${product} ${kind}`);
      return items.chain;
    },
    crl: async (product, kind) => {
      calls.push(`crl ${product} ${kind}`);
      return items.crl;
    },
  };
  return { src, calls };
}

const refFor = (v: typeof milanV3) => ({
  TrustedMeasurement: v.report.subarray(0x90, 0xc0).toString('hex'),
  MinimumTCB: { BootloaderVersion: 0, TEEVersion: 0, SNPVersion: 0, MicrocodeVersion: 0 },
  GuestPolicy: { SMT: true },
});
const edit = (report: Buffer, f: (b: Buffer) => void) => {
  const b = Buffer.from(report);
  f(b);
  return b;
};

describe('SEV-SNP verification: certificate sources', () => {
  it('takes the VCEK and the chain from the collateral source when the evidence has none', async () => {
    const { src, calls } = source({ vcek: der(milanV3.vcek), chain: milanV3.chain });
    const r = await verifySnp({ report: milanV3.report }, null, {}, { collateral: src, now: SNP_NOW });
    assert.equal(r.product, 'Milan');
    assert.deepEqual(calls, ['vcek Milan 3', 'chain Milan vcek', 'crl Milan vcek']);
  });

  it('does not ask the source for what the inputs already hold', async () => {
    const { src, calls } = source({ vcek: der(virtee.vcek), chain: read('amd/go-sev-guest/ask_ark_genoa.pem') });
    await verifySnp(
      { report: milanV3.report },
      null,
      {},
      { vcek: milanV3.vcek, certChain: milanV3.chain, collateral: src, now: SNP_NOW },
    );
    assert.deepEqual(calls, ['crl Milan vcek']);
  });

  it('never asks the source for a VLEK', async () => {
    const vlekReport = edit(milanV3.report, (b) => b.writeUInt32LE(1 << 2, 0x48));
    const { src, calls } = source({ vcek: der(milanV3.vcek) });
    const err = await rejects(
      () => verifySnp({ report: vlekReport }, null, {}, { collateral: src, now: SNP_NOW }),
      'snp.vcek.missing',
    );
    assert.equal(err.detail, 'no VLEK certificate: the cloud provider must supply it with the evidence');
    assert.deepEqual(calls, []);
    const e2 = await rejects(
      () => verifySnp({ report: milanV3.report }, null, {}, { now: SNP_NOW }),
      'snp.vcek.missing',
    );
    assert.equal(
      e2.detail,
      'no VCEK certificate: pass one, use evidence with a certificate table, or allow a cache/KDS source',
    );
  });

  it('names the VCEK source in a parse failure', async () => {
    let err = await rejects(
      () => verifySnp({ report: milanV3.report }, null, {}, { vcek: Buffer.from('junk'), now: SNP_NOW }),
      'x509.parse',
    );
    assert.match(err.detail, /^VCEK file is not a well-formed certificate/);
    const vlekReport = edit(milanV3.report, (b) => b.writeUInt32LE(1 << 2, 0x48));
    err = await rejects(
      () => verifySnp({ report: vlekReport }, null, {}, { vcek: Buffer.from('junk'), now: SNP_NOW }),
      'x509.parse',
    );
    assert.match(err.detail, /^VLEK file is not a well-formed certificate/);
    err = await rejects(
      () =>
        verifySnp(
          {
            report: vlekReport,
            certTable: buildCertTable([
              [GUID.vlek, Buffer.from('junk')],
              [GUID.vcek, der(milanV3.vcek)],
            ]),
          },
          null,
          {},
          { now: SNP_NOW },
        ),
      'x509.parse',
    );
    assert.match(err.detail, /^VLEK from the certificate table is not a well-formed certificate/);
    const { src } = source({ vcek: Buffer.from('junk') });
    err = await rejects(
      () => verifySnp({ report: milanV3.report }, null, {}, { collateral: src, now: SNP_NOW }),
      'x509.parse',
    );
    assert.match(err.detail, /^VCEK from the collateral source is not a well-formed certificate/);
    const chain = source({ vcek: der(milanV3.vcek), chain: Buffer.from('junk') });
    err = await rejects(
      () => verifySnp({ report: milanV3.report }, null, {}, { collateral: chain.src, now: SNP_NOW }),
      'x509.parse',
    );
    assert.match(err.detail, /^certificate chain from the collateral source is not a well-formed certificate/);
    err = await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          {},
          { vcek: milanV3.vcek, certChain: Buffer.from('junk'), now: SNP_NOW },
        ),
      'x509.parse',
    );
    assert.match(err.detail, /^certificate chain is not a well-formed certificate/);
    err = await rejects(
      () =>
        verifySnp(
          { report: milanV3.report, certTable: buildCertTable([[GUID.ask, Buffer.from('junk')]]) },
          null,
          {},
          { vcek: milanV3.vcek, now: SNP_NOW },
        ),
      'x509.parse',
    );
    assert.match(err.detail, /^ASK from the certificate table is not a well-formed certificate/);
    err = await rejects(
      () =>
        verifySnp(
          { report: milanV3.report, certTable: buildCertTable([[GUID.ark, Buffer.from('junk')]]) },
          null,
          {},
          { vcek: milanV3.vcek, certChain: Buffer.from(milanAskPem()), now: SNP_NOW },
        ),
      'x509.parse',
    );
    assert.match(err.detail, /^ARK from the certificate table is not a well-formed certificate/);
  });

  it('refuses a report without an ASK anywhere, naming the product and key type', async () => {
    let err = await rejects(
      () => verifySnp({ report: milanV3.report }, null, {}, { vcek: milanV3.vcek, now: SNP_NOW }),
      'snp.ask.missing',
    );
    assert.equal(err.detail, 'no ASK certificate for Milan');
    const { src, calls } = source();
    err = await rejects(
      () => verifySnp({ report: genoaV3.report }, null, {}, { vcek: genoaV3.vcek, collateral: src, now: SNP_NOW }),
      'snp.ask.missing',
    );
    assert.equal(err.detail, 'no ASK certificate for Genoa');
    assert.deepEqual(calls, ['chain Genoa vcek']);
    const vlekReport = edit(milanV3.report, (b) => b.writeUInt32LE(1 << 2, 0x48));
    err = await rejects(
      () => verifySnp({ report: vlekReport }, null, {}, { vcek: milanV3.vcek, now: SNP_NOW }),
      'snp.ask.missing',
    );
    assert.equal(err.detail, 'no ASVK certificate for Milan');
  });

  it('reads the chain in either order, and takes the ARK from the table before the source', async () => {
    const swapped = Buffer.from(`${milanArkPem()}\n${milanAskPem()}`);
    assert.equal(
      (await verifySnp({ report: milanV3.report }, null, {}, { vcek: milanV3.vcek, certChain: swapped, now: SNP_NOW }))
        .product,
      'Milan',
    );
    // The source's chain carries a forged ARK: used (and refused) only when no other ARK is at hand.
    const forged = forgeAmdHierarchy(milanV3);
    const withForgedArk = Buffer.from(`${milanAskPem()}\n${forged.ark.toString()}`);
    const { src } = source({ chain: withForgedArk });
    await rejects(
      () => verifySnp({ report: milanV3.report }, null, {}, { vcek: milanV3.vcek, collateral: src, now: SNP_NOW }),
      'snp.ark.pinned',
    );
    const table = buildCertTable([[GUID.ark, der(Buffer.from(milanArkPem()))]]);
    const r = await verifySnp(
      { report: milanV3.report, certTable: table },
      null,
      {},
      { vcek: milanV3.vcek, collateral: source({ chain: withForgedArk }).src, now: SNP_NOW },
    );
    assert.equal(r.product, 'Milan');
    // A forged ARK in the table is refused although the chain file has none.
    const forgedTable = buildCertTable([[GUID.ark, forged.ark.raw]]);
    await rejects(
      () =>
        verifySnp(
          { report: milanV3.report, certTable: forgedTable },
          null,
          {},
          { vcek: milanV3.vcek, certChain: Buffer.from(milanAskPem()), now: SNP_NOW },
        ),
      'snp.ark.pinned',
    );
  });

  it('refuses a chain file of more than two certificates and one whose certificate has no name', async () => {
    const three = Buffer.from([milanAskPem(), milanArkPem(), milanArkPem()].join('\n'));
    const err = await rejects(
      () => verifySnp({ report: milanV3.report }, null, {}, { vcek: milanV3.vcek, certChain: three, now: SNP_NOW }),
      'x509.parse',
    );
    assert.match(err.detail, /3 certificates, expected 1 to 2$/);
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const nameless = forgeCertificate({
      subject: seq(set(seq(oid('2.5.4.10'), utf8('AMD')))),
      issuer: name('x'),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      alg: 'ecdsa-sha384',
    });
    const e2 = await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          {},
          { vcek: milanV3.vcek, certChain: Buffer.from(nameless.toString()), now: SNP_NOW },
        ),
      'snp.ask.subject',
    );
    assert.equal(e2.actual, 'CN=<none>');
  });
});

describe('SEV-SNP verification: product line', () => {
  it('takes the product of a v3 report from CPUID and accepts a matching hint', async () => {
    assert.equal(
      (
        await verifySnp(
          { report: milanV3.report },
          null,
          {},
          { vcek: milanV3.vcek, certChain: milanV3.chain, product: 'Milan', now: SNP_NOW },
        )
      ).product,
      'Milan',
    );
    const err = await rejects(
      () =>
        verifySnp(
          { report: genoaV3.report },
          null,
          {},
          { vcek: genoaV3.vcek, certChain: genoaV3.chain, product: 'Milan', now: SNP_NOW },
        ),
      'snp.product',
    );
    assert.equal(err.detail, "the product given does not match the report's CPUID");
    assert.deepEqual([err.expected, err.actual], ['Milan', 'Genoa']);
  });

  it('refuses a CPU family/model without a pinned root', async () => {
    const venice = edit(milanV3.report, (b) => {
      b[0x188] = 0x1a;
      b[0x189] = 0x50;
    });
    const err = await rejects(
      () => verifySnp({ report: venice }, null, {}, { vcek: milanV3.vcek, certChain: milanV3.chain, now: SNP_NOW }),
      'snp.product',
    );
    assert.equal(err.detail, 'the report names a CPU family/model with no pinned AMD root');
    assert.deepEqual([err.expected, err.actual], ['Milan, Genoa or Turin', 'family 0x1a model 0x50']);
  });

  it('takes the product of a v2 report from the hint, then a Turin chip id, then the VCEK', async () => {
    // Turin chip ids use only their first 8 bytes; the missing ASK then names the product.
    const turinChip = edit(virtee.report, (b) => b.fill(0, 0x1a8, 0x1e0));
    let err = await rejects(
      () => verifySnp({ report: turinChip }, null, {}, { vcek: virtee.vcek, now: SNP_NOW }),
      'snp.ask.missing',
    );
    assert.equal(err.detail, 'no ASK certificate for Turin');
    err = await rejects(
      () => verifySnp({ report: turinChip }, null, {}, { vcek: virtee.vcek, product: 'Genoa', now: SNP_NOW }),
      'snp.ask.missing',
    );
    assert.equal(err.detail, 'no ASK certificate for Genoa');
    err = await rejects(
      () => verifySnp({ report: virtee.report }, null, {}, { vcek: virtee.vcek, now: SNP_NOW }),
      'snp.ask.missing',
    );
    assert.equal(err.detail, 'no ASK certificate for Milan', "from the VCEK's product name Milan-B0");
    const masked = edit(virtee.report, (b) => b.fill(0, 0x1a0, 0x1e0));
    err = await rejects(
      () => verifySnp({ report: masked }, null, {}, { vcek: virtee.vcek, now: SNP_NOW }),
      'snp.ask.missing',
    );
    assert.equal(err.detail, 'no ASK certificate for Milan', 'a masked chip id is not a Turin chip id');
  });

  it('cannot tell the product of a v2 report without hint, Turin chip id or usable VCEK', async () => {
    const detail = 'cannot tell the product line of a version 2 report; pass the product (Milan or Genoa)';
    let err = await rejects(() => verifySnp({ report: virtee.report }, null, {}, { now: SNP_NOW }), 'snp.product');
    assert.equal(err.detail, detail);
    // A VCEK naming an unknown product line.
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const exts = [...extensions(new X509Certificate(virtee.vcek))].map(([id, e]) => ({
      oid: id,
      value: id === AMD_OID.productName ? ia5('Venice-A0') : e.value,
    }));
    const venice = forgeCertificate({
      subject: name('SEV-VCEK'),
      issuer: name('SEV-Venice'),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      alg: 'ecdsa-sha384',
      extensions: exts,
    });
    err = await rejects(
      () => verifySnp({ report: virtee.report }, null, {}, { vcek: venice.raw, now: SNP_NOW }),
      'snp.product',
    );
    assert.equal(err.detail, detail);
  });
});

describe('SEV-SNP verification: claims before collateral', () => {
  const ref = refFor(milanV3);
  const expectations = {
    reportData: milanV3.report.subarray(0x50, 0x90),
    hostData: milanV3.report.subarray(0xc0, 0xe0),
  };

  it('judges TCB consistency, expectations and reference values before the first lookup', async () => {
    const cases: [Buffer, object, unknown, string][] = [
      [
        edit(milanV3.report, (b) => {
          b[0x1e6] = 0xff;
        }),
        {},
        null,
        'snp.tcb.committed',
      ],
      [
        edit(milanV3.report, (b) => {
          b[0x186] = 0xff;
        }),
        {},
        null,
        'snp.tcb.reported',
      ],
      [milanV3.report, { reportData: Buffer.alloc(64, 0xee) }, null, 'snp.reportdata'],
      [milanV3.report, { hostData: Buffer.alloc(32, 0xdd) }, null, 'snp.hostdata'],
      [milanV3.report, { vmpl: 2 }, null, 'snp.vmpl'],
      [edit(milanV3.report, (b) => b.writeUInt32LE(1, 0x30)), {}, [ref], 'snp.vmpl'],
      [milanV3.report, {}, [{ ...ref, TrustedMeasurement: '00'.repeat(48) }], 'snp.measurement'],
      [milanV3.report, {}, [], 'snp.referencevalues'],
    ];
    for (const [report, exp, refs, check] of cases) {
      const { src, calls } = source({ vcek: der(milanV3.vcek), chain: milanV3.chain });
      await rejects(() => verifySnp({ report }, refs as never, exp, { collateral: src, now: SNP_NOW }), check);
      assert.deepEqual(calls, [], `${check}: nothing looked up`);
    }
  });

  it('checks VMPL 0 by default only when reference values are checked', async () => {
    const vmpl1 = edit(milanV3.report, (b) => b.writeUInt32LE(1, 0x30));
    const { src } = source();
    const err = await rejects(
      () => verifySnp({ report: vmpl1 }, [ref], {}, { collateral: src, now: SNP_NOW }),
      'snp.vmpl',
    );
    assert.deepEqual([err.detail, err.expected, err.actual], ['the report comes from another VMPL', '0', '1']);
    // Without reference values there is no VMPL requirement: the next failure is the missing VCEK.
    await rejects(() => verifySnp({ report: vmpl1 }, null, {}, { collateral: src, now: SNP_NOW }), 'snp.vcek.missing');
    await rejects(
      () => verifySnp({ report: vmpl1 }, null, { vmpl: 1 }, { collateral: src, now: SNP_NOW }),
      'snp.vcek.missing',
    );
  });

  it('reports expected and actual values of the binding and policy hash', async () => {
    let err = await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          { reportData: Buffer.alloc(64, 0xee) },
          { vcek: milanV3.vcek, certChain: milanV3.chain, now: SNP_NOW },
        ),
      'snp.reportdata',
    );
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['REPORT_DATA does not match the expected binding', 'ee'.repeat(64), expectations.reportData.toString('hex')],
    );
    err = await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          { hostData: Buffer.alloc(32, 0xdd) },
          { vcek: milanV3.vcek, certChain: milanV3.chain, now: SNP_NOW },
        ),
      'snp.hostdata',
    );
    assert.equal(err.detail, 'HOST_DATA does not match the expected policy hash');
  });

  it('judges the claims last when nothing has to be looked up (authenticity failures first)', async () => {
    const tampered = edit(milanV3.report, (b) => {
      b[0x1e6] = 0xff;
    });
    await rejects(
      () => verifySnp({ report: tampered }, null, {}, { vcek: milanV3.vcek, certChain: milanV3.chain, now: SNP_NOW }),
      'snp.report.signature',
    );
    await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          { hostData: Buffer.alloc(32, 0xdd) },
          { vcek: milanV3.vcek, certChain: milanV3.chain, now: SNP_NOW },
        ),
      'snp.hostdata',
    );
  });

  it('reports the signature failure with the key certificate that was used', async () => {
    const tampered = edit(milanV3.report, (b) => {
      b[0x90] ^= 1;
    });
    const err = await rejects(
      () => verifySnp({ report: tampered }, null, {}, { vcek: milanV3.vcek, certChain: milanV3.chain, now: SNP_NOW }),
      'snp.report.signature',
    );
    assert.equal(err.detail, 'the report signature does not verify with the VCEK/VLEK key');
    assert.equal(err.expected, `a signature by SEV-VCEK serial ${new X509Certificate(milanV3.vcek).serialNumber}`);
    assert.equal(err.actual, 'bad signature');
  });

  it('refuses an unsigned report before looking for certificates', async () => {
    const unsigned = edit(milanV3.report, (b) => b.writeUInt32LE(7 << 2, 0x48));
    const { src, calls } = source();
    const err = await rejects(
      () => verifySnp({ report: unsigned }, null, {}, { collateral: src, now: SNP_NOW }),
      'snp.report.signingkey',
    );
    assert.deepEqual([err.detail, err.expected, err.actual], ['the report is unsigned', 'VCEK or VLEK', 'none']);
    assert.deepEqual(calls, []);
  });

  it("names the CRL that failed and keeps the check's own error as the cause", async () => {
    const { forgedMilanCrl } = await import('./kds-fakes.js');
    const crl = forgedMilanCrl(new Date('2026-11-01T00:00:00Z'), new Date('2026-12-01T00:00:00Z'));
    const err = await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          {},
          { vcek: milanV3.vcek, certChain: milanV3.chain, crl, now: SNP_NOW },
        ),
      'snp.crl',
    );
    assert.equal(err.detail, 'the supplied CRL: CRL signature does not verify');
    assert.ok(err.cause instanceof Error && (err.cause as { check?: string }).check === 'snp.crl');
  });

  it('refuses a key certificate of the other key type', async () => {
    const vlekReport = edit(milanV3.report, (b) => b.writeUInt32LE(1 << 2, 0x48));
    const err = await rejects(
      () => verifySnp({ report: vlekReport }, null, {}, { vcek: milanV3.vcek, certChain: milanV3.chain, now: SNP_NOW }),
      'snp.vcek.kind',
    );
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['the certificate is not the key type the report names', 'VLEK', 'VCEK'],
    );
  });

  it('returns what it verified', async () => {
    const r = await verifySnp({ report: milanV3.report }, [ref], expectations, {
      vcek: milanV3.vcek,
      certChain: milanV3.chain,
      now: SNP_NOW,
    });
    assert.equal(r.tee, 'snp');
    assert.equal(r.signingKey, 'vcek');
    assert.equal(r.reportVersion, 3);
    assert.equal(r.referenceValueIndex, 0);
    assert.equal(r.certificate.productName, 'Milan-B0');
    assert.deepEqual(r.tcb.reported, milanV3.reported);
    const n = await verifySnp(
      { report: milanV3.report },
      null,
      {},
      { vcek: milanV3.vcek, certChain: milanV3.chain, now: SNP_NOW },
    );
    assert.ok(!('referenceValueIndex' in n));
  });
});

describe('SEV-SNP verification: key certificate against the report', () => {
  const turinVcek = () => readAmdKeyCertificate(new X509Certificate(read('amd/virtee-sev/vcek_turin.der')));
  /** A report (not signed; matching is judged alone) with the Turin VCEK's chip id and TCB. */
  const turinReport = (c = turinVcek()) =>
    parseSnpReport(
      edit(milanV3.report, (b) => {
        b.fill(0, 0x1a0, 0x1e0);
        c.hwId!.copy(b, 0x1a0);
        Buffer.from([c.spl.fmc!, c.spl.bootloader, c.spl.tee, c.spl.snp, 0, 0, 0, c.spl.microcode]).copy(b, 0x180);
      }),
    );

  it('matches a Turin VCEK by its FMC SPL and the first 8 bytes of the chip id', async () => {
    const c = turinVcek();
    const r = turinReport(c);
    const reported = decodeTcb(r.reportedTcb, 'Turin');
    matchCertificateToReport(c, r, 'Turin', reported);
    const noFmc = {
      ...c,
      spl: { bootloader: c.spl.bootloader, tee: c.spl.tee, snp: c.spl.snp, microcode: c.spl.microcode },
    };
    const err = await rejects(() => matchCertificateToReport(noFmc, r, 'Turin', reported), 'snp.vcek.tcb');
    assert.equal(err.detail, 'the VCEK was issued for another TCB (fmc)');
    assert.equal(
      err.expected,
      `REPORTED_TCB ${['fmc', 'bootloader', 'tee', 'snp', 'microcode'].map((k) => `${k}=${(reported as unknown as Record<string, number>)[k]}`).join(' ')}`,
    );
    assert.match(err.actual!, /^certificate fmc=-1 bootloader=/);
    const otherChip = parseSnpReport(
      edit(r.raw, (b) => {
        b[0x1a0] ^= 1;
      }),
    );
    const e2 = await rejects(() => matchCertificateToReport(c, otherChip, 'Turin', reported), 'snp.vcek.chipid');
    assert.equal(e2.detail, 'the VCEK belongs to another chip');
    assert.equal(e2.expected, `hwID ${otherChip.chipId.subarray(0, 8).toString('hex')}`);
    assert.equal(e2.actual, `hwID ${c.hwId!.toString('hex')}`);
  });

  it('refuses a Milan key certificate that names an FMC SPL', async () => {
    const c = readAmdKeyCertificate(new X509Certificate(milanV3.vcek));
    const r = parseSnpReport(milanV3.report);
    await rejects(
      () =>
        matchCertificateToReport({ ...c, spl: { ...c.spl, fmc: 0 } }, r, 'Milan', decodeTcb(r.reportedTcb, 'Milan')),
      'snp.vcek.tcb',
    );
  });

  it('names product line and TCB in the refusals', async () => {
    const c = readAmdKeyCertificate(new X509Certificate(milanV3.vcek));
    const r = parseSnpReport(milanV3.report);
    const tcb = decodeTcb(r.reportedTcb, 'Milan');
    let err = await rejects(() => matchCertificateToReport(c, r, 'Genoa', tcb), 'snp.vcek.product');
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['the VCEK/VLEK is for another product line', 'Genoa', 'Milan-B0'],
    );
    err = await rejects(() => matchCertificateToReport(c, r, 'Milan', { ...tcb, snp: 25 }), 'snp.vcek.tcb');
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      [
        'the VCEK was issued for another TCB (snp)',
        'REPORTED_TCB bootloader=4 tee=0 snp=25 microcode=219',
        'certificate bootloader=4 tee=0 snp=24 microcode=219',
      ],
    );
    const noHwId = { ...c, hwId: undefined };
    err = await rejects(() => matchCertificateToReport(noHwId, r, 'Milan', tcb), 'snp.vcek.chipid');
    assert.equal(err.actual, 'hwID <none>');
  });

  it('does not compare chip ids for VLEKs (they are not chip-specific)', () => {
    const c = readAmdKeyCertificate(new X509Certificate(milanV3.vcek));
    const r = parseSnpReport(milanV3.report);
    const vlek = { ...c, kind: 'vlek' as const, hwId: undefined, cspId: 'csp' };
    matchCertificateToReport(vlek, r, 'Milan', decodeTcb(r.reportedTcb, 'Milan'));
    const e = (async () =>
      rejects(
        () =>
          matchCertificateToReport(
            { ...vlek, spl: { ...c.spl, tee: 9 } },
            r,
            'Milan',
            decodeTcb(r.reportedTcb, 'Milan'),
          ),
        'snp.vcek.tcb',
      ))();
    return e.then((err) => assert.match(err.detail, /^the VLEK was issued for another TCB/));
  });
});

describe('SEV-SNP verification: the VCEK may be wrapped', () => {
  it('accepts a VCEK file in PEM', async () => {
    const pem = Buffer.from(new X509Certificate(milanV3.vcek).toString());
    assert.equal(
      (await verifySnp({ report: milanV3.report }, null, {}, { vcek: pem, certChain: milanV3.chain, now: SNP_NOW }))
        .product,
      'Milan',
    );
  });
});

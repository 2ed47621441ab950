import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { verifySnp, type SnpReferenceValues } from '../../src/attestation/index.js';
import { extensions, subjectDer } from '../../src/attestation/x509.js';
import { matchCertificateToReport } from '../../src/attestation/snp/verify.js';
import { parseSnpReport } from '../../src/attestation/snp/report.js';
import { decodeTcb } from '../../src/attestation/snp/tcb.js';
import { readAmdKeyCertificate } from '../../src/attestation/snp/vcek.js';
import { forgeCertificate, forgeCrl } from './der-builder.js';
import { buildCertTable, checkIs, forgeAmdHierarchy, rejects, resign } from './assertions.js';
import { SNP_NOW, SNP_VECTORS, pemBlocks, read, type SnpVector } from './vectors.js';

const opts = (v: SnpVector, extra: object = {}) => ({ vcek: v.vcek, certChain: v.chain, now: SNP_NOW, ...extra });
const milanV3 = SNP_VECTORS[2]!;
const genoaV3 = SNP_VECTORS[3]!;
const virtee = SNP_VECTORS[1]!;
const debugVector = SNP_VECTORS[0]!;

function refFor(v: SnpVector, over: Partial<SnpReferenceValues> = {}): SnpReferenceValues {
  return {
    ProductName: v.product,
    TrustedMeasurement: v.report.subarray(0x90, 0xc0).toString('hex'),
    MinimumTCB: {
      BootloaderVersion: v.reported.bootloader,
      TEEVersion: v.reported.tee,
      SNPVersion: v.reported.snp,
      MicrocodeVersion: v.reported.microcode,
    },
    GuestPolicy: { SMT: true },
    PlatformInfo: { SMTEnabled: true, TSMEEnabled: true },
    ...over,
  };
}

describe('SEV-SNP verification: genuine reports', () => {
  for (const v of SNP_VECTORS) {
    it(`verifies ${v.name} offline with product, version and TCB`, async () => {
      const r = await verifySnp({ report: v.report }, null, {}, opts(v));
      assert.equal(r.product, v.product);
      assert.equal(r.reportVersion, v.version);
      assert.equal(r.signingKey, 'vcek');
      assert.deepEqual(r.tcb.reported, v.reported);
      // No CRL anywhere: under the default policy that is reported, not fatal.
      assert.equal(r.crlChecked, false);
      assert.equal(r.crl.checked, false);
      assert.equal(r.crl.source, undefined);
      assert.match(r.crl.reason ?? '', /no CRL for \w+ VCEK/);
    });
  }

  it('validates genuine non-debug reports against matching reference values and expectations', async () => {
    for (const v of SNP_VECTORS.filter((x) => !x.debug)) {
      const r = await verifySnp(
        { report: v.report },
        [refFor(v)],
        { reportData: v.report.subarray(0x50, 0x90), hostData: v.report.subarray(0xc0, 0xe0) },
        opts(v),
      );
      assert.equal(r.referenceValueIndex, 0, v.name);
    }
  });

  it('accepts when any one of several reference-value entries matches', async () => {
    const wrong = refFor(milanV3, { TrustedMeasurement: '00'.repeat(48) });
    const r = await verifySnp({ report: milanV3.report }, [wrong, refFor(milanV3)], {}, opts(milanV3));
    assert.equal(r.referenceValueIndex, 1);
  });

  it('reads the VCEK and chain from an extended-report certificate table', async () => {
    const ask = new X509Certificate(pemBlocks('amd/ms-tee-attestation-verification/milan_ask.pem')[0]!).raw;
    const vcek = new X509Certificate(milanV3.vcek).raw;
    const table = buildCertTable([
      ['63da758d-e664-4564-adc5-f4b93be8accd', vcek],
      ['4ab7b379-bbac-4fe4-a02f-05aef327c782', ask],
    ]);
    const r = await verifySnp({ report: milanV3.report, certTable: table }, null, {}, { now: SNP_NOW });
    assert.equal(r.product, 'Milan');
  });

  it('detects the product of a v2 report from its VCEK when no hint is given, and honours a hint', async () => {
    assert.equal((await verifySnp({ report: virtee.report }, null, {}, opts(virtee))).product, 'Milan');
    await rejects(
      () => verifySnp({ report: virtee.report }, null, {}, opts(virtee, { product: 'Genoa' })),
      'snp.ask.subject',
    );
  });

  it('rejects a product hint that contradicts the CPUID of a v3 report', async () => {
    await rejects(
      () => verifySnp({ report: milanV3.report }, null, {}, opts(milanV3, { product: 'Genoa' })),
      'snp.product',
    );
  });
});

describe('SEV-SNP verification: tampering and wrong certificates', () => {
  it('rejects a flip of any byte in the signed part', async () => {
    const allowed = new Set(['snp.report.signature', 'snp.report.parse', 'snp.product', 'snp.vcek.kind']);
    for (let off = 0; off < 0x2a0; off++) {
      const bad = Buffer.from(milanV3.report);
      bad[off]! ^= 0x01;
      const err = await rejects(() => verifySnp({ report: bad }, null, {}, opts(milanV3)));
      assert.ok(allowed.has(err.check), `offset 0x${off.toString(16)}: ${err.message}`);
    }
  });

  it('names the signature check when a measured field is changed', async () => {
    const bad = Buffer.from(milanV3.report);
    bad[0x90]! ^= 0xff; // MEASUREMENT
    await rejects(() => verifySnp({ report: bad }, null, {}, opts(milanV3)), 'snp.report.signature');
  });

  it('rejects a changed signature', async () => {
    const bad = Buffer.from(milanV3.report);
    bad[0x2a0]! ^= 0x01;
    await rejects(() => verifySnp({ report: bad }, null, {}, opts(milanV3)), 'snp.report.signature');
  });

  it('rejects a VCEK of another Milan chip (VCEKs swapped between reports)', async () => {
    await rejects(
      () => verifySnp({ report: milanV3.report }, null, {}, opts(milanV3, { vcek: virtee.vcek })),
      'snp.report.signature',
    );
    await rejects(
      () => verifySnp({ report: virtee.report }, null, {}, opts(virtee, { vcek: milanV3.vcek })),
      'snp.report.signature',
    );
  });

  it('rejects a Milan VCEK offered for a Genoa report', async () => {
    await rejects(
      () => verifySnp({ report: genoaV3.report }, null, {}, opts(genoaV3, { vcek: milanV3.vcek })),
      'snp.vcek.signature',
    );
  });

  it('rejects a chain for the wrong product', async () => {
    await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          {},
          opts(milanV3, { certChain: read('amd/go-sev-guest/ask_ark_genoa.pem') }),
        ),
      'snp.ask.subject',
    );
  });

  it('rejects a VLEK signing chain (ASVK) offered for a VCEK-signed report', async () => {
    await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          {},
          opts(milanV3, { certChain: read('amd/go-sev-guest/ask_ark_milan_vlek.pem') }),
        ),
      'snp.ask.subject',
    );
  });

  it('rejects a VCEK issued for another TCB, chip or product line', () => {
    // These checks run after the chain and signature; call them directly with genuine VCEKs.
    const reportOf = (v: SnpVector) => parseSnpReport(v.report);
    const tcbOf = (v: SnpVector) => decodeTcb(reportOf(v).reportedTcb, 'Milan');
    const otherChipVcek = readAmdKeyCertificate(new X509Certificate(virtee.vcek));
    assert.throws(
      () => matchCertificateToReport(otherChipVcek, reportOf(milanV3), 'Milan', tcbOf(milanV3)),
      checkIs('snp.vcek.tcb'),
    );
    const ownVcek = readAmdKeyCertificate(new X509Certificate(milanV3.vcek));
    const otherChip = Buffer.from(milanV3.report);
    otherChip[0x1a0]! ^= 1;
    assert.throws(
      () => matchCertificateToReport(ownVcek, parseSnpReport(otherChip), 'Milan', tcbOf(milanV3)),
      checkIs('snp.vcek.chipid'),
    );
    assert.throws(
      () => matchCertificateToReport(ownVcek, reportOf(milanV3), 'Genoa', tcbOf(milanV3)),
      checkIs('snp.vcek.product'),
    );
    // A masked chip id (all zero) skips the hwID comparison, as the firmware intends.
    const masked = Buffer.from(milanV3.report);
    masked.fill(0, 0x1a0, 0x1e0);
    assert.doesNotThrow(() => matchCertificateToReport(ownVcek, parseSnpReport(masked), 'Milan', tcbOf(milanV3)));
  });

  it("rejects a self-made ARK with AMD's exact name", async () => {
    const forged = forgeAmdHierarchy(milanV3);
    const report = resign(milanV3.report, forged.vcekKey);
    const chain = Buffer.from(`${forged.ask.toString()}\n${forged.ark.toString()}`);
    const err = await rejects(
      () => verifySnp({ report }, null, {}, { vcek: forged.vcek.raw, certChain: chain, now: SNP_NOW }),
      'snp.ark.pinned',
    );
    assert.match(err.message, /69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd/);
    // Without the forged ARK in the chain, the forged ASK fails against the pinned ARK.
    await rejects(
      () =>
        verifySnp(
          { report },
          null,
          {},
          { vcek: forged.vcek.raw, certChain: Buffer.from(forged.ask.toString()), now: SNP_NOW },
        ),
      'snp.ask.signature',
    );
  });

  it('rejects expired and not-yet-valid certificates', async () => {
    await rejects(
      () => verifySnp({ report: virtee.report }, null, {}, opts(virtee, { now: new Date('2031-01-01T00:00:00Z') })),
      'snp.vcek.validity',
    );
    await rejects(
      () => verifySnp({ report: virtee.report }, null, {}, opts(virtee, { now: new Date('2019-01-01T00:00:00Z') })),
      'snp.ark.validity',
    );
  });

  it('checks dates on every call even when the chain was verified before', async () => {
    await verifySnp({ report: virtee.report }, null, {}, opts(virtee));
    await rejects(
      () => verifySnp({ report: virtee.report }, null, {}, opts(virtee, { now: new Date('2031-01-01T00:00:00Z') })),
      'snp.vcek.validity',
    );
  });

  it('rejects a CRL that AMD did not sign, and a revoked ASK', async () => {
    const forged = forgeAmdHierarchy(milanV3);
    const ark = new X509Certificate(pemBlocks('amd/go-sev-guest/ask_ark_milan.pem')[1]!);
    const ask = new X509Certificate(pemBlocks('amd/go-sev-guest/ask_ark_milan.pem')[0]!);
    const crl = forgeCrl({
      issuer: subjectDer(ark),
      signingKey: forged.arkKey,
      alg: 'rsa-pss-sha384',
      thisUpdate: new Date('2026-01-01'),
      nextUpdate: new Date('2027-01-01'),
      revoked: [],
    });
    await rejects(() => verifySnp({ report: virtee.report }, null, {}, opts(virtee, { crl })), 'snp.crl');
    // The revocation decision itself, with the CRL issued by a forged root over a forged chain.
    const { checkCrl, parseCrl } = await import('../../src/attestation/x509.js');
    const revoked = forgeCrl({
      issuer: subjectDer(forged.ark),
      signingKey: forged.arkKey,
      alg: 'rsa-pss-sha384',
      thisUpdate: new Date('2026-01-01'),
      nextUpdate: new Date('2027-01-01'),
      revoked: [BigInt(`0x${forged.ask.serialNumber}`)],
    });
    assert.throws(() => checkCrl(parseCrl(revoked), forged.ark, SNP_NOW, [forged.ask], 'snp.crl'), /revoked/);
    assert.doesNotThrow(() => checkCrl(parseCrl(revoked), forged.ark, SNP_NOW, [ask], 'snp.crl'));
    assert.throws(
      () => checkCrl(parseCrl(revoked), forged.ark, new Date('2027-06-01'), [ask], 'snp.crl'),
      /out of date/,
    );
  });

  it('rejects a missing VCEK and an unsigned report', async () => {
    await rejects(
      () => verifySnp({ report: milanV3.report }, null, {}, { certChain: milanV3.chain, now: SNP_NOW }),
      'snp.vcek.missing',
    );
    const unsigned = Buffer.from(milanV3.report);
    unsigned.writeUInt32LE(7 << 2, 0x48);
    await rejects(() => verifySnp({ report: unsigned }, null, {}, opts(milanV3)), 'snp.report.signingkey');
  });

  it('requires the VLEK from the evidence and checks it against the ASVK chain', async () => {
    const vlekSigned = Buffer.from(milanV3.report);
    vlekSigned.writeUInt32LE(1 << 2, 0x48); // SIGNING_KEY = VLEK
    const err = await rejects(() => verifySnp({ report: vlekSigned }, null, {}, { now: SNP_NOW }), 'snp.vcek.missing');
    assert.match(err.message, /cloud provider/);
    // A VCEK cannot stand in for a VLEK.
    await rejects(() => verifySnp({ report: vlekSigned }, null, {}, opts(milanV3)), 'snp.vcek.kind');
    // A VLEK-shaped certificate that AMD did not sign fails at the ASVK.
    const forged = forgeAmdHierarchy(milanV3);
    const genuineVcek = new X509Certificate(milanV3.vcek);
    const vlekExts = [...extensions(genuineVcek)]
      .filter(([oid]) => oid !== '1.3.6.1.4.1.3704.1.4')
      .map(([oid, e]) => ({ oid, value: e.value }));
    vlekExts.push({ oid: '1.3.6.1.4.1.3704.1.5', value: Buffer.from([0x16, 0x03, ...Buffer.from('csp')]) });
    const askSubject = subjectDer(new X509Certificate(pemBlocks('amd/go-sev-guest/ask_ark_milan_vlek.pem')[0]!));
    // AMD's VCEK subject with the CN changed to SEV-VLEK (same length, so the DER stays valid).
    const vlekSubject = Buffer.from(
      subjectDer(genuineVcek).toString('latin1').replace('SEV-VCEK', 'SEV-VLEK'),
      'latin1',
    );
    assert.ok(!vlekSubject.equals(subjectDer(genuineVcek)));
    const vlek = forgeCertificate({
      subject: vlekSubject,
      issuer: askSubject,
      publicKey: forged.vcek.publicKey,
      signingKey: forged.arkKey,
      alg: 'rsa-pss-sha384',
      extensions: vlekExts,
    });
    const r = await rejects(
      () =>
        verifySnp(
          { report: resign(vlekSigned, forged.vcekKey) },
          null,
          {},
          { vcek: vlek.raw, certChain: read('amd/go-sev-guest/ask_ark_milan_vlek.pem'), now: SNP_NOW },
        ),
      'snp.vcek.signature',
    );
    assert.match(r.message, /SEV-VLEK-Milan/);
  });

  it('rejects truncated and oversized reports', async () => {
    await rejects(
      () => verifySnp({ report: milanV3.report.subarray(0, 1183) }, null, {}, opts(milanV3)),
      'snp.report.parse',
    );
    await rejects(
      () => verifySnp({ report: Buffer.concat([milanV3.report, Buffer.alloc(1)]) }, null, {}, opts(milanV3)),
      'snp.report.parse',
    );
    await rejects(() => verifySnp({ report: Buffer.alloc(0) }, null, {}, opts(milanV3)), 'snp.report.parse');
  });
});

describe('SEV-SNP verification: reference values and expectations', () => {
  it('rejects the genuine go-sev-guest report because its guest policy allows debugging', async () => {
    const err = await rejects(
      () => verifySnp({ report: debugVector.report }, [refFor(debugVector)], {}, opts(debugVector)),
      'snp.policy.debug',
    );
    assert.equal(err.expected, 'DEBUG=0');
    assert.equal(err.actual, 'DEBUG=1');
  });

  it('rejects a report below the minimum TCB, naming the component', async () => {
    const ref = refFor(milanV3, {
      MinimumTCB: { BootloaderVersion: 4, TEEVersion: 0, SNPVersion: 25, MicrocodeVersion: 219 },
    });
    const err = await rejects(() => verifySnp({ report: milanV3.report }, [ref], {}, opts(milanV3)), 'snp.tcb.minimum');
    assert.match(err.message, /REPORTED_TCB snp is below the minimum/);
    assert.match(
      err.message,
      /expected bootloader=4 tee=0 snp=25 microcode=219; actual bootloader=4 tee=0 snp=24 microcode=219/,
    );
  });

  it('rejects wrong HOSTDATA and REPORT_DATA with expected and actual hex', async () => {
    const hostData = Buffer.alloc(32, 0xab);
    const err = await rejects(
      () => verifySnp({ report: milanV3.report }, [refFor(milanV3)], { hostData }, opts(milanV3)),
      'snp.hostdata',
    );
    assert.equal(err.expected, 'ab'.repeat(32));
    assert.equal(err.actual, milanV3.report.subarray(0xc0, 0xe0).toString('hex'));
    const reportData = Buffer.alloc(64, 1);
    await rejects(
      () => verifySnp({ report: milanV3.report }, [refFor(milanV3)], { reportData }, opts(milanV3)),
      'snp.reportdata',
    );
  });

  it('checks measurement, product, guest policy, platform info, VMPL and chip ids', async () => {
    const v = milanV3;
    const cases: [Partial<SnpReferenceValues>, string][] = [
      [{ TrustedMeasurement: '11'.repeat(48) }, 'snp.measurement'],
      [{ ProductName: 'Genoa' }, 'snp.product'],
      [{ GuestPolicy: { SMT: false } }, 'snp.policy.smt'],
      [{ GuestPolicy: { SMT: true, ABIMajor: 2 } }, 'snp.policy.abi'],
      [{ GuestPolicy: { SMT: true, SingleSocket: true } }, 'snp.policy.single_socket'],
      [{ PlatformInfo: { SMTEnabled: false, TSMEEnabled: true } }, 'snp.platforminfo'],
      [{ PlatformInfo: { SMTEnabled: true, TSMEEnabled: true, RAPLDisabled: true } }, 'snp.platforminfo'],
      [{ AllowedChipIDs: ['00'.repeat(63) + '01'] }, 'snp.chipid'],
      [{ MinimumMitigationVector: 1 }, 'snp.mitigations'],
    ];
    for (const [over, check] of cases) {
      await rejects(() => verifySnp({ report: v.report }, [refFor(v, over)], {}, opts(v)), check);
    }
    const chipId = v.report.subarray(0x1a0, 0x1e0).toString('hex');
    await verifySnp({ report: v.report }, [refFor(v, { AllowedChipIDs: ['00'.repeat(64), chipId] })], {}, opts(v));
    await rejects(() => verifySnp({ report: v.report }, [refFor(v)], { vmpl: 1 }, opts(v)), 'snp.vmpl');
  });

  it('refuses reference values without a complete minimum TCB', async () => {
    const err = await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          [refFor(milanV3, { MinimumTCB: { BootloaderVersion: 0, TEEVersion: 0, SNPVersion: 0 } })],
          {},
          opts(milanV3),
        ),
      'snp.tcb.minimum',
    );
    assert.match(err.message, /minimum microcode version/);
  });

  it('rejects a VCEK file that holds no certificate instead of falling back to other sources', async () => {
    await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          null,
          {},
          opts(milanV3, { vcek: Buffer.from('-----BEGIN CERTIFICATE-----\n') }),
        ),
      'x509.parse',
    );
  });

  it('refuses an empty reference-value list instead of accepting everything', async () => {
    await rejects(() => verifySnp({ report: milanV3.report }, [], {}, opts(milanV3)), 'snp.referencevalues');
  });

  it("lists every entry's failure when none matches", async () => {
    const err = await rejects(
      () =>
        verifySnp(
          { report: milanV3.report },
          [refFor(milanV3, { TrustedMeasurement: '11'.repeat(48) }), refFor(milanV3, { ProductName: 'Genoa' })],
          {},
          opts(milanV3),
        ),
      'snp.referencevalues',
    );
    assert.match(err.message, /\[0\].*snp\.measurement.*\[1\].*snp\.product/);
  });
});

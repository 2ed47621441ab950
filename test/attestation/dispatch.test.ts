/**
 * The evidence dispatcher: the certificate-extension OID picks the platform, a platform is tried
 * only when the manifest has reference values for it, and its options reach its verifier.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { AttestationError } from '../../src/attestation/errors.js';
import { verifyEvidence } from '../../src/attestation/dispatch.js';
import { SIM_WARNING, SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';
import { parseTdxQuote } from '../../src/attestation/tdx/quote.js';
import { encode } from '../../src/util/protobuf.js';
import { UserError } from '../../src/util/errors.js';
import { buildCertTable, rejects } from './assertions.js';
import { SIM_REFS, simReport, simRootKeys } from './sim-fakes.js';
import { SNP_NOW, SNP_VECTORS, TDX, pemBlocks } from './vectors.js';
import {
  EVIDENCE_OIDS,
  OID_SIMULATED_EVIDENCE,
  OID_SNP_EVIDENCE,
  OID_TDX_EVIDENCE,
} from '../../src/attestation/tees.js';
import { SnpEvidenceSchema } from '../../src/attestation/snp/evidence.js';

const milan = SNP_VECTORS[2]!; // v3 Milan, not debug
const snpRef = {
  ProductName: 'Milan',
  TrustedMeasurement: milan.report.subarray(0x90, 0xc0).toString('hex'),
  MinimumTCB: { BootloaderVersion: 0, TEEVersion: 0, SNPVersion: 0, MicrocodeVersion: 0 },
  GuestPolicy: { SMT: true },
};
const snpReportData = Buffer.from(milan.report.subarray(0x50, 0x90));
const milanTable = () =>
  buildCertTable([
    ['63da758d-e664-4564-adc5-f4b93be8accd', new X509Certificate(milan.vcek).raw],
    [
      '4ab7b379-bbac-4fe4-a02f-05aef327c782',
      new X509Certificate(pemBlocks('amd/ms-tee-attestation-verification/milan_ask.pem')[0]!).raw,
    ],
  ]);
const snpEvidence = (certTable = milanTable()) => encode(SnpEvidenceSchema, { report: milan.report, certTable });

const tdxQuote = TDX.v5Quote();
const tdxBody = parseTdxQuote(tdxQuote).body;
const tdxRef = { MrTd: tdxBody.mrTd.toString('hex') };
const tdxOpts = { allowMissingCollateral: true, now: new Date('2026-11-23T00:00:00Z') };

describe('evidence dispatch', () => {
  const sim = simRootKeys();
  const quiet = { simRoot: sim.publicKey, onSimulated: () => undefined };

  it('knows exactly the SNP, TDX and simulated evidence OIDs', () => {
    assert.deepEqual([...EVIDENCE_OIDS], ['1.3.9901.2.1', '1.3.9901.2.2', '1.3.9901.2.4242']);
    assert.deepEqual([OID_SNP_EVIDENCE, OID_TDX_EVIDENCE, OID_SIMULATED_EVIDENCE], [...EVIDENCE_OIDS]);
  });

  it('refuses evidence of an unknown type', async () => {
    const err = await rejects(
      () =>
        verifyEvidence(
          '1.3.9901.2.3',
          Buffer.alloc(0),
          { snp: [snpRef], tdx: [tdxRef], insecure: SIM_REFS },
          snpReportData,
        ),
      'evidence.type',
    );
    assert.equal(err.detail, 'unknown evidence type 1.3.9901.2.3');
  });

  it('verifies SEV-SNP evidence (report and certificate table) and returns the policy hash and measurement', async () => {
    const r = await verifyEvidence(OID_SNP_EVIDENCE, snpEvidence(), { snp: [snpRef] }, snpReportData, {
      snp: { now: SNP_NOW },
    });
    assert.deepEqual(r, {
      tee: 'snp',
      hostData: Buffer.from(milan.report.subarray(0xc0, 0xe0)),
      measurement: snpRef.TrustedMeasurement,
    });
  });

  it('passes the SNP options and the binding through to the SNP verifier', async () => {
    await rejects(
      () =>
        verifyEvidence(OID_SNP_EVIDENCE, snpEvidence(), { snp: [snpRef] }, snpReportData, {
          snp: { now: new Date('2019-01-01T00:00:00Z') },
        }),
      'snp.ark.validity',
    );
    await rejects(
      () =>
        verifyEvidence(OID_SNP_EVIDENCE, snpEvidence(), { snp: [snpRef] }, Buffer.alloc(64, 9), {
          snp: { now: SNP_NOW },
        }),
      'snp.reportdata',
    );
    // An empty certificate table is no table: the VCEK must then come from elsewhere.
    await rejects(
      () =>
        verifyEvidence(OID_SNP_EVIDENCE, snpEvidence(Buffer.alloc(0)), { snp: [snpRef] }, snpReportData, {
          snp: { now: SNP_NOW },
        }),
      'snp.vcek.missing',
    );
    // The manifest's entries are the reference values.
    await rejects(
      () =>
        verifyEvidence(
          OID_SNP_EVIDENCE,
          snpEvidence(),
          { snp: [{ ...snpRef, TrustedMeasurement: '00'.repeat(48) }] },
          snpReportData,
          { snp: { now: SNP_NOW } },
        ),
      'snp.measurement',
    );
  });

  it('refuses SEV-SNP evidence when the manifest has no SNP reference values', async () => {
    for (const refs of [{}, { snp: [] }, { tdx: [tdxRef], insecure: SIM_REFS }]) {
      const err = await rejects(
        () => verifyEvidence(OID_SNP_EVIDENCE, snpEvidence(), refs, snpReportData, { snp: { now: SNP_NOW } }),
        'snp.referencevalues',
      );
      assert.equal(err.detail, 'the peer sent SEV-SNP evidence but the manifest has no SNP reference values');
    }
  });

  it('refuses SEV-SNP evidence that is not the {report, cert_table} message as an attestation failure', async () => {
    const err = await rejects(
      () =>
        verifyEvidence(OID_SNP_EVIDENCE, Buffer.from([0x0a, 0x05, 0x01]), { snp: [snpRef] }, snpReportData, {
          snp: { now: SNP_NOW },
        }),
      'snp.report.parse',
    );
    assert.match(err.detail, /^the SEV-SNP evidence is not a protobuf \{report, cert_table\}: /);
    assert.ok(err.cause instanceof Error && err.cause.name === 'ProtoError');
  });

  it('refuses malformed SNP reference values as a manifest error, not an attestation verdict', async () => {
    await assert.rejects(
      () =>
        verifyEvidence(
          OID_SNP_EVIDENCE,
          snpEvidence(),
          { snp: [{ ...snpRef, TrustedMeasurement: 'xyz' }] },
          snpReportData,
          { snp: { now: SNP_NOW } },
        ),
      (err: unknown) =>
        err instanceof UserError &&
        !(err instanceof AttestationError) &&
        /manifest\.json.*TrustedMeasurement/.test(err.message),
    );
  });

  it('verifies TDX evidence and returns MRCONFIGID[0:32] as the policy hash', async () => {
    const r = await verifyEvidence(OID_TDX_EVIDENCE, tdxQuote, { tdx: [tdxRef] }, Buffer.from(tdxBody.reportData), {
      tdx: tdxOpts,
    });
    assert.deepEqual(r, {
      tee: 'tdx',
      hostData: Buffer.from(tdxBody.mrConfigId.subarray(0, 32)),
      measurement: tdxBody.mrTd.toString('hex'),
    });
  });

  it('passes the TDX options and the binding through to the TDX verifier', async () => {
    await rejects(
      () => verifyEvidence(OID_TDX_EVIDENCE, tdxQuote, { tdx: [tdxRef] }, Buffer.from(tdxBody.reportData)),
      'tdx.tcbinfo.missing',
    );
    await rejects(
      () => verifyEvidence(OID_TDX_EVIDENCE, tdxQuote, { tdx: [tdxRef] }, Buffer.alloc(64), { tdx: tdxOpts }),
      'tdx.reportdata',
    );
    await rejects(
      () =>
        verifyEvidence(
          OID_TDX_EVIDENCE,
          tdxQuote,
          { tdx: [{ MrTd: '00'.repeat(48) }] },
          Buffer.from(tdxBody.reportData),
          { tdx: tdxOpts },
        ),
      'tdx.mrtd',
    );
  });

  it('refuses TDX evidence when the manifest has no TDX reference values', async () => {
    for (const refs of [{}, { tdx: [] }, { snp: [snpRef], insecure: SIM_REFS }]) {
      const err = await rejects(
        () => verifyEvidence(OID_TDX_EVIDENCE, tdxQuote, refs, Buffer.from(tdxBody.reportData), { tdx: tdxOpts }),
        'tdx.referencevalues',
      );
      assert.equal(err.detail, 'the peer sent TDX evidence but the manifest has no TDX reference values');
    }
    await assert.rejects(
      () =>
        verifyEvidence(OID_TDX_EVIDENCE, tdxQuote, { tdx: [{ MrTd: 'xyz' }] }, Buffer.from(tdxBody.reportData), {
          tdx: tdxOpts,
        }),
      (err: unknown) =>
        err instanceof UserError &&
        !(err instanceof AttestationError) &&
        /^manifest\.json, field tdx\[0\]\.MrTd/.test(err.message),
    );
  });

  it('verifies simulated evidence only when the manifest lists the insecure platform', async () => {
    const hostData = Buffer.alloc(32, 0x33);
    const rd = Buffer.alloc(64, 0x44);
    const report = simReport(sim.privateKey, { hostData, reportData: rd });
    const r = await verifyEvidence(OID_SIMULATED_EVIDENCE, report, { insecure: SIM_REFS }, rd, quiet);
    assert.deepEqual(r, { tee: 'insecure-sim', hostData, measurement: SIMULATED_MEASUREMENT });
    for (const refs of [{}, { insecure: [] }, { snp: [snpRef], tdx: [tdxRef] }]) {
      const err = await rejects(
        () => verifyEvidence(OID_SIMULATED_EVIDENCE, report, refs, rd, quiet),
        'sim.referencevalues',
      );
      assert.match(err.detail, /does not list the insecure platform/);
    }
    await rejects(
      () => verifyEvidence(OID_SIMULATED_EVIDENCE, report, { insecure: SIM_REFS }, Buffer.alloc(64), quiet),
      'sim.reportdata',
    );
    await rejects(
      () =>
        verifyEvidence(OID_SIMULATED_EVIDENCE, report, { insecure: SIM_REFS }, rd, {
          ...quiet,
          simRoot: simRootKeys().publicKey,
        }),
      'sim.report.signature',
    );
  });

  it('announces every verification of simulated evidence, on stderr unless told otherwise', async () => {
    const rd = Buffer.alloc(64, 0x44);
    const report = simReport(sim.privateKey, { reportData: rd });
    let calls = 0;
    await verifyEvidence(OID_SIMULATED_EVIDENCE, report, { insecure: SIM_REFS }, rd, {
      simRoot: sim.publicKey,
      onSimulated: () => {
        calls++;
      },
    });
    await verifyEvidence(OID_SIMULATED_EVIDENCE, report, { insecure: SIM_REFS }, rd, {
      simRoot: sim.publicKey,
      onSimulated: () => {
        calls++;
      },
    });
    assert.equal(calls, 2);
    const written: string[] = [];
    const original = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      await verifyEvidence(OID_SIMULATED_EVIDENCE, report, { insecure: SIM_REFS }, rd, { simRoot: sim.publicKey });
    } finally {
      process.stderr.write = original;
    }
    assert.deepEqual(written, [`${SIM_WARNING}\n`]);
    assert.match(SIM_WARNING, /^WARNING: the insecure-sim platform is SIMULATED: .*proves NOTHING/);
  });
});

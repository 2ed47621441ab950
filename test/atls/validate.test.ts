/** Admission of an aTLS peer: how failures of several pieces of evidence are reported. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createAtlsCertDer, parseAtlsCert } from '../../src/atls/cert.js';
import { admitPeer } from '../../src/atls/validate.js';
import { CollateralUnavailableError } from '../../src/attestation/errors.js';
import { KdsClient } from '../../src/attestation/snp/kds.js';
import { encode } from '../../src/util/protobuf.js';
import { SNP_NOW, SNP_VECTORS } from '../attestation/vectors.js';
import { rejects } from '../attestation/assertions.js';
import { OID_SNP_EVIDENCE, OID_SIMULATED_EVIDENCE } from '../../src/attestation/tees.js';
import { SnpEvidenceSchema } from '../../src/attestation/snp/evidence.js';

describe('aTLS admission with several pieces of evidence', () => {
  const v = SNP_VECTORS[2]!; // v3 Milan, not debug
  const reportData = Buffer.from(v.report.subarray(0x50, 0x90));
  const refs = {
    snp: [
      {
        ProductName: 'Milan',
        TrustedMeasurement: v.report.subarray(0x90, 0xc0).toString('hex'),
        MinimumTCB: { BootloaderVersion: 0, TEEVersion: 0, SNPVersion: 0, MicrocodeVersion: 0 },
      },
    ],
  };
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  // No certificate table: the VCEK must come from KDS, which cannot be reached.
  const snp = {
    oid: OID_SNP_EVIDENCE,
    value: encode(SnpEvidenceSchema, { report: v.report, certTable: Buffer.alloc(0) }),
  };
  const sim = { oid: OID_SIMULATED_EVIDENCE, value: Buffer.alloc(252) };
  const unreachable = new KdsClient({
    fetch: () => Promise.reject(new Error('connect ECONNREFUSED')),
    minIntervalMs: 0,
  });
  const peerWith = (...evidence: { oid: string; value: Buffer }[]) => {
    // One certificate cannot carry one extension twice: build the two-evidence certificate by hand.
    const first = parseAtlsCert(createAtlsCertDer(key, evidence[0]));
    return { ...first, evidence };
  };
  const opts = {
    refs: refs as never,
    policyHashes: [v.report.subarray(0xc0, 0xe0).toString('hex')],
    what: 'workload policy',
    snp: { collateral: unreachable, now: SNP_NOW },
  };

  it('reports "collateral unavailable" (retry later) when any evidence failed for that reason', async () => {
    const err = await rejects(() => admitPeer(peerWith(sim, snp), reportData, opts));
    assert.ok(err instanceof CollateralUnavailableError, err.message);
  });

  it('combines verdicts when no failure is about collateral', async () => {
    const err = await rejects(() => admitPeer(peerWith(sim, sim), reportData, opts), 'atls.evidence');
    assert.ok(!(err instanceof CollateralUnavailableError));
    assert.match(err.message, /sim\.referencevalues.*; .*sim\.referencevalues/);
  });
});

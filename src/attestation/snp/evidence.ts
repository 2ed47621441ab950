/**
 * SEV-SNP evidence as it travels in the aTLS certificate extension: protobuf
 * `{ bytes report = 1; bytes cert_table = 2; }`, configfs-tsm's `outblob` and `auxblob`.
 */
import { decode, encode } from '../../util/protobuf.js';
import { AttestationError } from '../errors.js';
import type { SnpEvidence } from './verify.js';

export const SnpEvidenceSchema = [
  { no: 1, name: 'report', type: 'bytes' },
  { no: 2, name: 'certTable', type: 'bytes' },
] as const;

export function encodeSnpEvidence(evidence: SnpEvidence): Buffer {
  return encode(SnpEvidenceSchema, { report: evidence.report, certTable: evidence.certTable ?? Buffer.alloc(0) });
}

/** The peer chose these bytes: malformed evidence is a failed attestation like any other. */
export function decodeSnpEvidence(value: Uint8Array): SnpEvidence {
  let ev: { report: Buffer; certTable: Buffer };
  try {
    ev = decode<{ report: Buffer; certTable: Buffer }>(SnpEvidenceSchema, value);
  } catch (err) {
    throw new AttestationError(
      'snp.report.parse',
      `the SEV-SNP evidence is not a protobuf {report, cert_table}: ${(err as Error).message}`,
      undefined,
      undefined,
      { cause: err },
    );
  }
  return { report: ev.report, ...(ev.certTable.length ? { certTable: ev.certTable } : {}) };
}

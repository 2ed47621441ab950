/**
 * Verify evidence of any supported platform against a manifest's reference values. The
 * evidence type is the certificate-extension OID it came in; a platform is only tried when the
 * manifest lists reference values for it, so simulated evidence is refused by every manifest
 * that does not explicitly name the insecure platform.
 */
import { AttestationError } from './errors.js';
import { parseReferenceValues } from './reference-values.js';
import { verifySnp, type SnpVerifyOptions } from './snp/verify.js';
import { verifyTdx, type TdxVerifyOptions } from './tdx/verify.js';
import { OID_SIMULATED_EVIDENCE, SIM_WARNING, verifySimulated, type SimReferenceValue } from './simulated.js';
import { decode } from '../util/protobuf.js';
import { OID_SNP_EVIDENCE, OID_TDX_EVIDENCE, SnpEvidenceSchema } from '../issuers/configfs-tsm.js';
import type { ReferenceValues as ManifestReferenceValues } from '../platforms/reference-values.js';
import type { KeyObject } from 'node:crypto';

export { OID_SNP_EVIDENCE, OID_TDX_EVIDENCE, OID_SIMULATED_EVIDENCE };

export const EVIDENCE_OIDS = [OID_SNP_EVIDENCE, OID_TDX_EVIDENCE, OID_SIMULATED_EVIDENCE] as const;

export interface VerifiedEvidence {
  platform: 'snp' | 'tdx' | 'insecure-sim';
  /** The 32-byte policy hash the hardware reported (SNP HOSTDATA, TDX MRCONFIGID[0:32]). */
  hostData: Buffer;
  /** Launch measurement (hex) for logs. */
  measurement: string;
}

export interface DispatchOptions {
  /**
   * SEV-SNP options, passed to verifySnp unchanged: among them `collateral` (a KdsClient),
   * `crlPolicy` ('if-available' by default, or 'require') and `crlGraceMs`.
   */
  snp?: SnpVerifyOptions;
  tdx?: TdxVerifyOptions;
  /** Public key of the simulated platform's root (default: the local one). */
  simRoot?: KeyObject;
  /** Called once per verification of simulated evidence (default: print the warning to stderr). */
  onSimulated?: () => void;
}

export async function verifyEvidence(oid: string, value: Uint8Array, refs: ManifestReferenceValues, reportData: Buffer, opts: DispatchOptions = {}): Promise<VerifiedEvidence> {
  switch (oid) {
    case OID_SNP_EVIDENCE: {
      if (!refs.snp?.length) throw new AttestationError('snp.referencevalues', 'the peer sent SEV-SNP evidence but the manifest has no SNP reference values');
      const parsed = parseReferenceValues({ snp: refs.snp }, 'manifest.json');
      let ev: { report: Buffer; certTable: Buffer };
      try {
        ev = decode<{ report: Buffer; certTable: Buffer }>(SnpEvidenceSchema, value);
      } catch (err) {
        // The peer chose these bytes: malformed evidence is a failed attestation like any other.
        throw new AttestationError('snp.report.parse', `the SEV-SNP evidence is not a protobuf {report, cert_table}: ${(err as Error).message}`, undefined, undefined, { cause: err });
      }
      const r = await verifySnp({ report: ev.report, ...(ev.certTable.length ? { certTable: ev.certTable } : {}) }, parsed.snp ?? [], { reportData }, opts.snp ?? {});
      return { platform: 'snp', hostData: Buffer.from(r.report.hostData), measurement: Buffer.from(r.report.measurement).toString('hex') };
    }
    case OID_TDX_EVIDENCE: {
      if (!refs.tdx?.length) throw new AttestationError('tdx.referencevalues', 'the peer sent TDX evidence but the manifest has no TDX reference values');
      const parsed = parseReferenceValues({ tdx: refs.tdx }, 'manifest.json');
      const r = verifyTdx({ quote: value }, parsed.tdx ?? [], { reportData }, opts.tdx ?? {});
      const cfg = Buffer.from(r.quote.body.mrConfigId);
      if (!cfg.subarray(32).equals(Buffer.alloc(cfg.length - 32))) {
        throw new AttestationError('tdx.mrconfigid', 'MRCONFIGID is not a 32-byte policy hash padded with zeros', '<sha256>00…00', cfg.toString('hex'));
      }
      return { platform: 'tdx', hostData: cfg.subarray(0, 32), measurement: Buffer.from(r.quote.body.mrTd).toString('hex') };
    }
    case OID_SIMULATED_EVIDENCE: {
      if (!refs.insecure?.length) throw new AttestationError('sim.referencevalues', 'the peer sent SIMULATED evidence (insecure-sim) but the manifest does not list the insecure platform; refusing');
      (opts.onSimulated ?? (() => process.stderr.write(`${SIM_WARNING}\n`)))();
      const r = verifySimulated(value, refs.insecure as unknown as SimReferenceValue[], { reportData }, ...(opts.simRoot ? [opts.simRoot] : []));
      return { platform: 'insecure-sim', hostData: Buffer.from(r.report.hostData), measurement: r.report.measurement.toString('hex') };
    }
    default:
      throw new AttestationError('evidence.type', `unknown evidence type ${oid}`);
  }
}

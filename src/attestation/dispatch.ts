/**
 * Verify evidence of any supported TEE against a manifest's reference values. The evidence
 * type is the certificate-extension OID it came in (src/attestation/tees.ts); a TEE is only
 * tried when the manifest lists reference values for it, so simulated evidence is refused by
 * every manifest that does not explicitly name the insecure platform.
 */
import type { KeyObject } from 'node:crypto';
import { AttestationError } from './errors.js';
import { parseReferenceValues, type ReferenceValues } from './reference-values.js';
import { SIM_WARNING, verifySimulated } from './simulated.js';
import { decodeSnpEvidence } from './snp/evidence.js';
import { verifySnp, type SnpVerifyOptions } from './snp/verify.js';
import { verifyTdxWithCollateral, type TdxFetchingOptions } from './tdx/verify.js';
import { teeOfEvidence, type TeeType } from './tees.js';

export interface VerifiedEvidence {
  tee: TeeType;
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
  /**
   * TDX options, passed to verifyTdxWithCollateral unchanged: among them `source` (a PcsClient
   * or an offline TdxCollateralDirectory), `crlPolicy` and `acceptedTcbStatuses`.
   */
  tdx?: TdxFetchingOptions;
  /** Public key of the simulated platform's root (default: the local one). */
  simRoot?: KeyObject;
  /** Called once per verification of simulated evidence (default: print the warning to stderr). */
  onSimulated?: () => void;
}

type Verifier = (
  value: Uint8Array,
  refs: ReferenceValues,
  reportData: Buffer,
  opts: DispatchOptions,
) => Promise<VerifiedEvidence> | VerifiedEvidence;

const VERIFIERS: Record<TeeType, Verifier> = {
  async snp(value, refs, reportData, opts) {
    if (!refs.snp?.length)
      throw new AttestationError(
        'snp.referencevalues',
        'the peer sent SEV-SNP evidence but the manifest has no SNP reference values',
      );
    const parsed = parseReferenceValues({ snp: refs.snp }, 'manifest.json');
    const r = await verifySnp(decodeSnpEvidence(value), parsed.snp ?? [], { reportData }, opts.snp ?? {});
    return {
      tee: 'snp',
      hostData: Buffer.from(r.report.hostData),
      measurement: Buffer.from(r.report.measurement).toString('hex'),
    };
  },
  async tdx(value, refs, reportData, opts) {
    if (!refs.tdx?.length)
      throw new AttestationError(
        'tdx.referencevalues',
        'the peer sent TDX evidence but the manifest has no TDX reference values',
      );
    const parsed = parseReferenceValues({ tdx: refs.tdx }, 'manifest.json');
    const r = await verifyTdxWithCollateral({ quote: value }, parsed.tdx ?? [], { reportData }, opts.tdx ?? {});
    const cfg = Buffer.from(r.quote.body.mrConfigId);
    if (!cfg.subarray(32).equals(Buffer.alloc(cfg.length - 32))) {
      throw new AttestationError(
        'tdx.mrconfigid',
        'MRCONFIGID is not a 32-byte policy hash padded with zeros',
        '<sha256>00…00',
        cfg.toString('hex'),
      );
    }
    return { tee: 'tdx', hostData: cfg.subarray(0, 32), measurement: Buffer.from(r.quote.body.mrTd).toString('hex') };
  },
  'insecure-sim'(value, refs, reportData, opts) {
    if (!refs.insecure?.length)
      throw new AttestationError(
        'sim.referencevalues',
        'the peer sent SIMULATED evidence (insecure-sim) but the manifest does not list the insecure platform; refusing',
      );
    (opts.onSimulated ?? (() => process.stderr.write(`${SIM_WARNING}\n`)))();
    const r = verifySimulated(value, refs.insecure, { reportData }, ...(opts.simRoot ? [opts.simRoot] : []));
    return {
      tee: 'insecure-sim',
      hostData: Buffer.from(r.report.hostData),
      measurement: r.report.measurement.toString('hex'),
    };
  },
};

export async function verifyEvidence(
  oid: string,
  value: Uint8Array,
  refs: ReferenceValues,
  reportData: Buffer,
  opts: DispatchOptions = {},
): Promise<VerifiedEvidence> {
  const tee = teeOfEvidence(oid);
  if (!tee) throw new AttestationError('evidence.type', `unknown evidence type ${oid}`);
  return VERIFIERS[tee.type](value, refs, reportData, opts);
}

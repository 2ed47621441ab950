/**
 * Turning a peer's aTLS certificate into an admission decision: some evidence in it must
 * verify against the manifest's reference values with the expected binding, and the policy
 * hash it reports must be one of the allowed ones.
 */
import { AttestationError, CollateralUnavailableError } from '../attestation/errors.js';
import { verifyEvidence, type DispatchOptions, type VerifiedEvidence } from '../attestation/dispatch.js';
import type { ReferenceValues } from '../attestation/reference-values.js';
import type { AtlsPeer } from './cert.js';

export interface Admission extends VerifiedEvidence {
  policyHash: string;
}

export interface ValidatorOptions extends DispatchOptions {
  refs: ReferenceValues;
  /** Allowed policy hashes (hex). */
  policyHashes: readonly string[];
  /** What the allowed hashes are, for messages ("Coordinator policy", "workload policy"). */
  what: string;
}

export async function admitPeer(peer: AtlsPeer, reportData: Buffer, opts: ValidatorOptions): Promise<Admission> {
  if (peer.evidence.length === 0)
    throw new AttestationError('atls.evidence', 'the peer certificate carries no attestation evidence');
  const failures: AttestationError[] = [];
  for (const ev of peer.evidence) {
    let verified: VerifiedEvidence;
    try {
      verified = await verifyEvidence(ev.oid, ev.value, opts.refs, reportData, opts);
    } catch (err) {
      if (err instanceof AttestationError) {
        failures.push(err);
        continue;
      }
      throw err;
    }
    const policyHash = verified.hostData.toString('hex');
    if (!opts.policyHashes.includes(policyHash)) {
      throw new AttestationError(
        'policy.hash',
        `the reported policy hash (HOSTDATA/MRCONFIGID) is not a ${opts.what} in the manifest; if the deployment changed, run \`kubectl contrast generate\` and apply the resources again`,
        opts.policyHashes.join(' or ') || '(none in the manifest)',
        policyHash,
      );
    }
    return { ...verified, policyHash };
  }
  if (failures.length === 1) throw failures[0]!;
  // Collateral that could not be fetched is a reason to retry, not a verdict on the evidence.
  const unavailable = failures.find((f) => f instanceof CollateralUnavailableError);
  if (unavailable) throw unavailable;
  throw new AttestationError('atls.evidence', failures.map((f) => f.message).join('; '));
}

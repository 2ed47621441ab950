/**
 * What a verifier does without a current CRL, for SEV-SNP (AMD's CRL of ASKs/ASVKs) and TDX
 * (Intel's root CA CRL and PCK CA CRL) alike.
 *
 * - `'require'`: a CRL current at verification time, supplied or fetched, is required; without
 *   one verification fails (`snp.crl.missing` / `snp.crl.stale`, `tdx.crl.missing`), as a
 *   CollateralUnavailableError when asking the service again later may help. This is the
 *   policy of admission: the Coordinator admitting workloads and the CLI attesting the
 *   Coordinator, and the default of `evidence verify`.
 * - `'if-available'`: the verifier functions' own default, for inspection and for callers that
 *   choose to fail open when a CRL cannot be had (go-sev-guest's CRLUnavailableErr exists for
 *   that trade-off). A CRL that is present is always checked; its absence is reported
 *   (`crlChecked: false`), not hidden.
 */
export type CrlPolicy = 'require' | 'if-available';

export const CRL_POLICIES: readonly CrlPolicy[] = ['require', 'if-available'];

/** The policy of admission (Coordinator, CLI attesting the Coordinator, `evidence verify`). */
export const ADMISSION_CRL_POLICY: CrlPolicy = 'require';

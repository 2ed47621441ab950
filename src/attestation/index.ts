/**
 * Attestation verification for the CLI and the Coordinator. One entry point per TEE:
 * `verifySnp` and `verifyTdx` take the evidence, the reference values (upstream manifest
 * schema) and the caller's expectations (binding, policy hash), and either return a typed
 * result or throw an AttestationError naming the failed check with expected and actual values.
 */
export { AttestationError, CollateralUnavailableError } from './errors.js';
export type {
  ReferenceValues,
  SnpReferenceValues,
  TdxReferenceValues,
  SnpTcbReference,
  SnpGuestPolicyReference,
  SnpPlatformInfoReference,
} from './reference-values.js';
export { parseReferenceValues } from './reference-values.js';

export { verifySnp } from './snp/verify.js';
export type { SnpEvidence, SnpExpectations, SnpVerifyOptions, SnpVerification } from './snp/verify.js';
export type { SnpCollateralSource } from './snp/collateral.js';
export type { SnpProduct } from './snp/product.js';
export type { SnpReport, SnpGuestPolicy, SnpPlatformInfo } from './snp/report.js';
export type { SnpTcb } from './snp/tcb.js';
export { parseSnpReport } from './snp/report.js';
export { parseCertTable, CERT_TABLE_GUID } from './snp/cert-table.js';
export { DirectoryCache, KdsClient } from './snp/kds.js';

export { verifyTdx, verifyTdxWithCollateral } from './tdx/verify.js';
export type {
  TdxEvidence,
  TdxExpectations,
  TdxCollateral,
  TdxVerifyOptions,
  TdxFetchingOptions,
  TdxVerification,
} from './tdx/verify.js';
export { PcsClient, TdxCollateralDirectory } from './tdx/pcs.js';
export type { TdxCollateralSource, SignedCollateral, PcsClientOptions } from './tdx/pcs.js';
export { ADMISSION_CRL_POLICY, CRL_POLICIES } from './revocation.js';
export type { CrlPolicy } from './revocation.js';
export type { TcbStatus, TdxTcbEvaluation } from './tdx/tcb-status.js';
export { TCB_STATUSES } from './tdx/tcb-status.js';
export type { TdxQuote, TdReportBody } from './tdx/quote.js';
export { parseTdxQuote } from './tdx/quote.js';

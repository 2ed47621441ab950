/**
 * Where collateral missing from the evidence comes from — SEV-SNP certificates and CRLs (AMD
 * KDS), TDX TCB info, QE identity and CRLs (Intel PCS) — and the revocation policy, for the CLI
 * attesting the Coordinator and for the Coordinator attesting workloads alike.
 *
 * Environment:
 * - CONTRAST_SNP_CACHE_DIR (default ~/.cache/kubectl-contrast/amd): AMD KDS answers, cached;
 * - CONTRAST_TDX_CACHE_DIR (default ~/.cache/kubectl-contrast/intel): Intel PCS answers, cached;
 * - CONTRAST_PCS_URL (default https://api.trustedservices.intel.com): a service with Intel PCS's
 *   v4 API, e.g. a caching service inside the cluster; CONTRAST_INTEL_ROOT_CRL_URL (default
 *   Intel's CRL distribution point of the SGX Root CA) likewise;
 * - CONTRAST_COLLATERAL_OFFLINE=1: never use the network; both directories are then the only
 *   source (filled by hand for air-gapped clusters, docs/attestation.md).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { DispatchOptions } from '../attestation/dispatch.js';
import { ADMISSION_CRL_POLICY } from '../attestation/revocation.js';
import type { SnpCollateralSource } from '../attestation/snp/collateral.js';
import { DirectoryCache, KdsClient } from '../attestation/snp/kds.js';
import {
  PcsClient,
  TdxCollateralDirectory,
  type PcsClientOptions,
  type TdxCollateralSource,
} from '../attestation/tdx/pcs.js';

const cacheRoot = () => join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kubectl-contrast');
const offline = () =>
  process.env.CONTRAST_COLLATERAL_OFFLINE === '1' || process.env.CONTRAST_COLLATERAL_OFFLINE === 'true';

/** AMD KDS, cached in $CONTRAST_SNP_CACHE_DIR; the directory alone when offline. */
export function snpCollateral(
  dir = process.env.CONTRAST_SNP_CACHE_DIR || join(cacheRoot(), 'amd'),
): SnpCollateralSource {
  const cache = new DirectoryCache(dir);
  return offline() ? cache : new KdsClient({ cache });
}

/** Intel PCS, cached in $CONTRAST_TDX_CACHE_DIR; the directory alone when offline. */
export function tdxCollateral(
  dir = process.env.CONTRAST_TDX_CACHE_DIR || join(cacheRoot(), 'intel'),
): TdxCollateralSource {
  const cache = new TdxCollateralDirectory(dir);
  if (offline()) return cache;
  return new PcsClient({ cache, ...pcsEndpoints() });
}

/**
 * Where Intel's collateral is asked for: $CONTRAST_PCS_URL and $CONTRAST_INTEL_ROOT_CRL_URL,
 * else Intel's own services. The Coordinator and `evidence verify --fetch` alike.
 */
export function pcsEndpoints(): Pick<PcsClientOptions, 'baseUrl' | 'rootCrlUrl'> {
  return {
    ...(process.env.CONTRAST_PCS_URL ? { baseUrl: process.env.CONTRAST_PCS_URL.replace(/\/+$/, '') } : {}),
    ...(process.env.CONTRAST_INTEL_ROOT_CRL_URL ? { rootCrlUrl: process.env.CONTRAST_INTEL_ROOT_CRL_URL } : {}),
  };
}

/**
 * Verifier options for admission: collateral from the sources above and a current CRL required
 * for both TEEs (src/attestation/revocation.ts). One instance per process: the clients keep
 * their queues, negative caches and fetched collateral.
 */
export function admissionDispatch(): DispatchOptions {
  return {
    snp: { collateral: snpCollateral(), crlPolicy: ADMISSION_CRL_POLICY },
    tdx: { source: tdxCollateral(), crlPolicy: ADMISSION_CRL_POLICY },
  };
}

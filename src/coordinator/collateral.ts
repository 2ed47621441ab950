/**
 * Where SEV-SNP certificates missing from the evidence (VCEK, ASK/ARK, CRL) come from, for the
 * CLI attesting the Coordinator and for the Coordinator attesting workloads alike.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DirectoryCache, KdsClient } from '../attestation/snp/kds.js';

/**
 * AMD KDS, cached in $CONTRAST_SNP_CACHE_DIR (default ~/.cache/kubectl-contrast/amd). Only
 * consulted for real SNP evidence.
 */
export function snpCollateral(dir = process.env.CONTRAST_SNP_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kubectl-contrast', 'amd')): KdsClient {
  return new KdsClient({ cache: new DirectoryCache(dir) });
}

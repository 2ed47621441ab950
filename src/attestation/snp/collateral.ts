import type { SnpProduct } from './product.js';
import type { SnpReport } from './report.js';

/**
 * Where certificates and CRLs come from when the evidence does not carry them: a local cache
 * directory or AMD KDS. Each method returns undefined when the source does not have the item.
 * Whatever a source returns is untrusted input to the chain check.
 *
 * Sources that need the network throw a CollateralUnavailableError when they cannot answer now
 * (KDS unreachable, throttled, our request queue full); the verdict is then "retry later".
 */
export interface SnpCollateralSource {
  /** The VCEK for the report's chip and REPORTED_TCB (VLEKs cannot be fetched). */
  vcek(product: SnpProduct, report: SnpReport): Promise<Uint8Array | undefined>;
  /** PEM: ASK (or ASVK), then ARK. */
  certChain(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined>;
  /**
   * The DER CRL (signed by the ARK) this source keeps locally, without asking the network. It
   * may be out of date: the CRL policy (crl.ts) decides whether to use it or refresh it.
   */
  crl(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined>;
  /**
   * Network sources only: the CRL to use at `now` (the verification time). The source keeps
   * what it fetched and asks AMD KDS again only when its copy is missing, expired or close to
   * its nextUpdate (refresh ahead, src/attestation/kept-collateral.ts), so it may return the
   * same bytes as `crl`. Undefined when KDS has none. Absent on offline sources.
   */
  fetchCrl?(product: SnpProduct, kind: 'vcek' | 'vlek', now: Date): Promise<Uint8Array | undefined>;
}

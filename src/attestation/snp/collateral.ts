import type { SnpProduct } from './product.js';
import type { SnpReport } from './report.js';

/**
 * Where certificates and CRLs come from when the evidence does not carry them: a local cache
 * directory or AMD KDS. Each method returns undefined when the source does not have the item.
 * Whatever a source returns is untrusted input to the chain check.
 */
export interface SnpCollateralSource {
  /** The VCEK for the report's chip and REPORTED_TCB (VLEKs cannot be fetched). */
  vcek(product: SnpProduct, report: SnpReport): Promise<Uint8Array | undefined>;
  /** PEM: ASK (or ASVK), then ARK. */
  certChain(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined>;
  /** DER CRL signed by the ARK. */
  crl(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined>;
}

import { AttestationError } from '../errors.js';
import { INTEL_SGX_ROOT_CA } from '../roots/intel.js';
import { pinnedCertificate } from '../roots/pinned.js';
import { parseCrl, subjectDer } from '../x509.js';

/**
 * Sorts Intel CRLs by issuer: the one issued by the root covers the PCK CAs, any other is taken
 * as a PCK CA's CRL (its issuer is checked against the quote's CA during verification).
 */
export function classifyIntelCrls(files: { name: string; der: Uint8Array }[]): {
  rootCrl?: Uint8Array;
  pckCrl?: Uint8Array;
} {
  const root = subjectDer(pinnedCertificate(INTEL_SGX_ROOT_CA));
  const out: { rootCrl?: Uint8Array; pckCrl?: Uint8Array } = {};
  for (const f of files) {
    let issuer: Buffer;
    try {
      issuer = parseCrl(f.der).issuer;
    } catch (err) {
      throw new AttestationError('tdx.crl', `${f.name} is not a DER CRL (${(err as Error).message})`);
    }
    const key = issuer.equals(root) ? 'rootCrl' : 'pckCrl';
    if (out[key]) throw new AttestationError('tdx.crl', `two CRLs from the same issuer (${f.name})`);
    out[key] = f.der;
  }
  return out;
}

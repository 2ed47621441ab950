import type { X509Certificate } from 'node:crypto';
import { AttestationError, ensure } from '../errors.js';
import { AMD_ARKS } from '../roots/amd.js';
import { pinnedCertificate } from '../roots/pinned.js';
import { checkCrl, checkIssuedBy, checkValidity, commonName, fingerprint256, type Crl } from '../x509.js';
import type { SnpProduct } from './product.js';

/**
 * The AMD chain: signing key (VCEK/VLEK) ← ASK/ASVK ← ARK. The ARK is always the pinned
 * certificate for the product; an ARK supplied with the evidence is only accepted if it is
 * byte-identical to it.
 */
export interface SnpChainInput {
  readonly product: SnpProduct;
  readonly kind: 'vcek' | 'vlek';
  readonly signer: X509Certificate;
  readonly ask: X509Certificate;
  /** An ARK from the evidence or a chain file, compared against the pin. */
  readonly ark?: X509Certificate;
  readonly now: Date;
}

export function intermediateName(product: SnpProduct, kind: 'vcek' | 'vlek'): string {
  return kind === 'vcek' ? `SEV-${product}` : `SEV-VLEK-${product}`;
}

export function verifySnpChain(input: SnpChainInput): X509Certificate {
  const { product, kind, signer, ask, now } = input;
  const askName = intermediateName(product, kind);
  ensure(
    commonName(ask.subject) === askName,
    'snp.ask.subject',
    `the ${kind === 'vcek' ? 'ASK' : 'ASVK'} is for another product or key type`,
    `CN=${askName}`,
    `CN=${commonName(ask.subject) ?? '<none>'}`,
  );

  const ark = pinnedCertificate(AMD_ARKS[product]);
  if (input.ark && input.ark !== ark && !input.ark.raw.equals(ark.raw)) {
    throw new AttestationError(
      'snp.ark.pinned',
      `the supplied ARK is not AMD's pinned ARK-${product}`,
      `sha256 ${AMD_ARKS[product].sha256}`,
      `sha256 ${fingerprint256(input.ark)} (${commonName(input.ark.subject) ?? 'no CN'})`,
    );
  }
  checkIssuedBy(ask, ark, 'snp.ask.signature', `${askName} must be signed by ARK-${product}`);
  checkIssuedBy(signer, ask, 'snp.vcek.signature', `the ${kind.toUpperCase()} must be signed by ${askName}`);

  checkValidity(ark, now, 'snp.ark.validity', `ARK-${product}`);
  checkValidity(ask, now, 'snp.ask.validity', askName);
  checkValidity(signer, now, 'snp.vcek.validity', `the ${kind.toUpperCase()}`);
  return ark;
}

/**
 * AMD's CRL is signed by the ARK and lists revoked intermediates (ASK/ASVK); key certificates
 * are retired through TCB versions instead. `at` is the time the CRL must be current at: the
 * verification time, or the CRL's own nextUpdate when the CRL policy accepts it past that
 * (grace period, or revocations only); see crl.ts.
 */
export function checkSnpCrl(crl: Crl, ark: X509Certificate, ask: X509Certificate, at: Date): void {
  checkCrl(crl, ark, at, [ask], 'snp.crl');
}

/**
 * Whether `crl` is signed by the pinned ARK of `product`. Used to refuse unusable CRLs from KDS
 * before they are cached; dates and revocations are judged at verification time.
 */
export function crlSignedByArk(product: SnpProduct, crl: Crl): boolean {
  try {
    checkCrl(crl, pinnedCertificate(AMD_ARKS[product]), crl.thisUpdate, [], 'snp.crl');
    return true;
  } catch (err) {
    if (err instanceof AttestationError) return false;
    throw err;
  }
}

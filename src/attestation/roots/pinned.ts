import type { X509Certificate } from 'node:crypto';
import { fingerprint256, parsePemCertificates } from '../x509.js';
import type { PinnedRoot } from './amd.js';

const loaded = new Map<PinnedRoot, X509Certificate>();

/**
 * The certificate of a pinned root, parsed once. A constant whose bytes do not hash to the
 * pinned value is a build defect, so it throws a plain Error rather than an attestation failure.
 */
export function pinnedCertificate(root: PinnedRoot): X509Certificate {
  let cert = loaded.get(root);
  if (!cert) {
    cert = parsePemCertificates(Buffer.from(root.pem), `pinned root ${root.sha256}`, { count: 1 })[0]!;
    if (fingerprint256(cert) !== root.sha256)
      throw new Error(`pinned root certificate does not match its fingerprint ${root.sha256}`);
    loaded.set(root, cert);
  }
  return cert;
}

/**
 * aTLS certificates: self-signed, CN "Contrast", valid now ± 2 h, for the peer's TLS key,
 * carrying attestation evidence in a non-critical extension named by the evidence OID.
 */
import { X509Certificate as NodeX509, type KeyObject } from 'node:crypto';
import { signingAlgorithm, spkiDer, toCryptoPrivateKey, toCryptoPublicKey, x509 } from '../coordinator/crypto.js';
import { derBody, derOctets, pem } from '../coordinator/ca.js';
import { EVIDENCE_OIDS } from '../attestation/dispatch.js';
import { AttestationError } from '../attestation/errors.js';
import type { Evidence } from '../issuers/issuer.js';

const TWO_HOURS = 2 * 3600 * 1000;

export async function createAtlsCert(key: KeyObject, evidence?: Evidence, now = new Date()): Promise<string> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Contrast',
    notBefore: new Date(now.getTime() - TWO_HOURS),
    notAfter: new Date(now.getTime() + TWO_HOURS),
    keys: { privateKey: await toCryptoPrivateKey(key), publicKey: await toCryptoPublicKey(key) },
    signingAlgorithm: signingAlgorithm(key),
    extensions: evidence ? [new x509.Extension(evidence.oid, false, derOctets(evidence.value))] : [],
  });
  return pem(cert);
}

export interface AtlsPeer {
  publicKey: KeyObject;
  spki: Buffer;
  /** Evidence extensions found (may be empty). */
  evidence: Evidence[];
}

/** Parse a peer certificate: its self-signature must verify; evidence extensions are extracted. */
export function parseAtlsCert(der: Uint8Array): AtlsPeer {
  let cert: NodeX509;
  try {
    cert = new NodeX509(Buffer.from(der));
  } catch (err) {
    throw new AttestationError('atls.certificate', `the peer certificate cannot be parsed (${(err as Error).message})`);
  }
  const publicKey = cert.publicKey;
  if (!cert.verify(cert.publicKey)) throw new AttestationError('atls.certificate', 'the peer certificate is not self-signed by its own key');
  const parsed = new x509.X509Certificate(Buffer.from(der));
  const evidence: Evidence[] = [];
  for (const ext of parsed.extensions) {
    if ((EVIDENCE_OIDS as readonly string[]).includes(ext.type)) {
      evidence.push({ oid: ext.type, value: derBody(Buffer.from(ext.value), 0x04) });
    }
  }
  return { publicKey, spki: spkiDer(publicKey), evidence };
}

/**
 * aTLS binding values (see docs/protocol.md):
 *  - report data = SHA-512(SPKI DER of the attested TLS key ‖ nonce);
 *  - the client's nonce travels in the TLS server name: `<32 hex>.<32 hex>.atls-nonce.invalid`;
 *  - the server's freshness value for client evidence is a TLS exporter (RFC 5705/8446 §7.5)
 *    with label EXPORTER-contrast-atls-client-evidence, 32 bytes: unique to the connection and
 *    unknown before the handshake, so evidence from another connection never verifies.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';

export const NONCE_SIZE = 32;
export const SNI_SUFFIX = '.atls-nonce.invalid';
export const EKM_LABEL = 'EXPORTER-contrast-atls-client-evidence';
export const EKM_SIZE = 32;
/** gRPC binary metadata carrying the client's attested certificate (DER, base64). */
export const CLIENT_EVIDENCE_HEADER = 'contrast-atls-evidence-bin';

/**
 * Exports already made, by key object. A KeyObject never changes, so its SPKI is fixed: the
 * server's and the Coordinator's own keys are exported once per process, not per connection,
 * and a peer's key once per call instead of at every use.
 */
const exported = new WeakMap<KeyObject, Buffer>();

/**
 * SubjectPublicKeyInfo DER of a public key, or of the public half of a private key: how a key is
 * named in the binding and in certificates. Callers get their own copy of the cached bytes.
 */
export function spkiDer(key: KeyObject): Buffer {
  let der = exported.get(key);
  if (!der) {
    der = (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
    exported.set(key, der);
  }
  return Buffer.from(der);
}

export function reportData(spki: Uint8Array, nonce: Uint8Array): Buffer {
  return createHash('sha512').update(spki).update(nonce).digest();
}

export function newNonce(): Buffer {
  return randomBytes(NONCE_SIZE);
}

export function nonceToServerName(nonce: Buffer): string {
  if (nonce.length !== NONCE_SIZE) throw new Error(`nonce must be ${NONCE_SIZE} bytes`);
  const hex = nonce.toString('hex');
  return `${hex.slice(0, 32)}.${hex.slice(32)}${SNI_SUFFIX}`;
}

/** undefined when the server name is not an aTLS nonce. */
export function nonceFromServerName(name: string | undefined): Buffer | undefined {
  const m = /^([0-9a-f]{32})\.([0-9a-f]{32})\.atls-nonce\.invalid$/.exec(name ?? '');
  return m ? Buffer.from(m[1]! + m[2]!, 'hex') : undefined;
}

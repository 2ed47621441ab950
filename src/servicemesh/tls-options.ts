/**
 * The TLS settings of every leg the proxy terminates or originates, made from one credentials
 * set. No session resumption: a resumed session would skip the peer-certificate check, and a
 * ticket issued under a mesh CA that has since been replaced would outlive it.
 */
import { constants } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { MeshCredentials } from './credentials.js';

const SECURE_OPTIONS = constants.SSL_OP_NO_TICKET | constants.SSL_OP_NO_RENEGOTIATION;

export function contextOptions(creds: MeshCredentials): SecureContextOptions {
  return { ca: creds.caPem, cert: creds.chainPem, key: creds.keyPem, minVersion: 'TLSv1.2', secureOptions: SECURE_OPTIONS };
}

export function clientContext(creds: MeshCredentials): SecureContext {
  return createSecureContext(contextOptions(creds));
}

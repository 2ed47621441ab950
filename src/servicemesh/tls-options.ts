/**
 * The TLS settings of every leg the proxy terminates or originates, made from one credentials
 * set. No session resumption: a resumed session would skip the peer-certificate check, and a
 * ticket issued under a mesh CA that has since been replaced would outlive it.
 */
import { constants } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { MeshCredentials } from './credentials.js';

const SECURE_OPTIONS = constants.SSL_OP_NO_TICKET | constants.SSL_OP_NO_RENEGOTIATION;

/**
 * AEAD suites only, AES-128-GCM first (as BoringSSL, and so upstream's Envoy, orders them on
 * machines with AES instructions): it costs less CPU per byte than AES-256-GCM, which OpenSSL
 * would pick by default (bench/servicemesh.ts). TLS 1.2 suites are ECDHE-ECDSA: mesh keys are EC.
 */
export const CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
].join(':');

export function contextOptions(creds: MeshCredentials): SecureContextOptions {
  return {
    ca: creds.caPem,
    cert: creds.chainPem,
    key: creds.keyPem,
    minVersion: 'TLSv1.2',
    ciphers: CIPHERS,
    honorCipherOrder: true,
    secureOptions: SECURE_OPTIONS,
  };
}

export function clientContext(creds: MeshCredentials): SecureContext {
  return createSecureContext(contextOptions(creds));
}

/**
 * Server side of aTLS: TLS 1.3 options whose certificate is made per connection, inside the
 * SNI callback, from the client's nonce (in the server name) and fresh evidence binding the
 * server's key to it. Connections without a nonce fail the handshake.
 */
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import type { KeyObject } from 'node:crypto';
import type { Issuer } from '../issuers/issuer.js';
import { createAtlsCert, tlsPeerAtlsCert, type AtlsPeer } from './cert.js';
import { EKM_LABEL, EKM_SIZE, nonceFromServerName, reportData, spkiDer } from './binding.js';

export interface AtlsServerConfig {
  key: KeyObject;
  issuer: Issuer;
  /** Ask the client for a certificate (not validated by TLS; the application checks it). */
  requestCert: boolean;
  onError?: (err: Error) => void;
}

export function atlsServerOptions(cfg: AtlsServerConfig) {
  const keyPem = cfg.key.export({ type: 'pkcs8', format: 'pem' }) as string;
  const spki = spkiDer(cfg.key);
  return {
    minVersion: 'TLSv1.3' as const,
    ALPNProtocols: ['h2'],
    requestCert: cfg.requestCert,
    rejectUnauthorized: false,
    SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
      const nonce = nonceFromServerName(servername);
      if (!nonce) {
        cb(new Error('aTLS: the client sent no nonce in the server name'));
        return;
      }
      cfg.issuer
        .issue(reportData(spki, nonce))
        .then((evidence) => createAtlsCert(cfg.key, evidence))
        .then((cert) => cb(null, createSecureContext({ key: keyPem, cert, minVersion: 'TLSv1.3' })))
        .catch((err: Error) => {
          cfg.onError?.(err);
          cb(err);
        });
    },
  };
}

/** The client's TLS certificate (self-signed, checked as parseAtlsCert checks), if it sent one. */
export function tlsPeer(socket: TLSSocket): AtlsPeer | undefined {
  return tlsPeerAtlsCert(socket);
}

/** The per-connection freshness value the client's evidence must bind. */
export function clientEvidenceNonce(socket: TLSSocket): Buffer {
  return socket.exportKeyingMaterial(EKM_SIZE, EKM_LABEL, Buffer.alloc(0));
}

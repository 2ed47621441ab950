/**
 * Client side of aTLS: send a fresh nonce in the server name, check the server's evidence in
 * its certificate before any request is sent, and, when the client has an issuer, produce its
 * own evidence bound to the connection's TLS exporter for the server to check.
 */
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Issuer } from '../issuers/issuer.js';
import { createAtlsCert, createAtlsCertDer, tlsPeerAtlsCert, type AtlsPeer } from './cert.js';
import {
  CLIENT_EVIDENCE_HEADER,
  EKM_LABEL,
  EKM_SIZE,
  newNonce,
  nonceToServerName,
  reportData,
  spkiDer,
} from './binding.js';

export interface DialOptions<V> {
  host: string;
  port: number;
  /** The client's TLS key (default: a fresh P-256 key). */
  clientKey?: KeyObject;
  /** Check the server's certificate; null = accept any server (the Initializer, as upstream). */
  verifyServer: ((peer: AtlsPeer, reportData: Buffer) => Promise<V>) | null;
  /** Produce client evidence bound to this connection (MeshAPI). */
  issuer?: Issuer;
  timeoutMs?: number;
}

export interface AtlsConnection<V> {
  session: ClientHttp2Session;
  socket: TLSSocket;
  serverResult?: V;
  /** gRPC metadata to send with each call (client evidence), possibly empty. */
  metadata: Record<string, string>;
  close(): void;
}

function connectTls(
  opts: DialOptions<unknown>,
  keyPem: string,
  certPem: string,
  servername: string,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: opts.host,
      port: opts.port,
      servername,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.3',
      rejectUnauthorized: false,
      key: keyPem,
      cert: certPem,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TLS handshake with ${opts.host}:${opts.port} timed out`));
    }, opts.timeoutMs ?? 30_000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export async function dialAtls<V>(opts: DialOptions<V>): Promise<AtlsConnection<V>> {
  const clientKey = opts.clientKey ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const keyPem = clientKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const certPem = await createAtlsCert(clientKey);
  const nonce = newNonce();
  const socket = await connectTls(opts, keyPem, certPem, nonceToServerName(nonce));
  try {
    let serverResult: V | undefined;
    if (opts.verifyServer) {
      const peer = tlsPeerAtlsCert(socket);
      if (!peer) throw new Error('the server sent no certificate');
      serverResult = await opts.verifyServer(peer, reportData(peer.spki, nonce));
    }
    const metadata: Record<string, string> = {};
    if (opts.issuer) {
      const ekm = socket.exportKeyingMaterial(EKM_SIZE, EKM_LABEL, Buffer.alloc(0));
      const evidence = await opts.issuer.issue(reportData(spkiDer(clientKey), ekm));
      metadata[CLIENT_EVIDENCE_HEADER] = createAtlsCertDer(clientKey, evidence).toString('base64');
    }
    const session = http2Connect(`https://${opts.host}:${opts.port}`, { createConnection: () => socket });
    session.on('error', () => {
      /* surfaced through the calls */
    });
    return {
      session,
      socket,
      metadata,
      ...(serverResult !== undefined ? { serverResult } : {}),
      close: () => {
        session.close();
        socket.destroy();
      },
    };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

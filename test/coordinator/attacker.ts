/**
 * The external review's tools, rebuilt for tests: certificates that wrap a genuine certificate
 * as PEM inside one of the attacker's own, and a fake Coordinator without any TEE that relays
 * each client's nonce to the real Coordinator and presents such a wrapper.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { connect as tlsConnect, createSecureContext } from 'node:tls';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { derToPem, parseDerCertificate } from '../../src/attestation/certificate.js';
import { extensions } from '../../src/attestation/x509.js';
import { oid, seq, tlv, utcTime } from '../../src/atls/der.js';
import { spkiDer } from '../../src/atls/binding.js';

/**
 * A certificate self-signed by `key` that carries `genuine`'s extensions (its attestation
 * evidence) and, in an extra extension, `genuine` itself as PEM. A parser that lets Node find
 * the embedded PEM takes the genuine key and the attacker's evidence from one "certificate".
 */
export function wrapCertificate(key: KeyObject, genuine: Buffer): Buffer {
  const copied = [...extensions(parseDerCertificate(genuine, 'genuine'))].map(([id, e]) =>
    seq(oid(id), tlv(0x04, e.value)),
  );
  const name = seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from('Contrast')))));
  const alg = seq(oid('1.2.840.10045.4.3.2'));
  const now = Date.now();
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, Buffer.from([7])),
    alg,
    name,
    seq(utcTime(new Date(now - 3600_000)), utcTime(new Date(now + 3600_000))),
    name,
    spkiDer(key),
    tlv(0xa3, seq(...copied, seq(oid('1.3.6.1.4.1.99999.1'), tlv(0x04, Buffer.from(`\n${derToPem(genuine)}`))))),
  );
  return seq(tbs, alg, tlv(0x03, Buffer.from([0]), sign('sha256', tbs, key)));
}

export const attackerKey = (): KeyObject => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

export function keyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** The certificate a TLS server presents for `servername` (DER), with an optional client certificate. */
export function fetchServerCertificate(
  host: string,
  port: number,
  servername: string,
  client?: { key: KeyObject; cert: Buffer },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect(
      {
        host,
        port,
        servername,
        ALPNProtocols: ['h2'],
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
        ...(client ? { key: keyPem(client.key), cert: derToPem(client.cert) } : {}),
      },
      () => {
        const raw = s.getPeerX509Certificate()?.raw;
        s.destroy();
        if (raw) resolve(Buffer.from(raw));
        else reject(new Error('no server certificate'));
      },
    );
    s.once('error', reject);
  });
}

export interface FakeCoordinator {
  port: number;
  /** Every gRPC path a client sent to the fake (it must stay empty: clients must refuse it first). */
  requests: string[];
  /** Handshakes in which the fake presented a wrapped genuine certificate. */
  relayed: number;
  close(): Promise<void>;
}

/** A fake Coordinator: per connection it relays the client's SNI nonce to `real` and wraps the answer. */
export async function startFakeCoordinator(real: { host: string; port: number }): Promise<FakeCoordinator> {
  const key = attackerKey();
  const fake: FakeCoordinator = { port: 0, requests: [], relayed: 0, close: async () => undefined };
  const server: Http2SecureServer = createSecureServer({
    minVersion: 'TLSv1.3',
    ALPNProtocols: ['h2'],
    requestCert: true,
    rejectUnauthorized: false,
    allowHTTP1: false,
    SNICallback: (servername, cb) => {
      fetchServerCertificate(real.host, real.port, servername)
        .then((genuine) => {
          fake.relayed++;
          cb(
            null,
            createSecureContext({
              key: keyPem(key),
              cert: derToPem(wrapCertificate(key, genuine)),
              minVersion: 'TLSv1.3',
            }),
          );
        })
        .catch((err: Error) => cb(err));
    },
  });
  server.on('stream', (stream, headers) => {
    fake.requests.push(String(headers[':path']));
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-status': '13' },
      { endStream: true },
    );
  });
  server.on('sessionError', () => undefined);
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  fake.port = (server.address() as AddressInfo).port;
  fake.close = () => new Promise((r) => server.close(() => r()));
  return fake;
}

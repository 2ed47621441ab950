/**
 * aTLS over real loopback TLS: the server makes its certificate per connection from the nonce
 * in the server name, the client checks it before anything else happens, and client evidence
 * is bound to the connection's exporter. No Coordinator involved.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { connect as tlsConnect, createServer, type Server, type TLSSocket } from 'node:tls';
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { dialAtls } from '../../src/atls/client.js';
import { atlsServerOptions, clientEvidenceNonce, tlsPeer } from '../../src/atls/server.js';
import { parseAtlsCert, type AtlsPeer } from '../../src/atls/cert.js';
import { CLIENT_EVIDENCE_HEADER, newNonce, nonceToServerName, reportData, spkiDer } from '../../src/atls/binding.js';
import { AttestationError } from '../../src/attestation/errors.js';
import { derToPem } from '../../src/attestation/certificate.js';
import { OID_SIMULATED_EVIDENCE } from '../../src/attestation/tees.js';
import { forgeAtlsCertificate, octet, seq } from '../attestation/der-builder.js';
import { rejects } from '../attestation/assertions.js';
import type { Evidence, Issuer } from '../../src/issuers/issuer.js';

const OID = '1.3.9901.2.4242';

/** An issuer that records what it was asked to bind and returns it as the evidence. */
function recordingIssuer(fail?: Error) {
  const asked: Buffer[] = [];
  const issuer: Issuer = {
    name: 'test',
    issue: async (rd: Buffer): Promise<Evidence> => {
      asked.push(rd);
      if (fail) throw fail;
      return { oid: OID, value: Buffer.concat([Buffer.from('evidence:'), rd]) };
    },
  };
  return { issuer, asked };
}

async function listen(server: Server | NetServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

describe('aTLS handshakes on loopback', function () {
  this.timeout(20_000);
  const serverKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  let server: Server | undefined;
  const sockets: TLSSocket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    if (server) {
      server.close();
      server = undefined;
    }
  });

  async function start(opts: { requestCert: boolean; fail?: Error; onError?: (e: Error) => void }) {
    const rec = recordingIssuer(opts.fail);
    server = createServer(
      atlsServerOptions({
        key: serverKey,
        issuer: rec.issuer,
        requestCert: opts.requestCert,
        ...(opts.onError ? { onError: opts.onError } : {}),
      }),
    );
    server.on('secureConnection', (s) => sockets.push(s));
    server.on('tlsClientError', () => undefined);
    const port = await listen(server);
    return { port, ...rec };
  }

  it("binds the server's evidence to its key and the client's nonce, before any request", async () => {
    const { port, asked } = await start({ requestCert: false });
    let seen: { peer: AtlsPeer; rd: Buffer } | undefined;
    const conn = await dialAtls({
      host: '127.0.0.1',
      port,
      verifyServer: async (peer, rd) => {
        seen = { peer, rd };
        return 'verified';
      },
    });
    try {
      assert.equal(conn.serverResult, 'verified');
      assert.ok(seen);
      assert.deepEqual(seen.peer.spki, spkiDer(serverKey));
      assert.equal(asked.length, 1);
      assert.deepEqual(seen.rd, asked[0], 'the client computes the same report data the server bound');
      assert.deepEqual(seen.peer.evidence, [{ oid: OID, value: Buffer.concat([Buffer.from('evidence:'), asked[0]!]) }]);
      assert.deepEqual(conn.metadata, {});
      assert.equal(conn.socket.getProtocol(), 'TLSv1.3');
      assert.equal(conn.socket.alpnProtocol, 'h2');
    } finally {
      conn.close();
    }
    assert.ok(conn.socket.destroyed, 'close() ends the connection');
  });

  it('makes a fresh certificate for each connection', async () => {
    const { port, asked } = await start({ requestCert: false });
    const a = await dialAtls({ host: '127.0.0.1', port, verifyServer: null });
    const b = await dialAtls({ host: '127.0.0.1', port, verifyServer: null });
    try {
      assert.equal(asked.length, 2);
      assert.notDeepEqual(asked[0], asked[1]);
      assert.ok(!('serverResult' in a), 'no server check, no result');
      const certA = a.socket.getPeerX509Certificate()!;
      const certB = b.socket.getPeerX509Certificate()!;
      assert.notDeepEqual(certA.raw, certB.raw);
      assert.equal(certA.subject, 'CN=Contrast');
    } finally {
      a.close();
      b.close();
    }
  });

  it('refuses a connection whose server check fails, and sends nothing', async () => {
    const { port, asked } = await start({ requestCert: false });
    await assert.rejects(
      dialAtls({
        host: '127.0.0.1',
        port,
        issuer: recordingIssuer().issuer,
        verifyServer: async () => {
          throw new Error('not the Coordinator');
        },
      }),
      /not the Coordinator/,
    );
    assert.equal(asked.length, 1);
  });

  it("binds client evidence to the connection's exporter and the client's key", async () => {
    const { port } = await start({ requestCert: true });
    const clientKey = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const client = recordingIssuer();
    const accepted = once(server!, 'secureConnection') as Promise<[TLSSocket]>;
    const conn = await dialAtls({ host: '127.0.0.1', port, clientKey, verifyServer: null, issuer: client.issuer });
    try {
      const [serverSide] = await accepted;
      const peer = tlsPeer(serverSide);
      assert.ok(peer);
      assert.deepEqual(peer.spki, spkiDer(clientKey), 'the TLS client certificate is for the client key');
      assert.deepEqual(client.asked, [reportData(peer.spki, clientEvidenceNonce(serverSide))]);
      const evidenceCert = parseAtlsCert(Buffer.from(conn.metadata[CLIENT_EVIDENCE_HEADER]!, 'base64'));
      assert.deepEqual(evidenceCert.spki, spkiDer(clientKey));
      assert.deepEqual(evidenceCert.evidence[0]!.value, Buffer.concat([Buffer.from('evidence:'), client.asked[0]!]));
      assert.deepEqual(
        clientEvidenceNonce(serverSide),
        conn.socket.exportKeyingMaterial(32, 'EXPORTER-contrast-atls-client-evidence', Buffer.alloc(0)),
      );
    } finally {
      conn.close();
    }
  });

  /** The server's side of a handshake in which the client presented `certDer` for `clientKey`. */
  async function presenting(port: number, clientKey: KeyObject, certDer: Buffer): Promise<TLSSocket> {
    const accepted = once(server!, 'secureConnection') as Promise<[TLSSocket]>;
    const client = tlsConnect({
      host: '127.0.0.1',
      port,
      servername: nonceToServerName(newNonce()),
      ALPNProtocols: ['h2'],
      rejectUnauthorized: false,
      key: clientKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      cert: derToPem(certDer),
    });
    client.on('error', () => undefined);
    sockets.push(client);
    const [serverSide] = await accepted;
    return serverSide;
  }

  it("checks the client's TLS certificate as strictly as one from the wire: self-signed, distinguished encoding", async () => {
    const { port } = await start({ requestCert: true });
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forge = (over: Parameters<typeof forgeAtlsCertificate>[1]) => forgeAtlsCertificate(key, over);
    // A well-formed one is read as it is, evidence extensions included.
    const good = tlsPeer(
      await presenting(
        port,
        key.privateKey,
        forge({ extensions: [{ oid: OID_SIMULATED_EVIDENCE, value: octet(Buffer.from('e')) }] }),
      ),
    );
    assert.ok(good);
    assert.ok(good.publicKey.equals(key.publicKey));
    assert.deepEqual(good.spki, spkiDer(key.publicKey));
    assert.deepEqual(good.evidence, [{ oid: OID_SIMULATED_EVIDENCE, value: Buffer.from('e') }]);
    // Signed by another key: TLS proved the key, but the certificate is still no aTLS certificate.
    const notSelf = await presenting(
      port,
      key.privateKey,
      forge({ signingKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }),
    );
    let err = await rejects(() => tlsPeer(notSelf), 'atls.certificate');
    assert.equal(err.detail, 'the peer certificate is not self-signed by its own key');
    // OpenSSL accepts a duplicated extension in the handshake; the strict reading does not.
    const ext = { oid: '1.2.3.4', value: octet(Buffer.from('x')) };
    const dup = await presenting(port, key.privateKey, forge({ extensions: [ext, ext] }));
    err = await rejects(() => tlsPeer(dup), 'atls.certificate');
    assert.equal(err.detail, 'the peer certificate is not a well-formed certificate: duplicate extension 1.2.3.4');
    assert.ok(
      err.cause instanceof AttestationError && err.cause.check === 'x509.parse',
      'the parser error is the cause',
    );
    // An evidence extension that is no OCTET STRING.
    const notOctets = await presenting(
      port,
      key.privateKey,
      forge({ extensions: [{ oid: OID_SIMULATED_EVIDENCE, value: seq(octet(Buffer.from('e'))) }] }),
    );
    err = await rejects(() => tlsPeer(notOctets), 'atls.certificate');
    assert.equal(err.detail, `the evidence extension ${OID_SIMULATED_EVIDENCE} is not an OCTET STRING`);
  });

  it('asks for the client certificate only when configured to', async () => {
    const { port } = await start({ requestCert: false });
    const accepted = once(server!, 'secureConnection') as Promise<[TLSSocket]>;
    const conn = await dialAtls({ host: '127.0.0.1', port, verifyServer: null });
    try {
      const [serverSide] = await accepted;
      assert.equal(tlsPeer(serverSide), undefined);
    } finally {
      conn.close();
    }
  });

  it('fails the handshake of a client that sends no nonce', async () => {
    const { port, asked } = await start({ requestCert: false });
    const refusals: Error[] = [];
    server!.on('tlsClientError', (err) => refusals.push(err));
    for (const servername of [undefined, 'coordinator.example']) {
      const s = tlsConnect({
        host: '127.0.0.1',
        port,
        ...(servername ? { servername } : {}),
        rejectUnauthorized: false,
        ALPNProtocols: ['h2'],
      });
      const [err] = (await once(s, 'error')) as [Error];
      assert.ok(err instanceof Error);
      s.destroy();
    }
    assert.equal(asked.length, 0, 'no evidence is made without a nonce');
    // A server name that is no nonce is refused with the reason (in the server's log); without
    // any server name the callback is not even asked, and there is no default certificate.
    assert.ok(
      refusals.some((err) => /^aTLS: the client sent no nonce in the server name$/.test(err.message)),
      refusals.map((e) => e.message).join(' | '),
    );
  });

  it('fails the handshake when the issuer fails, and reports the error', async () => {
    const errors: Error[] = [];
    const { port } = await start({
      requestCert: false,
      fail: new Error('no TEE here'),
      onError: (e) => errors.push(e),
    });
    await assert.rejects(dialAtls({ host: '127.0.0.1', port, verifyServer: null }));
    assert.deepEqual(
      errors.map((e) => e.message),
      ['no TEE here'],
    );
    // Without an error callback the handshake fails just the same.
    server!.close();
    const again = await start({ requestCert: false, fail: new Error('no TEE here') });
    await assert.rejects(dialAtls({ host: '127.0.0.1', port: again.port, verifyServer: null }));
  });

  it('accepts only TLS 1.3 on both ends', async () => {
    const { port } = await start({ requestCert: false });
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      servername: nonceToServerName(Buffer.alloc(32)),
      maxVersion: 'TLSv1.2',
      rejectUnauthorized: false,
    });
    await once(s, 'error');
    s.destroy();
    // A TLS 1.2 server is refused by the client.
    const cert = new X509Certificate((await import('../../src/atls/cert.js')).createAtlsCertDer(serverKey)).toString();
    const old = createServer({
      key: serverKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      cert,
      maxVersion: 'TLSv1.2',
    });
    old.on('tlsClientError', () => undefined);
    const oldPort = await listen(old);
    try {
      await assert.rejects(dialAtls({ host: '127.0.0.1', port: oldPort, verifyServer: null }));
    } finally {
      old.close();
    }
  });

  it('reports refused connections and handshakes that never finish', async () => {
    const closedPort = await (async () => {
      const s = createNetServer();
      const p = await listen(s);
      s.close();
      await once(s, 'close');
      return p;
    })();
    await assert.rejects(dialAtls({ host: '127.0.0.1', port: closedPort, verifyServer: null }), /ECONNREFUSED/);
    const silent = createNetServer((socket) => {
      socket.on('error', () => undefined);
    });
    const port = await listen(silent);
    try {
      await assert.rejects(
        dialAtls({ host: '127.0.0.1', port, verifyServer: null, timeoutMs: 100 }),
        new RegExp(`^Error: TLS handshake with 127\\.0\\.0\\.1:${port} timed out$`),
      );
    } finally {
      silent.close();
    }
  });

  it('survives a server that breaks the HTTP/2 session after the handshake', async () => {
    const { port } = await start({ requestCert: false });
    server!.on('secureConnection', (s: TLSSocket) => {
      s.write(Buffer.from('this is not HTTP/2'));
      s.end();
    });
    const conn = await dialAtls({ host: '127.0.0.1', port, verifyServer: null });
    // The session reports the protocol error to its own listener instead of crashing the process.
    await new Promise<void>((resolve) => conn.session.on('close', () => resolve()));
    conn.close();
  });
});

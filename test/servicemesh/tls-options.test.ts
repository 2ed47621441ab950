/**
 * The TLS settings every leg of the proxy uses (tls-options.ts), checked on a real handshake:
 * AES-128-GCM is chosen even when the peer prefers AES-256-GCM, old protocol versions are
 * refused, and no session can be resumed (a resumed session would skip the certificate check).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { loadCredentials, type MeshCredentials } from '../../src/servicemesh/credentials.js';
import { clientContext, contextOptions } from '../../src/servicemesh/tls-options.js';
import { newMeshPki, workloadCredentials, writeTlsDir } from './pki.js';

describe('service mesh: TLS settings', () => {
  let creds: MeshCredentials;
  let server: Server;
  let port: number;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kc-tls-opts-'));
    try {
      writeTlsDir(dir, await workloadCredentials(await newMeshPki(), { sans: ['web'] }));
      creds = loadCredentials(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    server = createServer({ ...contextOptions(creds), requestCert: true, rejectUnauthorized: true }, (s) =>
      s.end('ok'),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  after(() => server.close());

  /** Connect, read to the end; what was negotiated. */
  const handshake = (opts: Record<string, unknown>) =>
    new Promise<{ cipher?: string; version?: string | null; reused?: boolean; session?: Buffer; error?: string }>(
      (resolve) => {
        let session: Buffer | undefined;
        const s: TLSSocket = connect({ host: '127.0.0.1', port, checkServerIdentity: () => undefined, ...opts });
        s.on('session', (b: Buffer) => {
          session = b;
        });
        s.on('data', () => {});
        s.once('secureConnect', () => {
          const r = { cipher: s.getCipher().name, version: s.getProtocol(), reused: s.isSessionReused() };
          s.once('close', () => resolve({ ...r, ...(session ? { session } : {}) }));
        });
        s.once('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
      },
    );

  it('prefers AES-128-GCM over a peer that lists AES-256-GCM first (TLS 1.3 and 1.2)', async () => {
    const v13 = await handshake({
      secureContext: clientContext(creds),
      ciphers: 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256',
    });
    assert.deepEqual([v13.version, v13.cipher], ['TLSv1.3', 'TLS_AES_128_GCM_SHA256']);
    const v12 = await handshake({
      ca: creds.caPem,
      cert: creds.chainPem,
      key: creds.keyPem,
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256',
    });
    assert.deepEqual([v12.version, v12.cipher], ['TLSv1.2', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
  });

  it('refuses TLS 1.1 and CBC suites', async () => {
    const old = await handshake({
      ca: creds.caPem,
      cert: creds.chainPem,
      key: creds.keyPem,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    assert.ok(old.error, JSON.stringify(old));
    const cbc = await handshake({
      ca: creds.caPem,
      cert: creds.chainPem,
      key: creds.keyPem,
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-ECDSA-AES128-SHA256',
    });
    assert.ok(cbc.error, JSON.stringify(cbc));
  });

  it("resumes no session: a second connection offering the first one's is a full handshake", async () => {
    // TLS 1.3 still hands the client a (stateful) ticket; the server keeps no session to match it.
    const first = await handshake({ secureContext: clientContext(creds) });
    assert.ok(first.session, 'the client has something to offer');
    const again = await handshake({
      secureContext: clientContext(creds),
      ...(first.session ? { session: first.session } : {}),
    });
    assert.equal(again.reused, false);
  });
});

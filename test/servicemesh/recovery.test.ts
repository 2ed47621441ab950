/**
 * What a Coordinator recovery means for the mesh, with our own Coordinator (Authority on a
 * store): it restarts, recovers from a seed share, and issues from a new mesh CA while the root
 * stays. The sidecar trusts `mesh-ca.pem` only, so a workload that still holds a certificate
 * of the old mesh CA is refused by a proxy with the new set, and the other way round, although
 * both chains lead to the same, unchanged root. The reload itself (files replaced under a
 * running sidecar, old-CA connections closed) is in mesh.test.ts.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Authority } from '../../src/coordinator/authority.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import { decryptSeedShare } from '../../src/coordinator/seedshares.js';
import { MemoryStore } from '../../src/coordinator/store/dir.js';
import { SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';
import { ConnectionTracker } from '../../src/servicemesh/connections.js';
import { loadCredentials, type MeshCredentials } from '../../src/servicemesh/credentials.js';
import { IngressListener } from '../../src/servicemesh/ingress.js';
import { writeTlsDir, type WorkloadCredentials } from './pki.js';

const coordinatorPolicy = Buffer.from('coordinator policy');
const webPolicy = Buffer.from('web policy');

function manifest(workloadOwner: KeyObject, seedshareOwner: KeyObject): Buffer {
  const hex = (b: Buffer) => b.toString('hex');
  return Buffer.from(
    JSON.stringify({
      Policies: {
        [hex(sha256(coordinatorPolicy))]: { SANs: ['coordinator'], Role: 'coordinator' },
        [hex(sha256(webPolicy))]: { SANs: ['web'], WorkloadSecretID: 'web' },
      },
      ReferenceValues: { insecure: [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }] },
      WorkloadOwnerPubKeys: [hex(createPublicKey(workloadOwner).export({ type: 'spki', format: 'der' }))],
      SeedshareOwnerPubKeys: [hex(createPublicKey(seedshareOwner).export({ type: 'pkcs1', format: 'der' }))],
    }),
  );
}

/** What the Initializer of a `web` pod would write, from the Coordinator's answer. */
async function initializerFiles(a: Authority): Promise<WorkloadCredentials> {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const r = await a.newMeshCert(a.snapshot()!, createPublicKey(key), sha256(webPolicy).toString('hex'));
  return {
    caPem: r.meshCA,
    chainPem: r.certChain,
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string,
    rootPem: r.rootCA,
  };
}

describe('service mesh after a Coordinator recovery', () => {
  let work: string;
  let oldSet: WorkloadCredentials;
  let newSet: WorkloadCredentials;
  let app: Server;
  let appPort: number;

  /** An mTLS ingress listener of the sidecar, in front of a one-line application. */
  const proxyWith = async (creds: MeshCredentials) => {
    const l = new IngressListener({
      appPort,
      mode: 'mtls',
      name: 'web',
      credentials: creds,
      tracker: new ConnectionTracker({ maxConnections: 16, maxConnectionsPerSource: 16 }),
      limits: { handshakeTimeoutMs: 5000, idleTimeoutMs: 5000, halfCloseTimeoutMs: 1000 },
      appHost: () => '127.0.0.1',
      log: () => {},
    });
    return { listener: l, port: await l.start() };
  };
  /** A peer with `creds` (its client certificate, and `mesh-ca.pem` as its trust anchor). */
  const peer = (port: number, creds: WorkloadCredentials) =>
    new Promise<{ secure: boolean; received: string; error?: string }>((resolve) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port,
        ca: creds.caPem,
        cert: creds.chainPem,
        key: creds.keyPem,
        checkServerIdentity: () => undefined,
      });
      const r: { secure: boolean; received: string; error?: string } = { secure: false, received: '' };
      s.once('secureConnect', () => {
        r.secure = true;
      });
      s.on('data', (d: Buffer) => {
        r.received += d.toString();
      });
      s.on('error', (e: NodeJS.ErrnoException) => {
        r.error ??= e.code ?? e.message;
      });
      s.on('close', () => resolve(r));
    });

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'kc-mesh-recovery-'));
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  before(async () => {
    app = createServer((s) => s.end('hello from web\n'));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
    appPort = (app.address() as { port: number }).port;

    const store = new MemoryStore();
    const wo = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const so = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const first = await Authority.open(store, { log: () => {} });
    const set = await first.setManifest(manifest(wo, so), [coordinatorPolicy, webPolicy], undefined);
    oldSet = await initializerFiles(first);
    // The Coordinator restarts (its memory is gone) and a seed-share owner recovers it.
    const restarted = await Authority.open(store, { log: () => {} });
    assert.equal(restarted.mode, 'recovery');
    await restarted.recover(decryptSeedShare(set.seedShares!.SeedShares[0]!, so), set.seedShares!.salt, so);
    newSet = await initializerFiles(restarted);
  });
  after(() => app.close());

  it('the recovered Coordinator issues from a new mesh CA under the same root', () => {
    assert.equal(newSet.rootPem, oldSet.rootPem);
    assert.notEqual(newSet.caPem, oldSet.caPem);
    // Both chains reach the root through their intermediate: trusting the root would accept both.
    const root = new X509Certificate(oldSet.rootPem);
    for (const c of [oldSet, newSet]) {
      const intermediate = new X509Certificate(c.chainPem.slice(c.chainPem.indexOf('-----BEGIN', 1)));
      assert.ok(intermediate.verify(root.publicKey));
    }
  });

  it('a sidecar with the new set refuses a peer with a certificate of the old mesh CA and accepts a new one', async () => {
    writeTlsDir(join(work, 'new'), newSet);
    const { listener, port } = await proxyWith(loadCredentials(join(work, 'new')));
    const stale = await peer(port, { ...oldSet, caPem: newSet.caPem });
    assert.doesNotMatch(stale.received, /hello/);
    assert.equal(listener.counters.refusedHandshake, 1);
    assert.equal(listener.counters.proxied, 0);
    const fresh = await peer(port, newSet);
    assert.equal(fresh.received, 'hello from web\n');
    listener.close();
  });

  it('a peer that still trusts the old mesh CA refuses a sidecar with the new set', async () => {
    writeTlsDir(join(work, 'new'), newSet);
    const { listener, port } = await proxyWith(loadCredentials(join(work, 'new')));
    const r = await peer(port, oldSet);
    assert.equal(r.secure, false);
    assert.match(r.error ?? '', /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    assert.equal(listener.counters.proxied, 0);
    listener.close();
  });

  it('a set mixing the new mesh CA with an old certificate is not loaded', () => {
    writeTlsDir(join(work, 'mixed'), { ...oldSet, caPem: newSet.caPem });
    assert.throws(
      () => loadCredentials(join(work, 'mixed')),
      /the mesh certificate is not signed by mesh-ca\.pem.*Coordinator recovery/s,
    );
  });

  it('two pods that both still hold the old set keep talking until they restart', async () => {
    writeTlsDir(join(work, 'old'), oldSet);
    const { listener, port } = await proxyWith(loadCredentials(join(work, 'old')));
    assert.equal((await peer(port, oldSet)).received, 'hello from web\n');
    listener.close();
  });
});

/**
 * Peer recovery between Coordinator replicas, in process (real aTLS, HTTP/2 and gRPC on loopback,
 * one shared store): the MeshAPI Recover call refuses every caller that does not attest with the
 * Coordinator policy of the current manifest (the attacks first), a replica refuses a peer that
 * does not attest as the Coordinator, and a replica that starts, or falls behind a manifest set
 * through another one, takes the state over from a ready peer: the same seed and the same mesh CA.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { SimulatedIssuer, loadOrCreateSimRoot } from '../../src/issuers/simulated.js';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { MemoryStore } from '../../src/coordinator/store/dir.js';
import { callUserApi } from '../../src/coordinator/client.js';
import { decode, encode } from '../../src/util/protobuf.js';
import {
  MESHAPI_SERVICE,
  SetManifestRequestSchema,
  SetManifestResponseSchema,
  type SetManifestResponse,
} from '../../src/coordinator/api/messages.js';
import { callUnary, RpcError, Status } from '../../src/coordinator/api/grpc.js';
import { dialAtls } from '../../src/atls/client.js';
import { createAtlsCertDer } from '../../src/atls/cert.js';
import { CLIENT_EVIDENCE_HEADER, EKM_LABEL, EKM_SIZE, reportData, spkiDer } from '../../src/atls/binding.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import { decryptSeedShare } from '../../src/coordinator/seedshares.js';
import { parsePeers } from '../../src/coordinator/peers.js';
import { requestMeshCert } from '../../src/initializer/initializer.js';
import type { Store } from '../../src/coordinator/store/interface.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { Authority, PeerStateError, RECOVERY_CLAIM_KEY, type PeerState } from '../../src/coordinator/authority.js';
import { createMeshCA, createRootCert } from '../../src/coordinator/ca.js';
import { SeedEngine } from '../../src/coordinator/seedengine.js';
import { COORD, manifest, rsa2048, wo } from './state-helpers.js';

const RECOVER = `/${MESHAPI_SERVICE}/Recover`;
const WEB = Buffer.from('web policy');

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('peer recovery between Coordinator replicas (in process)', function () {
  this.timeout(120_000);
  let simDir: string;
  const running: RunningCoordinator[] = [];
  const logs: string[] = [];
  const issuer = (policy: Buffer) => new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(policy));
  const raw = manifest({ policies: [WEB] });
  const parsed = JSON.parse(raw.toString()) as Parameters<typeof callUserApi>[2]['manifest'];

  /** A replica on `store`; its peers: a list (read at every round, so it may grow), a --peers text, or none. */
  async function replica(
    store: Store,
    peers: RunningCoordinator[] | string | undefined,
    policy = COORD,
    claimWaitMs?: number,
  ) {
    const c = await startCoordinator({
      store,
      ...(claimWaitMs !== undefined ? { claimWaitMs } : {}),
      issuer: issuer(policy),
      host: '127.0.0.1',
      userPort: 0,
      meshPort: 0,
      metricsPort: 0,
      log: (m) => logs.push(m),
      ...(peers === undefined
        ? {}
        : {
            peers:
              typeof peers === 'string'
                ? parsePeers(peers, { meshPort: -1 })
                : () => Promise.resolve(peers.map((p) => ({ host: '127.0.0.1', port: p.ports.meshapi }))),
            peerIntervalMs: 100,
          }),
    });
    running.push(c);
    return c;
  }
  const setManifest = async (c: RunningCoordinator, m: Buffer, policies: Buffer[]) =>
    decode<SetManifestResponse>(
      SetManifestResponseSchema,
      (
        await callUserApi('SetManifest', encode(SetManifestRequestSchema, { Manifest: m, Policies: policies }), {
          address: { host: '127.0.0.1', port: c.ports.userapi },
          manifest: parsed,
          clientKey: wo,
        })
      ).response,
    );
  const cert = (c: RunningCoordinator, policy = WEB) =>
    requestMeshCert({ host: '127.0.0.1', port: c.ports.meshapi, issuer: issuer(policy) });
  const readiness = async (c: RunningCoordinator) => {
    const r = await fetch(`http://127.0.0.1:${c.ports.metrics}/probe/readiness`);
    return `${r.status} ${(await r.text()).trim()}`;
  };

  /** A store with a history whose only replica is gone: every replica started on it waits. */
  async function historyAlone() {
    const store = new MemoryStore();
    const a = await replica(store, undefined);
    const first = await setManifest(a, raw, [COORD, WEB]);
    await a.close();
    running.splice(running.indexOf(a), 1);
    return { store, first };
  }

  /** MeshAPI Recover with evidence for `policy` (or none, or evidence bound to another key). */
  async function recoverCall(c: RunningCoordinator, policy: Buffer | undefined, bindToOtherKey = false) {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const conn = await dialAtls({ host: '127.0.0.1', port: c.ports.meshapi, clientKey: key, verifyServer: null });
    try {
      const metadata: Record<string, string> = {};
      if (policy) {
        const rd = reportData(spkiDer(key), conn.socket.exportKeyingMaterial(EKM_SIZE, EKM_LABEL, Buffer.alloc(0)));
        const certKey = bindToOtherKey ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey : key;
        metadata[CLIENT_EVIDENCE_HEADER] = createAtlsCertDer(certKey, await issuer(policy).issue(rd)).toString(
          'base64',
        );
      }
      return await callUnary(conn.session, RECOVER, Buffer.alloc(0), metadata);
    } finally {
      conn.close();
    }
  }
  const refused = async (p: Promise<unknown>, code: number, message: RegExp) => {
    const e = await p.then(
      () => assert.fail('the state was handed over'),
      (err: unknown) => err,
    );
    assert.ok(e instanceof RpcError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
  };

  beforeEach(() => {
    logs.length = 0;
    simDir = tempDir('kc-sim-');
    process.env.CONTRAST_INSECURE_SIM_DIR = simDir;
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(`--- log ---\n${logs.join('\n')}\n`);
    await Promise.all(running.splice(0).map((c) => c.close()));
    delete process.env.CONTRAST_INSECURE_SIM_DIR;
    removeDir(simDir);
  });

  it('Recover refuses a workload policy, a policy outside the manifest, no evidence and evidence for another key', async () => {
    const a = await replica(new MemoryStore(), undefined);
    await setManifest(a, raw, [COORD, WEB]);
    // A workload of the manifest: attested, but not the Coordinator.
    await refused(recoverCall(a, WEB), Status.PERMISSION_DENIED, /not a Coordinator policy \(Role "coordinator"\)/);
    await refused(recoverCall(a, Buffer.from('not in the manifest')), Status.PERMISSION_DENIED, /policy hash/);
    await refused(recoverCall(a, undefined), Status.UNAUTHENTICATED, /no client evidence/);
    await refused(recoverCall(a, COORD, true), Status.PERMISSION_DENIED, /another key/);
    assert.equal(a.metrics.get('contrast_meshapi_peer_recoveries_refused_total'), 3);
    assert.equal(a.metrics.get('contrast_meshapi_peer_recoveries_served_total'), 0);
    assert.equal(a.metrics.get('contrast_meshapi_requests_total', { method: 'Recover', code: Status.OK }), 0);
    // Control: the Coordinator policy is served.
    assert.ok((await recoverCall(a, COORD)).length > 0);
    assert.equal(a.metrics.get('contrast_meshapi_peer_recoveries_served_total'), 1);
  });

  it('a replica without the state hands nothing over', async () => {
    const a = await replica(new MemoryStore(), undefined);
    await refused(
      recoverCall(a, COORD),
      Status.FAILED_PRECONDITION,
      /holds no state to hand over \(it is uninitialised\)/,
    );
  });

  it('a replica running another policy than the Coordinator is refused by its peer and never becomes ready', async () => {
    const store = new MemoryStore();
    const a = await replica(store, undefined);
    await setManifest(a, raw, [COORD, WEB]);
    const impostor = await replica(store, [a], WEB); // the workload's policy: attested, but not the Coordinator
    await until(
      'the impostor was refused',
      () => impostor.metrics.get('contrast_coordinator_peer_recoveries_total', { result: 'refused' }) >= 2,
    );
    assert.equal(impostor.authority.mode, 'recovery');
    assert.equal(impostor.authority.snapshot(), undefined);
    assert.equal(a.metrics.get('contrast_meshapi_peer_recoveries_served_total'), 0);
    assert.match(await readiness(impostor), /^503 recovering-from-peer$/);
  });

  it('a replica refuses a peer that does not attest with the Coordinator policy', async () => {
    const store = new MemoryStore();
    const a = await replica(store, undefined);
    const first = await setManifest(a, raw, [COORD, WEB]);
    // A fake peer with the real state (recovered by a seed-share owner) but a workload's evidence.
    const fake = await replica(store, undefined, WEB);
    const share = first.SeedSharesDoc!;
    await fake.authority.recover(decryptSeedShare(share.SeedShares[0]!, rsa2048), share.salt, rsa2048);
    await a.close();
    running.splice(running.indexOf(a), 1);
    const b = await replica(store, [fake]);
    await until(
      'b tried the fake peer',
      () => b.metrics.get('contrast_coordinator_peer_recoveries_total', { result: 'failed' }) >= 2,
    );
    assert.equal(b.authority.mode, 'recovery');
    assert.equal(fake.metrics.get('contrast_meshapi_peer_recoveries_served_total'), 0, 'b never asked');
    assert.ok(
      logs.some((l) => /policy hash.*Coordinator policy/.test(l)),
      logs.join('\n'),
    );
  });

  it('a replica that starts takes over seed and mesh CA; a manifest set through it reaches the other one', async () => {
    const store = new MemoryStore();
    const peersOfA: RunningCoordinator[] = [];
    const a = await replica(store, peersOfA);
    await setManifest(a, raw, [COORD, WEB]);
    const b = await replica(store, [a]);
    peersOfA.push(b);
    await until('b is ready', () => b.authority.mode === 'ready');
    assert.equal(await readiness(b), '200 ready');
    const ca = a.authority.snapshot()!.mesh;
    assert.equal(b.authority.snapshot()!.mesh.meshCAPem, ca.meshCAPem, 'the same mesh CA, byte for byte');
    assert.equal(b.authority.snapshot()!.mesh.intermediatePem, ca.intermediatePem);
    assert.deepEqual(b.authority.snapshot()!.engine.seed, a.authority.snapshot()!.engine.seed);
    const [fromA, fromB] = await Promise.all([cert(a), cert(b)]);
    assert.deepEqual(fromA.MeshCACert, fromB.MeshCACert);
    assert.deepEqual(fromA.RootCACert, fromB.RootCACert);
    assert.deepEqual(fromA.WorkloadSecret, fromB.WorkloadSecret);

    // A manifest set through b: a stops issuing under the old mesh CA, then takes over b's.
    const api = Buffer.from('api policy');
    const m2 = manifest({ policies: [api] });
    const set2 = await setManifest(b, m2, [COORD, api]);
    assert.notDeepEqual(set2.MeshCA, fromA.MeshCACert);
    await until('a took over the new manifest', () => a.authority.snapshot()?.raw.equals(m2) ?? false);
    assert.equal(a.authority.snapshot()!.mesh.meshCAPem, set2.MeshCA.toString());
    await assert.rejects(cert(a, WEB), (e: RpcError) => e.code === Status.PERMISSION_DENIED, 'revoked on a too');
    assert.deepEqual((await cert(a, api)).MeshCACert, set2.MeshCA);
    assert.ok(
      logs.some((l) => /another replica set a new manifest/.test(l)),
      logs.join('\n'),
    );
  });

  it('a replica behind the store issues nothing under the old manifest, even before its poll', async () => {
    const store = new MemoryStore();
    const a = await startCoordinator({
      store,
      issuer: issuer(COORD),
      host: '127.0.0.1',
      userPort: 0,
      meshPort: 0,
      metricsPort: 0,
      log: (m) => logs.push(m),
      peers: parsePeers('127.0.0.1:1', { meshPort: -1 }),
      peerIntervalMs: 3_600_000, // never polls during the test
    });
    running.push(a);
    await setManifest(a, raw, [COORD, WEB]);
    const b = await replica(store, [a]);
    await until('b is ready', () => b.authority.mode === 'ready');
    const api = Buffer.from('api policy');
    await setManifest(b, manifest({ policies: [api] }), [COORD, api]);
    // a has not polled; the certificate request itself finds that the store moved on.
    await refused(cert(a, WEB), Status.UNAVAILABLE, /another replica set a new manifest/);
    assert.equal(a.authority.mode, 'recovery');
  });

  it('all replicas restarted: waiting-for-recover until a person recovers one; the other follows', async () => {
    const { store, first } = await historyAlone();
    const b = await replica(store, 'dns:localhost:1');
    const c = await replica(store, [b]);
    // b's own list has nobody ready; c's peer b holds nothing.
    await until(
      'both wait for a person',
      async () =>
        (await readiness(b)) === '503 waiting-for-recover' && (await readiness(c)) === '503 waiting-for-recover',
    );
    assert.equal(b.metrics.get('contrast_coordinator_waiting_for_recover'), 0, 'a gauge, not a counter');
    assert.match(b.metrics.render(), /^contrast_coordinator_waiting_for_recover 1$/m);
    const share = first.SeedSharesDoc!;
    await b.authority.recover(decryptSeedShare(share.SeedShares[0]!, rsa2048), share.salt, rsa2048);
    await until('c followed b', () => c.authority.mode === 'ready');
    assert.equal(c.authority.snapshot()!.mesh.meshCAPem, b.authority.snapshot()!.mesh.meshCAPem);
    assert.match(c.metrics.render(), /^contrast_coordinator_peer_recovery_seconds [0-9.]+$/m);
    assert.equal(c.metrics.get('contrast_coordinator_peer_recoveries_total', { result: 'adopted' }), 1);
  });

  it('recover sent to two waiting replicas at once: one recovers, the other takes the state from it (one mesh CA)', async () => {
    const { store, first } = await historyAlone();
    const peersOfB: RunningCoordinator[] = [];
    const b = await replica(store, peersOfB);
    const c = await replica(store, [b]);
    peersOfB.push(c);
    await until(
      'both wait for a person',
      async () =>
        (await readiness(b)) === '503 waiting-for-recover' && (await readiness(c)) === '503 waiting-for-recover',
    );
    const share = first.SeedSharesDoc!;
    const seed = decryptSeedShare(share.SeedShares[0]!, rsa2048);
    await Promise.all([b.authority.recover(seed, share.salt, rsa2048), c.authority.recover(seed, share.salt, rsa2048)]);
    assert.equal(b.authority.mode, 'ready');
    assert.equal(c.authority.mode, 'ready');
    assert.equal(c.authority.snapshot()!.mesh.meshCAPem, b.authority.snapshot()!.mesh.meshCAPem);
    assert.ok(
      logs.some((l) => /took the state over from the peer that recovered it/.test(l)),
      'the second replica said where its state came from',
    );
    // Certificates from both chain to that one mesh CA.
    const meshCA = new X509Certificate(b.authority.snapshot()!.mesh.meshCAPem);
    for (const r of [b, c]) {
      const leaf = new X509Certificate(
        (await cert(r)).CertChain.toString().split(/(?<=-----END CERTIFICATE-----\n)/)[0]!,
      );
      assert.ok(leaf.verify(meshCA.publicKey), 'the leaf verifies with the one mesh CA');
    }
  });

  it('a recovery claim whose replica is gone delays recover by the wait, then this replica recovers itself', async () => {
    const { store, first } = await historyAlone();
    const share = first.SeedSharesDoc!;
    const seed = decryptSeedShare(share.SeedShares[0]!, rsa2048);
    // b recovers (its claim is in the store), then every replica restarts.
    const b = await replica(store, []);
    await b.authority.recover(seed, share.salt, rsa2048);
    const claim = await store.get(RECOVERY_CLAIM_KEY);
    assert.ok(claim, 'recover left its claim');
    await b.close();
    running.splice(running.indexOf(b), 1);
    // c has a peer, e, that waits too: c asks it for the claim's wait, then recovers itself.
    const peersOfC: RunningCoordinator[] = [];
    const c = await replica(store, peersOfC, COORD, 300);
    const e = await replica(store, [c]);
    peersOfC.push(e);
    const started = Date.now();
    await c.authority.recover(seed, share.salt, rsa2048);
    assert.ok(Date.now() - started >= 300, 'it asked its peer for the wait first');
    assert.equal(c.authority.mode, 'ready');
    assert.notDeepEqual(await store.get(RECOVERY_CLAIM_KEY), claim, 'the stale claim was replaced');
    await until('e followed c', () => e.authority.mode === 'ready');
    assert.equal(e.authority.snapshot()!.mesh.meshCAPem, c.authority.snapshot()!.mesh.meshCAPem);
    // No peer to ask (a single replica), or no peer recovery at all: nobody is waited for.
    for (const peers of [[], undefined]) {
      await Promise.all(running.splice(0).map((r) => r.close()));
      const d = await replica(store, peers, COORD, 60_000);
      const t0 = Date.now();
      await d.authority.recover(seed, share.salt, rsa2048);
      assert.ok(Date.now() - t0 < 20_000, `recover waited ${Date.now() - t0} ms`);
      assert.equal(d.authority.mode, 'ready');
    }
  });

  it('a rolled-back latest pointer does not make a replica drop its state', async () => {
    const store = new MemoryStore();
    const a = await replica(store, []);
    await setManifest(a, raw, [COORD, WEB]);
    const old = store.data.get('transitions/latest')!;
    const api = Buffer.from('api policy');
    await setManifest(a, manifest({ policies: [api] }), [COORD, api]);
    store.data.set('transitions/latest', old); // validly signed, but behind what a wrote
    assert.ok((await cert(a, api)).CertChain.length > 0, 'still issues under its own chain');
    assert.equal(a.authority.mode, 'ready');
    assert.ok(
      logs.some((l) => /not a validly signed successor/.test(l)),
      logs.join('\n'),
    );
  });

  it('--peers: a bad entry is named', () => {
    assert.throws(
      () => parsePeers('a:1,b:99999', { meshPort: 7777 }),
      /--peers entry 2: "b:99999" is not HOST\[:PORT\]/,
    );
    assert.throws(() => parsePeers(' ', { meshPort: 7777 }), /--peers is empty/);
  });

  it('a state handed over that does not hold up against the store is refused, and the replica stays in recovery', async () => {
    const store = new MemoryStore();
    const a = await replica(store, undefined);
    await setManifest(a, raw, [COORD, WEB]);
    const good = await a.authority.peerState(a.authority.snapshot()!);
    const b = await Authority.open(store, { log: () => undefined, peerRecovery: true });
    const other = SeedEngine.generate();
    const otherMesh = await createMeshCA(other.rootCAKey, await createRootCert(other.rootCAKey));
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const cases: [string, PeerState, RegExp][] = [
      [
        'a seed of another deployment',
        { ...good, seed: other.seed, salt: other.salt },
        /does not sign the stored latest transition/,
      ],
      ['a malformed seed', { ...good, seed: good.seed.subarray(1) }, /the peer's seed: the seed must be 64 bytes/],
      [
        'another manifest',
        { ...good, manifest: manifest({ policies: [Buffer.from('x')] }) },
        /not the last one of the stored history/,
      ],
      [
        'a mesh key of another CA',
        { ...good, meshKey: otherMesh.key },
        /mesh CA certificate is not a CA self-signed by its mesh key/,
      ],
      [
        'a mesh CA chained to another root',
        { ...good, meshKey: otherMesh.key, meshCAPem: otherMesh.meshCAPem, intermediatePem: otherMesh.intermediatePem },
        /intermediate certificate is not a CA for its mesh key signed by the seed's root key/,
      ],
      ['a P-256 mesh key', { ...good, meshKey: p256 }, /not a P-384 private key/],
      [
        'two certificates as the mesh CA',
        { ...good, meshCAPem: good.meshCAPem + good.meshCAPem },
        /mesh CA certificate/,
      ],
    ];
    for (const [what, state, message] of cases) {
      await assert.rejects(
        b.adoptPeerState(state),
        (e: Error) => e instanceof PeerStateError && message.test(e.message),
        what,
      );
      assert.equal(b.mode, 'recovery', what);
      assert.equal(b.snapshot(), undefined, what);
    }
    // Control: the genuine state is taken over.
    assert.equal(await b.adoptPeerState(good), true);
    assert.equal(b.snapshot()!.mesh.meshCAPem, good.meshCAPem);
    assert.equal(await b.adoptPeerState(good), false, 'already ready: nothing changes');
  });

  it('dns: peers are every address of the name but this replica itself', async () => {
    const own = await parsePeers('dns:localhost:7777', { meshPort: 7777 })();
    assert.ok(!own.some((p) => p.host === '127.0.0.1'), 'its own MeshAPI is left out');
    const others = await parsePeers('dns:localhost:7777', { meshPort: 1 })();
    assert.ok(
      others.some((p) => p.host === '127.0.0.1' && p.port === 7777),
      JSON.stringify(others),
    );
    assert.deepEqual(await parsePeers('dns:no-such-peers.invalid', { meshPort: 1 })(), [], 'no ready peer published');
  });

  it('coordinator serve: a bad --peers or --peer-interval is a usage error naming the flag', () => {
    const bad = runCli(['coordinator', 'serve', '--platform', 'insecure-sim', '--peers', 'a:0']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--peers entry 1: "a:0" is not HOST\[:PORT\]/);
    const interval = runCli([
      'coordinator',
      'serve',
      '--platform',
      'insecure-sim',
      '--peers',
      'none',
      '--peer-interval',
      '0',
    ]);
    assert.equal(interval.code, 2, interval.stderr);
    assert.match(interval.stderr, /--peer-interval must be more than zero/);
  });
});

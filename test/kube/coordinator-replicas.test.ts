/**
 * Coordinator replicas as real processes on loopback, their state in ConfigMaps of a real API
 * server, recovering from each other (src/coordinator/peers.ts), on the simulated platform:
 *
 *  1. the attack first: a replica that runs another policy than the Coordinator's is refused by
 *     its peers and never gets the state;
 *  2. replicas are SIGKILLed in a loop (bounded) while Initializers request certificates and an
 *     owner sets manifests through whichever replica answers: no request is lost beyond retries,
 *     every certificate is issued under the mesh CA that the SetManifest of its manifest created
 *     (so no two replicas issue under different mesh CAs for one manifest), none under a manifest
 *     older than the newest one set before the request started, and every replica serves the same
 *     linear history;
 *  3. when every replica restarted, they wait for a person's `recover`; after it on one replica
 *     the others take the state over from it.
 *
 * Timings are logged, not asserted (the benchmark measures them).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { apiServer, type ApiServer } from '../helpers/apiserver.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { ReplicaSet } from '../coordinator/replicas.js';
import { COORD, manifest, rsa2048, wo } from '../coordinator/state-helpers.js';
import { SimulatedIssuer, loadOrCreateSimRoot } from '../../src/issuers/simulated.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import { callUserApi } from '../../src/coordinator/client.js';
import { decode, encode } from '../../src/util/protobuf.js';
import {
  GetManifestsResponseSchema,
  RecoverRequestSchema,
  SetManifestRequestSchema,
  SetManifestResponseSchema,
  type GetManifestsResponse,
  type SetManifestResponse,
} from '../../src/coordinator/api/messages.js';
import { decryptSeedShare } from '../../src/coordinator/seedshares.js';
import { requestMeshCert } from '../../src/initializer/initializer.js';
import type { Manifest } from '../../src/coordinator/manifest.js';

const WEB = Buffer.from('web policy');
const KILLS = 5;
const SETS = 4;
const WORKERS = 3;
const MAX_ATTEMPTS = 200;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const version = (v: number) => manifest({ policies: [WEB, Buffer.from(`marker ${v}`)] });
const policiesOf = (v: number) => [COORD, WEB, Buffer.from(`marker ${v}`)];

/** One at a time: a set, or a look at the replicas followed by a kill. */
class Lock {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

describe('Coordinator replicas: peer recovery with the ConfigMap store (real processes, real API server)', function () {
  this.timeout(900_000);
  let api: ApiServer;
  let dir: string;
  let simDir: string;
  let set: ReplicaSet | undefined;
  const parsed = JSON.parse(version(0).toString()) as Manifest;
  const user = (i: number, method: 'SetManifest' | 'GetManifests' | 'Recover', req: Uint8Array, key = wo) =>
    callUserApi(method, req, {
      address: { host: '127.0.0.1', port: set!.replicas[i]!.ports.userapi },
      manifest: parsed,
      clientKey: key,
    });
  const history = async (i: number) =>
    decode<GetManifestsResponse>(GetManifestsResponseSchema, (await user(i, 'GetManifests', Buffer.alloc(0))).response);
  const setOn = async (i: number, v: number) =>
    decode<SetManifestResponse>(
      SetManifestResponseSchema,
      (
        await user(
          i,
          'SetManifest',
          encode(SetManifestRequestSchema, { Manifest: version(v), Policies: policiesOf(v) }),
        )
      ).response,
    );

  before(async function () {
    api = await apiServer();
    dir = tempDir('kc-ha-');
    simDir = join(dir, 'sim');
    process.env.CONTRAST_INSECURE_SIM_DIR = simDir;
    loadOrCreateSimRoot(simDir);
  });
  after(() => {
    delete process.env.CONTRAST_INSECURE_SIM_DIR;
    removeDir(dir);
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && set) process.stderr.write(set.logs());
    await set?.stopAll();
    set = undefined;
  });

  it('a replica that runs another policy than the Coordinator is refused by its peers and never gets the state', async () => {
    set = await ReplicaSet.create({ api, dir, simDir, policyHash: sha256(COORD).toString('hex'), count: 3 });
    const s = set;
    await s.start(0);
    await setOn(0, 0);
    await s.waitFor(0, 'ready');
    // The impostor: the same store and peers, a workload's policy (attested, but not the Coordinator).
    const impostor = await s.start(1, { policyHash: sha256(WEB).toString('hex') });
    const deadline = Date.now() + 60_000;
    while (!/refused to hand over the state/.test(impostor.log())) {
      assert.ok(Date.now() < deadline, impostor.log());
      await sleep(50);
    }
    assert.match(impostor.log(), /not a Coordinator policy \(Role "coordinator"\)/);
    assert.equal(await s.state(1), 'recovering-from-peer');
    const metrics = await s.metrics(0);
    assert.match(metrics, /^contrast_meshapi_peer_recoveries_refused_total [1-9]/m);
    assert.doesNotMatch(metrics, /^contrast_meshapi_peer_recoveries_served_total/m, 'nothing handed over');
    // Control: a replica with the Coordinator's policy gets the state from the same peer.
    await s.start(2);
    await s.waitFor(2, 'ready');
    assert.equal(await s.state(1), 'recovering-from-peer', 'the impostor still has nothing');
  });

  it(`${KILLS} kills while ${WORKERS} Initializers request certificates and the owner sets ${SETS} manifests`, async () => {
    set = await ReplicaSet.create({ api, dir, simDir, policyHash: sha256(COORD).toString('hex'), count: 3 });
    const s = set;
    await Promise.all([0, 1, 2].map((i) => s.start(i)));
    await Promise.all([0, 1, 2].map((i) => s.waitFor(i, 'uninitialised')));
    const meshCAs: Buffer[] = [(await setOn(0, 0)).MeshCA];
    const sent: Buffer[] = [version(0)];
    await Promise.all([0, 1, 2].map((i) => s.waitFor(i, 'ready')));

    const lock = new Lock();
    let stop = false;
    const issued: { meshCA: Buffer; started: number; attempts: number }[] = [];
    const lost: string[] = [];
    const recoveryMs: number[] = [];
    let ownerRetries = 0;
    let next = 0;
    const pick = () => next++ % 3;

    const worker = async (w: number) => {
      const issuer = new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(WEB));
      while (!stop) {
        const started = meshCAs.length - 1;
        let done = false;
        let lastError = '';
        for (let attempt = 1; attempt <= MAX_ATTEMPTS && !done; attempt++) {
          const i = pick();
          try {
            const r = await requestMeshCert({ host: '127.0.0.1', port: s.replicas[i]!.ports.meshapi, issuer });
            const leaf = new X509Certificate(r.CertChain.toString().split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
            assert.ok(leaf.verify(new X509Certificate(r.MeshCACert).publicKey), 'signed by the mesh CA it came with');
            issued.push({ meshCA: r.MeshCACert, started, attempts: attempt });
            done = true;
          } catch (err) {
            lastError = (err as Error).message;
            await sleep(50);
          }
        }
        if (!done) lost.push(`worker ${w}: ${lastError}`);
      }
    };

    const owner = async () => {
      for (let v = 1; v <= SETS; v++) {
        await sleep(1500);
        await lock.run(async () => {
          for (let attempt = 1; ; attempt++) {
            const i = pick();
            try {
              const r = await setOn(i, v);
              meshCAs.push(r.MeshCA);
              sent.push(version(v));
              return;
            } catch (err) {
              assert.ok(attempt < MAX_ATTEMPTS, `SetManifest ${v} lost: ${(err as Error).message}`);
              ownerRetries++;
              await sleep(100);
            }
          }
        });
      }
    };

    /** Every replica ready with the newest manifest's mesh CA. */
    const allCurrent = async () => {
      for (let i = 0; i < 3; i++) {
        if ((await s.state(i)) !== 'ready') return false;
        try {
          if (!(await history(i)).MeshCA.equals(meshCAs.at(-1)!)) return false;
        } catch {
          return false;
        }
      }
      return true;
    };
    const killer = async () => {
      for (let k = 0; k < KILLS; k++) {
        await sleep(800);
        const victim = Math.floor(Math.random() * 3);
        await lock.run(async () => {
          const deadline = Date.now() + 120_000;
          while (!(await allCurrent())) {
            assert.ok(Date.now() < deadline, 'the replicas did not all catch up');
            await sleep(50);
          }
          await s.kill(victim);
        });
        const t0 = Date.now();
        const proc = await s.start(victim);
        await s.waitFor(victim, 'ready', 120_000);
        recoveryMs.push(Date.now() - t0);
        // From a peer, not from a person: nobody ran recover. The replica says so right after it
        // turns ready, and its stderr may reach us after the ready probe did: wait for the line.
        const logged = Date.now() + 10_000;
        while (!/recovered the state from peer/.test(proc.log()) && Date.now() < logged) await sleep(20);
        assert.match(proc.log(), /recovered the state from peer/);
      }
    };

    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
    try {
      await Promise.all([owner(), killer()]);
    } finally {
      stop = true;
      await Promise.all(workers);
    }

    process.stderr.write(
      `      ${issued.length} certificates (${issued.filter((x) => x.attempts > 1).length} needed retries, at most ${Math.max(...issued.map((x) => x.attempts))} attempts), ${ownerRetries} SetManifest retries; restarted replica to ready: ${recoveryMs.join(', ')} ms\n`,
    );
    assert.deepEqual(lost, [], 'no request lost beyond its retries');
    assert.equal(meshCAs.length, SETS + 1);
    assert.equal(new Set(meshCAs.map((m) => m.toString())).size, SETS + 1, 'every manifest got its own mesh CA');
    assert.ok(issued.length > 0);
    for (const c of issued) {
      const idx = meshCAs.findIndex((m) => m.equals(c.meshCA));
      assert.ok(idx >= 0, 'issued under the mesh CA its manifest was set with, never one a replica made up');
      assert.ok(idx >= c.started, `issued under manifest ${idx} after manifest ${c.started} had been set`);
    }
    // The history: linear, the manifests in the order they were set, the same on every replica.
    await Promise.all([0, 1, 2].map((i) => s.waitFor(i, 'ready')));
    const histories = await Promise.all([0, 1, 2].map((i) => history(i)));
    for (const h of histories) {
      assert.deepEqual(h.Manifests, sent);
      assert.deepEqual(h.LatestTransition, histories[0]!.LatestTransition);
    }
  });

  it('all replicas restarted: they wait for `recover`; after it on one, the others take the state from it', async () => {
    set = await ReplicaSet.create({ api, dir, simDir, policyHash: sha256(COORD).toString('hex'), count: 3 });
    const s = set;
    await Promise.all([0, 1, 2].map((i) => s.start(i)));
    const first = await setOn(0, 0);
    await Promise.all([0, 1, 2].map((i) => s.waitFor(i, 'ready')));
    await Promise.all([0, 1, 2].map((i) => s.kill(i)));
    await Promise.all([0, 1, 2].map((i) => s.start(i)));
    await Promise.all([0, 1, 2].map((i) => s.waitFor(i, 'waiting-for-recover')));
    const doc = first.SeedSharesDoc!;
    await user(
      1,
      'Recover',
      encode(RecoverRequestSchema, {
        Seed: decryptSeedShare(doc.SeedShares[0]!, rsa2048),
        Salt: doc.salt,
        Force: false,
      }),
      rsa2048,
    );
    await Promise.all([0, 1, 2].map((i) => s.waitFor(i, 'ready')));
    const cas = await Promise.all([0, 1, 2].map(async (i) => (await history(i)).MeshCA.toString()));
    assert.equal(new Set(cas).size, 1, 'one mesh CA after the recovery');
    assert.notEqual(cas[0], first.MeshCA.toString(), "a person's recovery makes a new one");
  });
});

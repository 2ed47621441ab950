/**
 * The Authority's refusals one by one, in process: each with its status code and the message a
 * user acts on, and a control that passes the same path. The state machine as a whole (crashes,
 * an untrusted store, snapshots) is in state.test.ts.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { Authority, ROOT_CERT_KEY, SEED_SHARES_KEY } from '../../src/coordinator/authority.js';
import { MemoryStore } from '../../src/coordinator/store/dir.js';
import type { Store } from '../../src/coordinator/store/interface.js';
import { RpcError, Status } from '../../src/coordinator/api/grpc.js';
import { decryptSeedShare, encryptSeedShares, seedShareDocumentToJson } from '../../src/coordinator/seedshares.js';
import { sha256, x509 } from '../../src/coordinator/crypto.js';
import { spkiDer } from '../../src/atls/binding.js';
import { COORD, SO_HEX, WO_HEX, manifest, rsa2048, wo } from './state-helpers.js';

const WEB = Buffer.from('web policy');
const SEND = [COORD, WEB];

function rpc(code: number, message: string | RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof RpcError, String(e));
    assert.equal(e.code, code, e.message);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  };
}

const digest = (hex: string) => sha256(Buffer.from(hex, 'hex')).toString('hex').slice(0, 16);

async function ready(logs: string[] = []) {
  const store = new MemoryStore();
  const a = await Authority.open(store, { log: (m) => logs.push(m) });
  const r = await a.setManifest(manifest(), SEND, undefined);
  const seed = decryptSeedShare(r.seedShares!.SeedShares[0]!, rsa2048);
  return { store, a, r, seed, salt: r.seedShares!.salt };
}

describe('Authority refusals (in process)', function () {
  this.timeout(60_000);

  describe('who may set a manifest', () => {
    it('names the expected owner keys by digest and what the caller presented', async () => {
      const { a } = await ready();
      const stranger = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
      const strangerHex = spkiDer(stranger).toString('hex');
      const tail = `expected one of: ${digest(WO_HEX)} (sha256 of the PKIX public key), got`;
      const base = 'the client key is not a workload owner key of the current manifest; ';
      await assert.rejects(
        a.setManifest(manifest(), SEND, stranger),
        rpc(Status.PERMISSION_DENIED, `${base}${tail} ${digest(strangerHex)}`),
      );
      await assert.rejects(
        a.setManifest(manifest(), SEND, rsa2048),
        rpc(Status.PERMISSION_DENIED, `${base}${tail} no ECDSA key`),
      );
      await assert.rejects(
        a.setManifest(manifest(), SEND, undefined),
        rpc(Status.PERMISSION_DENIED, `${base}${tail} no ECDSA key`),
      );
      assert.doesNotThrow(() => a.checkManifestUpdater(wo));
      assert.doesNotThrow(() => a.checkManifestUpdater(createPublicKey(wo)), 'a public key is the same owner');
      // Before the first manifest anyone may set one.
      const fresh = await Authority.open(new MemoryStore(), { log: () => undefined });
      assert.doesNotThrow(() => fresh.checkManifestUpdater(undefined));
      assert.doesNotThrow(() => fresh.checkManifestUpdater(rsa2048));
    });

    it('lists every owner key of the current manifest', async () => {
      const second = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
      const a = await Authority.open(new MemoryStore(), { log: () => undefined });
      const both = [WO_HEX, spkiDer(second).toString('hex')];
      await a.setManifest(manifest({ WorkloadOwnerPubKeys: both }), SEND, undefined);
      await assert.rejects(
        a.setManifest(manifest(), SEND, undefined),
        rpc(
          Status.PERMISSION_DENIED,
          new RegExp(`expected one of: ${digest(both[0]!)}, ${digest(both[1]!)} \\(sha256`),
        ),
      );
      await a.setManifest(manifest({ WorkloadOwnerPubKeys: both }), SEND, second);
    });

    it('a --disable-updates manifest can never be replaced, whoever asks', async () => {
      const a = await Authority.open(new MemoryStore(), { log: () => undefined });
      await a.setManifest(manifest({ WorkloadOwnerPubKeys: [] }), SEND, undefined);
      const msg =
        'the current manifest was generated with --disable-updates: it lists no workload owner keys, so it can never be replaced';
      await assert.rejects(a.setManifest(manifest(), SEND, wo), rpc(Status.PERMISSION_DENIED, msg));
      assert.throws(() => a.checkManifestUpdater(undefined), rpc(Status.PERMISSION_DENIED, msg));
    });

    it('in recovery nothing is set, by anyone', async () => {
      const { store } = await ready();
      const b = await Authority.open(store, { log: () => undefined });
      const msg =
        'the Coordinator restarted and waits for recovery: run `kubectl contrast recover` before setting a manifest';
      assert.throws(() => b.checkManifestUpdater(wo), rpc(Status.FAILED_PRECONDITION, msg));
      await assert.rejects(b.setManifest(manifest(), SEND, wo), rpc(Status.FAILED_PRECONDITION, msg));
    });
  });

  describe('what a manifest must come with', () => {
    it('its JSON must parse, every policy must be sent, and the seed-share owners stay', async () => {
      const a = await Authority.open(new MemoryStore(), { log: () => undefined });
      await assert.rejects(
        a.setManifest(Buffer.from('{"Policies": '), SEND, undefined),
        rpc(Status.INVALID_ARGUMENT, /^the manifest is not valid JSON: /),
      );
      await assert.rejects(
        a.setManifest(Buffer.from('[]'), SEND, undefined),
        rpc(Status.INVALID_ARGUMENT, 'manifest.(top level): manifest must be a JSON object'),
      );
      await assert.rejects(
        a.setManifest(manifest(), [COORD], undefined),
        rpc(Status.INVALID_ARGUMENT, `the policy ${sha256(WEB).toString('hex')} of the manifest was not sent with it`),
      );
      assert.equal(a.mode, 'uninitialised');
      await a.setManifest(manifest(), [WEB, Buffer.from('extra'), COORD], undefined);
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const otherHex = createPublicKey(other).export({ type: 'pkcs1', format: 'der' }).toString('hex');
      await assert.rejects(
        a.setManifest(manifest({ SeedshareOwnerPubKeys: [SO_HEX, otherHex] }), SEND, wo),
        rpc(
          Status.INVALID_ARGUMENT,
          'manifest.SeedshareOwnerPubKeys: cannot change after the first manifest (nor can DisableRecovery)',
        ),
      );
      await assert.rejects(
        a.setManifest(manifest({ SeedshareOwnerPubKeys: [otherHex] }), SEND, wo),
        rpc(Status.INVALID_ARGUMENT, /cannot change after the first manifest/),
      );
      // Control: the same owners in an update.
      await a.setManifest(manifest({ policies: [Buffer.from('v2')] }), [COORD, Buffer.from('v2')], wo);
    });

    it('only what was sent and listed is stored; unlisted policies are not', async () => {
      const { store } = await ready();
      const stored = [...store.data.keys()].filter((k) => k.startsWith('policies/')).sort();
      assert.deepEqual(stored, [COORD, WEB].map((p) => `policies/${sha256(p).toString('hex')}`).sort());
    });
  });

  describe('a second writer on the same store', () => {
    it('a first SetManifest on a store that already holds a history is ABORTED; the replica then shows that history', async () => {
      const store = new MemoryStore();
      const a = await Authority.open(store, { log: () => undefined });
      const b = await Authority.open(store, { log: () => undefined });
      await a.setManifest(manifest(), SEND, undefined);
      const before = new Map(store.data);
      await assert.rejects(
        b.setManifest(manifest(), SEND, undefined),
        rpc(
          Status.ABORTED,
          'the store already holds a manifest history (another replica set one): this replica takes it over from a ready peer, or waits for `kubectl contrast recover`; nothing was changed',
        ),
      );
      assert.deepEqual(store.data, before, 'nothing written');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(b.mode, 'recovery', 'it learnt the stored history');
      assert.equal(b.replicaState, 'waiting-for-recover', 'no peers: only a person can help');
      assert.equal(b.snapshot(), undefined);
      assert.deepEqual(b.manifest?.raw, manifest());
    });

    it('a first SetManifest that loses the race for transitions/latest is ABORTED and leaves this Coordinator uninitialised', async () => {
      const inner = new MemoryStore();
      // Another Coordinator writes the latest pointer just before this one's compare-and-swap.
      const racing: Store = {
        get: (k) => inner.get(k),
        set: (k, v) => inner.set(k, v),
        compareAndSwap: async (k, expected, v) => {
          if (k === 'transitions/latest') await inner.set(k, Buffer.from('someone else'));
          return inner.compareAndSwap(k, expected, v);
        },
      };
      const a = await Authority.open(racing, { log: () => undefined });
      await assert.rejects(
        a.setManifest(manifest(), SEND, undefined),
        rpc(Status.ABORTED, 'another Coordinator set a manifest concurrently; nothing was changed'),
      );
      assert.equal(a.mode, 'uninitialised');
      assert.equal(a.snapshot(), undefined);
      assert.equal(a.manifest, undefined);
    });
  });

  describe('recovery', () => {
    it('refuses to recover what is not waiting for it', async () => {
      const fresh = await Authority.open(new MemoryStore(), { log: () => undefined });
      await assert.rejects(
        fresh.recover(randomBytes(64), randomBytes(32), rsa2048),
        rpc(Status.FAILED_PRECONDITION, 'the Coordinator has no history to recover: run `kubectl contrast set`'),
      );
      const { a, seed, salt } = await ready();
      await assert.rejects(
        a.recover(seed, salt, rsa2048),
        rpc(Status.FAILED_PRECONDITION, 'the Coordinator is already recovered (or was never restarted); nothing to do'),
      );
    });

    it('refuses a history that was deleted since the start, a caller that is no seed-share owner, and a malformed seed', async () => {
      const { store, seed, salt } = await ready();
      const gone = new MemoryStore();
      for (const [k, v] of store.data) gone.data.set(k, v);
      const g = await Authority.open(gone, { log: () => undefined });
      gone.data.delete('transitions/latest');
      await assert.rejects(
        g.recover(seed, salt, rsa2048),
        rpc(
          Status.FAILED_PRECONDITION,
          'the stored history is gone (transitions/latest was deleted); nothing to recover',
        ),
      );
      await assert.rejects(g.getManifests(), rpc(Status.INTERNAL, 'the history has no latest transition'));

      const b = await Authority.open(store, { log: () => undefined });
      const base = `the client key is not a seed-share owner key of the manifest; expected one of: ${digest(SO_HEX)} (sha256 of the PKCS#1 public key), got`;
      const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const strangerHex = createPublicKey(stranger).export({ type: 'pkcs1', format: 'der' }).toString('hex');
      await assert.rejects(
        b.recover(seed, salt, stranger),
        rpc(Status.PERMISSION_DENIED, `${base} ${digest(strangerHex)}`),
      );
      await assert.rejects(b.recover(seed, salt, wo), rpc(Status.PERMISSION_DENIED, `${base} no RSA key`));
      await assert.rejects(b.recover(seed, salt, undefined), rpc(Status.PERMISSION_DENIED, `${base} no RSA key`));
      await assert.rejects(b.recover(seed.subarray(1), salt, rsa2048), rpc(Status.INVALID_ARGUMENT, /64 bytes/));
      await assert.rejects(b.recover(seed, salt.subarray(1), rsa2048), rpc(Status.INVALID_ARGUMENT, /32 bytes/));
      assert.equal(b.mode, 'recovery');
      // Control: the owner's public key is enough.
      await b.recover(seed, salt, createPublicKey(rsa2048));
      assert.equal(b.mode, 'ready');
    });

    it('recovers the root it stored without rewriting it, and logs a root that belongs to another seed', async () => {
      const { store, seed, salt, r } = await ready();
      const writes: string[] = [];
      const watching: Store = {
        get: (k) => store.get(k),
        set: async (k, v) => {
          writes.push(k);
          return store.set(k, v);
        },
        compareAndSwap: (k, e, v) => store.compareAndSwap(k, e, v),
      };
      const b = await Authority.open(watching, { log: () => undefined });
      await b.recover(seed, salt, rsa2048);
      assert.deepEqual(writes, [SEED_SHARES_KEY], "the stored root was canonical and the seed's: not written again");
      assert.equal((await b.getManifests()).rootCA, r.rootCA);

      const logs: string[] = [];
      const other = await ready();
      store.data.set(ROOT_CERT_KEY, other.store.data.get(ROOT_CERT_KEY)!);
      const c = await Authority.open(store, { log: (m) => logs.push(m) });
      await c.recover(seed, salt, rsa2048);
      assert.deepEqual(logs, [
        `${ROOT_CERT_KEY} in the store is not the root certificate of this seed; issuing it again`,
      ]);
      assert.equal(
        new X509Certificate((await c.getManifests()).rootCA).publicKey
          .export({ type: 'spki', format: 'der' })
          .toString('hex'),
        new X509Certificate(r.rootCA).publicKey.export({ type: 'spki', format: 'der' }).toString('hex'),
      );
    });
  });

  describe('what is taken from an untrusted store', () => {
    /** A self-signed P-384 certificate with `name`, CA or not, signed by `signer` (default: its own key). */
    async function cert(name: string, ca: boolean, signWith?: webcrypto.CryptoKeyPair): Promise<string> {
      const alg = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
      const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
      const c = await x509.X509CertificateGenerator.create({
        serialNumber: '01',
        subject: name,
        issuer: name,
        notBefore: new Date(Date.now() - 1000),
        notAfter: new Date(Date.now() + 3600_000),
        signingAlgorithm: alg,
        publicKey: keys.publicKey,
        signingKey: (signWith ?? keys).privateKey,
        extensions: [new x509.BasicConstraintsExtension(ca, undefined, true)],
      });
      return c.toString('pem');
    }

    it('ignores a stored root with another name, one that is no CA, one not signed by its key, and says why', async () => {
      const cases: [string, () => Promise<string>, string][] = [
        ['another name', () => cert('CN=someone', true), 'its subject is "CN=someone", not CN=system:coordinator:root'],
        ['no CA', () => cert('CN=system:coordinator:root', false), 'it is not a CA certificate'],
        [
          'not self-signed',
          async () =>
            cert(
              'CN=system:coordinator:root',
              true,
              (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, [
                'sign',
                'verify',
              ])) as webcrypto.CryptoKeyPair,
            ),
          'it is not self-signed by its key',
        ],
        [
          'two certificates',
          async () =>
            `${await cert('CN=system:coordinator:root', true)}${await cert('CN=system:coordinator:root', true)}`,
          '',
        ],
      ];
      for (const [what, make, reason] of cases) {
        const { store } = await ready();
        store.data.set(ROOT_CERT_KEY, Buffer.from(await make()));
        const logs: string[] = [];
        const b = await Authority.open(store, { log: (m) => logs.push(m) });
        assert.equal((await b.getManifests()).rootCA, '', `${what}: not served`);
        assert.equal(logs.length, 1, `${what}: ${logs.join('; ')}`);
        assert.ok(logs[0]!.startsWith(`ignoring ${ROOT_CERT_KEY} from the store: ${reason}`), `${what}: ${logs[0]}`);
      }
    });

    it('serves a stored seed-share document only if it has a share for every owner of the latest manifest', async () => {
      const { store, salt, seed } = await ready();
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const otherHex = createPublicKey(other).export({ type: 'pkcs1', format: 'der' }).toString('hex');
      store.data.set(SEED_SHARES_KEY, Buffer.from(seedShareDocumentToJson(encryptSeedShares(seed, salt, [otherHex]))));
      const logs: string[] = [];
      const b = await Authority.open(store, { log: (m) => logs.push(m) });
      const h = await b.getManifests();
      assert.equal(h.seedShares, undefined);
      assert.equal('seedShares' in h, false);
      assert.deepEqual(logs, [
        `ignoring ${SEED_SHARES_KEY} from the store: its shares are not for the SeedshareOwnerPubKeys of the latest manifest`,
      ]);
      store.data.delete(SEED_SHARES_KEY);
      const c = await Authority.open(store, { log: () => undefined });
      assert.equal('seedShares' in (await c.getManifests()), false);
    });

    it('a policy missing from the store is an internal error naming it; a stored manifest that no longer validates too', async () => {
      const { store } = await ready();
      store.data.delete(`policies/${sha256(WEB).toString('hex')}`);
      const b = await Authority.open(store, { log: () => undefined });
      await assert.rejects(
        b.getManifests(),
        rpc(Status.INTERNAL, `policy ${sha256(WEB).toString('hex')} is missing from the store`),
      );
    });

    it('waiting for recovery, the history is served without a mesh CA; ready, with the current one', async () => {
      const { store, a, seed, salt } = await ready();
      const live = await a.getManifests();
      assert.equal(live.meshCA, a.snapshot()!.mesh.meshCAPem);
      assert.ok(live.seedShares);
      const b = await Authority.open(store, { log: () => undefined });
      const waiting = await b.getManifests();
      assert.equal(waiting.meshCA, '');
      assert.deepEqual(waiting.latest, live.latest);
      assert.deepEqual(waiting.policies.map((p) => p.toString()).sort(), SEND.map((p) => p.toString()).sort());
      assert.ok(Object.isFrozen(b.manifest!.manifest.Policies), 'the stored manifest is frozen');
      await b.recover(seed, salt, rsa2048);
      assert.notEqual((await b.getManifests()).meshCA, '');
    });
  });

  describe('mesh certificates', () => {
    it('none while waiting for recovery, even from a snapshot of before', async () => {
      const { store, a } = await ready();
      const snap = a.snapshot()!;
      const b = await Authority.open(store, { log: () => undefined });
      const wl = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
      await assert.rejects(
        b.newMeshCert(snap, wl, sha256(WEB).toString('hex')),
        rpc(
          Status.FAILED_PRECONDITION,
          'the Coordinator restarted and waits for recovery: run `kubectl contrast recover` with a seed share',
        ),
      );
      // A ready Authority refuses another's snapshot as stale.
      const other = await ready();
      await assert.rejects(
        other.a.newMeshCert(snap, wl, sha256(WEB).toString('hex')),
        rpc(Status.UNAVAILABLE, /manifest changed/),
      );
    });

    it('a policy hash that is no own key of the Policies object is not found', async () => {
      const { a } = await ready();
      const wl = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
      for (const hash of ['__proto__', 'constructor', 'toString', 'ab'.repeat(32)]) {
        await assert.rejects(
          a.newMeshCert(a.snapshot()!, wl, hash),
          rpc(
            Status.PERMISSION_DENIED,
            `policy hash ${hash} not found in manifest: the pod runs a policy the current manifest does not list; run \`kubectl contrast generate\` and \`set\` again`,
          ),
        );
      }
    });

    it('issues leaf and intermediate, the root, and the workload secret of the entry (none without a WorkloadSecretID)', async () => {
      const { a, r } = await ready();
      const wl = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
      const snap = a.snapshot()!;
      const web = await a.newMeshCert(snap, wl, sha256(WEB).toString('hex'));
      assert.equal(web.rootCA, r.rootCA);
      assert.equal(web.meshCA, r.meshCA);
      assert.ok(web.certChain.endsWith(snap.mesh.intermediatePem));
      assert.deepEqual(web.workloadSecret, snap.engine.workloadSecret('id-0'));
      const leaf = new X509Certificate(web.certChain.slice(0, web.certChain.indexOf(snap.mesh.intermediatePem)));
      assert.ok(leaf.publicKey.equals(wl));
      assert.match(leaf.subjectAltName ?? '', /DNS:w0/);
      const coord = await a.newMeshCert(snap, wl, sha256(COORD).toString('hex'));
      assert.equal(coord.workloadSecret.length, 0);
    });
  });

  it('transitionOf is the hash a client recomputes', () => {
    const m = Buffer.from('m');
    const prev = Buffer.alloc(32, 7);
    const t = Authority.transitionOf(m, prev);
    assert.equal(t.length, 32);
    assert.notDeepEqual(t, Authority.transitionOf(m, Buffer.alloc(32)));
    assert.notDeepEqual(t, Authority.transitionOf(Buffer.from('n'), prev));
  });
});

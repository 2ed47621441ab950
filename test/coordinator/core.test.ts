import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SeedEngine } from '../../src/coordinator/seedengine.js';
import { deriveP384Key } from '../../src/coordinator/crypto.js';
import { createMeshCA, createRootCert, issueMeshCert, OID_WORKLOAD_SECRET_ID } from '../../src/coordinator/ca.js';
import { DirStore, MemoryStore } from '../../src/coordinator/store/dir.js';
import { History, ZERO_HASH, chainHash } from '../../src/coordinator/history.js';
import {
  decryptSeedShare,
  encryptSeedShares,
  seedShareDocumentFromJson,
  seedShareDocumentToJson,
} from '../../src/coordinator/seedshares.js';
import { Authority } from '../../src/coordinator/authority.js';
import { RpcError, Status } from '../../src/coordinator/api/grpc.js';
import { decode, encode } from '../../src/util/protobuf.js';
import {
  GetManifestsResponseSchema,
  RecoverRequestSchema,
  SetManifestResponseSchema,
} from '../../src/coordinator/api/messages.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';

function owners() {
  const wo = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const so = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  return {
    wo,
    so,
    woHex: createPublicKey(wo).export({ type: 'spki', format: 'der' }).toString('hex'),
    soHex: createPublicKey(so).export({ type: 'pkcs1', format: 'der' }).toString('hex'),
  };
}

function manifestFor(policies: Buffer[], woHex: string[], soHex: string[]): Buffer {
  const Policies: Record<string, unknown> = {};
  // The first policy is the Coordinator's: a manifest without one is refused.
  policies.forEach((p, i) => {
    Policies[sha256(p).toString('hex')] = {
      SANs: [`w${i}`, '*'],
      WorkloadSecretID: `id-${i}`,
      ...(i === 0 ? { Role: 'coordinator' } : {}),
    };
  });
  const ReferenceValues = { insecure: [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }] };
  return Buffer.from(
    `${JSON.stringify({ Policies, ReferenceValues, WorkloadOwnerPubKeys: woHex, SeedshareOwnerPubKeys: soHex }, null, 2)}\n`,
  );
}

describe('coordinator core', () => {
  describe('seed engine', () => {
    it('derives the same keys and workload secrets from the same seed and salt', () => {
      const seed = randomBytes(64);
      const salt = randomBytes(32);
      const a = new SeedEngine(seed, salt);
      const b = new SeedEngine(Buffer.from(seed), Buffer.from(salt));
      assert.deepEqual(
        createPublicKey(a.rootCAKey).export({ type: 'spki', format: 'der' }),
        createPublicKey(b.rootCAKey).export({ type: 'spki', format: 'der' }),
      );
      assert.deepEqual(
        createPublicKey(a.transactionSigningKey).export({ type: 'spki', format: 'der' }),
        createPublicKey(b.transactionSigningKey).export({ type: 'spki', format: 'der' }),
      );
      assert.equal(a.workloadSecret('web').length, 64);
      assert.deepEqual(a.workloadSecret('web'), b.workloadSecret('web'));
      assert.notDeepEqual(a.workloadSecret('web'), a.workloadSecret('api'));
      const c = new SeedEngine(randomBytes(64), salt);
      assert.notDeepEqual(a.workloadSecret('web'), c.workloadSecret('web'));
    });
    it('rejects wrong sizes', () => {
      assert.throws(() => new SeedEngine(randomBytes(32), randomBytes(32)), /64 bytes/);
      assert.throws(() => new SeedEngine(randomBytes(64), randomBytes(16)), /32 bytes/);
    });
    it('derives valid P-384 keys deterministically', () => {
      const k = deriveP384Key(Buffer.from('secret'));
      assert.equal(k.asymmetricKeyDetails?.namedCurve, 'secp384r1');
      assert.deepEqual(k.export({ format: 'jwk' }), deriveP384Key(Buffer.from('secret')).export({ format: 'jwk' }));
    });
  });

  describe('seed shares', () => {
    it('encrypts the seed to every owner and round-trips through JSON', () => {
      const a = owners();
      const b = owners();
      const seed = randomBytes(64);
      const doc = encryptSeedShares(seed, randomBytes(32), [a.soHex, b.soHex]);
      const back = seedShareDocumentFromJson(seedShareDocumentToJson(doc));
      assert.deepEqual(decryptSeedShare(back.SeedShares[0]!, a.so), seed);
      assert.deepEqual(decryptSeedShare(back.SeedShares[1]!, b.so), seed);
      assert.throws(() => decryptSeedShare(back.SeedShares[0]!, b.so));
    });
  });

  describe('CA', () => {
    it('builds root → intermediate → mesh certificate chains and a self-signed mesh CA', async () => {
      const engine = SeedEngine.generate();
      const rootPem = await createRootCert(engine.rootCAKey);
      const ca = await createMeshCA(engine.rootCAKey, rootPem);
      const wl = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const leafPem = await issueMeshCert(ca, {
        publicKey: wl.publicKey,
        sans: ['web', '*', '10.0.0.1', 'spiffe://x/y'],
        workloadSecretId: 'web-id',
      });
      const root = new X509Certificate(rootPem);
      const inter = new X509Certificate(ca.intermediatePem);
      const mesh = new X509Certificate(ca.meshCAPem);
      const leaf = new X509Certificate(leafPem);
      assert.ok(root.verify(root.publicKey));
      assert.ok(inter.verify(root.publicKey));
      assert.ok(mesh.verify(mesh.publicKey));
      assert.ok(leaf.verify(mesh.publicKey));
      assert.ok(leaf.checkIssued(inter));
      assert.ok(leaf.checkIssued(mesh));
      assert.match(root.subject, /system:coordinator:root/);
      assert.match(leaf.subject, /CN=web/);
      assert.match(leaf.subjectAltName ?? '', /DNS:web, DNS:\*, IP Address:10.0.0.1, URI:spiffe:\/\/x\/y/);
      assert.ok(leaf.raw.includes(Buffer.from('web-id')));
      assert.ok(leaf.publicKey.equals(wl.publicKey));
      void OID_WORKLOAD_SECRET_ID;
    });
  });

  describe('stores', () => {
    let dir: string;
    beforeEach(() => {
      dir = tempDir('kc-store-');
    });
    afterEach(() => removeDir(dir));
    for (const kind of ['dir', 'memory'] as const) {
      it(`${kind}: get/set/compare-and-swap`, async () => {
        const s = kind === 'dir' ? new DirStore(dir) : new MemoryStore();
        assert.equal(await s.get('a/b'), undefined);
        await s.set('a/b', Buffer.from('1'));
        assert.deepEqual(await s.get('a/b'), Buffer.from('1'));
        assert.equal(await s.compareAndSwap('a/b', Buffer.from('2'), Buffer.from('3')), false);
        assert.equal(await s.compareAndSwap('a/b', Buffer.from('1'), Buffer.from('3')), true);
        assert.equal(await s.compareAndSwap('x', undefined, Buffer.from('new')), true);
        assert.equal(await s.compareAndSwap('x', undefined, Buffer.from('again')), false);
        assert.deepEqual(await s.get('a/b'), Buffer.from('3'));
        await assert.rejects(async () => s.get('../etc/passwd'));
      });
    }
    it('dir: concurrent CAS lets exactly one writer win and leaves no temporary files', async () => {
      const s = new DirStore(dir);
      await s.set('k', Buffer.from('0'));
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => s.compareAndSwap('k', Buffer.from('0'), Buffer.from(String(i + 1)))),
      );
      assert.equal(results.filter(Boolean).length, 1);
      assert.deepEqual(readdirSync(dir), ['k']);
      assert.equal(statSync(join(dir, 'k')).mode & 0o777, 0o600);
      assert.notEqual(readFileSync(join(dir, 'k'), 'utf8'), '0');
    });
  });

  describe('history', () => {
    it('chains transitions, signs latest and detects tampering', async () => {
      const store = new MemoryStore();
      const h = new History(store);
      const engine = SeedEngine.generate();
      const manifests = [Buffer.from('m1'), Buffer.from('m2'), Buffer.from('m3')];
      let latest = await h.getLatest();
      for (const m of manifests) {
        const mh = await h.setManifest(m);
        const t = await h.setTransition({
          manifestHash: mh,
          previousTransitionHash: latest?.transitionHash ?? ZERO_HASH,
        });
        assert.equal(await h.setLatest(latest, t, engine.transactionSigningKey), true);
        latest = await h.getLatest(engine.transactionSigningKey);
      }
      const entries = await h.walk(latest);
      assert.deepEqual(
        entries.map((e) => e.manifest.toString()),
        ['m1', 'm2', 'm3'],
      );
      assert.deepEqual(latest!.transitionHash, chainHash(manifests));
      await assert.rejects(h.getLatest(SeedEngine.generate().transactionSigningKey), /does not verify/);
      store.data.set(`manifests/${sha256(Buffer.from('m2')).toString('hex')}`, Buffer.from('evil'));
      await assert.rejects(h.walk(latest), /does not match its hash/);
    });
  });

  describe('authority', () => {
    it('sets, updates with owner authorisation, recovers after restart with the same secrets', async () => {
      const store = new MemoryStore();
      const o = owners();
      const p1 = Buffer.from('policy-1');
      const p2 = Buffer.from('policy-2');
      const m1 = manifestFor([p1], [o.woHex], [o.soHex]);
      const a = await Authority.open(store);
      assert.equal(a.mode, 'uninitialised');
      const r1 = await a.setManifest(m1, [p1], undefined);
      assert.ok(r1.seedShares);
      const wl = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const h1 = sha256(p1).toString('hex');
      const c1 = await a.newMeshCert(a.snapshot()!, wl.publicKey, h1);
      await assert.rejects(
        a.newMeshCert(a.snapshot()!, wl.publicKey, 'ab'.repeat(32)),
        (e: RpcError) => e.code === Status.PERMISSION_DENIED && /not found in manifest/.test(e.message),
      );

      const m2 = manifestFor([p1, p2], [o.woHex], [o.soHex]);
      await assert.rejects(
        a.setManifest(m2, [p1, p2], undefined),
        (e: RpcError) => e.code === Status.PERMISSION_DENIED,
      );
      await assert.rejects(
        a.setManifest(m2, [p1, p2], owners().wo),
        (e: RpcError) => e.code === Status.PERMISSION_DENIED && /workload owner/.test(e.message),
      );
      await assert.rejects(a.setManifest(m2, [p1], o.wo), /was not sent/);
      const r2 = await a.setManifest(m2, [p1, p2], o.wo);
      assert.equal(r2.seedShares, undefined);
      assert.notEqual(r2.meshCA, r1.meshCA);
      assert.equal(r2.rootCA, r1.rootCA);

      // Restart.
      const b = await Authority.open(store);
      assert.equal(b.mode, 'recovery');
      const hist = await b.getManifests();
      assert.deepEqual(hist.manifests, [m1, m2]);
      assert.equal(hist.rootCA, r1.rootCA);
      assert.equal(b.snapshot(), undefined, 'nothing is issued while waiting for recovery');
      await assert.rejects(b.setManifest(m2, [p1, p2], o.wo), /recover/);
      const seed = decryptSeedShare(r1.seedShares!.SeedShares[0]!, o.so);
      await assert.rejects(b.recover(seed, r1.seedShares!.salt, owners().so), /seed-share owner/);
      await assert.rejects(b.recover(randomBytes(64), r1.seedShares!.salt, o.so), /does not belong/);
      await b.recover(seed, r1.seedShares!.salt, o.so);
      assert.equal(b.mode, 'ready');
      const c2 = await b.newMeshCert(b.snapshot()!, wl.publicKey, h1);
      assert.deepEqual(c2.workloadSecret, c1.workloadSecret);
      assert.equal(c2.rootCA, c1.rootCA);
      assert.notEqual(c2.meshCA, c1.meshCA);
    });
    it('refuses updates of a --disable-updates manifest', async () => {
      const o = owners();
      const p = Buffer.from('p');
      const a = await Authority.open(new MemoryStore());
      await a.setManifest(manifestFor([p], [], [o.soHex]), [p], undefined);
      await assert.rejects(a.setManifest(manifestFor([p], [o.woHex], [o.soHex]), [p], o.wo), /disable-updates/);
    });
  });

  describe('protobuf', () => {
    it('round-trips messages with nested and repeated fields', () => {
      const msg = {
        Manifests: [Buffer.from('a'), Buffer.alloc(0)],
        Policies: [],
        RootCA: Buffer.from('root'),
        MeshCA: Buffer.alloc(0),
        LatestTransition: { TransitionHash: Buffer.alloc(32, 1), Signature: Buffer.from('sig') },
      };
      const back = decode<typeof msg>(GetManifestsResponseSchema, encode(GetManifestsResponseSchema, msg));
      assert.deepEqual(back, msg);
      const sm = {
        RootCA: Buffer.from('r'),
        MeshCA: Buffer.from('m'),
        SeedSharesDoc: { SeedShares: [{ PublicKey: 'ab', EncryptedSeed: Buffer.from('x') }], salt: Buffer.alloc(32) },
      };
      assert.deepEqual(decode(SetManifestResponseSchema, encode(SetManifestResponseSchema, sm)), sm);
      // Field 1 bytes "a" = 0a 01 61: the upstream wire format.
      assert.deepEqual(
        encode(GetManifestsResponseSchema, { Manifests: [Buffer.from('a')] }),
        Buffer.from('0a0161', 'hex'),
      );
      assert.throws(() => decode(GetManifestsResponseSchema, Buffer.from('0a0561', 'hex')), /runs past/);
    });

    it('has one reading of every message: no repeated singular field, no field 0, bools 0 or 1', () => {
      // RootCA (field 3) twice: proto3 would take the last, refused instead.
      assert.throws(
        () => decode(GetManifestsResponseSchema, Buffer.from('1a01611a0162', 'hex')),
        /RootCA appears twice/,
      );
      // Repeated fields may repeat; unknown fields are skipped (newer peers).
      assert.equal(
        decode<{ Manifests: Buffer[] }>(GetManifestsResponseSchema, Buffer.from('0a01610a0162', 'hex')).Manifests
          .length,
        2,
      );
      assert.deepEqual(
        decode<{ RootCA: Buffer }>(GetManifestsResponseSchema, Buffer.from('1a0161fa0f0178', 'hex')).RootCA,
        Buffer.from('a'),
      );
      assert.throws(() => decode(GetManifestsResponseSchema, Buffer.from('0201', 'hex')), /field number 0/);
      assert.throws(() => decode(RecoverRequestSchema, Buffer.from('1802', 'hex')), /bool value 2/);
      assert.equal(decode<{ Force: boolean }>(RecoverRequestSchema, Buffer.from('1801', 'hex')).Force, true);
    });
  });
});

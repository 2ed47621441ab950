/**
 * Integrity of the Coordinator's state, in process: manifests and owner keys are validated
 * before anything is stored; a crash at any write of the first SetManifest leaves no manifest or
 * a recoverable one; the store is untrusted (root certificate, seed-share document, a rolled
 * back latest pointer); mesh certificates come from the snapshot the evidence was checked
 * against. (A 10,000-policy manifest: state-big.test.ts.)
 */
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import { Authority, ROOT_CERT_KEY, SEED_SHARES_KEY } from '../../src/coordinator/authority.js';
import { MemoryStore } from '../../src/coordinator/store/dir.js';
import type { Store } from '../../src/coordinator/store/interface.js';
import { RpcError, Status } from '../../src/coordinator/api/grpc.js';
import { decryptSeedShare, type SeedShareDocument } from '../../src/coordinator/seedshares.js';
import { SeedEngine } from '../../src/coordinator/seedengine.js';
import { createRootCert } from '../../src/coordinator/ca.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import { parsePemCertificates } from '../../src/attestation/certificate.js';
import { checkManifestReady, validateManifest, ManifestError } from '../../src/coordinator/manifest.js';
import { SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';
import {
  COORD,
  SO_HEX,
  WO_HEX,
  manifest,
  pkcs1,
  pkix,
  quiet,
  rootKeyDer,
  rsa2048,
  wo,
  type ManifestParts,
} from './state-helpers.js';

function invalidArgument(pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof RpcError, String(e));
    assert.equal(e.code, Status.INVALID_ARGUMENT, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

/** Count the writes; after `limit` of them every write fails, as if the process had died. */
class CrashingStore implements Store {
  writes = 0;
  crashed = false;
  constructor(
    readonly inner: MemoryStore,
    private readonly limit = Infinity,
  ) {}
  get(key: string) {
    return this.inner.get(key);
  }
  private gate(): void {
    if (this.writes >= this.limit) {
      this.crashed = true;
      throw new Error('crashed');
    }
    this.writes++;
  }
  async set(key: string, value: Uint8Array) {
    this.gate();
    return this.inner.set(key, value);
  }
  async compareAndSwap(key: string, expected: Uint8Array | undefined, value: Uint8Array) {
    this.gate();
    return this.inner.compareAndSwap(key, expected, value);
  }
}

describe('Coordinator state integrity', function () {
  this.timeout(300_000);

  describe('manifest validation before anything is stored', () => {
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const badSeedshareKeys: [string, unknown, RegExp][] = [
      [
        'an RSA key under 2048 bits',
        pkcs1(rsa1024),
        /^manifest\.SeedshareOwnerPubKeys\[1\]: RSA key of 1024 bits; at least 2048 required$/,
      ],
      [
        'garbage',
        'zz11',
        /^manifest\.SeedshareOwnerPubKeys\[1\]: must be a hex-encoded public key \(lower-case hex digits/,
      ],
      [
        'bytes that are no key',
        'deadbeef',
        /^manifest\.SeedshareOwnerPubKeys\[1\]: is not an RSA public key in PKCS#1 DER/,
      ],
      [
        'a valid key with trailing bytes',
        `${SO_HEX}00`,
        /^manifest\.SeedshareOwnerPubKeys\[1\]: has 1 trailing byte\(s\) after the key$/,
      ],
      [
        'an ECDSA key',
        pkix(ec),
        /^manifest\.SeedshareOwnerPubKeys\[1\]: is not an RSA public key in PKCS#1 DER \(it is a PKIX ec key/,
      ],
      [
        'the PKIX form of an RSA key',
        pkix(rsa2048),
        /^manifest\.SeedshareOwnerPubKeys\[1\]: .*it is PKIX\/SubjectPublicKeyInfo; list the PKCS#1 form/,
      ],
      [
        'upper-case hex',
        SO_HEX.toUpperCase(),
        /^manifest\.SeedshareOwnerPubKeys\[1\]: must be a hex-encoded public key \(lower-case/,
      ],
      ['a number', 42, /^manifest\.SeedshareOwnerPubKeys\[1\]: must be a hex-encoded public key \(a string\)$/],
      [
        'the same key twice',
        SO_HEX,
        /^manifest\.SeedshareOwnerPubKeys\[1\]: the same key as SeedshareOwnerPubKeys\[0\]$/,
      ],
    ];
    for (const [what, key, message] of badSeedshareKeys) {
      it(`refuses a seed-share owner key that is ${what}, storing nothing`, async () => {
        const store = new MemoryStore();
        const a = await Authority.open(store, quiet);
        await assert.rejects(
          a.setManifest(
            manifest({ SeedshareOwnerPubKeys: [SO_HEX, key] }),
            [COORD, Buffer.from('web policy')],
            undefined,
          ),
          invalidArgument(message),
        );
        assert.deepEqual([...store.data.keys()], [], 'nothing may be stored for a refused manifest');
        assert.equal(a.mode, 'uninitialised');
      });
    }

    const compressed = (() => {
      // SubjectPublicKeyInfo of the same P-384 key with a compressed point: a second encoding.
      const der = Buffer.from(WO_HEX, 'hex');
      const point = der.subarray(der.length - 97);
      const x = point.subarray(1, 49);
      const prefix = Buffer.from([point[96]! & 1 ? 0x03 : 0x02]);
      const head = der.subarray(0, der.length - 97 - 3);
      const bitString = Buffer.concat([Buffer.from([0x03, 50, 0x00]), prefix, x]);
      const algo = head.subarray(2);
      const body = Buffer.concat([algo, bitString]);
      return Buffer.concat([Buffer.from([0x30, body.length]), body]).toString('hex');
    })();
    const badWorkloadKeys: [string, unknown, RegExp][] = [
      [
        'an RSA key',
        pkix(rsa2048),
        /^manifest\.WorkloadOwnerPubKeys\[0\]: is an rsa key; a workload owner key must be ECDSA$/,
      ],
      [
        'a valid key with trailing bytes',
        `${WO_HEX}0000`,
        /^manifest\.WorkloadOwnerPubKeys\[0\]: has 2 trailing byte\(s\) after the key$/,
      ],
      [
        'a compressed point',
        compressed,
        /^manifest\.WorkloadOwnerPubKeys\[0\]: (is not the canonical encoding|is not a PKIX)/,
      ],
      ['PKCS#1 bytes', SO_HEX, /^manifest\.WorkloadOwnerPubKeys\[0\]: is not a PKIX/],
    ];
    for (const [what, key, message] of badWorkloadKeys) {
      it(`refuses a workload owner key that is ${what}`, async () => {
        const store = new MemoryStore();
        const a = await Authority.open(store, quiet);
        await assert.rejects(
          a.setManifest(manifest({ WorkloadOwnerPubKeys: [key] }), [COORD, Buffer.from('web policy')], undefined),
          invalidArgument(message),
        );
        assert.equal(store.data.size, 0);
      });
    }

    const web = sha256(Buffer.from('web policy')).toString('hex');
    const badManifests: [string, ManifestParts, RegExp][] = [
      [
        'has no Coordinator policy',
        { Policies: { [web]: { SANs: ['web'] } } },
        /^manifest\.Policies: no policy has "Role": "coordinator"/,
      ],
      [
        'has an upper-case policy hash',
        { Policies: { [sha256(COORD).toString('hex').toUpperCase()]: { SANs: [], Role: 'coordinator' } } },
        /^manifest\.Policies\["[0-9A-F]{64}"\]: policy hash must be 64 lower-case hex characters$/,
      ],
      [
        'has a short policy hash',
        { Policies: { abcd: { SANs: [], Role: 'coordinator' } } },
        /^manifest\.Policies\["abcd"\]: policy hash must be 64 lower-case hex/,
      ],
      [
        'has an unknown role',
        { Policies: { [web]: { SANs: [], Role: 'admin' } } },
        /^manifest\.Policies\["[0-9a-f]{64}"\]\.Role: unknown role "admin"/,
      ],
      ['has no reference values', { ReferenceValues: {} }, /^manifest\.ReferenceValues: lists no reference values/],
      [
        'has a short measurement',
        { ReferenceValues: { insecure: [{ TrustedMeasurement: 'abcd' }] } },
        /^manifest\.ReferenceValues\.insecure\[0\]\.TrustedMeasurement: must be 48 bytes/,
      ],
      [
        'has an unfilled SNP measurement',
        {
          ReferenceValues: {
            snp: [
              {
                TrustedMeasurement: '',
                MinimumTCB: { BootloaderVersion: 1, TEEVersion: 1, SNPVersion: 1, MicrocodeVersion: 1 },
              },
            ],
          },
        },
        /^manifest\.ReferenceValues\.snp\[0\]\.TrustedMeasurement: must be filled in/,
      ],
      [
        'has a malformed SNP TCB',
        {
          ReferenceValues: {
            snp: [
              {
                TrustedMeasurement: 'ab'.repeat(48),
                MinimumTCB: { BootloaderVersion: 300, TEEVersion: 1, SNPVersion: 1, MicrocodeVersion: 1 },
              },
            ],
          },
        },
        /^manifest\.ReferenceValues\.snp\[0\]\.MinimumTCB\.BootloaderVersion: must be an integer 0\.\.255$/,
      ],
      [
        'mixes simulated and real platforms',
        {
          ReferenceValues: {
            insecure: [{ TrustedMeasurement: SIMULATED_MEASUREMENT }],
            tdx: [
              {
                MrTd: 'ab'.repeat(48),
                MrSeam: 'ab'.repeat(48),
                MinimumTeeTcbSvn: 'ab'.repeat(16),
                Rtmrs: ['ab'.repeat(48), 'ab'.repeat(48), 'ab'.repeat(48), 'ab'.repeat(48)],
              },
            ],
          },
        },
        /mixes the insecure simulated platform/,
      ],
      [
        'has no seed-share owner',
        { SeedshareOwnerPubKeys: [] },
        /^manifest\.SeedshareOwnerPubKeys: lists no seed-share owner.*--disable-recovery/,
      ],
      [
        'disables recovery but lists an owner',
        { DisableRecovery: true },
        /^manifest\.DisableRecovery: is true, but SeedshareOwnerPubKeys lists 1 key/,
      ],
      [
        'has a DisableRecovery that is no boolean',
        { SeedshareOwnerPubKeys: [], DisableRecovery: 'yes' },
        /^manifest\.DisableRecovery: must be true or false$/,
      ],
    ];
    for (const [what, parts, message] of badManifests) {
      it(`refuses a manifest that ${what}`, async () => {
        const store = new MemoryStore();
        const a = await Authority.open(store, quiet);
        await assert.rejects(
          a.setManifest(manifest(parts), [COORD, Buffer.from('web policy')], undefined),
          invalidArgument(message),
        );
        assert.equal(store.data.size, 0);
      });
    }

    it('accepts a manifest that disables recovery explicitly, and then cannot be recovered', async () => {
      const store = new MemoryStore();
      const a = await Authority.open(store, quiet);
      const r = await a.setManifest(
        manifest({ SeedshareOwnerPubKeys: [], DisableRecovery: true }),
        [COORD, Buffer.from('web policy')],
        undefined,
      );
      assert.deepEqual(r.seedShares?.SeedShares, []);
      const b = await Authority.open(store, quiet);
      await assert.rejects(
        b.recover(randomBytes(64), randomBytes(32), rsa2048),
        (e: RpcError) => e.code === Status.PERMISSION_DENIED && /disabled recovery/.test(e.message),
      );
      // Nor can an update turn recovery on.
      await assert.rejects(
        a.setManifest(manifest(), [COORD, Buffer.from('web policy')], wo),
        invalidArgument(/SeedshareOwnerPubKeys: cannot change/),
      );
    });

    it('the CLI side uses the same checks (validateManifest + checkManifestReady) and names the file and field', () => {
      const json = JSON.parse(manifest({ SeedshareOwnerPubKeys: [`${SO_HEX}00`] }).toString());
      assert.throws(
        () => validateManifest(json, 'ws/manifest.json'),
        (e: unknown) =>
          e instanceof ManifestError &&
          e.message === 'ws/manifest.json, field SeedshareOwnerPubKeys[0]: has 1 trailing byte(s) after the key',
      );
      const m = validateManifest(JSON.parse(manifest({ SeedshareOwnerPubKeys: [] }).toString()), 'ws/manifest.json');
      assert.throws(
        () => checkManifestReady(m, 'ws/manifest.json'),
        /ws\/manifest\.json, field SeedshareOwnerPubKeys: lists no seed-share owner/,
      );
      // Control: the default manifest passes both.
      checkManifestReady(validateManifest(JSON.parse(manifest().toString()), 'x'), 'x');
    });
  });

  describe('the first SetManifest is atomic with its seed shares', () => {
    const policies = [Buffer.from('web policy'), Buffer.from('api policy'), Buffer.from('db policy')];
    const raw = manifest({ policies });
    const send = [COORD, ...policies];

    it('a crash after any number of store writes leaves an uninitialised Coordinator or one that recovers from the stored shares', async () => {
      const full = new CrashingStore(new MemoryStore());
      await (await Authority.open(full, quiet)).setManifest(raw, send, undefined);
      const total = full.writes;
      assert.ok(
        total >= send.length + 4,
        `expected a write per policy plus shares, root, manifest, transition, latest; got ${total}`,
      );
      const outcomes: string[] = [];
      for (let limit = 0; limit <= total; limit++) {
        const mem = new MemoryStore();
        const crashing = new CrashingStore(mem, limit);
        const a = await Authority.open(crashing, quiet);
        // The client never sees the response: whatever it returns is lost with the process.
        await a.setManifest(raw, send, undefined).catch(() => undefined);
        const b = await Authority.open(mem, quiet);
        if (b.mode === 'uninitialised') {
          outcomes.push(`${limit}:uninitialised`);
          // And a new first set works on what the crash left behind.
          const c = await Authority.open(mem, quiet);
          const again = await c.setManifest(raw, send, undefined);
          assert.ok(again.seedShares);
          continue;
        }
        assert.equal(b.mode, 'recovery', `after ${limit} writes`);
        const h = await b.getManifests();
        assert.deepEqual(h.manifests, [raw]);
        assert.ok(
          h.seedShares,
          `after ${limit} writes: a committed history must come with its seed shares in the store`,
        );
        const seed = decryptSeedShare(h.seedShares.SeedShares[0]!, rsa2048);
        await b.recover(seed, h.seedShares.salt, rsa2048);
        assert.equal(b.mode, 'ready');
        const wl = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        await b.newMeshCert(b.snapshot()!, wl.publicKey, sha256(policies[0]!).toString('hex'));
        outcomes.push(`${limit}:recovered`);
      }
      assert.ok(
        outcomes.some((o) => o.endsWith('uninitialised')) && outcomes.some((o) => o.endsWith('recovered')),
        outcomes.join(' '),
      );
    });

    it('serves its own seed shares once ready, and writes them again on recovery if the stored copy was replaced', async () => {
      const store = new MemoryStore();
      const a = await Authority.open(store, quiet);
      const r = await a.setManifest(raw, send, undefined);
      const seed = decryptSeedShare(r.seedShares!.SeedShares[0]!, rsa2048);
      // Ready: from memory, whatever the store holds.
      store.data.set(SEED_SHARES_KEY, Buffer.from('{"SeedShares": [], "salt": ""}'));
      const served = (await a.getManifests()).seedShares!;
      assert.deepEqual(decryptSeedShare(served.SeedShares[0]!, rsa2048), seed);
      // Waiting for recovery: a malformed stored document is not served at all.
      const b = await Authority.open(store, quiet);
      assert.equal((await b.getManifests()).seedShares, undefined);
      await b.recover(seed, r.seedShares!.salt, rsa2048);
      const repaired = (await Authority.open(store, quiet)).getManifests();
      const doc = (await repaired).seedShares as SeedShareDocument;
      assert.deepEqual(decryptSeedShare(doc.SeedShares[0]!, rsa2048), seed);
    });
  });

  describe('the store is untrusted', () => {
    const policies = [Buffer.from('web policy')];
    const raw = manifest({ policies });
    const send = [COORD, ...policies];

    async function initialised() {
      const store = new MemoryStore();
      const a = await Authority.open(store, quiet);
      const r = await a.setManifest(raw, send, undefined);
      const seed = decryptSeedShare(r.seedShares!.SeedShares[0]!, rsa2048);
      return { store, r, seed, salt: r.seedShares!.salt };
    }

    it('extra PEM blocks appended to ca/root.pem are never served, before or after recovery', async () => {
      const { store, r, seed, salt } = await initialised();
      const attacker = await createRootCert(SeedEngine.generate().rootCAKey);
      const stored = store.data.get(ROOT_CERT_KEY)!;
      store.data.set(ROOT_CERT_KEY, Buffer.concat([stored, Buffer.from(attacker)]));
      const b = await Authority.open(store, quiet);
      const waiting = await b.getManifests();
      assert.ok(
        !waiting.rootCA.includes(attacker.split('\n')[1]!),
        'the appended certificate was served while waiting for recovery',
      );
      await b.recover(seed, salt, rsa2048);
      const wl = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const issued = await b.newMeshCert(b.snapshot()!, wl.publicKey, sha256(policies[0]!).toString('hex'));
      for (const served of [(await b.getManifests()).rootCA, issued.rootCA]) {
        assert.ok(!served.includes(attacker.split('\n')[1]!), 'the appended certificate was served after recovery');
        assert.deepEqual(
          rootKeyDer(served),
          rootKeyDer(r.rootCA),
          "the served root is one certificate with the seed's root key",
        );
      }
      assert.equal(
        parsePemCertificates(store.data.get(ROOT_CERT_KEY)!, 'stored root', { count: 1 }).length,
        1,
        'the store holds one certificate again',
      );
    });

    it("a stored root for another key is replaced by the seed's root on recovery; non-canonical text is served re-encoded", async () => {
      const { store, r, seed, salt } = await initialised();
      const other = await createRootCert(SeedEngine.generate().rootCAKey);
      store.data.set(ROOT_CERT_KEY, Buffer.from(other));
      const b = await Authority.open(store, quiet);
      await b.recover(seed, salt, rsa2048);
      assert.deepEqual(rootKeyDer((await b.getManifests()).rootCA), rootKeyDer(r.rootCA));

      const crlf = Buffer.from(`\n${r.rootCA.replace(/\n/g, '\r\n')}\n\n`);
      store.data.set(ROOT_CERT_KEY, crlf);
      const c = await Authority.open(store, quiet);
      const served = (await c.getManifests()).rootCA;
      assert.equal(served, new X509Certificate(r.rootCA).toString().replace(/\r\n/g, '\n'));
      assert.notDeepEqual(Buffer.from(served), crlf);
    });

    it('a running Coordinator whose transitions/latest is rolled back serves and extends only the chain it wrote', async () => {
      const { store } = await initialised();
      const a = await Authority.open(store, quiet);
      const seedDoc = (await a.getManifests()).seedShares!;
      await a.recover(decryptSeedShare(seedDoc.SeedShares[0]!, rsa2048), seedDoc.salt, rsa2048);
      const old = store.data.get('transitions/latest')!;
      const m2 = manifest({ policies: [Buffer.from('web policy v2')] });
      await a.setManifest(m2, [COORD, Buffer.from('web policy v2')], wo);
      store.data.set('transitions/latest', old); // validly signed, one manifest older
      assert.deepEqual((await a.getManifests()).manifests, [raw, m2], 'the older pointer in the store is not served');
      const m3 = manifest({ policies: [Buffer.from('web policy v3')] });
      await assert.rejects(
        a.setManifest(m3, [COORD, Buffer.from('web policy v3')], wo),
        (e: RpcError) => e.code === Status.ABORTED && /not what this Coordinator wrote last/.test(e.message),
      );
      assert.deepEqual(store.data.get('transitions/latest'), old, 'nothing was chained onto the rolled-back pointer');
    });
  });

  describe('mesh certificates come from one snapshot', () => {
    it('a snapshot taken before a manifest change is refused with a retryable error', async () => {
      const a = await Authority.open(new MemoryStore(), quiet);
      const web = Buffer.from('web policy');
      await a.setManifest(manifest({ policies: [web] }), [COORD, web], undefined);
      const before = a.snapshot()!;
      assert.ok(Object.isFrozen(before) && Object.isFrozen(before.manifest.Policies), 'the snapshot is immutable');
      // The update revokes the web policy while the workload's evidence is being checked.
      const api = Buffer.from('api policy');
      await a.setManifest(manifest({ policies: [api] }), [COORD, api], wo);
      const wl = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      await assert.rejects(
        a.newMeshCert(before, wl.publicKey, sha256(web).toString('hex')),
        (e: RpcError) => e.code === Status.UNAVAILABLE && /manifest changed.*retry/.test(e.message),
      );
      // With the current snapshot the revoked policy is refused, the listed one issued.
      await assert.rejects(
        a.newMeshCert(a.snapshot()!, wl.publicKey, sha256(web).toString('hex')),
        (e: RpcError) => e.code === Status.PERMISSION_DENIED,
      );
      const issued = await a.newMeshCert(a.snapshot()!, wl.publicKey, sha256(api).toString('hex'));
      assert.equal(issued.meshCA, a.snapshot()!.mesh.meshCAPem);
    });
  });
});

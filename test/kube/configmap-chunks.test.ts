/**
 * Values larger than a ConfigMap holds, against the real API server: content-addressed values
 * (manifests, policies) are split over chunk ConfigMaps and read back verified; other keys are
 * refused. A 10,000-policy manifest (1.7 MB of JSON) goes through set, restart, recovery and
 * GetManifests on the ConfigMap store.
 */
import { strict as assert } from 'node:assert';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { apiServer, type ApiServer } from '../helpers/apiserver.js';
import { ConfigMapStore, STORE_CHUNKS_ANNOTATION, configMapName } from '../../src/coordinator/store/configmap.js';
import { Authority } from '../../src/coordinator/authority.js';
import { decryptSeedShare } from '../../src/coordinator/seedshares.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import { admin, freshNamespace, type Admin } from './kube.js';
import { SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';
import { storeOpsPerTurn } from '../helpers/loop-turns.js';

const hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('ConfigMap store: values larger than a ConfigMap (real API server)', function () {
  this.timeout(900_000);
  let api: ApiServer;
  let a: Admin;

  before(async function () {
    api = await apiServer();
    a = admin(api);
  });

  it('splits a large content-addressed value over chunk ConfigMaps and reads it back', async function () {
    const ns = await freshNamespace(a);
    const s = new ConfigMapStore({ kc: a.kc, namespace: ns });
    const value = randomBytes(3 * 1024 * 1024 + 17);
    const key = `manifests/${hex(value)}`;
    await s.set(key, value);
    const cm = await a.core.readNamespacedConfigMap({ name: configMapName(key), namespace: ns });
    assert.equal(cm.binaryData, undefined, 'the value is not inline');
    const index = JSON.parse(cm.metadata!.annotations![STORE_CHUNKS_ANNOTATION]!) as {
      size: number;
      sha256: string;
      chunks: string[];
    };
    assert.equal(index.size, value.length);
    assert.ok(index.chunks.length >= 4, `${index.chunks.length} chunks`);
    for (const c of index.chunks) {
      const chunk = await a.core.readNamespacedConfigMap({ name: `contrast-store-chunk-${c}`, namespace: ns });
      assert.equal(chunk.metadata?.labels?.['app.kubernetes.io/managed-by'], 'contrast.edgeless.systems');
    }
    // Another store (another Coordinator process) reads the same bytes.
    assert.deepEqual(await new ConfigMapStore({ kc: admin(api).kc, namespace: ns }).get(key), value);
    // Writing it again is harmless, and small values stay inline.
    await s.set(key, value);
    assert.deepEqual(await s.get(key), value);
    await s.set('policies/00', Buffer.from('small'));
    assert.ok(
      (await a.core.readNamespacedConfigMap({ name: configMapName('policies/00'), namespace: ns })).binaryData?.['00'],
    );
  });

  it('refuses a chunk that was changed, and large values under keys that are not content-addressed', async function () {
    const ns = await freshNamespace(a);
    const s = new ConfigMapStore({ kc: a.kc, namespace: ns });
    const value = randomBytes(2 * 1024 * 1024);
    const key = `policies/${hex(value)}`;
    await s.set(key, value);
    const index = JSON.parse(
      (await a.core.readNamespacedConfigMap({ name: configMapName(key), namespace: ns })).metadata!.annotations![
        STORE_CHUNKS_ANNOTATION
      ]!,
    ) as { chunks: string[] };
    const name = `contrast-store-chunk-${index.chunks[1]}`;
    const chunk = await a.core.readNamespacedConfigMap({ name, namespace: ns });
    chunk.binaryData = { chunk: randomBytes(1000).toString('base64') };
    await a.core.replaceNamespacedConfigMap({ name, namespace: ns, body: chunk });
    await assert.rejects(
      s.get(key),
      new RegExp(`chunk ${index.chunks[1]} of ${key.replace('/', '\\/')} does not match its hash`),
    );

    await assert.rejects(
      s.set('ca/root.pem', randomBytes(2 * 1024 * 1024)),
      /ca\/root\.pem is 2097152 bytes; a ConfigMap holds at most about 1 MiB, and only content-addressed values/,
    );
    await assert.rejects(
      s.compareAndSwap('transitions/latest', undefined, randomBytes(2 * 1024 * 1024)),
      /at most about 1 MiB/,
    );
    await assert.rejects(
      s.set(`manifests/${'00'.repeat(32)}`, randomBytes(2 * 1024 * 1024)),
      /is not named by the SHA-256 of its value/,
    );
  });

  it('a 10,000-policy manifest: set, restart, recover, GetManifests', async function () {
    const ns = await freshNamespace(a);
    const so = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const wo = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const coord = Buffer.from('coordinator policy');
    const policies = Array.from({ length: 10_000 }, (_, i) =>
      Buffer.from(`package agent_policy\n# workload ${i}\n`.padEnd(400, '#')),
    );
    const Policies: Record<string, unknown> = {
      [sha256(coord).toString('hex')]: { SANs: ['coordinator'], Role: 'coordinator' },
    };
    policies.forEach((p, i) => {
      Policies[sha256(p).toString('hex')] = { SANs: [`w${i}`, '*'], WorkloadSecretID: `id-${i}` };
    });
    const raw = Buffer.from(
      `${JSON.stringify(
        {
          Policies,
          ReferenceValues: { insecure: [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }] },
          WorkloadOwnerPubKeys: [createPublicKey(wo).export({ type: 'spki', format: 'der' }).toString('hex')],
          SeedshareOwnerPubKeys: [createPublicKey(so).export({ type: 'pkcs1', format: 'der' }).toString('hex')],
        },
        null,
        2,
      )}\n`,
    );
    assert.ok(raw.length > 1024 * 1024, `the manifest is ${raw.length} bytes: larger than one ConfigMap`);
    const quiet = { log: () => undefined };
    const first = storeOpsPerTurn(new ConfigMapStore({ kc: a.kc, namespace: ns }));
    await first.store.watch();
    try {
      await (await Authority.open(first.store, quiet)).setManifest(raw, [coord, ...policies], undefined);
    } finally {
      first.store.close();
    }
    const second = storeOpsPerTurn(new ConfigMapStore({ kc: admin(api).kc, namespace: ns }));
    const b = await Authority.open(second.store, quiet);
    assert.equal(b.mode, 'recovery');
    const waiting = await b.getManifests();
    await b.recover(decryptSeedShare(waiting.seedShares!.SeedShares[0]!, so), waiting.seedShares!.salt, so);
    const served = await b.getManifests();
    const perTurn = Math.max(first.stop(), second.stop());
    assert.deepEqual(served.manifests, [raw]);
    assert.equal(served.policies.length, 10_001);
    assert.deepEqual(new Set(served.policies.map((p) => hex(p))), new Set(Object.keys(Policies)));
    // A store looping over the policies synchronously would complete them all in one turn of the
    // event loop; this one awaits each API request.
    process.stderr.write(
      `      ConfigMap store, 10,000 policies: most store operations in one event-loop turn: ${perTurn}\n`,
    );
    assert.ok(perTurn <= 256, `${perTurn} store operations completed within one turn of the event loop`);
  });
});

import { strict as assert } from 'node:assert';
import { KubeConfig } from '@kubernetes/client-node';
import { apiServer, type ApiServer } from '../helpers/apiserver.js';
import { ConfigMapStore, configMapName } from '../../src/coordinator/store/configmap.js';
import { renderCoordinator } from '../../src/kube/coordinator-resources.js';
import { applyObjects } from '../../src/kube/apply.js';
import { connect } from '../../src/kube/client.js';
import { admin, freshNamespace, type Admin } from './kube.js';

function kubeConfigFor(api: ApiServer, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: api.url, caData: Buffer.from(api.caPem).toString('base64') }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

const until = async (cond: () => boolean, ms = 20_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('ConfigMap state store against a real API server', function () {
  this.timeout(300_000);
  let api: ApiServer;
  let a: Admin;

  before(async function () {
    api = await apiServer();
    a = admin(api);
  });

  it('maps keys to ConfigMap names without collisions', function () {
    assert.equal(configMapName('transitions/latest'), 'contrast-store-transitions-latest');
    assert.equal(configMapName('manifests/ab12'), 'contrast-store-manifests-ab12');
    assert.match(configMapName('ca/root.pem'), /^contrast-store-h-[0-9a-f]{40}$/);
    assert.equal(configMapName('logs/a/b'), 'contrast-store-logs-a-b');
    assert.notEqual(configMapName('logs/a-b'), configMapName('logs/a/b'));
    assert.throws(() => configMapName('../x'));
  });

  it('gets, sets and compares-and-swaps like any Store', async function () {
    const ns = await freshNamespace(a);
    const s = new ConfigMapStore({ kc: a.kc, namespace: ns });
    assert.equal(await s.get('transitions/latest'), undefined);
    assert.equal(await s.compareAndSwap('transitions/latest', Buffer.from('x'), Buffer.from('y')), false);
    assert.equal(await s.compareAndSwap('transitions/latest', undefined, Buffer.from('one')), true);
    assert.equal(await s.compareAndSwap('transitions/latest', undefined, Buffer.from('two')), false);
    assert.equal(await s.compareAndSwap('transitions/latest', Buffer.from('nope'), Buffer.from('two')), false);
    assert.equal(await s.compareAndSwap('transitions/latest', Buffer.from('one'), Buffer.from('two')), true);
    assert.deepEqual(await s.get('transitions/latest'), Buffer.from('two'));
    const bin = Buffer.from([0, 255, 1, 254, 10, 13]);
    await s.set('ca/root.pem', bin);
    await s.set('ca/root.pem', bin);
    assert.deepEqual(await s.get('ca/root.pem'), bin);
    const cm = await a.core.readNamespacedConfigMap({ name: 'contrast-store-transitions-latest', namespace: ns });
    assert.equal(cm.metadata?.labels?.['app.kubernetes.io/managed-by'], 'contrast.edgeless.systems');
    assert.equal(Buffer.from(cm.binaryData!.latest!, 'base64').toString(), 'two');
  });

  it('loses nothing under concurrent writers (CAS conflicts are retried on fresh data)', async function () {
    const ns = await freshNamespace(a);
    const writers = 5;
    const rounds = 12;
    // Separate KubeConfigs and clients: as separate Coordinator processes would be.
    const stores = Array.from({ length: writers }, () => new ConfigMapStore({ kc: admin(api).kc, namespace: ns }));
    let conflicts = 0;
    await Promise.all(
      stores.map(async (store, w) => {
        for (let i = 0; i < rounds; i++) {
          for (;;) {
            const current = await store.get('log/entries');
            const list: string[] = current ? (JSON.parse(current.toString()) as string[]) : [];
            list.push(`${w}:${i}`);
            if (await store.compareAndSwap('log/entries', current, Buffer.from(JSON.stringify(list)))) break;
            conflicts++;
          }
        }
      }),
    );
    const final = JSON.parse((await stores[0]!.get('log/entries'))!.toString()) as string[];
    assert.equal(final.length, writers * rounds);
    assert.equal(new Set(final).size, writers * rounds);
    for (let w = 0; w < writers; w++) {
      // Each writer's entries appear in its own order.
      const mine = final.filter((e) => e.startsWith(`${w}:`)).map((e) => Number(e.split(':')[1]));
      assert.deepEqual(
        mine,
        [...mine].sort((x, y) => x - y),
      );
    }
    assert.ok(conflicts > 0, 'the writers never raced; the test proves nothing');
  });

  it('watches for writes by others and marks those keys stale', async function () {
    const ns = await freshNamespace(a);
    const stale: string[] = [];
    const mine = new ConfigMapStore({ kc: admin(api).kc, namespace: ns, onStale: (k) => stale.push(k) });
    const other = new ConfigMapStore({ kc: admin(api).kc, namespace: ns });
    await mine.watch();
    try {
      await mine.set('transitions/latest', Buffer.from('a'));
      await mine.compareAndSwap('transitions/latest', Buffer.from('a'), Buffer.from('b'));
      await new Promise((r) => setTimeout(r, 1000));
      assert.deepEqual(stale, [], 'own writes must not count as stale');
      assert.equal(await other.compareAndSwap('transitions/latest', Buffer.from('b'), Buffer.from('c')), true);
      await until(() => stale.length > 0);
      assert.deepEqual(stale, ['transitions/latest']);
      assert.ok(mine.isStale('transitions/latest'));
      assert.deepEqual(await mine.get('transitions/latest'), Buffer.from('c'));
      assert.equal(mine.isStale('transitions/latest'), false, 'a read refreshes the view');
    } finally {
      mine.close();
    }
  });

  it('works with exactly the rights of the rendered Coordinator Role, and no more', async function () {
    const ns = await freshNamespace(a);
    const cluster = connect({ kubeconfig: api.kubeconfig, namespace: ns });
    await applyObjects(cluster, renderCoordinator({ namespace: ns }));
    const token = await a.core.createNamespacedServiceAccountToken({
      name: 'coordinator',
      namespace: ns,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const kc = kubeConfigFor(api, token.status!.token);
    const stale: string[] = [];
    const store = new ConfigMapStore({ kc, namespace: ns, onStale: (k) => stale.push(k) });
    await store.watch();
    try {
      assert.equal(await store.compareAndSwap('transitions/latest', undefined, Buffer.from('1')), true);
      assert.equal(await store.compareAndSwap('transitions/latest', Buffer.from('1'), Buffer.from('2')), true);
      await store.set('manifests/00', Buffer.from('m'));
      await new ConfigMapStore({ kc: a.kc, namespace: ns }).set('transitions/latest', Buffer.from('3'));
      await until(() => stale.length > 0);
    } finally {
      store.close();
    }
    // The same identity cannot list, delete or touch anything else.
    const { CoreV1Api } = await import('@kubernetes/client-node');
    const core = kc.makeApiClient(CoreV1Api);
    const forbidden = (e: { code?: number }) => e.code === 403;
    await assert.rejects(core.listNamespacedConfigMap({ namespace: ns }), forbidden);
    await assert.rejects(
      core.deleteNamespacedConfigMap({ name: 'contrast-store-manifests-00', namespace: ns }),
      forbidden,
    );
    await assert.rejects(core.listNamespacedSecret({ namespace: ns }), forbidden);
    await assert.rejects(
      core.readNamespacedConfigMap({ name: 'contrast-store-manifests-00', namespace: 'default' }),
      forbidden,
    );
  });
});

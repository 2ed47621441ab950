import { strict as assert } from 'node:assert';
import { connect as netConnect, createServer } from 'node:net';
import { apiServer, type ApiServer } from '../helpers/apiserver.js';
import { renderCoordinator } from '../../src/kube/coordinator-resources.js';
import { applyObjects } from '../../src/kube/apply.js';
import { connect } from '../../src/kube/client.js';
import { findCoordinator, PORT_FORWARDER_NAME } from '../../src/kube/discovery.js';
import { startRelay } from '../../src/kube/relay.js';
import { admin, freshNamespace, type Admin } from './kube.js';

describe('Coordinator discovery against a real API server', function () {
  this.timeout(300_000);
  let api: ApiServer;
  let a: Admin;

  before(async function () {
    api = await apiServer();
    a = admin(api);
  });

  it('uses the load-balancer address of Service coordinator', async function () {
    const ns = await freshNamespace(a);
    const cluster = connect({ kubeconfig: api.kubeconfig, namespace: ns });
    await applyObjects(cluster, renderCoordinator({ namespace: ns }));
    const svc = await a.core.readNamespacedService({ name: 'coordinator', namespace: ns });
    // What a cloud controller would do once the load balancer exists.
    await a.core.replaceNamespacedServiceStatus({ name: 'coordinator', namespace: ns, body: { ...svc, status: { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } } } });
    const ep = await findCoordinator(cluster);
    assert.deepEqual({ host: ep.host, port: ep.port, via: ep.via }, { host: '203.0.113.7', port: 1313, via: 'load-balancer' });
  });

  it('says what to do when there is no Coordinator Service', async function () {
    const ns = await freshNamespace(a);
    await assert.rejects(findCoordinator(connect({ kubeconfig: api.kubeconfig, namespace: ns })), /no Coordinator Service "coordinator" in namespace .*-c HOST:PORT/);
  });

  it('without a load balancer, starts an ordinary port-forwarder pod and waits for it', async function () {
    const ns = await freshNamespace(a);
    const cluster = connect({ kubeconfig: api.kubeconfig, namespace: ns });
    await applyObjects(cluster, renderCoordinator({ namespace: ns, serviceType: 'ClusterIP' }));
    // No kubelet here: the pod is created but never becomes ready.
    await assert.rejects(findCoordinator(cluster, { readyTimeoutMs: 2000 }), /port-forwarder pod .* is not ready after 2 s .*-c HOST:PORT/);
    const pod = await a.core.readNamespacedPod({ name: PORT_FORWARDER_NAME, namespace: ns });
    assert.equal(pod.spec?.runtimeClassName, undefined, 'the relay must not run in a Kata VM');
    assert.deepEqual(pod.spec?.containers[0]?.args, ['port-forwarder', '--listen-port', '1313', '--target', 'coordinator:1313']);
    // Again: the pod is reused (server-side apply), not duplicated.
    await assert.rejects(findCoordinator(cluster, { readyTimeoutMs: 1000 }), /not ready/);
  });

  it('the relay splices connections to its target', async function () {
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const target = { host: '127.0.0.1', port: (echo.address() as { port: number }).port };
    const relay = await startRelay(0, target, '127.0.0.1');
    try {
      const port = (relay.address() as { port: number }).port;
      const got = await new Promise<string>((resolve, reject) => {
        const c = netConnect(port, '127.0.0.1', () => c.end('hello through the relay'));
        let data = '';
        c.setEncoding('utf8');
        c.on('data', (d: string) => { data += d; });
        c.on('close', () => resolve(data));
        c.on('error', reject);
      });
      assert.equal(got, 'hello through the relay');
    } finally {
      relay.close();
      echo.close();
    }
  });
});

describe('set/verify/recover without -c find the Coordinator through the cluster', function () {
  this.timeout(300_000);
  let api: ApiServer;
  let a: Admin;

  before(async function () {
    api = await apiServer();
    a = admin(api);
  });

  it('verify uses the load-balancer address of Service coordinator, and says what to do without one', async function () {
    const { runCli } = await import('../helpers/cli.js');
    const { tempDir, removeDir } = await import('../helpers/tmp.js');
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const ws = tempDir('kc-verify-');
    try {
      writeFileSync(join(ws, 'manifest.json'), JSON.stringify({ Policies: {}, ReferenceValues: {}, WorkloadOwnerPubKeys: [], SeedshareOwnerPubKeys: [] }));
      const ns = await freshNamespace(a);
      const none = runCli(['verify', '--kubeconfig', api.kubeconfig, '-n', ns, '--workspace-dir', ws]);
      assert.equal(none.code, 1, none.stderr);
      assert.match(none.stderr, /no Coordinator Service "coordinator" in namespace/);

      // A load balancer that points at a closed loopback port: verify must dial exactly there.
      const closed = createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
      const port = (closed.address() as { port: number }).port;
      await new Promise<void>((r) => closed.close(() => r()));
      const cluster = connect({ kubeconfig: api.kubeconfig, namespace: ns });
      const objs = renderCoordinator({ namespace: ns }).map((o) => (o.kind === 'Service' && o.metadata?.name === 'coordinator'
        ? { ...o, spec: { ...(o as { spec: object }).spec, ports: [{ name: 'userapi', port, targetPort: 'userapi' }] } }
        : o));
      await applyObjects(cluster, objs as never);
      const svc = await a.core.readNamespacedService({ name: 'coordinator', namespace: ns });
      await a.core.replaceNamespacedServiceStatus({ name: 'coordinator', namespace: ns, body: { ...svc, status: { loadBalancer: { ingress: [{ ip: '127.0.0.1' }] } } } });
      const lb = runCli(['verify', '--kubeconfig', api.kubeconfig, '-n', ns, '--workspace-dir', ws]);
      assert.equal(lb.code, 1, lb.stderr);
      assert.match(lb.stderr, new RegExp(`Coordinator: 127\\.0\\.0\\.1:${port} \\(load balancer`));
      assert.match(lb.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
    } finally {
      removeDir(ws);
    }
  });
});

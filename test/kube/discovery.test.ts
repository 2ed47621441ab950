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
    await a.core.replaceNamespacedServiceStatus({
      name: 'coordinator',
      namespace: ns,
      body: { ...svc, status: { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } } },
    });
    const ep = await findCoordinator(cluster);
    assert.deepEqual(
      { host: ep.host, port: ep.port, via: ep.via },
      { host: '203.0.113.7', port: 1313, via: 'load-balancer' },
    );
  });

  it('says what to do when there is no Coordinator Service', async function () {
    const ns = await freshNamespace(a);
    await assert.rejects(
      findCoordinator(connect({ kubeconfig: api.kubeconfig, namespace: ns })),
      /no Coordinator Service "coordinator" in namespace .*-c HOST:PORT/,
    );
  });

  it('without a load balancer, starts an ordinary port-forwarder pod, reports while it waits, and removes it when it never gets ready', async function () {
    const ns = await freshNamespace(a);
    const cluster = connect({ kubeconfig: api.kubeconfig, namespace: ns });
    await applyObjects(cluster, renderCoordinator({ namespace: ns, serviceType: 'ClusterIP' }));
    // No kubelet here: the pod is created but never becomes ready.
    let seen: { runtimeClassName?: string; args?: string[] } | undefined;
    const progress: string[] = [];
    const onProgress = (line: string) => {
      progress.push(line);
      if (seen === undefined) {
        void a.core.readNamespacedPod({ name: PORT_FORWARDER_NAME, namespace: ns }).then((p) => {
          seen = {
            ...(p.spec?.runtimeClassName !== undefined ? { runtimeClassName: p.spec.runtimeClassName } : {}),
            args: p.spec?.containers[0]?.args ?? [],
          };
        });
      }
    };
    await assert.rejects(
      findCoordinator(cluster, { readyTimeoutMs: 2000, onProgress }),
      /port-forwarder pod .* is not ready after 2 s .*-c HOST:PORT/,
    );
    assert.match(
      progress[0] ?? '',
      new RegExp(`waiting up to 2 s for the port-forwarder pod ${ns}/${PORT_FORWARDER_NAME}: Pending`),
    );
    assert.deepEqual(
      seen,
      { args: ['port-forwarder', '--listen-port', '1313', '--target', 'coordinator:1313'] },
      'an ordinary pod: the relay must not run in a Kata VM',
    );
    await assert.rejects(
      a.core.readNamespacedPod({ name: PORT_FORWARDER_NAME, namespace: ns }),
      (err: unknown) => (err as { code?: number }).code === 404,
      'the pod that never got ready is removed',
    );
  });

  it('an abort (Ctrl-C) while waiting removes the port-forwarder pod too', async function () {
    const ns = await freshNamespace(a);
    const cluster = connect({ kubeconfig: api.kubeconfig, namespace: ns });
    await applyObjects(cluster, renderCoordinator({ namespace: ns, serviceType: 'ClusterIP' }));
    const abort = new AbortController();
    const waiting = findCoordinator(cluster, {
      readyTimeoutMs: 60_000,
      signal: abort.signal,
      onProgress: () => abort.abort(),
    });
    await assert.rejects(waiting, /interrupted/);
    await assert.rejects(
      a.core.readNamespacedPod({ name: PORT_FORWARDER_NAME, namespace: ns }),
      (err: unknown) => (err as { code?: number }).code === 404,
    );
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
        c.on('data', (d: string) => {
          data += d;
        });
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
      writeFileSync(
        join(ws, 'manifest.json'),
        JSON.stringify({ Policies: {}, ReferenceValues: {}, WorkloadOwnerPubKeys: [], SeedshareOwnerPubKeys: [] }),
      );
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
      const objs = renderCoordinator({ namespace: ns }).map((o) =>
        o.kind === 'Service' && o.metadata?.name === 'coordinator'
          ? {
              ...o,
              spec: { ...(o as { spec: object }).spec, ports: [{ name: 'userapi', port, targetPort: 'userapi' }] },
            }
          : o,
      );
      await applyObjects(cluster, objs as never);
      const svc = await a.core.readNamespacedService({ name: 'coordinator', namespace: ns });
      await a.core.replaceNamespacedServiceStatus({
        name: 'coordinator',
        namespace: ns,
        body: { ...svc, status: { loadBalancer: { ingress: [{ ip: '127.0.0.1' }] } } },
      });
      const lb = runCli(['verify', '--kubeconfig', api.kubeconfig, '-n', ns, '--workspace-dir', ws]);
      assert.equal(lb.code, 1, lb.stderr);
      assert.match(lb.stderr, new RegExp(`Coordinator: 127\\.0\\.0\\.1:${port} \\(load balancer`));
      assert.match(lb.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
    } finally {
      removeDir(ws);
    }
  });

  it('without a load balancer: progress on stderr, --pod-running-timeout, --retry-for and --request-timeout bound the wait, the pod is removed', async function () {
    const { runCliAsync } = await import('../helpers/cli.js');
    const { tempDir, removeDir } = await import('../helpers/tmp.js');
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const ws = tempDir('kc-pf-');
    try {
      writeFileSync(
        join(ws, 'manifest.json'),
        JSON.stringify({ Policies: {}, ReferenceValues: {}, WorkloadOwnerPubKeys: [], SeedshareOwnerPubKeys: [] }),
      );
      const ns = await freshNamespace(a);
      await applyObjects(
        connect({ kubeconfig: api.kubeconfig, namespace: ns }),
        renderCoordinator({ namespace: ns, serviceType: 'ClusterIP' }),
      );
      const base = ['verify', '--kubeconfig', api.kubeconfig, '-n', ns, '--workspace-dir', ws];
      for (const [flags, bound] of [
        [['--pod-running-timeout', '2s'], 2],
        [['--retry-for', '3'], 3],
        [['--request-timeout', '2s'], 2],
      ] as const) {
        const r = await runCliAsync([...base, ...flags]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(`waiting up to ${bound} s for the port-forwarder pod ${ns}/${PORT_FORWARDER_NAME}`),
          flags.join(' '),
        );
        assert.match(r.stderr, new RegExp(`not ready after ${bound} s`), flags.join(' '));
        assert.match(r.stderr, /removed the port-forwarder pod/);
        await assert.rejects(
          a.core.readNamespacedPod({ name: PORT_FORWARDER_NAME, namespace: ns }),
          (err: unknown) => (err as { code?: number }).code === 404,
          `${flags.join(' ')}: the Pending pod is left behind`,
        );
      }
      // --image-replacements moves the port-forwarder to a mirror, like everything else we inject.
      const repl = join(ws, 'replacements.txt');
      writeFileSync(repl, 'ghcr.io/kubectl-contrast/*=mirror.example/kc/*\n');
      const mirrored = runCliAsync([...base, '--pod-running-timeout', '6s', '--image-replacements', repl]);
      let image: string | undefined;
      for (let i = 0; i < 50 && image === undefined; i++) {
        await new Promise((r) => setTimeout(r, 100));
        image = await a.core
          .readNamespacedPod({ name: PORT_FORWARDER_NAME, namespace: ns })
          .then((p) => p.spec?.containers[0]?.image)
          .catch(() => undefined);
      }
      assert.equal((await mirrored).code, 1);
      assert.match(image ?? '', /^mirror\.example\/kc\/port-forwarder:v[^@]+@sha256:[0-9a-f]{64}$/);
      const unreadable = await runCliAsync([...base, '--image-replacements', join(ws, 'missing.txt')]);
      assert.equal(unreadable.code, 1);
      assert.match(unreadable.stderr, /missing\.txt: cannot read image replacements/);
      const bad = await runCliAsync([...base, '--pod-running-timeout', 'soon']);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /--pod-running-timeout/);
    } finally {
      removeDir(ws);
    }
  });
});

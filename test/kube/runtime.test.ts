import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { apiServer, type ApiServer } from '../helpers/apiserver.js';
import { runCli } from '../helpers/cli.js';
import { requirePlatform, runtimeHandler } from '../../src/platforms/platforms.js';
import { admin, freshNamespace, type Admin } from './kube.js';

describe('runtime render|apply against a real API server', function () {
  this.timeout(300_000);
  let api: ApiServer;
  let a: Admin;

  before(async function () {
    api = await apiServer();
    a = admin(api);
  });

  it('render prints the RuntimeClass (handler, overhead) and the node-installer DaemonSet', function () {
    const r = runCli(['runtime', 'render', '--platform', 'metal-qemu-tdx']);
    assert.equal(r.code, 0, r.stderr);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
    const handler = runtimeHandler(requirePlatform('metal-qemu-tdx'));
    assert.match(handler, /^contrast-cc-metal-qemu-tdx-[0-9a-f]{8}$/);
    assert.deepEqual(
      docs.map((d) => d.kind),
      ['RuntimeClass', 'DaemonSet'],
    );
    assert.equal(docs[0].metadata.name, handler);
    assert.equal(docs[0].handler, handler);
    assert.ok(docs[0].overhead.podFixed.memory);
    assert.deepEqual(docs[1].spec.template.spec.initContainers[0].args, ['metal-qemu-tdx', handler]);
    const json = runCli(['runtime', 'render', '--platform', 'metal-qemu-tdx', '-o', 'json']);
    assert.equal(JSON.parse(json.stdout).kind, 'List');
  });

  it('apply uses server-side apply with field manager kubectl-contrast, and re-applying changes nothing', async function () {
    const ns = await freshNamespace(a);
    const handler = runtimeHandler(requirePlatform('metal-qemu-snp'));
    const first = runCli([
      'runtime',
      'apply',
      '--platform',
      'metal-qemu-snp',
      '--kubeconfig',
      api.kubeconfig,
      '-n',
      ns,
    ]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`runtimeclass.node.k8s.io/${handler} created`));
    assert.match(first.stdout, /daemonset.apps\/.*-nodeinstaller created/);

    const rc = await a.node.readRuntimeClass({ name: handler });
    assert.equal(rc.handler, handler);
    assert.ok(rc.metadata?.managedFields?.some((f) => f.manager === 'kubectl-contrast' && f.operation === 'Apply'));
    const ds = await a.apps.readNamespacedDaemonSet({ name: `${handler}-nodeinstaller`, namespace: ns });
    assert.ok(ds.metadata?.managedFields?.some((f) => f.manager === 'kubectl-contrast' && f.operation === 'Apply'));

    const second = runCli([
      'runtime',
      'apply',
      '--platform',
      'metal-qemu-snp',
      '--kubeconfig',
      api.kubeconfig,
      '-n',
      ns,
    ]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /runtimeclass.* unchanged/);
    assert.match(second.stdout, /daemonset.* unchanged/);
    const ds2 = await a.apps.readNamespacedDaemonSet({ name: `${handler}-nodeinstaller`, namespace: ns });
    assert.equal(ds2.metadata?.resourceVersion, ds.metadata?.resourceVersion);
  });

  it('--dry-run=server validates without persisting; --dry-run=client sends nothing', async function () {
    const ns = await freshNamespace(a);
    const handler = runtimeHandler(requirePlatform('metal-qemu-tdx-gpu'));
    const server = runCli([
      'runtime',
      'apply',
      '--platform',
      'metal-qemu-tdx-gpu',
      '--kubeconfig',
      api.kubeconfig,
      '-n',
      ns,
      '--dry-run=server',
    ]);
    assert.equal(server.code, 0, server.stderr);
    assert.match(server.stdout, /\(server dry run\)/);
    await assert.rejects(
      a.apps.readNamespacedDaemonSet({ name: `${handler}-nodeinstaller`, namespace: ns }),
      (e: { code?: number }) => e.code === 404,
    );
    await assert.rejects(a.node.readRuntimeClass({ name: handler }), (e: { code?: number }) => e.code === 404);
    // A client dry run works without any cluster at all.
    const client = runCli([
      'runtime',
      'apply',
      '--platform',
      'metal-qemu-tdx-gpu',
      '--kubeconfig',
      '/nonexistent',
      '--dry-run=client',
    ]);
    assert.notEqual(client.code, 0);
    const client2 = runCli([
      'runtime',
      'apply',
      '--platform',
      'metal-qemu-tdx-gpu',
      '--kubeconfig',
      api.kubeconfig,
      '--dry-run=client',
    ]);
    assert.equal(client2.code, 0, client2.stderr);
    assert.match(client2.stdout, /\(dry run\)/);
  });

  it('tells an unauthorised user what to do', function () {
    const r = runCli([
      'runtime',
      'apply',
      '--platform',
      'metal-qemu-snp',
      '--kubeconfig',
      api.kubeconfig,
      '--context',
      'alice',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /403 Forbidden/);
    assert.match(r.stderr, /kubectl auth can-i/);
  });

  it('tells about rejected credentials, unknown contexts and unreachable servers', function () {
    const dir = api.dir;
    const bad = join(dir, 'bad-token.kubeconfig');
    const ca = Buffer.from(api.caPem).toString('base64');
    writeFileSync(
      bad,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${api.url}\n    certificate-authority-data: ${ca}\nusers:\n- name: u\n  user:\n    token: wrong\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n`,
    );
    const unauth = runCli(['runtime', 'apply', '--platform', 'metal-qemu-snp', '--kubeconfig', bad]);
    assert.equal(unauth.code, 1);
    assert.match(unauth.stderr, /401 Unauthorized/);

    const ctx = runCli([
      'runtime',
      'apply',
      '--platform',
      'metal-qemu-snp',
      '--kubeconfig',
      api.kubeconfig,
      '--context',
      'nope',
    ]);
    assert.equal(ctx.code, 1);
    assert.match(ctx.stderr, /context "nope" is not in the kubeconfig; known contexts: admin, alice/);

    const down = join(dir, 'down.kubeconfig');
    writeFileSync(
      down,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n`,
    );
    const unreachable = runCli([
      'runtime',
      'apply',
      '--platform',
      'metal-qemu-snp',
      '--kubeconfig',
      down,
      '--request-timeout',
      '5s',
    ]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach the API server .*ECONNREFUSED.*kubectl cluster-info/);
  });
});

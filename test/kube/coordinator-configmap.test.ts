/**
 * The real Coordinator process with its history in ConfigMaps of a real API server, using only
 * the rights of the rendered Role (a token of ServiceAccount coordinator): set, verify,
 * kill, restart (state comes back from the ConfigMaps), recover, verify; `status` reads the
 * active manifest that the Coordinator wrote.
 */
import { strict as assert } from 'node:assert';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { apiServer, type ApiServer } from '../helpers/apiserver.js';
import { runCli, REPO_ROOT, simGenerateArgs } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { startCoordinatorProcess, type CoordinatorProcess } from '../coordinator/process.js';
import { renderCoordinator } from '../../src/kube/coordinator-resources.js';
import { applyObjects } from '../../src/kube/apply.js';
import { connect } from '../../src/kube/client.js';
import type { StatusReport } from '../../src/kube/status.js';
import { admin, freshNamespace } from './kube.js';

describe('Coordinator with the ConfigMap state store (real process, real API server)', function () {
  this.timeout(600_000);
  let api: ApiServer;
  let dir: string;
  let coord: CoordinatorProcess | undefined;

  before(async function () {
    api = await apiServer();
    dir = tempDir('kc-cm-e2e-');
  });
  after(async () => {
    await coord?.kill();
    removeDir(dir);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && coord)
      process.stderr.write(`--- Coordinator log ---\n${coord.log()}\n`);
  });

  it('set, verify, restart from the ConfigMaps, recover, verify; status shows the manifest', async function () {
    const a = admin(api);
    const ns = await freshNamespace(a);
    await applyObjects(connect({ kubeconfig: api.kubeconfig, namespace: ns }), renderCoordinator({ namespace: ns }));
    const token = await a.core.createNamespacedServiceAccountToken({
      name: 'coordinator',
      namespace: ns,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    const saKubeconfig = join(dir, 'sa.kubeconfig');
    writeFileSync(
      saKubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${api.url}\n    certificate-authority-data: ${Buffer.from(api.caPem).toString('base64')}\nusers:\n- name: sa\n  user:\n    token: ${token.status!.token}\ncontexts:\n- name: sa\n  context:\n    cluster: c\n    user: sa\ncurrent-context: sa\n`,
      { mode: 0o600 },
    );

    const ws = join(dir, 'ws');
    const res = join(dir, 'resources');
    const sim = join(dir, 'sim');
    cpSync(join(REPO_ROOT, 'samples', 'plain'), res, { recursive: true });
    const env = { CONTRAST_INSECURE_SIM_DIR: sim };
    const g = runCli([...simGenerateArgs(ws), res], { env });
    assert.equal(g.code, 0, g.stderr);
    const manifest = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8')) as {
      Policies: Record<string, { Role?: string }>;
    };
    const coordinatorHash = Object.entries(manifest.Policies).find(([, e]) => e.Role === 'coordinator')![0];

    const saved = { ...process.env };
    const start = async (ports?: CoordinatorProcess['ports']) => {
      Object.assign(process.env, {
        CONTRAST_STATE_STORE: 'configmap',
        CONTRAST_NAMESPACE: ns,
        KUBECONFIG: saKubeconfig,
      });
      try {
        return await startCoordinatorProcess({
          stateDir: join(dir, 'unused-state'),
          policyHash: coordinatorHash,
          simDir: sim,
          workDir: dir,
          ...(ports ? { ports } : {}),
        });
      } finally {
        for (const k of ['CONTRAST_STATE_STORE', 'CONTRAST_NAMESPACE', 'KUBECONFIG']) {
          if (saved[k] === undefined) delete process.env[k];
          else process.env[k] = saved[k];
        }
      }
    };
    coord = await start();
    const addr = `127.0.0.1:${coord.ports.userapi}`;
    const set = runCli(['set', '-c', addr, '--workspace-dir', ws, res], { env });
    assert.equal(set.code, 0, `${set.stderr}\n${coord.log()}`);
    assert.match(coord.log(), new RegExp(`state in ConfigMaps of namespace ${ns}`));
    const latest = await a.core.readNamespacedConfigMap({ name: 'contrast-store-transitions-latest', namespace: ns });
    assert.ok(latest.binaryData?.latest);
    assert.equal(runCli(['verify', '-c', addr, '--workspace-dir', ws], { env }).code, 0);

    const s = runCli(['status', '--kubeconfig', api.kubeconfig, '-n', ns, '-o', 'json']);
    assert.equal(s.code, 0, s.stderr);
    const report = JSON.parse(s.stdout) as StatusReport;
    assert.equal(
      report.coordinators[0]?.activeManifest,
      createHash('sha256')
        .update(readFileSync(join(ws, 'manifest.json')))
        .digest('hex'),
    );

    // The process and its local files are gone; the history is in the API server.
    await coord.kill('SIGKILL');
    coord = await start(coord.ports);
    const waiting = runCli(['verify', '-c', addr, '--workspace-dir', ws], { env });
    assert.equal(waiting.code, 0, waiting.stderr);
    assert.match(waiting.stderr, /waits for recovery/);
    const rec = runCli(['recover', '-c', addr, '--workspace-dir', ws], { env });
    assert.equal(rec.code, 0, rec.stderr);
    const v = runCli(['verify', '-c', addr, '--workspace-dir', ws], { env });
    assert.equal(v.code, 0, v.stderr);
    assert.doesNotMatch(v.stderr, /waits for recovery/);
  });
});

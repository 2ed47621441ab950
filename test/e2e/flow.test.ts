/**
 * Upstream Contrast's deployment flow on the local node (scripts/cluster.sh), with real pods, the
 * simulated confidential runtime and only the product's own commands: runtime apply →
 * coordinator apply → generate → kubectl apply → workloads wait in their Initializer → set
 * (through the port-forwarder) → verify → workloads Ready with mesh certificates, web reaches
 * api over mTLS and a plain-text client is refused → the Coordinator pod is deleted → new
 * workloads wait → recover → verify shows the same history → a manifest update (from a Helm
 * chart through the Helm 4 post-renderer) rolls out → three Coordinator replicas survive the
 * deletion of one → a pod patched after generate is refused by its policy. Each step checks what
 * a user would see.
 *
 * Needs root and what scripts/setup.sh builds; its own namespace and state directory.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, REPO_ROOT, ensureBuilt } from '../helpers/cli.js';

const NETNS = `contrast-flow-${process.pid}`;
const DIR = mkdtempSync(join(tmpdir(), 'contrast-flow-'));
const WORK = join(DIR, 'work');
const ENV: NodeJS.ProcessEnv = { ...process.env, CONTRAST_CLUSTER_NETNS: NETNS, CONTRAST_CLUSTER_DIR: DIR };
const run = (cmd: string, args: string[], env = ENV, timeout = 600_000) =>
  spawnSync(cmd, args, { encoding: 'utf8', env, timeout, cwd: REPO_ROOT });
const cluster = (...args: string[]) => run('bash', [join(REPO_ROOT, 'scripts', 'cluster.sh'), ...args]);
/** The environment `cluster.sh env` prints, as a user's `eval` would set it. */
const clusterEnv: NodeJS.ProcessEnv = {};
const inNode = (args: string[], timeout = 600_000) =>
  run('bash', [join(REPO_ROOT, 'scripts', 'cluster.sh'), 'exec', '--', ...args], { ...ENV, ...clusterEnv }, timeout);
const kubectl = (...args: string[]) => inNode(['kubectl', ...args]);
const contrast = (...args: string[]) => inNode([process.execPath, CLI, ...args]);

function ok(r: ReturnType<typeof spawnSync>, what: string): string {
  assert.equal(r.status, 0, `${what} (exit ${r.status}): ${String(r.stderr)}${String(r.stdout)}`);
  return String(r.stdout);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll until `check` returns a value (not undefined), at most `seconds`. */
async function until<T>(what: string, seconds: number, check: () => T | undefined): Promise<T> {
  const end = Date.now() + seconds * 1000;
  let last: unknown;
  for (;;) {
    try {
      const v = check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${seconds} s waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(2000);
  }
}

interface Pod {
  metadata: { name: string; creationTimestamp: string; labels?: Record<string, string> };
  spec: { runtimeClassName?: string };
  status: {
    phase: string;
    conditions?: { type: string; status: string }[];
    initContainerStatuses?: { name: string; state: Record<string, unknown>; ready: boolean }[];
  };
}

const pods = (selector: string): Pod[] =>
  (JSON.parse(ok(kubectl('get', 'pods', '-l', selector, '-o', 'json'), 'get pods')) as { items: Pod[] }).items;
const ready = (p: Pod) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
/** The pod waits in its Initializer: phase Pending, the Initializer running, not ready. */
const waitingInInit = (p: Pod) =>
  p.status.phase === 'Pending' &&
  p.status.initContainerStatuses?.find((s) => s.name === 'contrast-initializer')?.state.running !== undefined;

/** The manifests `verify` wrote, by file name. */
const history = (): Record<string, string> =>
  Object.fromEntries(
    readdirSync(join(WORK, 'verify'))
      .filter((f) => /^manifest\.\d+\.json$/.test(f))
      .map((f) => [f, readFileSync(join(WORK, 'verify', f), 'utf8')]),
  );

/** The log of the web pod that started last and is ready. */
const newestWebLog = (): string => {
  const web = pods('app.kubernetes.io/name=web')
    .filter(ready)
    .sort((a, b) => (a.metadata.creationTimestamp < b.metadata.creationTimestamp ? 1 : -1))[0];
  return web ? ok(kubectl('logs', web.metadata.name, '-c', 'web'), 'web logs') : '';
};

const restartApp = async (): Promise<void> => {
  ok(kubectl('rollout', 'restart', 'deployment/web', 'statefulset/api'), 'rollout restart');
  ok(kubectl('rollout', 'status', 'deployment/web', '--timeout=300s'), 'web rolls out');
  ok(kubectl('rollout', 'status', 'statefulset/api', '--timeout=300s'), 'api rolls out');
};

/** generate on the inputs in the workspace, offline: our images and the app's from their layouts. */
const generateApp = () =>
  contrast(
    ...['generate', '--platform', 'insecure-sim', '--workspace-dir', WORK, '--offline'],
    ...['--oci-layout', join(DIR, 'images'), '--oci-layout', join(DIR, 'app-image')],
    ...['-o', join(WORK, 'resources.yaml'), join(WORK, 'inputs')],
  );

const events = (pod: string): string =>
  ok(kubectl('get', 'events', '--field-selector', `involvedObject.name=${pod}`, '-o', 'json'), 'events');

describe('e2e: the deployment flow on a real node with the simulated runtime', function () {
  this.timeout(1_800_000);
  this.bail(true);
  let handler = '';
  let coordinatorHash = '';

  before(function () {
    if (process.getuid?.() !== 0 || !existsSync(join(REPO_ROOT, 'tools', 'bin', 'kubelet'))) this.skip();
    ensureBuilt();
  });
  after(() => {
    if (process.getuid?.() === 0) cluster('down');
    rmSync(DIR, { recursive: true, force: true });
  });

  it('brings the node up and pushes the test application next to our images', () => {
    ok(cluster('up'), 'up');
    for (const line of ok(cluster('env'), 'env').split('\n')) {
      const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
      if (m) clusterEnv[m[1]!] = m[2]!;
    }
    assert.equal(clusterEnv.CONTRAST_RUNTIME_DIR, join(DIR, 'runtime'));
    ok(
      inNode([
        process.execPath,
        '--import=tsx',
        'scripts/images/e2e-app.ts',
        '--out',
        join(DIR, 'app-image'),
        '--push',
        '127.0.0.1:5000/kubectl-contrast',
      ]),
      'app image',
    );
  });

  it('runtime apply installs the simulated runtime through its node installer', async () => {
    const out = ok(contrast('runtime', 'apply', '--platform', 'insecure-sim'), 'runtime apply');
    const rc = JSON.parse(ok(kubectl('get', 'runtimeclass', '-o', 'json'), 'runtimeclasses')) as {
      items: { metadata: { name: string }; handler: string }[];
    };
    handler = rc.items.find((r) => r.metadata.name.startsWith('contrast-cc-insecure-sim-'))!.handler;
    assert.match(out, new RegExp(handler));
    ok(
      kubectl('rollout', 'status', `daemonset/${handler}-nodeinstaller`, '--timeout=300s'),
      'the node installer DaemonSet',
    );
    const config = readFileSync(join(DIR, 'etc', 'containerd.toml'), 'utf8');
    assert.match(config, new RegExp(`runtimes\\."${handler}"\\]`));
    assert.ok(existsSync(join(DIR, 'runtime', handler, 'bin', 'runc-wrapper')));
    // The device holds the node's simulated root; only its public half is anywhere else.
    await until(
      'the simulated root',
      60,
      () => existsSync(join(DIR, 'runtime', 'insecure-sim-root', 'root.pub.pem')) || undefined,
    );
    assert.match(
      readFileSync(join(DIR, 'logs', 'containerd.log'), 'utf8'),
      /containerd exited .*restarting/,
      'the installer restarted containerd',
    );
  });

  it('coordinator apply starts the Coordinator in the simulated runtime, waiting for a manifest', async () => {
    // The policy settings of this node (its containerd 1.6, its capability set), as the docs tell
    // a user of the local node to use them (docs/cluster.md).
    mkdirSync(WORK, { recursive: true });
    copyFileSync(clusterEnv.CONTRAST_CLUSTER_POLICY_SETTINGS!, join(WORK, 'settings.json'));
    const out = contrast(
      'coordinator',
      'apply',
      '--platform',
      'insecure-sim',
      '--oci-layout',
      join(DIR, 'images'),
      '--offline',
      '--workspace-dir',
      WORK,
      '--replicas',
      '1',
    );
    ok(out, 'coordinator apply');
    coordinatorHash = /\b([0-9a-f]{64})\b/.exec(out.stdout + out.stderr)?.[1] ?? '';
    assert.match(coordinatorHash, /^[0-9a-f]{64}$/, `no policy hash in: ${out.stdout}${out.stderr}`);
    const pod = await until('the Coordinator pod running', 300, () => {
      const p = pods('app.kubernetes.io/name=coordinator')[0];
      return p?.status.phase === 'Running' ? p : undefined;
    });
    assert.equal(pod.spec.runtimeClassName, handler);
    assert.equal(ready(pod), false, 'not ready before a manifest is set');
  });

  let manifestPath = '';
  it('generate computes the policies, kubectl apply starts the workloads, which wait in their Initializer', async () => {
    const inputs = join(WORK, 'inputs');
    ok(run('mkdir', ['-p', inputs]), 'mkdir');
    writeFileSync(
      join(inputs, 'coordinator.yaml'),
      ok(contrast('coordinator', 'render', '--no-policy', '--replicas', '1'), 'coordinator render --no-policy'),
    );
    writeFileSync(join(inputs, 'app.yaml'), readFileSync(join(REPO_ROOT, 'test', 'e2e', 'workloads', 'app.yaml')));
    ok(generateApp(), 'generate');
    manifestPath = join(WORK, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { Policies: Record<string, { Role?: string }> };
    assert.equal(
      manifest.Policies[coordinatorHash]?.Role,
      'coordinator',
      'the applied Coordinator is the generated one',
    );
    ok(kubectl('apply', '-f', join(WORK, 'resources.yaml')), 'kubectl apply');
    for (const app of ['api', 'web'])
      await until(`${app} waiting in its Initializer`, 300, () =>
        pods(`app.kubernetes.io/name=${app}`).some(waitingInInit) ? true : undefined,
      );
  });

  it('set (through the port-forwarder) and verify attest the Coordinator; the workloads start with mesh certificates', async () => {
    const set = contrast('set', '--workspace-dir', WORK, join(WORK, 'resources.yaml'));
    ok(set, 'set');
    assert.match(set.stderr + set.stdout, /insecure-sim|SIMULATED/i);
    ok(contrast('verify', '--workspace-dir', WORK), 'verify');
    const meshCa = readFileSync(join(WORK, 'verify', 'mesh-ca.pem'), 'utf8');
    for (const app of ['api', 'web'])
      await until(`${app} ready`, 300, () => (pods(`app.kubernetes.io/name=${app}`).every(ready) ? true : undefined));
    const logs = await until('web reaching api over the mesh', 120, () => {
      const l = newestWebLog();
      return /^api 1\r?$/m.test(l) ? l : undefined;
    });
    assert.ok(logs.includes(meshCa.trim()), 'web got the mesh CA that verify reports');
  });

  it('a plain-text client is refused by the api', () => {
    const api = pods('app.kubernetes.io/name=api')[0]!;
    const ip = ok(kubectl('get', 'pod', api.metadata.name, '-o', 'jsonpath={.status.podIP}'), 'api ip');
    const r = inNode(['curl', '-s', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', `http://${ip}:8080/`]);
    assert.notEqual(r.status, 0, `plain HTTP reached the api: ${r.stdout}`);
    assert.notEqual(r.stdout, '200');
  });

  let historyBefore: Record<string, string> = {};
  it('after the Coordinator pod is deleted, new workloads wait until recover; verify shows the same history', async () => {
    historyBefore = history();
    assert.ok(Object.keys(historyBefore).length >= 1);
    const old = pods('app.kubernetes.io/name=coordinator')[0]!.metadata.name;
    ok(kubectl('delete', 'pod', old, '--wait=true', '--timeout=120s'), 'delete the Coordinator pod');
    await until('the new Coordinator pod running and waiting for recover', 300, () => {
      const p = pods('app.kubernetes.io/name=coordinator')[0];
      return p?.status.phase === 'Running' && !ready(p) ? p : undefined;
    });
    ok(kubectl('scale', 'deployment/web', '--replicas=2'), 'scale web');
    await sleep(20_000);
    const web = pods('app.kubernetes.io/name=web');
    assert.equal(web.length, 2);
    assert.equal(web.filter(waitingInInit).length, 1, 'the new web pod waits in its Initializer');
    const recovered = contrast('recover', '--workspace-dir', WORK);
    ok(recovered, 'recover');
    assert.match(recovered.stdout + recovered.stderr, /Recovered the Coordinator/);
    await until('both web pods ready', 300, () =>
      pods('app.kubernetes.io/name=web').filter(ready).length === 2 ? true : undefined,
    );
    ok(contrast('verify', '--workspace-dir', WORK), 'verify after recover');
    assert.deepEqual(history(), historyBefore);
    // A recovered Coordinator has a new mesh CA: the workloads are restarted, as recover says.
    await restartApp();
    await until('web reaching api under the new mesh CA', 120, () =>
      /^api 1\r?$/m.test(newestWebLog()) ? true : undefined,
    );
  });

  it('a manifest update, rendered from a Helm chart through the Helm 4 post-renderer plugin, rolls out', async () => {
    // The same deployment as a chart whose value changes the api; `helm template` runs our
    // post-renderer plugin, which transforms it and updates the workspace's manifest.
    const chart = join(WORK, 'chart');
    mkdirSync(join(chart, 'templates'), { recursive: true });
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: e2e\nversion: 0.1.0\n');
    writeFileSync(join(chart, 'values.yaml'), 'apiVersion: "2"\n');
    copyFileSync(join(WORK, 'inputs', 'coordinator.yaml'), join(chart, 'templates', 'coordinator.yaml'));
    const app = readFileSync(join(WORK, 'inputs', 'app.yaml'), 'utf8');
    assert.ok(app.includes('value: "1"'));
    writeFileSync(
      join(chart, 'templates', 'app.yaml'),
      app.replace('value: "1"', 'value: {{ .Values.apiVersion | quote }}'),
    );
    const helmHome = join(DIR, 'helm');
    for (const d of ['config', 'cache', 'data']) mkdirSync(join(helmHome, d), { recursive: true });
    const helmEnv = {
      ...ENV,
      ...clusterEnv,
      HELM_CONFIG_HOME: join(helmHome, 'config'),
      HELM_CACHE_HOME: join(helmHome, 'cache'),
      HELM_DATA_HOME: join(helmHome, 'data'),
      HELM_PLUGINS: join(helmHome, 'data', 'plugins'),
    };
    const helm = join(REPO_ROOT, 'tools', 'bin', 'helm4');
    ok(run(helm, ['plugin', 'install', join(REPO_ROOT, 'plugin')], helmEnv), 'helm4 plugin install ./plugin');
    const rendererArgs = [
      '--platform=insecure-sim',
      `--workspace-dir=${WORK}`,
      '--offline',
      `--oci-layout=${join(DIR, 'images')}`,
      `--oci-layout=${join(DIR, 'app-image')}`,
    ].flatMap((a) => ['--post-renderer-args', a]);
    const rendered = ok(
      run(helm, ['template', 'e2e', chart, '--post-renderer', 'contrast', ...rendererArgs], helmEnv),
      'helm4 template --post-renderer contrast',
    );
    assert.match(rendered, /cc_init_data/);
    writeFileSync(join(WORK, 'resources.yaml'), rendered);
    ok(contrast('set', '--workspace-dir', WORK, join(WORK, 'resources.yaml')), 'set the new manifest');
    ok(kubectl('apply', '-f', join(WORK, 'resources.yaml')), 'apply');
    // A new manifest has a new mesh CA: every workload restarts (api also changed).
    await restartApp();
    await until('web seeing api 2', 120, () => (/^api 2\r?$/m.test(newestWebLog()) ? true : undefined));
    ok(contrast('verify', '--workspace-dir', WORK), 'verify');
    assert.equal(
      Object.keys(history()).length,
      Object.keys(historyBefore).length + 1,
      'one more manifest in the history',
    );
  });

  it('with three Coordinator replicas, deleting one keeps workloads starting (peer recovery, no recover)', async () => {
    ok(kubectl('scale', 'statefulset/coordinator', '--replicas=3'), 'scale the Coordinator');
    ok(kubectl('rollout', 'status', 'statefulset/coordinator', '--timeout=300s'), 'replicas ready');
    const replicas = pods('app.kubernetes.io/name=coordinator');
    assert.equal(replicas.filter(ready).length, 3, 'the new replicas took the secrets from a ready peer');
    ok(kubectl('delete', 'pod', 'coordinator-0', '--wait=true', '--timeout=120s'), 'delete one replica');
    ok(kubectl('scale', 'deployment/web', '--replicas=3'), 'scale web');
    await until('three web pods ready without recover', 300, () =>
      pods('app.kubernetes.io/name=web').filter(ready).length === 3 ? true : undefined,
    );
    await until('the deleted replica back and ready', 300, () =>
      pods('app.kubernetes.io/name=coordinator').filter(ready).length === 3 ? true : undefined,
    );
    ok(contrast('verify', '--workspace-dir', WORK), 'verify through any replica');
    // Room on the two cores of a CI machine for the next step's pod.
    ok(kubectl('scale', 'deployment/web', '--replicas=1'), 'scale web down');
  });

  it('a pod whose command was patched after generate is refused by its policy, with the reason in its events', async () => {
    const before = new Set(pods('app.kubernetes.io/name=web').map((p) => p.metadata.name));
    const spec = JSON.parse(ok(kubectl('get', 'deployment', 'web', '-o', 'json'), 'get web')) as {
      spec: { template: { spec: { containers: { name: string }[] } } };
    };
    const index = spec.spec.template.spec.containers.findIndex((c) => c.name === 'web');
    const patch = [
      {
        op: 'replace',
        path: `/spec/template/spec/containers/${index}/args`,
        value: ['cat /contrast/secrets/workload-secret-seed; sleep 86400'],
      },
    ];
    ok(kubectl('patch', 'deployment', 'web', '--type=json', '-p', JSON.stringify(patch)), 'patch the command');
    const pod = await until('the patched pod', 120, () =>
      pods('app.kubernetes.io/name=web').find((p) => !before.has(p.metadata.name)),
    );
    const message = await until('the policy denial in the events', 300, () => {
      const e = events(pod.metadata.name);
      return /blocked by the pod's policy/.test(e) ? e : undefined;
    });
    assert.match(message, /container web: CreateContainerRequest is blocked by the pod's policy/);
    const now = pods('app.kubernetes.io/name=web').find((p) => p.metadata.name === pod.metadata.name)!;
    assert.equal(ready(now), false);
    assert.equal(pods('app.kubernetes.io/name=web').filter(ready).length >= 1, true, 'the unpatched pods keep running');
  });
});

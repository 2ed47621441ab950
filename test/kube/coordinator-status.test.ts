import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubernetesObject, V1Pod, V1Taint } from '@kubernetes/client-node';
import { apiServer, type ApiServer } from '../helpers/apiserver.js';
import { runCli, REPO_ROOT } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { History } from '../../src/coordinator/history.js';
import { ConfigMapStore } from '../../src/coordinator/store/configmap.js';
import { parseObjects } from '../../src/kube/output.js';
import { applyObjects } from '../../src/kube/apply.js';
import { connect } from '../../src/kube/client.js';
import { parseReplicaState, type StatusReport } from '../../src/kube/status.js';
import { replicasForCluster } from '../../src/kube/coordinator-deploy.js';
import { admin, freshNamespace, type Admin } from './kube.js';

const IMAGES = ['--oci-layout', join(REPO_ROOT, 'samples/images'), '--offline', '--no-cache'];

function withoutNamespace(o: KubernetesObject): KubernetesObject {
  const copy = structuredClone(o);
  delete copy.metadata!.namespace;
  return copy;
}

describe('coordinator render|apply and status against a real API server', function () {
  this.timeout(300_000);
  let api: ApiServer;
  let a: Admin;
  let work: string;

  before(async function () {
    api = await apiServer();
    a = admin(api);
    work = tempDir('kc-status-');
  });
  after(() => removeDir(work));

  it('coordinator render --no-policy gives the template for generate; with --platform it carries its policy', function () {
    const raw = runCli(['coordinator', 'render', '--no-policy', '-n', 'app']);
    assert.equal(raw.code, 0, raw.stderr);
    const objs = parseObjects(raw.stdout);
    assert.deepEqual(
      objs.map((o) => o.kind),
      ['ServiceAccount', 'Role', 'RoleBinding', 'StatefulSet', 'Service', 'Service', 'Service'],
    );
    assert.ok(objs.every((o) => o.metadata?.namespace === 'app'));
    const sts = objs[3] as unknown as {
      spec: {
        template: {
          metadata: { annotations: Record<string, string> };
          spec: { runtimeClassName: string; serviceAccountName: string };
        };
      };
    };
    assert.equal(sts.spec.template.spec.runtimeClassName, 'contrast-cc');
    assert.equal(sts.spec.template.metadata.annotations['contrast.edgeless.systems/pod-role'], 'coordinator');
    assert.equal(sts.spec.template.spec.serviceAccountName, 'coordinator');
    const role = objs[1] as unknown as { rules: { resources: string[]; verbs: string[] }[] };
    assert.deepEqual(role.rules, [
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update', 'watch'] },
    ]);

    const ws = join(work, 'render-ws');
    const withPolicy = runCli([
      'coordinator',
      'render',
      '--platform',
      'insecure-sim',
      '--workspace-dir',
      ws,
      ...IMAGES,
    ]);
    assert.equal(withPolicy.code, 0, withPolicy.stderr);
    assert.match(withPolicy.stdout, /io\.katacontainers\.config\.hypervisor\.cc_init_data/);
    assert.match(withPolicy.stdout, /runtimeClassName: contrast-cc-insecure-sim-[0-9a-f]{8}/);
    assert.match(withPolicy.stderr, /Coordinator policy hash: [0-9a-f]{64}/);
    assert.match(withPolicy.stderr, /there is no .*manifest.json yet/);
  });

  it('the Coordinator policy is the one generate records with Role coordinator', function () {
    const ws = join(work, 'gen-ws');
    const raw = runCli(['coordinator', 'render', '--no-policy', '-n', 'default']);
    const input = join(work, 'coordinator.yaml');
    writeFileSync(input, raw.stdout);
    const gen = runCli([
      'generate',
      '--platform',
      'insecure-sim',
      '--workspace-dir',
      ws,
      '-o',
      join(work, 'gen.yaml'),
      ...IMAGES,
      input,
    ]);
    assert.equal(gen.code, 0, gen.stderr);
    const manifest = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8')) as {
      Policies: Record<string, { Role?: string }>;
    };
    const rendered = runCli(['coordinator', 'render', '--platform', 'insecure-sim', '--workspace-dir', ws, ...IMAGES]);
    assert.equal(rendered.code, 0, rendered.stderr);
    const hash = /Coordinator policy hash: ([0-9a-f]{64})/.exec(rendered.stderr)![1]!;
    assert.equal(manifest.Policies[hash]?.Role, 'coordinator');
    assert.doesNotMatch(rendered.stderr, /Warning/);
  });

  it('coordinator apply: server-side apply, idempotent, least-privilege Role in place', async function () {
    const ns = await freshNamespace(a);
    const args = [
      'coordinator',
      'apply',
      '--platform',
      'insecure-sim',
      '--kubeconfig',
      api.kubeconfig,
      '-n',
      ns,
      '--workspace-dir',
      join(work, 'apply-ws'),
      ...IMAGES,
    ];
    const first = runCli(args);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /statefulset.apps\/coordinator created/);
    assert.match(first.stdout, /role.rbac.authorization.k8s.io\/coordinator created/);
    const sts = await a.apps.readNamespacedStatefulSet({ name: 'coordinator', namespace: ns });
    assert.ok(sts.spec?.template.metadata?.annotations?.['io.katacontainers.config.hypervisor.cc_init_data']);
    assert.ok(sts.metadata?.managedFields?.some((f) => f.manager === 'kubectl-contrast' && f.operation === 'Apply'));
    const second = runCli(args);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout.split('\n').filter((l) => l && !/ unchanged$/.test(l)).length, 0, second.stdout);
    const sts2 = await a.apps.readNamespacedStatefulSet({ name: 'coordinator', namespace: ns });
    assert.equal(sts2.metadata?.resourceVersion, sts.metadata?.resourceVersion);
    const svc = await a.core.readNamespacedService({ name: 'coordinator', namespace: ns });
    assert.equal(svc.spec?.type, 'LoadBalancer');
    await a.core.readNamespacedService({ name: 'coordinator-ready', namespace: ns });
    const peers = await a.core.readNamespacedService({ name: 'coordinator-peers', namespace: ns });
    assert.equal(peers.spec?.clusterIP, 'None');
    // Without --replicas: one per schedulable node (none here), at most 3, at least 1.
    const chosen = /Coordinator replicas: \d+ schedulable node\(s\): (\d+) replica/.exec(first.stderr);
    assert.ok(chosen, first.stderr);
    assert.equal(sts.spec?.replicas, Number(chosen[1]));
    // --replicas changes the count, not the policy.
    const scaled = runCli([...args, '--replicas', '4']);
    assert.equal(scaled.code, 0, scaled.stderr);
    assert.doesNotMatch(scaled.stderr, /schedulable node/);
    const sts3 = await a.apps.readNamespacedStatefulSet({ name: 'coordinator', namespace: ns });
    assert.equal(sts3.spec?.replicas, 4);
    assert.deepEqual(sts3.spec?.template, sts.spec?.template, 'the same pod template, so the same policy');
    const dry = runCli([
      'coordinator',
      'apply',
      '--platform',
      'insecure-sim',
      '--kubeconfig',
      api.kubeconfig,
      '-n',
      'nonexistent-ns',
      '--dry-run=server',
      ...IMAGES,
    ]);
    assert.equal(dry.code, 1);
    assert.match(dry.stderr, /not found.*nonexistent-ns/);
  });

  it('status shows the Coordinator, the active manifest, workloads in and out of it, and pods stuck in the Initializer', async function () {
    const ns = await freshNamespace(a);
    const cluster = connect({ kubeconfig: api.kubeconfig, namespace: ns });
    const ws = join(work, 'status-ws');
    const out = join(work, 'status.yaml');
    const gen = runCli([
      'generate',
      '--platform',
      'insecure-sim',
      '--workspace-dir',
      ws,
      '-o',
      out,
      ...IMAGES,
      join(REPO_ROOT, 'samples/plain'),
    ]);
    assert.equal(gen.code, 0, gen.stderr);
    const rt = runCli(['runtime', 'apply', '--platform', 'insecure-sim', '--kubeconfig', api.kubeconfig, '-n', ns]);
    assert.equal(rt.code, 0, rt.stderr);
    const objects = parseObjects(readFileSync(out, 'utf8')).map(withoutNamespace);
    await applyObjects(cluster, objects);

    // The Coordinator's state: the generated manifest minus the worker's policy.
    const manifest = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8')) as {
      Policies: Record<string, { Role?: string }>;
    };
    const cron = objects.find((o) => o.kind === 'CronJob') as unknown as {
      spec: { jobTemplate: { spec: { template: { metadata: { annotations: Record<string, string> } } } } };
    };
    const { decodeInitDataAnnotation } = await import('../../src/policy/initdata.js');
    const workerHash = decodeInitDataAnnotation(
      cron.spec.jobTemplate.spec.template.metadata.annotations['io.katacontainers.config.hypervisor.cc_init_data']!,
    ).hash;
    delete manifest.Policies[workerHash];
    const history = new History(new ConfigMapStore({ kc: a.kc, namespace: ns }));
    const manifestHash = await history.setManifest(Buffer.from(JSON.stringify(manifest)));
    const th = await history.setTransition({ manifestHash, previousTransitionHash: Buffer.alloc(32) });
    const key = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    assert.equal(await history.setLatest(undefined, th, key), true);

    // A pod of the web Deployment that hangs in the Initializer (pods do not run here: the
    // status is written through the status subresource, as a kubelet would).
    const dep = await a.apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    const rs = await a.apps.createNamespacedReplicaSet({
      namespace: ns,
      body: {
        metadata: {
          name: 'web-abc',
          ownerReferences: [
            { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: dep.metadata!.uid!, controller: true },
          ],
        },
        spec: { selector: dep.spec!.selector, template: dep.spec!.template },
      },
    });
    const pod = await a.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: {
          name: 'web-abc-1',
          labels: dep.spec!.template.metadata!.labels!,
          annotations: dep.spec!.template.metadata!.annotations!,
          ownerReferences: [
            { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc', uid: rs.metadata!.uid!, controller: true },
          ],
        },
        spec: dep.spec!.template.spec!,
      },
    });
    const withStatus: V1Pod = {
      ...pod,
      status: {
        phase: 'Pending',
        initContainerStatuses: [
          {
            name: 'contrast-initializer',
            image: 'x',
            imageID: '',
            ready: false,
            restartCount: 3,
            state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container' } },
            lastState: { terminated: { exitCode: 1, message: 'coordinator-ready: connection refused' } },
          },
        ],
      },
    };
    await a.core.replaceNamespacedPodStatus({ name: 'web-abc-1', namespace: ns, body: withStatus });

    const json = runCli(['status', '--kubeconfig', api.kubeconfig, '-n', ns, '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as StatusReport;
    assert.equal(report.coordinators.length, 1);
    const c = report.coordinators[0]!;
    assert.equal(c.manifestSet, true);
    assert.equal(c.activeManifest, manifestHash.toString('hex'));
    assert.equal(c.readyPods, 0);
    assert.equal(c.recoveryNeeded, false);
    assert.deepEqual(c.replicaStates, [], 'no Coordinator pod exists');
    const byName = new Map(report.workloads.map((w) => [`${w.kind}/${w.name}`, w]));
    assert.deepEqual([...byName.keys()].sort(), [
      'CronJob/report',
      'Deployment/web',
      'StatefulSet/api',
      'StatefulSet/coordinator',
    ]);
    assert.equal(byName.get('StatefulSet/coordinator')!.inManifest, 'yes');
    assert.equal(byName.get('StatefulSet/coordinator')!.role, 'coordinator');
    assert.equal(byName.get('Deployment/web')!.inManifest, 'yes');
    assert.equal(byName.get('StatefulSet/api')!.inManifest, 'yes');
    assert.equal(byName.get('CronJob/report')!.inManifest, 'no');
    const web = byName.get('Deployment/web')!;
    assert.equal(web.pods, 1);
    assert.equal(web.problems.length, 1);
    assert.equal(web.problems[0]!.stage, 'initializer');
    assert.match(web.problems[0]!.reason, /CrashLoopBackOff.*connection refused.*3 restarts/);

    const table = runCli(['status', '--kubeconfig', api.kubeconfig, '-n', ns]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /COORDINATOR\s+READY\s+ADDRESS\s+MANIFEST/);
    assert.match(table.stdout, new RegExp(manifestHash.toString('hex').slice(0, 16)));
    assert.match(table.stdout, /cronjob\/report\s+[0-9a-f]{16}\s+no/);
    assert.match(table.stdout, /web-abc-1: stuck in Initializer: CrashLoopBackOff/);

    const all = runCli(['status', '--kubeconfig', api.kubeconfig, '-A', '-o', 'yaml']);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, new RegExp(`namespace: ${ns}`));

    // Without the right to read the state ConfigMaps, status says so instead of failing.
    await a.rbac.createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: 'viewer' },
        rules: [
          {
            apiGroups: ['', 'apps', 'batch'],
            resources: [
              'pods',
              'services',
              'deployments',
              'statefulsets',
              'daemonsets',
              'replicasets',
              'replicationcontrollers',
              'jobs',
              'cronjobs',
            ],
            verbs: ['list'],
          },
        ],
      },
    });
    await a.rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'viewer' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'viewer' },
        subjects: [{ kind: 'User', name: 'alice', apiGroup: 'rbac.authorization.k8s.io' }],
      },
    });
    const limited = runCli(['status', '--kubeconfig', api.kubeconfig, '--context', 'alice', '-n', ns, '-o', 'json']);
    assert.equal(limited.code, 0, limited.stderr);
    assert.match((JSON.parse(limited.stdout) as StatusReport).coordinators[0]!.storeError ?? '', /not allowed/);
    const denied = runCli(['status', '--kubeconfig', api.kubeconfig, '--context', 'alice', '-A']);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /403 Forbidden.*kubectl auth can-i/);
  });

  it('status lists every workload kind that generate handles, a ReplicationController too', async function () {
    const ns = await freshNamespace(a);
    const input = join(work, 'rc.yaml');
    writeFileSync(
      input,
      `apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
spec:
  replicas: 1
  selector: {app: legacy}
  template:
    metadata:
      labels: {app: legacy}
    spec:
      runtimeClassName: contrast-cc
      containers:
        - name: worker
          image: ghcr.io/kubectl-contrast/samples/worker:1.0
          securityContext: {runAsUser: 1001, runAsGroup: 1001}
      securityContext: {supplementalGroups: [2000]}
`,
    );
    const out = join(work, 'rc-out.yaml');
    const gen = runCli([
      'generate',
      '--platform',
      'insecure-sim',
      '--workspace-dir',
      join(work, 'rc-ws'),
      '-o',
      out,
      ...IMAGES,
      input,
    ]);
    assert.equal(gen.code, 0, gen.stderr);
    await applyObjects(connect({ kubeconfig: api.kubeconfig, namespace: ns }), parseObjects(readFileSync(out, 'utf8')));
    const r = runCli(['status', '--kubeconfig', api.kubeconfig, '-n', ns, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const workloads = (JSON.parse(r.stdout) as StatusReport).workloads;
    assert.deepEqual(
      workloads.map((w) => `${w.kind}/${w.name}`),
      ['ReplicationController/legacy'],
    );
    assert.match(workloads[0]!.policyHash ?? '', /^[0-9a-f]{64}$/);
  });

  it('apply counts schedulable nodes for its default replicas: Ready, not cordoned, not tainted NoSchedule', async () => {
    const cluster = connect({ kubeconfig: api.kubeconfig });
    const before = await replicasForCluster(cluster);
    assert.ok(before.nodes !== undefined, before.reason);
    const suffix = Math.random().toString(16).slice(2, 8);
    const made: string[] = [];
    const node = async (name: string, ready: boolean, spec: Record<string, unknown> = {}) => {
      const n = await a.core.createNode({ body: { metadata: { name: `${name}-${suffix}` }, spec } });
      made.push(n.metadata!.name!);
      await a.core.replaceNodeStatus({
        name: n.metadata!.name!,
        body: {
          ...n,
          status: {
            conditions: [
              {
                type: 'Ready',
                status: ready ? 'True' : 'False',
                lastHeartbeatTime: new Date(),
                lastTransitionTime: new Date(),
              },
            ],
          },
        },
      });
      // The API server taints a new node not-ready; the node controller (absent here) would lift it.
      const now = await a.core.readNode({ name: n.metadata!.name! });
      now.spec = { ...now.spec, taints: (spec.taints as V1Taint[] | undefined) ?? [] };
      await a.core.replaceNode({ name: n.metadata!.name!, body: now });
    };
    try {
      await node('ready-a', true);
      await node('ready-b', true);
      await node('not-ready', false);
      await node('cordoned', true, { unschedulable: true });
      await node('tainted', true, { taints: [{ key: 'x', effect: 'NoSchedule' }] });
      const after = await replicasForCluster(cluster);
      assert.equal(after.nodes, before.nodes! + 2, after.reason);
      assert.equal(after.replicas, Math.max(1, Math.min(3, before.nodes! + 2)));
      assert.match(after.reason, /schedulable node/);
    } finally {
      for (const name of made) await a.core.deleteNode({ name });
    }
  });

  it("status reads a replica's state from its readiness probe body, and nothing else", () => {
    assert.equal(parseReplicaState('ready\n'), 'ready');
    assert.equal(parseReplicaState('waiting-for-recover\n'), 'waiting-for-recover');
    assert.equal(parseReplicaState('recovering-from-peer'), 'recovering-from-peer');
    assert.equal(parseReplicaState('uninitialised\n'), 'uninitialised');
    assert.equal(parseReplicaState('recovery\n'), undefined, 'not a replica state');
    assert.equal(parseReplicaState('<html>bad gateway</html>'), undefined);
  });
});

/**
 * The rendered Coordinator's collateral caches: a memory emptyDir (a tmpfs inside the pod's VM)
 * mounted where CONTRAST_SNP_CACHE_DIR / CONTRAST_TDX_CACHE_DIR point, so AMD KDS and Intel
 * PCS answers survive a restart of the container within the pod; and samples/plain/coordinator.yaml
 * is what `coordinator render --no-policy` prints (the image by tag, as generate pins it); the
 * replicas: a preferred anti-affinity, the headless peers Service, a pod template (and so a
 * policy) that does not depend on their number.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DirectoryCache } from '../../src/attestation/snp/kds.js';
import type { TdxCollateralDirectory } from '../../src/attestation/tdx/pcs.js';
import { snpCollateral, tdxCollateral } from '../../src/coordinator/collateral.js';
import {
  COLLATERAL_CACHE_PATH,
  DEFAULT_REPLICAS,
  MESHAPI_PORT,
  renderCoordinator,
} from '../../src/kube/coordinator-resources.js';
import { IN_CLUSTER_PEERS, PEERS_SERVICE } from '../../src/coordinator/peers.js';
import { parseObjects } from '../../src/kube/output.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';

interface Container {
  env: { name: string; value?: string }[];
  volumeMounts?: { name: string; mountPath: string }[];
  image: string;
}
interface PodSpec {
  containers: Container[];
  volumes?: { name: string; emptyDir?: { medium?: string } }[];
}
const podSpec = (objs: unknown[]) =>
  (objs.find((o) => (o as { kind: string }).kind === 'StatefulSet') as { spec: { template: { spec: PodSpec } } }).spec
    .template.spec;

describe('coordinator render: collateral caches', () => {
  it('mounts a memory emptyDir and points both collateral caches into it', () => {
    const spec = podSpec(renderCoordinator({ namespace: 'app' }));
    const c = spec.containers[0]!;
    const env = new Map(c.env.map((e) => [e.name, e.value]));
    assert.equal(env.get('CONTRAST_SNP_CACHE_DIR'), `${COLLATERAL_CACHE_PATH}/amd`);
    assert.equal(env.get('CONTRAST_TDX_CACHE_DIR'), `${COLLATERAL_CACHE_PATH}/intel`);
    assert.equal(env.has('CONTRAST_COLLATERAL_OFFLINE'), false, 'the rendered Coordinator fetches');
    const mount = c.volumeMounts?.find((m) => m.mountPath === COLLATERAL_CACHE_PATH);
    assert.ok(mount, 'the cache path is a mount');
    const volume = spec.volumes?.find((v) => v.name === mount.name);
    assert.deepEqual(volume?.emptyDir, { medium: 'Memory' }, 'inside the VM: not a host-backed disk');
  });

  it('names the variables the Coordinator reads (src/coordinator/collateral.ts)', () => {
    const env = podSpec(renderCoordinator({ namespace: 'app' })).containers[0]!.env;
    const saved = { ...process.env };
    try {
      for (const e of env) if (e.value !== undefined) process.env[e.name] = e.value;
      process.env.CONTRAST_COLLATERAL_OFFLINE = '1'; // the directories themselves
      assert.equal((snpCollateral() as DirectoryCache).dir, `${COLLATERAL_CACHE_PATH}/amd`);
      assert.equal((tdxCollateral() as TdxCollateralDirectory).dir, `${COLLATERAL_CACHE_PATH}/intel`);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it('is what samples/plain/coordinator.yaml holds, with the image by tag', () => {
    const sample = parseObjects(readFileSync(join(REPO_ROOT, 'samples', 'plain', 'coordinator.yaml'), 'utf8'));
    const rendered = JSON.parse(JSON.stringify(renderCoordinator({ namespace: 'default' }))) as unknown[];
    const c = podSpec(rendered).containers[0]!;
    c.image = c.image.replace(/@sha256:[0-9a-f]{64}$/, '');
    assert.deepEqual(sample, rendered);
  });
});

describe('coordinator render: replicas', () => {
  type Obj = { kind: string; metadata: { name: string }; spec: Record<string, unknown> };
  const statefulSet = (objs: unknown[]) => (objs as Obj[]).find((o) => o.kind === 'StatefulSet')!;

  it(`${DEFAULT_REPLICAS} replicas by default, --replicas N otherwise; the pod template is the same`, () => {
    const three = statefulSet(renderCoordinator({ namespace: 'app' }));
    const five = statefulSet(renderCoordinator({ namespace: 'app', replicas: 5 }));
    assert.equal(three.spec.replicas, DEFAULT_REPLICAS);
    assert.equal(five.spec.replicas, 5);
    assert.deepEqual(three.spec.template, five.spec.template, 'the policy covers the template only');
  });

  it('spreads the replicas over nodes with a preferred (not required) anti-affinity', () => {
    const spec = (statefulSet(renderCoordinator({ namespace: 'app' })).spec.template as { spec: { affinity: unknown } })
      .spec;
    assert.deepEqual(spec.affinity, {
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: 100,
            podAffinityTerm: {
              labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'coordinator' } },
              topologyKey: 'kubernetes.io/hostname',
            },
          },
        ],
      },
    });
  });

  it('renders the headless Service of the ready replicas, where serve finds its peers by default', () => {
    const svc = (renderCoordinator({ namespace: 'app' }) as Obj[]).find(
      (o) => o.kind === 'Service' && o.metadata.name === PEERS_SERVICE,
    );
    assert.ok(svc);
    assert.equal(svc.spec.clusterIP, 'None');
    assert.equal(svc.spec.publishNotReadyAddresses, false, 'only replicas that hold the state');
    assert.deepEqual(svc.spec.ports, [{ name: 'meshapi', port: MESHAPI_PORT, targetPort: 'meshapi' }]);
    assert.equal(IN_CLUSTER_PEERS, `dns:${PEERS_SERVICE}:${MESHAPI_PORT}`, 'what serve dials without --peers');
  });

  it('refuses a --replicas that is not a whole number from 1 to 100, naming the flag', () => {
    for (const bad of ['0', '-1', '1.5', '101', 'three']) {
      const r = runCli(['coordinator', 'render', '--no-policy', '--replicas', bad]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--replicas/);
      assert.equal(r.stdout, '', 'nothing rendered');
    }
    const ok = runCli(['coordinator', 'render', '--no-policy', '--replicas', '2']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ {2}replicas: 2$/m);
  });
});

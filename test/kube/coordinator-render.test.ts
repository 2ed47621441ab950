/**
 * The rendered Coordinator's collateral caches: a memory emptyDir (a tmpfs inside the pod's VM)
 * mounted where CONTRAST_SNP_CACHE_DIR / CONTRAST_TDX_CACHE_DIR point, so AMD KDS and Intel
 * PCS answers survive a restart of the container within the pod; and samples/plain/coordinator.yaml
 * is what `coordinator render --no-policy` prints (the image by tag, as generate pins it).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DirectoryCache } from '../../src/attestation/snp/kds.js';
import type { TdxCollateralDirectory } from '../../src/attestation/tdx/pcs.js';
import { snpCollateral, tdxCollateral } from '../../src/coordinator/collateral.js';
import { COLLATERAL_CACHE_PATH, renderCoordinator } from '../../src/kube/coordinator-resources.js';
import { parseObjects } from '../../src/kube/output.js';
import { REPO_ROOT } from '../helpers/cli.js';

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

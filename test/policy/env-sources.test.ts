import { strict as assert } from 'node:assert';
import { buildPolicyData } from '../../src/policy/index.js';
import { deploymentInput } from './fixtures.js';

/** The env of container "web" when its MODE comes from ConfigMap web-config and these ConfigMaps exist. */
function modeOf(configMaps: Record<string, unknown>[]): string | undefined {
  const data = buildPolicyData({ ...deploymentInput(), configMaps });
  const web = data.containers.find((c) => c.OCI.Annotations?.['io.kubernetes.cri.container-name'] === 'web')!;
  return web.OCI.Process.Env.find((e) => e.startsWith('MODE='));
}

const cm = (name: string, namespace: string | undefined, mode: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: namespace === undefined ? { name } : { name, namespace },
  data: { mode, LEVEL: 'info', COLOR: 'blue' },
});
const webEnv = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web-env' }, data: { LEVEL: 'i', COLOR: 'b' } };

describe('env sources by name', function () {
  it('takes the first ConfigMap of that name in the pod namespace (shop), in stream order', () => {
    assert.equal(modeOf([cm('web-config', 'other', 'wrong'), cm('web-config', 'shop', 'right'), webEnv]), 'MODE=right');
    assert.equal(modeOf([cm('web-config', 'shop', 'first'), cm('web-config', 'shop', 'second'), webEnv]), 'MODE=first');
    assert.equal(modeOf([cm('web-config', undefined, 'any-namespace'), webEnv]), 'MODE=any-namespace');
    assert.equal(modeOf([cm('other', 'shop', 'x'), cm('web-config', 'shop', 'named'), webEnv]), 'MODE=named');
  });

  it('finds a ConfigMap added to a list after the list was first searched', () => {
    const list = [webEnv, cm('web-config', 'other', 'elsewhere')];
    assert.throws(() => modeOf(list), /web-config/);
    list.push(cm('web-config', 'shop', 'late'));
    assert.equal(modeOf(list), 'MODE=late');
  });
});

/**
 * Engines hand their WebAssembly instance back on dispose() and the next engine reuses it:
 * nothing of the previous policy data or state may carry over.
 */
import assert from 'node:assert/strict';
import { buildPolicyText, checkPolicy, PolicyEngine, synthesizeRequests } from '../../src/policy/index.js';
import { deploymentInput } from './fixtures.js';

describe('policy engine instance reuse', () => {
  it('a reused instance judges by the new policy only', async () => {
    const web = deploymentInput();
    const other = deploymentInput({}, { workload: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'other', namespace: 'shop' } });
    const webText = buildPolicyText(web);
    const otherText = buildPolicyText(other);
    const webRequests = synthesizeRequests(web);
    const create = webRequests.find((r) => r.request === 'CreateContainerRequest' && r.container === 'web')!;

    for (let round = 0; round < 3; round++) {
      // The web pod's own requests pass under its policy (state is built from the sandbox on).
      const own = PolicyEngine.forPolicyText(webText);
      for (const r of webRequests) assert.equal(own.evaluate(r.request, r.body).allowed, true, `${r.description} under its own policy`);
      own.dispose();
      // The same instance, now with the other workload's policy and empty state: denied.
      const foreign = PolicyEngine.forPolicyText(otherText);
      assert.deepEqual(foreign.pstate, {});
      assert.equal(foreign.evaluate(create.request, create.body).allowed, false, 'no data or state from the previous policy');
      foreign.dispose();
    }
    assert.equal((await checkPolicy(webText, web)).allowed, true);
    assert.equal((await checkPolicy(otherText, web)).allowed, false);
  });
});

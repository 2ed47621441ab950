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
    const other = deploymentInput(
      {},
      { workload: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'other', namespace: 'shop' } },
    );
    const webText = buildPolicyText(web);
    const otherText = buildPolicyText(other);
    const webRequests = synthesizeRequests(web);
    const create = webRequests.find((r) => r.request === 'CreateContainerRequest' && r.container === 'web')!;

    for (let round = 0; round < 3; round++) {
      // The web pod's own requests pass under its policy (state is built from the sandbox on).
      const own = PolicyEngine.forPolicyText(webText);
      for (const r of webRequests)
        assert.equal(own.evaluate(r.request, r.body).allowed, true, `${r.description} under its own policy`);
      own.dispose();
      // The same instance, now with the other workload's policy and empty state: denied.
      const foreign = PolicyEngine.forPolicyText(otherText);
      assert.deepEqual(foreign.pstate, {});
      assert.equal(
        foreign.evaluate(create.request, create.body).allowed,
        false,
        'no data or state from the previous policy',
      );
      foreign.dispose();
    }
    assert.equal((await checkPolicy(webText, web)).allowed, true);
    assert.equal((await checkPolicy(otherText, web)).allowed, false);
  });

  it('a replaced state is the one the rules see, across many replacements and the periodic full reload', () => {
    const input = deploymentInput();
    const requests = synthesizeRequests(input);
    const pause = requests.find((r) => r.request === 'CreateContainerRequest' && r.container === '')!;
    const create = requests.find((r) => r.request === 'CreateContainerRequest' && r.container === 'web')!;
    const engine = PolicyEngine.forPolicyText(buildPolicyText(input));
    try {
      assert.equal(engine.evaluate(pause.request, pause.body).allowed, true);
      // Padding makes each replacement big, so the loop crosses the reload threshold (1 MiB) more than once.
      const started = { ...engine.pstate, bench_padding: 'x'.repeat(16 * 1024) };
      const otherSandbox = { ...started, sandbox_name: 'someone-else' };
      const memory = () =>
        (engine as unknown as { policy: { mem: { buffer: ArrayBuffer } } }).policy.mem.buffer.byteLength;
      let peak = 0;
      for (let i = 0; i < 240; i++) {
        const kind = i % 3;
        engine.setState(kind === 0 ? started : kind === 1 ? {} : otherSandbox);
        const r = engine.evaluate(create.request, create.body);
        assert.equal(r.allowed, kind === 0, `round ${i}: state ${['started', 'empty', 'other sandbox'][kind]}`);
        peak = Math.max(peak, memory());
        if (kind === 0) engine.setState(started); // undo the container id the allowed request added
      }
      assert.ok(peak < 16 * 1024 * 1024, `module memory stays bounded (${peak} bytes)`);
    } finally {
      engine.dispose();
    }
  });
});

/**
 * Requests as the policy sees them (src/policy/requests.ts): every field of the agent's
 * protobuf message present, in schema order, with its default when missing or of another type,
 * unknown fields dropped; and the engine's way of handing them to the module (one copy of the
 * JSON above the data, grown memory for big requests, no input for a falsy request).
 */
import assert from 'node:assert/strict';
import { buildPolicyData, normaliseRequest, PolicyEngine, synthesizeRequests } from '../../src/policy/index.js';
import { deploymentInput } from './fixtures.js';

type Json = Record<string, unknown>;

describe('policy requests: normalisation like the agent', () => {
  it('fills every field in schema order, with the defaults of its kind', () => {
    const r = normaliseRequest('CreateContainerRequest', {}) as Json;
    assert.deepEqual(Object.keys(r), [
      'container_id',
      'exec_id',
      'string_user',
      'devices',
      'storages',
      'OCI',
      'sandbox_pidns',
      'shared_mounts',
      'stdin_port',
      'stdout_port',
      'stderr_port',
    ]);
    assert.deepEqual(r, {
      container_id: '',
      exec_id: '',
      string_user: null,
      devices: [],
      storages: [],
      OCI: null,
      sandbox_pidns: false,
      shared_mounts: [],
      stdin_port: 0,
      stdout_port: 0,
      stderr_port: 0,
    });
  });

  it('replaces values of another type by the default and keeps opaque values as they are', () => {
    const r = normaliseRequest('CreateContainerRequest', {
      container_id: 5,
      sandbox_pidns: 'yes',
      stdin_port: '1',
      storages: 'not a list',
      devices: [7, { id: 'd', options: 'x', extra: true }],
      OCI: { Annotations: ['a'], Hooks: 0, Linux: 'x', Process: { Env: 'PATH=/bin', User: { UID: '0' } } },
    }) as Json & { OCI: Json & { Process: Json & { User: Json } } };
    assert.equal(r.container_id, '');
    assert.equal(r.sandbox_pidns, false);
    assert.equal(r.stdin_port, 0);
    assert.deepEqual(r.storages, []);
    // An element that is not an object becomes a message of defaults; unknown fields are dropped.
    assert.deepEqual(r.devices, [
      { id: '', type_: '', vm_path: '', container_path: '', options: [] },
      { id: 'd', type_: '', vm_path: '', container_path: '', options: [] },
    ]);
    assert.deepEqual(r.OCI.Annotations, {});
    assert.equal(r.OCI.Hooks, 0);
    assert.equal(r.OCI.Solaris, null);
    assert.equal(r.OCI.Linux, null);
    assert.deepEqual(r.OCI.Process.Env, []);
    assert.equal(r.OCI.Process.User.UID, 0);
    assert.equal(r.OCI.Process.User.Username, '');
  });

  it('drops unknown fields at every level and keeps the known ones', () => {
    const r = normaliseRequest('ExecProcessRequest', {
      container_id: 'c',
      injected: true,
      process: { Args: ['/bin/true'], Cwd: '/', Secret: 'x', User: { UID: 1, GID: 2, Extra: 3 } },
    }) as Json & { process: Json & { User: Json } };
    assert.equal('injected' in r, false);
    assert.equal('Secret' in r.process, false);
    assert.deepEqual(r.process.User, { UID: 1, GID: 2, AdditionalGids: [], Username: '' });
    assert.deepEqual(r.process.Args, ['/bin/true']);
    assert.equal(r.process.Cwd, '/');
  });

  it('normalises a request that is not an object like an empty one, and passes requests without a schema', () => {
    assert.deepEqual(normaliseRequest('RemoveContainerRequest', 'x'), { container_id: '', timeout: 0 });
    assert.deepEqual(normaliseRequest('RemoveContainerRequest', null), { container_id: '', timeout: 0 });
    const other = { anything: [1, 2] };
    assert.equal(normaliseRequest('DestroySandboxRequest', other), other);
    assert.deepEqual(normaliseRequest('DestroySandboxRequest', undefined), {});
  });
});

describe('policy requests: handing them to the module', () => {
  const input = deploymentInput();
  const data = buildPolicyData(input);
  const requests = synthesizeRequests(input);
  const pause = requests.find((r) => r.request === 'CreateContainerRequest' && r.container === '')!;
  const web = requests.find((r) => r.request === 'CreateContainerRequest' && r.container === 'web')!;

  it('evaluates a request larger than the module memory (the memory grows) and the next one as usual', () => {
    const engine = PolicyEngine.forData(data);
    try {
      assert.equal(engine.evaluate('CreateContainerRequest', pause.body).allowed, true);
      const big = structuredClone(web.body) as { OCI: { Process: { Env: string[] } } };
      // 8 MiB of environment: twice the module's initial memory.
      big.OCI.Process.Env.push(`PADDING=${'x'.repeat(8 * 1024 * 1024)}`);
      const denied = engine.evaluate('CreateContainerRequest', big);
      assert.equal(denied.allowed, false);
      assert.deepEqual(denied.failures, ['the environment differs (a variable is missing, changed or not allowed)']);
      const allowed = engine.evaluate('CreateContainerRequest', web.body);
      assert.equal(allowed.allowed, true, allowed.failures.join('; '));
    } finally {
      engine.dispose();
    }
  });

  it('explains a denial from the same request: the failures of a fresh engine, in order', () => {
    const tampered = structuredClone(web.body) as { container_id: string; OCI: { Process: { Args: string[] } } };
    tampered.OCI.Process.Args = ['/bin/sh'];
    tampered.container_id = 'not-hex';
    const engine = PolicyEngine.forData(data);
    const fresh = PolicyEngine.forData(data);
    try {
      engine.evaluate('CreateContainerRequest', pause.body);
      fresh.evaluate('CreateContainerRequest', pause.body);
      engine.evaluate('CreateContainerRequest', web.body);
      const first = engine.evaluate('CreateContainerRequest', tampered);
      const again = fresh.evaluate('CreateContainerRequest', tampered);
      assert.equal(first.allowed, false);
      assert.deepEqual(again.failures, first.failures);
      assert.ok(first.failures.length >= 3, first.failures.join('; '));
      assert.equal(first.reason, first.failures[0]);
      assert.ok(first.failures.some((f) => /command line/.test(f)));
      assert.ok(first.failures.some((f) => /container id or sandbox id/.test(f)));
    } finally {
      engine.dispose();
      fresh.dispose();
    }
  });

  it('gives a rule without a request schema no input for a falsy request, like the SDK', () => {
    const engine = PolicyEngine.forData(data);
    try {
      for (const request of [undefined, null, 0, '', false])
        assert.equal(engine.evaluate('DestroySandboxRequest', request).allowed, true, String(request));
    } finally {
      engine.dispose();
    }
  });
});

import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildPolicyText, synthesizeRequests } from '../../src/policy/index.js';
import { selfChecker, WORKER_MIN_PODS } from '../../src/generate/self-check.js';
import { ownPolicyDenial } from '../../src/generate/policy-step.js';
import { BugError } from '../../src/util/errors.js';
import { workerEntry } from '../../src/util/worker.js';
import { pathToFileURL } from 'node:url';
import { ensureBuilt, REPO_ROOT } from '../helpers/cli.js';
import { deploymentInput } from '../policy/fixtures.js';
import { gen } from './harness.js';

const input = deploymentInput();
const text = buildPolicyText(input);
const requests = synthesizeRequests(input);
/** The requests with the web container's command swapped: its CreateContainer must be denied. */
const tampered = requests.map((r) => {
  if (r.request !== 'CreateContainerRequest' || r.container !== 'web') return r;
  const body = structuredClone(r.body) as { OCI: { Process: { Args: string[] } } };
  body.OCI.Process.Args = ['/bin/sh'];
  return { ...r, body };
});

describe('self-check on a worker thread', function () {
  it('reports exactly what the main thread reports, allowed and denied', async () => {
    const inline = selfChecker(1, false);
    const worker = selfChecker(1, true);
    try {
      for (const reqs of [requests, tampered]) {
        const [a, b] = await Promise.all([inline.check(text, reqs), worker.check(text, reqs)]);
        assert.deepEqual(b, a);
      }
      const denied = await worker.check(text, tampered);
      assert.equal(denied.allowed, false);
      const web = denied.entries.find((e) => e.container === 'web' && e.request === 'CreateContainerRequest')!;
      assert.equal(web.allowed, false);
    } finally {
      await Promise.all([inline.close(), worker.close()]);
    }
  });

  it('answers many pods in order, more than its queue holds (the rest checked on this thread)', async () => {
    const worker = selfChecker(40, true);
    try {
      const results: Promise<boolean>[] = [];
      for (let i = 0; i < 20; i++) {
        results.push(worker.check(text, i % 3 === 0 ? tampered : requests).then((r) => r.allowed));
      }
      assert.deepEqual(
        await Promise.all(results),
        Array.from({ length: 20 }, (_, i) => i % 3 !== 0),
      );
    } finally {
      await worker.close();
    }
  });

  it("the build's workers are bundles: dist/ starts each from one file that checks like this thread", async function () {
    this.timeout(300_000);
    ensureBuilt();
    for (const [dir, name] of [
      ['generate', 'self-check-worker'],
      ['images', 'scan-thread-worker'],
    ]) {
      const caller = pathToFileURL(join(REPO_ROOT, 'dist', dir!, 'caller.js')).href;
      const entry = workerEntry(caller, name!);
      assert.ok(entry && 'file' in entry, `${name}: ${JSON.stringify(entry)}`);
      assert.equal(entry.file.href, pathToFileURL(join(REPO_ROOT, 'dist', dir!, `${name}.cjs`)).href);
    }
    // The dist build's own checker: its worker is the bundle, which finds the rules in dist/.
    const dist = (await import(pathToFileURL(join(REPO_ROOT, 'dist', 'generate', 'self-check.js')).href)) as {
      selfChecker: typeof selfChecker;
    };
    const inline = selfChecker(1, false);
    const worker = dist.selfChecker(1, true);
    try {
      for (const reqs of [requests, tampered]) {
        const [a, b] = await Promise.all([inline.check(text, reqs), worker.check(text, reqs)]);
        assert.deepEqual(b, a);
      }
    } finally {
      await Promise.all([inline.close(), worker.close()]);
    }
  });

  it('fails closed: a policy text the engine cannot read is a BugError, not an admitted pod', async () => {
    const worker = selfChecker(1, true);
    try {
      await assert.rejects(worker.check('package agent_policy\nthis is not rego', requests), (err: Error) => {
        assert.ok(err instanceof BugError, String(err));
        assert.match(err.message, /the self-check failed/);
        return true;
      });
    } finally {
      await worker.close();
    }
  });

  it('fails the checks that come after the worker stopped, instead of waiting for an answer', async () => {
    const worker = selfChecker(1, true);
    await worker.check(text, requests);
    await worker.close();
    await assert.rejects(worker.check(text, requests), (err: Error) => {
      assert.ok(err instanceof BugError, String(err));
      assert.match(err.message, /the self-check worker stopped/);
      return true;
    });
  });

  it('names the workload, request and container when a policy blocks its own pod', async () => {
    const checker = selfChecker(1, false);
    const report = await checker.check(text, tampered);
    const err = ownPolicyDenial(report, {
      file: 'web.yaml',
      document: 2,
      kind: 'Deployment',
      namespace: 'shop',
      name: 'web',
    });
    assert.ok(err instanceof BugError);
    assert.match(err.message, /web\.yaml/);
    assert.match(err.message, /Deployment/);
    assert.match(err.message, /would block its own pod: CreateContainerRequest for container "web"/);
    assert.equal(ownPolicyDenial(await checker.check(text, requests), { file: 'web.yaml' }), undefined);
  });

  it(`generate writes the same bytes with and without the worker (${WORKER_MIN_PODS} pods start one by default)`, async () => {
    const samples = ['web.yaml', 'api.yaml', 'worker.yaml']
      .map((f) => readFileSync(join(REPO_ROOT, 'samples', 'plain', f), 'utf8'))
      .join('\n---\n');
    const onMain = await gen(samples, { selfCheckWorker: false });
    const onWorker = await gen(samples, { selfCheckWorker: true });
    assert.ok(onMain.workloads.length >= 3, `${onMain.workloads.length} workloads`);
    assert.equal(onWorker.outputs[0]!.text, onMain.outputs[0]!.text);
    assert.deepEqual(onWorker.manifest, onMain.manifest);
  });
});

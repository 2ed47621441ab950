import { strict as assert } from 'node:assert';
import type { V1Pod } from '@kubernetes/client-node';
import { parseDuration } from '../../src/cli/kube-options.js';
import { podProblem } from '../../src/kube/status.js';
import { applyOrder, plural } from '../../src/kube/apply.js';
import { formatObjects } from '../../src/kube/output.js';

describe('kube helpers (no cluster)', function () {
  it('reads --request-timeout like kubectl', function () {
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration('30'), 30_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.throws(() => parseDuration('soon'), /--request-timeout/);
    assert.throws(() => parseDuration('5x'), /--request-timeout/);
  });

  it('applies namespaces and RBAC before workloads', function () {
    const objs = [
      { kind: 'Deployment' },
      { kind: 'Role' },
      { kind: 'Namespace' },
      { kind: 'Service' },
      { kind: 'ServiceAccount' },
      { kind: 'RuntimeClass' },
    ];
    assert.deepEqual(
      applyOrder(objs).map((o) => o.kind),
      ['Namespace', 'RuntimeClass', 'ServiceAccount', 'Role', 'Service', 'Deployment'],
    );
    assert.equal(plural({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'x' } }), 'statefulset.apps/x');
    assert.equal(plural({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'y' } }), 'service/y');
  });

  it('prints YAML that keeps Kubernetes (YAML 1.1) meaning', function () {
    const text = formatObjects([
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: 'on', b: '0755', c: 'yes' } } as never,
    ]);
    assert.match(text, /a: "on"/);
    assert.match(text, /b: "0755"/);
    assert.match(text, /c: "yes"/);
  });

  it('explains why a pod has not got past the Initializer', function () {
    const base = {
      metadata: { name: 'p' },
      spec: { containers: [], initContainers: [{ name: 'contrast-initializer' }] },
    } as unknown as V1Pod;
    assert.match(
      podProblem({
        ...base,
        status: {
          phase: 'Pending',
          conditions: [
            { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes have runtime class' },
          ],
        },
      })!.reason,
      /not scheduled: Unschedulable/,
    );
    const running = podProblem({
      ...base,
      status: {
        initContainerStatuses: [
          {
            name: 'contrast-initializer',
            image: '',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { running: { startedAt: new Date(0) } },
          },
        ],
      },
    })!;
    assert.equal(running.stage, 'initializer');
    assert.match(running.reason, /running since 1970.*waiting for the Coordinator/);
    assert.equal(
      podProblem({
        ...base,
        status: {
          initContainerStatuses: [
            {
              name: 'contrast-initializer',
              image: '',
              imageID: '',
              ready: false,
              restartCount: 0,
              state: { terminated: { exitCode: 0 } },
            },
          ],
        },
      }),
      undefined,
    );
    assert.match(
      podProblem({
        ...base,
        status: {
          initContainerStatuses: [
            {
              name: 'contrast-initializer',
              image: '',
              imageID: '',
              ready: false,
              restartCount: 1,
              state: { terminated: { exitCode: 2, message: 'attestation failed' } },
            },
          ],
        },
      })!.reason,
      /exited 2: attestation failed; 1 restarts/,
    );
  });
});

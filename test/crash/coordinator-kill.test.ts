/**
 * Crash safety and concurrency of the Coordinator, through the benchmark's own harness (real
 * processes on loopback, simulated platform) with small counts: a Coordinator SIGKILLed during
 * SetManifest comes back with the old or the new manifest and an intact history, and concurrent
 * NewMeshCert calls all succeed with distinct certificates. Only correctness is asserted.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureBuilt, REPO_ROOT } from '../helpers/cli.js';

describe('crash safety of the Coordinator (SIGKILL during SetManifest)', function () {
  this.timeout(900_000);

  it('never leaves a broken history, and concurrent mesh certificates are all issued', () => {
    ensureBuilt();
    const r = spawnSync(
      process.execPath,
      [
        '--import=tsx',
        join(REPO_ROOT, 'bench', 'coordinator.ts'),
        '--concurrency',
        '60',
        '--set-rounds',
        '3',
        '--kill-rounds',
        '8',
      ],
      { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      newMeshCert: {
        concurrency: number;
        succeeded: number;
        failed: number;
        distinctCertificates: number;
        badChains: number;
        countedByCoordinator: number;
      };
      killDuringSetManifest: { rounds: number; old: number; new: number; broken: number; brokenDetails: string[] };
    };
    const k = out.killDuringSetManifest;
    assert.equal(k.broken, 0, `broken histories: ${k.brokenDetails.join('; ')}`);
    assert.equal(k.old + k.new, k.rounds);
    const m = out.newMeshCert;
    assert.equal(m.failed, 0);
    assert.equal(m.succeeded, m.concurrency);
    assert.equal(m.distinctCertificates, m.succeeded);
    assert.equal(m.badChains, 0);
    assert.equal(m.countedByCoordinator, m.succeeded, 'no lost state: every certificate is counted');
  });
});

/**
 * The external review's fake-Coordinator attack against the real CLI: a fake Coordinator
 * without a TEE relays the client's nonce to the real Coordinator and wraps the genuine
 * certificate as PEM inside its own; verify, set and recover must refuse it before sending
 * anything.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, runCli, runCliAsync, simGenerateArgs } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { startCoordinatorProcess, type CoordinatorProcess } from './process.js';
import { startFakeCoordinator } from './attacker.js';

describe('a fake Coordinator that relays nonces and wraps the genuine certificate (real CLI)', function () {
  this.timeout(300_000);
  let dir: string;
  let ws: string;
  let res: string;
  let sim: string;
  let real: CoordinatorProcess | undefined;
  const cli = (args: string[]) => runCli(args, { cwd: dir, env: { CONTRAST_INSECURE_SIM_DIR: sim } });

  before(async () => {
    dir = tempDir('kc-fake-');
    ws = join(dir, 'ws');
    res = join(dir, 'resources');
    sim = join(dir, 'sim');
    cpSync(join(REPO_ROOT, 'samples', 'plain'), res, { recursive: true });
    const g = cli([...simGenerateArgs(ws), res]);
    assert.equal(g.code, 0, g.stderr);
    const m = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8')) as {
      Policies: Record<string, { Role?: string }>;
    };
    const coordinatorHash = Object.entries(m.Policies).find(([, e]) => e.Role === 'coordinator')![0];
    real = await startCoordinatorProcess({
      stateDir: join(dir, 'state'),
      policyHash: coordinatorHash,
      simDir: sim,
      workDir: dir,
    });
    const set = cli(['set', '-c', `127.0.0.1:${real.ports.userapi}`, '--workspace-dir', ws, res]);
    assert.equal(set.code, 0, set.stderr);
    assert.ok(existsSync(join(ws, 'seed-shares.json')));
  });
  after(async () => {
    await real?.kill();
    removeDir(dir);
  });

  for (const [command, extra] of [
    ['verify', []],
    ['set', ['RES']],
    ['recover', []],
  ] as const) {
    it(`${command} refuses the fake before sending a request`, async () => {
      const fake = await startFakeCoordinator({ host: '127.0.0.1', port: real!.ports.userapi });
      try {
        const rootBefore = readFileSync(join(ws, 'coordinator-root-ca.pem'));
        const r = await runCliAsync(
          [command, '-c', `127.0.0.1:${fake.port}`, '--workspace-dir', ws, ...extra.map(() => res)],
          { cwd: dir, env: { CONTRAST_INSECURE_SIM_DIR: sim } },
        );
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /failed attestation: .*REPORT_DATA does not match/);
        assert.ok(fake.relayed >= 1, 'the fake relayed the nonce and presented a wrapped genuine certificate');
        assert.deepEqual(fake.requests, [], 'the client sent a request to the fake');
        assert.ok(readFileSync(join(ws, 'coordinator-root-ca.pem')).equals(rootBefore));
      } finally {
        await fake.close();
      }
    });
  }
});

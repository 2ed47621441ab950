/**
 * Crash safety: `generate` killed with SIGKILL leaves every resource file and manifest.json
 * either as before or as after, never truncated or mixed, and the next run succeeds with the
 * complete result. The kills land at every write deterministically (the
 * KUBECTL_CONTRAST_KILL_AT_WRITE hook of src/util/atomic-write.ts: after each temporary file,
 * after each rename), and at random moments besides.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ensureBuilt, REPO_ROOT, simGenerateArgs } from '../helpers/cli.js';
import { SAMPLE_IMAGES } from '../helpers/images.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const ROUNDS = 12;

function args(ws: string, app: string): string[] {
  return [CLI, ...simGenerateArgs(ws), app];
}

function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir)) if (!name.startsWith('.')) out[name] = readFileSync(join(dir, name), 'utf8');
  return out;
}

/** Run to the end or until killed (after `ms`, or by the write hook `at`); true when it was killed. */
function runKilled(argv: string[], kill: { ms?: number; at?: string }, input?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...(kill.at ? { KUBECTL_CONTRAST_KILL_AT_WRITE: kill.at } : {}) };
    const child = spawn(process.execPath, argv, {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'ignore'],
      env,
    });
    if (input !== undefined) {
      child.stdin!.on('error', () => {
        /* killed while reading */
      });
      child.stdin!.end(input);
    }
    const timer = kill.ms === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), kill.ms);
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      resolve(signal === 'SIGKILL');
    });
  });
}

/** Kill points: every write's temporary file and rename, until a run completes untouched. */
function* writePoints(): Generator<string> {
  for (let n = 1; n < 1000; n++) for (const stage of ['temp', 'renamed']) yield `${n}:${stage}`;
}

describe('crash safety of generate (SIGKILL at every write and at random points)', function () {
  this.timeout(900_000);

  it(`keeps every file old or new when killed at every write and at ${ROUNDS} random moments, then completes`, async () => {
    ensureBuilt();
    const root = tempDir('kc-crash-');
    try {
      // The "old" state: the sample app and a workspace with keys and an empty manifest.
      const baseWs = join(root, 'base-ws');
      const seeded = spawnSync(process.execPath, [...args(baseWs, '-').slice(0, -1), '-'], {
        input: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n',
        encoding: 'utf8',
      });
      assert.equal(seeded.status, 0, seeded.stderr);
      const oldApp = files(join(REPO_ROOT, 'samples', 'plain'));
      const oldWs = files(baseWs);

      // The "new" state from one complete run.
      const refApp = join(root, 'ref-app');
      const refWs = join(root, 'ref-ws');
      cpSync(join(REPO_ROOT, 'samples', 'plain'), refApp, { recursive: true });
      cpSync(baseWs, refWs, { recursive: true });
      const started = Date.now();
      const ref = spawnSync(process.execPath, args(refWs, refApp), { encoding: 'utf8' });
      const duration = Date.now() - started;
      assert.equal(ref.status, 0, ref.stderr);
      const newApp = files(refApp);
      const newWs = files(refWs);

      // Deterministic kill points first, then random moments; `mixed` counts runs killed after
      // some resource files were replaced and before others were: the case atomicity is for.
      let mixed = 0;
      let points = 0;
      const plans: { at?: string; ms?: number }[] = [];
      const check = async (round: number, kill: { at?: string; ms?: number }): Promise<boolean> => {
        const app = join(root, `app-${round}`);
        const ws = join(root, `ws-${round}`);
        cpSync(join(REPO_ROOT, 'samples', 'plain'), app, { recursive: true });
        cpSync(baseWs, ws, { recursive: true });
        const killed = await runKilled(args(ws, app), kill);
        let fresh = 0;
        let stale = 0;
        for (const [name, text] of Object.entries(files(app))) {
          assert.ok(
            text === oldApp[name] || text === newApp[name],
            `round ${round} (${JSON.stringify(kill)}): ${name} is neither the old nor the new version`,
          );
          if (text === newApp[name] && text !== oldApp[name]) fresh++;
          else if (text !== newApp[name]) stale++;
        }
        if (fresh > 0 && stale > 0) mixed++;
        for (const [name, text] of Object.entries(files(ws))) {
          assert.ok(
            text === oldWs[name] || text === newWs[name],
            `round ${round}: workspace ${name} is neither old nor new`,
          );
        }
        const again = spawnSync(process.execPath, args(ws, app), { encoding: 'utf8' });
        assert.equal(again.status, 0, `round ${round}: the next run fails: ${again.stderr}`);
        assert.deepEqual(files(app), newApp, `round ${round}: the next run completes the resources`);
        assert.deepEqual(files(ws), newWs, `round ${round}: and the workspace`);
        return killed;
      };
      let round = 0;
      for (const at of writePoints()) {
        if (!(await check(round++, { at }))) break;
        points++;
      }
      for (let i = 0; i < ROUNDS; i++) plans.push({ ms: Math.floor(Math.random() * duration * 1.1) });
      for (const plan of plans) await check(round++, plan);
      const resourceFiles = Object.keys(newApp).filter((n) => newApp[n] !== oldApp[n]).length;
      assert.ok(resourceFiles >= 2, 'the sample app must change several files for this test to mean anything');
      // Two kill points per write; between the first and the last resource file there are mixed states.
      assert.ok(points >= 2 * resourceFiles, `only ${points} kill points were reached`);
      assert.ok(
        mixed >= 2 * (resourceFiles - 1) - 1,
        `kills left ${mixed} runs with some files replaced and others not`,
      );
    } finally {
      removeDir(root);
    }
  });
});

describe('crash safety of the Helm post-renderer (SIGKILL at every write and at random points)', function () {
  this.timeout(900_000);

  it(`keeps manifest.json old or new when killed at every write and at ${ROUNDS} random moments, then renders again`, async () => {
    ensureBuilt();
    const root = tempDir('kc-crash-pr-');
    try {
      const input = readdirSync(join(REPO_ROOT, 'samples', 'plain'))
        .sort()
        .map((f) => readFileSync(join(REPO_ROOT, 'samples', 'plain', f), 'utf8'))
        .join('---\n');
      const render = (ws: string) => [
        CLI,
        'helm-post-render',
        '--platform',
        'insecure-sim',
        '--workspace-dir',
        ws,
        '--oci-layout',
        SAMPLE_IMAGES,
        '--offline',
        '--no-cache',
      ];
      // Old state: a workspace whose manifest came from a render without the web workload.
      const baseWs = join(root, 'base-ws');
      const seeded = spawnSync(process.execPath, render(baseWs), {
        input: readFileSync(join(REPO_ROOT, 'samples', 'plain', 'coordinator.yaml'), 'utf8'),
        encoding: 'utf8',
      });
      assert.equal(seeded.status, 0, seeded.stderr);
      const oldWs = files(baseWs);
      const refWs = join(root, 'ref-ws');
      cpSync(baseWs, refWs, { recursive: true });
      const started = Date.now();
      const ref = spawnSync(process.execPath, render(refWs), { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      const duration = Date.now() - started;
      assert.equal(ref.status, 0, ref.stderr);
      const newWs = files(refWs);
      assert.notEqual(newWs['manifest.json'], oldWs['manifest.json']);

      const check = async (round: number, kill: { at?: string; ms?: number }): Promise<boolean> => {
        const ws = join(root, `ws-${round}`);
        cpSync(baseWs, ws, { recursive: true });
        const killed = await runKilled(render(ws), kill, input);
        for (const [name, text] of Object.entries(files(ws))) {
          if (name === 'render.log') continue; // a log, not state
          assert.ok(
            text === oldWs[name] || text === newWs[name],
            `round ${round} (${JSON.stringify(kill)}): workspace ${name} is neither old nor new`,
          );
        }
        const again = spawnSync(process.execPath, render(ws), { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
        assert.equal(again.status, 0, `round ${round}: the next render fails: ${again.stderr}`);
        assert.equal(again.stdout, ref.stdout, `round ${round}: the next render gives the same stream`);
        assert.equal(files(ws)['manifest.json'], newWs['manifest.json']);
        return killed;
      };
      let round = 0;
      let points = 0;
      for (const at of writePoints()) {
        if (!(await check(round++, { at }))) break;
        points++;
      }
      assert.ok(points >= 2, `only ${points} kill points were reached (manifest.json is written once)`);
      for (let i = 0; i < ROUNDS; i++) await check(round++, { ms: Math.floor(Math.random() * duration * 1.1) });
    } finally {
      removeDir(root);
    }
  });
});

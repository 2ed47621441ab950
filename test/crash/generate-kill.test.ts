/**
 * Crash safety: `generate` killed with SIGKILL at random moments (a bounded loop) leaves every
 * resource file and manifest.json either as before or as after, never truncated or mixed, and
 * the next run succeeds with the complete result.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ensureBuilt, REPO_ROOT } from '../helpers/cli.js';
import { SAMPLE_IMAGES } from '../helpers/images.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const ROUNDS = 12;

function args(ws: string, app: string): string[] {
  return [CLI, 'generate', '--platform', 'insecure-sim', '--workspace-dir', ws, '--oci-layout', SAMPLE_IMAGES, '--offline', '--no-cache', app];
}

function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir)) if (!name.startsWith('.')) out[name] = readFileSync(join(dir, name), 'utf8');
  return out;
}

function killAfter(ms: number, argv: string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', () => { clearTimeout(timer); resolve(); });
  });
}

describe('crash safety of generate (SIGKILL at random points)', function () {
  this.timeout(900_000);

  it(`keeps every file old or new over ${ROUNDS} kills, then completes`, async () => {
    ensureBuilt();
    const root = tempDir('kc-crash-');
    try {
      // The "old" state: the sample app and a workspace with keys and an empty manifest.
      const baseWs = join(root, 'base-ws');
      const seeded = spawnSync(process.execPath, [...args(baseWs, '-').slice(0, -1), '-'], { input: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n', encoding: 'utf8' });
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

      let sawOld = 0;
      let sawNew = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const app = join(root, `app-${round}`);
        const ws = join(root, `ws-${round}`);
        cpSync(join(REPO_ROOT, 'samples', 'plain'), app, { recursive: true });
        cpSync(baseWs, ws, { recursive: true });
        await killAfter(Math.floor(Math.random() * duration * 1.1), args(ws, app));
        for (const [name, text] of Object.entries(files(app))) {
          assert.ok(text === oldApp[name] || text === newApp[name], `round ${round}: ${name} is neither the old nor the new version`);
          if (text === newApp[name]) sawNew++; else sawOld++;
        }
        for (const [name, text] of Object.entries(files(ws))) {
          assert.ok(text === oldWs[name] || text === newWs[name], `round ${round}: workspace ${name} is neither old nor new`);
        }
        const again = spawnSync(process.execPath, args(ws, app), { encoding: 'utf8' });
        assert.equal(again.status, 0, `round ${round}: the next run fails: ${again.stderr}`);
        assert.deepEqual(files(app), newApp, `round ${round}: the next run completes the resources`);
        assert.deepEqual(files(ws), newWs, `round ${round}: and the workspace`);
      }
      process.stderr.write(`      (files seen old: ${sawOld}, new: ${sawNew})\n`);
    } finally {
      removeDir(root);
    }
  });
});

describe('crash safety of the Helm post-renderer (SIGKILL at random points)', function () {
  this.timeout(900_000);

  it(`keeps manifest.json old or new over ${ROUNDS} kills, then renders again`, async () => {
    ensureBuilt();
    const root = tempDir('kc-crash-pr-');
    try {
      const input = readdirSync(join(REPO_ROOT, 'samples', 'plain')).sort()
        .map((f) => readFileSync(join(REPO_ROOT, 'samples', 'plain', f), 'utf8')).join('---\n');
      const render = (ws: string) => [CLI, 'helm-post-render', '--platform', 'insecure-sim', '--workspace-dir', ws, '--oci-layout', SAMPLE_IMAGES, '--offline', '--no-cache'];
      // Old state: a workspace whose manifest came from a render without the web workload.
      const baseWs = join(root, 'base-ws');
      const seeded = spawnSync(process.execPath, render(baseWs), { input: readFileSync(join(REPO_ROOT, 'samples', 'plain', 'coordinator.yaml'), 'utf8'), encoding: 'utf8' });
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

      for (let round = 0; round < ROUNDS; round++) {
        const ws = join(root, `ws-${round}`);
        cpSync(baseWs, ws, { recursive: true });
        await new Promise<void>((resolve) => {
          const child = spawn(process.execPath, render(ws), { stdio: ['pipe', 'ignore', 'ignore'] });
          child.stdin.on('error', () => { /* killed while reading */ });
          child.stdin.end(input);
          const timer = setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * duration * 1.1));
          child.on('exit', () => { clearTimeout(timer); resolve(); });
        });
        for (const [name, text] of Object.entries(files(ws))) {
          if (name === 'render.log') continue; // a log, not state
          assert.ok(text === oldWs[name] || text === newWs[name], `round ${round}: workspace ${name} is neither old nor new`);
        }
        const again = spawnSync(process.execPath, render(ws), { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
        assert.equal(again.status, 0, `round ${round}: the next render fails: ${again.stderr}`);
        assert.equal(again.stdout, ref.stdout, `round ${round}: the next render gives the same stream`);
        assert.equal(files(ws)['manifest.json'], newWs['manifest.json']);
      }
    } finally {
      removeDir(root);
    }
  });
});

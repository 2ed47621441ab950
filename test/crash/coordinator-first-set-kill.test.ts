/**
 * SIGKILL of the Coordinator during the FIRST SetManifest, at 14 different moments: before the seed
 * shares are stored, among the policies, right after the signed latest pointer (the client then
 * never receives its seed shares), after the response. Every run must end with an uninitialised
 * Coordinator or one that the real `kubectl contrast recover` recovers (from seed-shares.json
 * when the client got the response, from the copy in the store otherwise), after which `verify`
 * passes. The test asserts that the kills landed at several different points, judged by what
 * the store holds after the kill.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, runCliAsync } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { startCoordinatorProcess, type CoordinatorProcess } from '../coordinator/process.js';
import { callUserApi } from '../../src/coordinator/client.js';
import { decode, encode } from '../../src/util/protobuf.js';
import {
  SetManifestRequestSchema,
  SetManifestResponseSchema,
  type SetManifestResponse,
} from '../../src/coordinator/api/messages.js';
import { seedShareDocumentToJson } from '../../src/coordinator/seedshares.js';
import { spkiDer } from '../../src/atls/binding.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import type { Manifest } from '../../src/coordinator/manifest.js';
import { SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';

const POLICIES = 300;
const TIMED_RUNS = 7;
/**
 * Kills triggered by a file appearing in the store (then immediately). The latest pointer three
 * times: the window between it and the response is a few milliseconds, and that is the case the
 * stored seed shares exist for.
 */
const TRIGGERS = [
  'seedshares/document',
  'ca/root.pem',
  'policies',
  'manifests',
  'transitions/latest',
  'transitions/latest',
  'transitions/latest',
] as const;

const files = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((f) => !f.endsWith('.tmp')) : []);

/** Where the kill landed, from what the store holds afterwards. */
function landing(state: string, gotResponse: boolean): string {
  if (gotResponse) return '7 after the response';
  if (existsSync(join(state, 'transitions', 'latest'))) return '6 latest written, no response';
  if (files(join(state, 'transitions')).length > 0) return '5 transition written';
  if (files(join(state, 'manifests')).length > 0) return '4 manifest written';
  const policies = files(join(state, 'policies')).length;
  if (policies > 0) return policies === POLICIES + 1 ? '3 all policies written' : '3 some policies written';
  if (existsSync(join(state, 'ca', 'root.pem'))) return '2 root written';
  if (existsSync(join(state, 'seedshares', 'document'))) return '1 seed shares written';
  return '0 nothing written';
}

describe('crash safety of the first SetManifest (SIGKILL at different points)', function () {
  this.timeout(900_000);
  let dir: string;
  let sim: string;
  let savedSimDir: string | undefined;
  const coordPolicy = Buffer.from('first-set crash test: coordinator policy');
  const policies = Array.from({ length: POLICIES }, (_, i) =>
    Buffer.from(`first-set crash test policy ${i}\n`.padEnd(2048, '#')),
  );
  const wo = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const so = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const m: Manifest = {
    Policies: {
      [sha256(coordPolicy).toString('hex')]: { SANs: ['coordinator'], Role: 'coordinator' },
      ...Object.fromEntries(
        policies.map((p, i) => [sha256(p).toString('hex'), { SANs: [`w${i}`], WorkloadSecretID: `w${i}` }]),
      ),
    },
    ReferenceValues: { insecure: [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }] },
    WorkloadOwnerPubKeys: [spkiDer(wo).toString('hex')],
    SeedshareOwnerPubKeys: [createPublicKey(so).export({ type: 'pkcs1', format: 'der' }).toString('hex')],
  };
  const raw = Buffer.from(`${JSON.stringify(m, null, 2)}\n`);
  const request = encode(SetManifestRequestSchema, { Manifest: raw, Policies: [coordPolicy, ...policies] });

  before(() => {
    ensureBuilt();
    dir = tempDir('kc-first-set-kill-');
    sim = join(dir, 'sim');
    savedSimDir = process.env.CONTRAST_INSECURE_SIM_DIR;
    process.env.CONTRAST_INSECURE_SIM_DIR = sim;
  });
  after(() => {
    if (savedSimDir === undefined) delete process.env.CONTRAST_INSECURE_SIM_DIR;
    else process.env.CONTRAST_INSECURE_SIM_DIR = savedSimDir;
    removeDir(dir);
  });

  function workspace(name: string): string {
    const ws = join(dir, `ws-${name}`);
    mkdirSync(ws, { recursive: true });
    writeFileSync(join(ws, 'manifest.json'), raw);
    writeFileSync(join(ws, 'seedshare-owner.pem'), so.export({ type: 'pkcs1', format: 'pem' }) as string, {
      mode: 0o600,
    });
    writeFileSync(join(ws, 'workload-owner.pem'), wo.export({ type: 'sec1', format: 'pem' }) as string, {
      mode: 0o600,
    });
    return ws;
  }

  const start = (state: string, ports?: CoordinatorProcess['ports']) =>
    startCoordinatorProcess({
      stateDir: state,
      policyHash: sha256(coordPolicy).toString('hex'),
      simDir: sim,
      workDir: dir,
      ...(ports ? { ports: { userapi: ports.userapi, meshapi: ports.meshapi } } : {}),
    });

  /** The first set as `kubectl contrast set` does it: on a response, seed-shares.json is written. */
  function firstSet(c: CoordinatorProcess, ws: string): Promise<boolean> {
    return callUserApi('SetManifest', request, {
      address: { host: '127.0.0.1', port: c.ports.userapi },
      manifest: m,
      clientKey: wo,
    }).then(
      (r) => {
        const res = decode<SetManifestResponse>(SetManifestResponseSchema, r.response);
        writeFileSync(join(ws, 'seed-shares.json'), seedShareDocumentToJson(res.SeedSharesDoc!), { mode: 0o600 });
        return true;
      },
      () => false,
    );
  }

  /** Resolves when `path` exists (polled every millisecond), or after `ms`. */
  async function appears(path: string, ms: number): Promise<boolean> {
    const end = performance.now() + ms;
    while (!existsSync(path)) {
      if (performance.now() > end) return false;
      await new Promise((r) => setTimeout(r, 1));
    }
    return true;
  }

  it('every run ends uninitialised or recovered by `recover`, and the kills landed at different points', async () => {
    // Calibration: how long the store writes of a first set take, from the first to the last.
    const calState = join(dir, 'state-calibration');
    const cal = await start(calState);
    let windowMs: number;
    try {
      const done = firstSet(cal, workspace('calibration'));
      assert.ok(await appears(join(calState, 'seedshares'), 60_000), 'the first set never started writing');
      const t0 = performance.now();
      assert.ok(await appears(join(calState, 'transitions', 'latest'), 120_000));
      windowMs = performance.now() - t0;
      assert.equal(await done, true);
    } finally {
      await cal.kill();
    }

    const plans = [
      ...Array.from({ length: TIMED_RUNS }, (_, i) => ({
        kind: 'timed' as const,
        delayMs: ((i + Math.random()) / TIMED_RUNS) * windowMs * 1.2,
      })),
      ...TRIGGERS.map((trigger) => ({ kind: 'trigger' as const, trigger })),
    ];
    const results: { plan: string; landed: string; outcome: string }[] = [];
    for (const [i, plan] of plans.entries()) {
      const state = join(dir, `state-${i}`);
      const ws = workspace(String(i));
      let c = await start(state);
      const pending = firstSet(c, ws);
      assert.ok(await appears(join(state, 'seedshares'), 60_000), `run ${i}: the first set never started writing`);
      if (plan.kind === 'timed') await new Promise((r) => setTimeout(r, plan.delayMs));
      else await appears(join(state, ...plan.trigger.split('/')), 60_000);
      await c.kill('SIGKILL');
      const gotResponse = await pending;
      const landed = landing(state, gotResponse);

      c = await start(state, c.ports);
      const addr = `127.0.0.1:${c.ports.userapi}`;
      const env = { CONTRAST_INSECURE_SIM_DIR: sim };
      try {
        if (/state uninitialised/.test(c.log())) {
          // Uninitialised: nothing to recover, and a new first set works.
          const rec = await runCliAsync(['recover', '-c', addr, '--workspace-dir', ws], { env });
          assert.equal(rec.code, 1, rec.stderr);
          assert.match(rec.stderr, /no history to recover/);
          assert.equal(await firstSet(c, ws), true, `run ${i}: a new first set after the crash failed`);
          results.push({
            plan: plan.kind === 'timed' ? `${plan.delayMs.toFixed(0)} ms` : plan.trigger,
            landed,
            outcome: 'uninitialised',
          });
        } else {
          assert.match(c.log(), /state recovery/, `run ${i}: ${c.log()}`);
          const rec = await runCliAsync(['recover', '-c', addr, '--workspace-dir', ws], { env });
          assert.equal(rec.code, 0, `run ${i} (${landed}): recover failed: ${rec.stderr}\n${c.log()}`);
          assert.equal(
            /using the seed-share document from the Coordinator's store/.test(rec.stderr),
            !gotResponse,
            `run ${i}: the stored shares are used exactly when the client missed the response`,
          );
          const v = await runCliAsync(['verify', '-c', addr, '--workspace-dir', ws], { env });
          assert.equal(v.code, 0, v.stderr);
          assert.doesNotMatch(v.stderr, /waits for recovery/);
          results.push({
            plan: plan.kind === 'timed' ? `${plan.delayMs.toFixed(0)} ms` : plan.trigger,
            landed,
            outcome: gotResponse ? 'recovered (seed-shares.json)' : 'recovered (stored shares)',
          });
        }
      } finally {
        await c.kill();
      }
    }
    process.stderr.write(
      `      write window ${windowMs.toFixed(0)} ms; kills: ${results.map((r) => `[${r.plan}] ${r.landed.slice(2)} → ${r.outcome}`).join('; ')}\n`,
    );
    const points = new Set(results.map((r) => r.landed));
    assert.ok(
      points.size >= 4,
      `the kills landed at only ${points.size} different point(s): ${[...points].join(', ')}`,
    );
    assert.ok(
      results.some((r) => r.outcome === 'uninitialised'),
      'no kill landed before the history was committed',
    );
    assert.ok(
      results.some((r) => r.outcome === 'recovered (stored shares)'),
      'no kill landed between the commit and the response (the case that needs the stored shares)',
    );
  });
});

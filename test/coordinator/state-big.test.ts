/**
 * A 10,000-policy manifest on the directory store, in process: set, reopened, recovered and
 * served without blocking the event loop. Apart from state.test.ts because it takes seconds,
 * which a mutation run would spend on every mutant it covers (docs/testing.md).
 */
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Authority } from '../../src/coordinator/authority.js';
import { DirStore } from '../../src/coordinator/store/dir.js';
import { decryptSeedShare } from '../../src/coordinator/seedshares.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { COORD, manifest, quiet, rootKeyDer, rsa2048 } from './state-helpers.js';

describe('a 10,000-policy manifest on the directory store', function () {
  this.timeout(300_000);
  let dir: string;
  before(() => { dir = tempDir('kc-state-big-'); });
  after(() => removeDir(dir));

  it('sets, reopens, recovers and serves it without blocking the event loop', async () => {
    const policies = Array.from({ length: 10_000 }, (_, i) => Buffer.from(`package agent_policy\n# workload ${i}\n`.padEnd(400, '#')));
    const raw = manifest({ policies });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const a = await Authority.open(new DirStore(dir), quiet);
    const r = await a.setManifest(raw, [COORD, ...policies], undefined);
    const b = await Authority.open(new DirStore(dir), quiet);
    const h = await b.getManifests();
    await b.recover(decryptSeedShare(h.seedShares!.SeedShares[0]!, rsa2048), h.seedShares!.salt, rsa2048);
    const served = await b.getManifests();
    delay.disable();
    assert.equal(served.policies.length, 10_001);
    assert.deepEqual(served.manifests, [raw]);
    assert.deepEqual(rootKeyDer(served.rootCA), rootKeyDer(r.rootCA));
    assert.equal(readdirSync(join(dir, 'policies')).filter((f) => !f.endsWith('.tmp')).length, 10_001);
    const maxMs = delay.max / 1e6;
    process.stderr.write(`      event-loop delay with 10,000 policies: max ${maxMs.toFixed(0)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(0)} ms\n`);
    assert.ok(maxMs < 1000, `the event loop was blocked for ${maxMs.toFixed(0)} ms at once`);
  });
});

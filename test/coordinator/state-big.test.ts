/**
 * A 10,000-policy manifest on the directory store, in process: set, reopened, recovered and
 * served without blocking the event loop. Apart from state.test.ts because it takes seconds,
 * which a mutation run would spend on every mutant it covers (docs/testing.md).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Authority } from '../../src/coordinator/authority.js';
import { DirStore } from '../../src/coordinator/store/dir.js';
import { decryptSeedShare } from '../../src/coordinator/seedshares.js';
import { storeOpsPerTurn } from '../helpers/loop-turns.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { COORD, manifest, quiet, rootKeyDer, rsa2048 } from './state-helpers.js';

describe('a 10,000-policy manifest on the directory store', function () {
  this.timeout(300_000);
  let dir: string;
  before(() => {
    dir = tempDir('kc-state-big-');
  });
  after(() => removeDir(dir));

  it('sets, reopens, recovers and serves it without blocking the event loop', async () => {
    const policies = Array.from({ length: 10_000 }, (_, i) =>
      Buffer.from(`package agent_policy\n# workload ${i}\n`.padEnd(400, '#')),
    );
    const raw = manifest({ policies });
    const first = storeOpsPerTurn(new DirStore(dir));
    const a = await Authority.open(first.store, quiet);
    const r = await a.setManifest(raw, [COORD, ...policies], undefined);
    const second = storeOpsPerTurn(new DirStore(dir));
    const b = await Authority.open(second.store, quiet);
    const h = await b.getManifests();
    await b.recover(decryptSeedShare(h.seedShares!.SeedShares[0]!, rsa2048), h.seedShares!.salt, rsa2048);
    const served = await b.getManifests();
    const perTurn = Math.max(first.stop(), second.stop());
    assert.equal(served.policies.length, 10_001);
    assert.deepEqual(served.manifests, [raw]);
    assert.deepEqual(rootKeyDer(served.rootCA), rootKeyDer(r.rootCA));
    assert.equal(readdirSync(join(dir, 'policies')).filter((f) => !f.endsWith('.tmp')).length, 10_001);
    // A store writing its 10,000 keys in one synchronous stretch would complete them all in one turn
    // of the event loop; this one yields between its I/O.
    process.stderr.write(`      most store operations completed in one event-loop turn: ${perTurn}\n`);
    assert.ok(perTurn <= 256, `${perTurn} store operations completed within one turn of the event loop`);
  });
});

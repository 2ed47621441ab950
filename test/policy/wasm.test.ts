/** The committed policy.wasm is exactly what the pinned opa builds from rules.rego. */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;

describe('policy.wasm', function () {
  this.timeout(180_000);
  it('is reproducible from rules.rego with the pinned opa (fails when opa is missing)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-wasm-'));
    try {
      const out = join(dir, 'policy.wasm');
      // Fails (does not skip) when opa is not installed: CI installs it with scripts/setup.sh.
      execFileSync('bash', [join(root, 'scripts/build-policy-wasm.sh'), out], {
        cwd: root,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const built = readFileSync(out);
      const committed = readFileSync(join(root, 'src/policy/wasm/policy.wasm'));
      assert.ok(
        built.equals(committed),
        'src/policy/wasm/policy.wasm is stale: run scripts/build-policy-wasm.sh and commit the result',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Golden output of `generate` on samples/plain. After an intended change, refresh with
 * `UPDATE_GOLDEN=1 npx mocha test/generate/golden.test.ts` and review the diff.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, REPO_ROOT } from '../helpers/cli.js';
import { SAMPLE_IMAGES } from '../helpers/images.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { INJECTED_IMAGES } from '../../src/platforms/images.js';

const GOLDEN = join(REPO_ROOT, 'test', 'golden');

function compareGolden(name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, actual);
  // A missing golden file is a failure, never a silent pass: write it on purpose and review it.
  if (!existsSync(file))
    assert.fail(`golden file test/golden/${name} is missing; create it with UPDATE_GOLDEN=1 and review it`);
  const expected = readFileSync(file, 'utf8');
  if (actual === expected) return;
  // Name the first differing line instead of dumping two multi-kilobyte policies.
  const a = actual.split('\n');
  const e = expected.split('\n');
  const i = a.findIndex((line, n) => line !== e[n]);
  const clip = (s: string | undefined) =>
    s === undefined ? '<end of file>' : s.length > 160 ? `${s.slice(0, 160)}…` : s;
  assert.fail(
    `output differs from test/golden/${name} at line ${i + 1}:\n  expected: ${clip(e[i])}\n  actual:   ${clip(a[i])}\n(refresh with UPDATE_GOLDEN=1 after reviewing the change)`,
  );
}

describe('golden output on samples/plain', function () {
  this.timeout(120_000);
  for (const platform of ['metal-qemu-snp', 'insecure-sim']) {
    it(`matches test/golden/samples-${platform}.yaml and its manifest`, () => {
      const ws = tempDir();
      try {
        const r = runCli([
          'generate',
          '--platform',
          platform,
          '--workspace-dir',
          ws,
          '--oci-layout',
          SAMPLE_IMAGES,
          '--offline',
          '--no-cache',
          '-o',
          '-',
          join(REPO_ROOT, 'samples', 'plain'),
        ]);
        assert.equal(r.code, 0, r.stderr);
        compareGolden(`samples-${platform}.yaml`, r.stdout);
        const manifest = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8'));
        // Owner keys are fresh per workspace; everything else is deterministic.
        assert.equal(manifest.WorkloadOwnerPubKeys.length, 1);
        assert.equal(manifest.SeedshareOwnerPubKeys.length, 1);
        compareGolden(
          `samples-${platform}.manifest.json`,
          `${JSON.stringify({ Policies: manifest.Policies, ReferenceValues: manifest.ReferenceValues }, null, 2)}\n`,
        );
      } finally {
        removeDir(ws);
      }
    });
  }

  it('injects the images of the lock the tests use: the stand-ins committed in samples/images', () => {
    const index = JSON.parse(readFileSync(join(SAMPLE_IMAGES, 'index.json'), 'utf8')) as {
      manifests: { digest: string; annotations: Record<string, string> }[];
    };
    const byName = new Map(index.manifests.map((m) => [m.annotations['org.opencontainers.image.ref.name'], m.digest]));
    assert.equal(process.env['CONTRAST_IMAGE_LOCK'], join(SAMPLE_IMAGES, 'image-lock.json'));
    for (const [part, ref] of Object.entries(INJECTED_IMAGES)) {
      const [name, digest] = ref.split('@') as [string, string];
      assert.equal(byName.get(name), digest, `${part}: ${name}`);
    }
  });
});

/**
 * Where a module's tests are (docs/testing.md): test/<folder>/ holds the tests of src/<folder>/,
 * and the only other folders are the suites that cut across modules, each named here.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/cli.js';

/** Suites that test the product as a whole, not one folder of src/. */
const CROSS_CUTTING: Readonly<Record<string, string>> = {
  crash: 'SIGKILL at every write: files and stores are old or new',
  e2e: 'the local Kubernetes node (npm run e2e)',
  golden: 'golden files (data, no tests)',
  helpers: 'shared test helpers (no tests)',
  hostile: 'hostile input in bounded child processes',
  meta: 'checks of the tree itself: layers, check ids, tables against docs',
  property: 'property tests across generate',
};

const folders = (dir: string) => readdirSync(dir).filter((n) => statSync(join(dir, n)).isDirectory());

describe('the layout of test/', () => {
  it('names a folder of src/ or a cross-cutting suite by every folder of test/', () => {
    const src = new Set(folders(join(REPO_ROOT, 'src')));
    const strays = folders(join(REPO_ROOT, 'test')).filter((n) => !src.has(n) && !(n in CROSS_CUTTING));
    assert.deepEqual(strays, [], 'test folders that match no src folder: move their tests next to their module');
  });

  it('keeps no stale cross-cutting name', () => {
    const present = new Set(folders(join(REPO_ROOT, 'test')));
    assert.deepEqual(
      Object.keys(CROSS_CUTTING).filter((n) => !present.has(n)),
      [],
    );
  });
});

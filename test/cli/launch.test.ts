/**
 * The launcher of the node build (bin/launch.mjs): it runs dist/cli.cjs with the code cache the
 * build made, only when the cache names that very bundle. V8 checks only the source length, so
 * a cache of another bundle of the same length would run that bundle's code. Each case runs a
 * copy of the launcher and the bundle in a directory of its own.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { ensureBuilt, REPO_ROOT } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const DIST = join(REPO_ROOT, 'dist');
const VERSION = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version as string;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();

describe('bin/launch.mjs: the CLI bundle and its code cache', function () {
  let dir: string;
  before(() => ensureBuilt());
  beforeEach(() => {
    dir = tempDir('kc-launch-');
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'dist'));
    copyFileSync(join(REPO_ROOT, 'bin', 'launch.mjs'), join(dir, 'bin', 'launch.mjs'));
    copyFileSync(join(REPO_ROOT, 'bin', 'kubectl-contrast'), join(dir, 'bin', 'kubectl-contrast.mjs'));
  });
  afterEach(() => removeDir(dir));

  const runVersion = () =>
    spawnSync(process.execPath, [join(dir, 'bin', 'kubectl-contrast.mjs'), '--version'], { encoding: 'utf8' });
  const version = (): string => {
    const r = runVersion();
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };

  it('the build made a cache of the bundle it wrote, and V8 takes it', () => {
    const bundle = readFileSync(join(DIST, 'cli.cjs'));
    const cache = readFileSync(join(DIST, 'cli.cjs.cache'));
    assert.ok(cache.subarray(0, 32).equals(sha256(bundle)), 'the cache names another bundle');
    const script = new Script(bundle.toString('utf8'), {
      filename: join(DIST, 'cli.cjs'),
      cachedData: cache.subarray(32),
    });
    assert.equal(script.cachedDataRejected, false);
    // More than the top level: the build's run compiled the functions it called.
    const bare = new Script(bundle.toString('utf8'), { filename: join(DIST, 'cli.cjs') }).createCachedData();
    assert.ok(cache.length - 32 > 2 * bare.length, `cache ${cache.length} bytes, top level alone ${bare.length}`);
  });

  it('a cache made for another bundle of the same length is not used', () => {
    const bundle = readFileSync(join(DIST, 'cli.cjs'), 'utf8');
    const at = bundle.indexOf(`"${VERSION}"`);
    assert.ok(at > 0, 'the version string is in the bundle');
    const other = '9'.repeat(VERSION.length);
    const edited = `${bundle.slice(0, at)}"${other}"${bundle.slice(at + VERSION.length + 2)}`;
    assert.equal(edited.length, bundle.length);
    writeFileSync(join(dir, 'dist', 'cli.cjs'), edited);
    copyFileSync(join(DIST, 'cli.cjs.cache'), join(dir, 'dist', 'cli.cjs.cache'));
    assert.equal(version(), other);
  });

  it('runs without a cache, and with a cache V8 refuses', () => {
    copyFileSync(join(DIST, 'cli.cjs'), join(dir, 'dist', 'cli.cjs'));
    assert.equal(version(), VERSION);
    const digest = sha256(readFileSync(join(dir, 'dist', 'cli.cjs')));
    writeFileSync(join(dir, 'dist', 'cli.cjs.cache'), Buffer.concat([digest, Buffer.from('not a V8 code cache')]));
    assert.equal(version(), VERSION);
    writeFileSync(join(dir, 'dist', 'cli.cjs.cache'), Buffer.alloc(7));
    assert.equal(version(), VERSION);
  });

  it('says how to build when there is no bundle', () => {
    const r = runVersion();
    assert.equal(r.status, 1);
    assert.match(r.stderr, /the CLI is not built; run `npm run build`/);
  });
});

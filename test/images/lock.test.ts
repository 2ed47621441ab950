/**
 * The image lock (src/platforms/images.ts): the only place the CLI takes image references from,
 * written by the image build; and the replacements that move them to a mirror.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OUR_IMAGES, REGISTRY, TAG } from '../../scripts/images/spec.js';
import { IMAGE_KEYS, loadImageReplacements, parseImageLock, replaceImage } from '../../src/platforms/images.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { tempDir } from './fixtures.js';

const D = `sha256:${'a'.repeat(64)}`;
const full = Object.fromEntries(IMAGE_KEYS.map((k) => [k, `ghcr.io/kubectl-contrast/${k.toLowerCase()}:v1@${D}`]));

describe('images: the image lock', () => {
  it('the packaged lock and the stand-ins lock name the images of scripts/images/spec.ts, each pinned', () => {
    for (const file of ['src/platforms/image-lock.json', 'samples/images/image-lock.json']) {
      const lock = parseImageLock(readFileSync(join(REPO_ROOT, file), 'utf8'), file);
      for (const spec of OUR_IMAGES)
        assert.match(
          lock[spec.key],
          new RegExp(`^${REGISTRY}/${spec.repository}:${TAG}@sha256:[0-9a-f]{64}$`),
          `${file}: ${spec.key}`,
        );
    }
  });

  it('refuses a lock that is not exactly the images kubectl-contrast uses, each with tag and digest', () => {
    const text = (images: unknown): string => JSON.stringify({ images });
    assert.deepEqual(parseImageLock(text(full), 'l'), full);
    assert.throws(() => parseImageLock('{', 'l'), /the image lock is not JSON/);
    assert.throws(() => parseImageLock('[]', 'l'), /must be an object with an "images" object/);
    assert.throws(() => parseImageLock(text([]), 'l'), /must be an object with an "images" object/);
    assert.throws(
      () => parseImageLock(text({ ...full, extra: full['pause'] }), 'l'),
      /images\.extra: not an image kubectl-contrast uses/,
    );
    const { pause: _p, ...noPause } = full;
    assert.throws(() => parseImageLock(text(noPause), 'l'), /images\.pause: missing, or not a string/);
    assert.throws(
      () => parseImageLock(text({ ...full, pause: 'ghcr.io/x/pause:v1' }), 'l'),
      /images\.pause: "ghcr\.io\/x\/pause:v1" must carry a tag and a digest/,
    );
    assert.throws(
      () => parseImageLock(text({ ...full, pause: `ghcr.io/x/pause@${D}` }), 'l'),
      /must carry a tag and a digest/,
    );
    assert.throws(() => parseImageLock(text({ ...full, pause: 'Not A Ref' }), 'l'), /images\.pause: /);
  });
});

describe('images: replacements', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.remove());
  const load = (text: string): Map<string, string> => {
    writeFileSync(join(tmp.path, 'r.txt'), text);
    return loadImageReplacements(join(tmp.path, 'r.txt'));
  };

  it('a prefix line moves every image below it, keeping path, tag and digest; the longest prefix and exact lines win', () => {
    const r = load(
      'ghcr.io/kubectl-contrast/*=registry.example:5000/mirror/*\nghcr.io/kubectl-contrast/pause/*=other.example/p/*\nghcr.io/kubectl-contrast/coordinator:v1=exact.example/c:1\n',
    );
    assert.equal(
      replaceImage(`ghcr.io/kubectl-contrast/initializer:v1@${D}`, r),
      `registry.example:5000/mirror/initializer:v1@${D}`,
    );
    assert.equal(
      replaceImage('ghcr.io/kubectl-contrast/samples/web:1.0', r),
      'registry.example:5000/mirror/samples/web:1.0',
    );
    assert.equal(replaceImage('ghcr.io/kubectl-contrast/coordinator:v1', r), 'exact.example/c:1');
    assert.equal(replaceImage('ghcr.io/kubectl-contrast/pause/x:1', r), 'other.example/p/x:1');
    // Not below the prefix: a similar name, another registry.
    assert.equal(replaceImage('ghcr.io/kubectl-contrastx/a:1', r), 'ghcr.io/kubectl-contrastx/a:1');
    assert.equal(replaceImage('docker.io/library/nginx:1', r), 'docker.io/library/nginx:1');
  });

  it('refuses a * anywhere but at the end of both sides', () => {
    for (const bad of ['a/*=b', 'a=b/*', 'a/*/c=b/*', 'a/*=b/*/c', '/*=b/*', 'a*=b*']) {
      assert.throws(
        () => load(`${bad}\n`),
        /line 1: a prefix replacement is "registry\/path\/\*=other\/path\/\*"/,
        bad,
      );
    }
  });
});

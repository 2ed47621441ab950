import assert from 'node:assert/strict';
import { formatReference, parseImageReference, pinnedReference } from '../../src/images/index.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('images: references', () => {
  const cases: [string, string][] = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.27', 'docker.io/library/nginx:1.27'],
    ['library/nginx', 'docker.io/library/nginx:latest'],
    ['bitnami/redis:7', 'docker.io/bitnami/redis:7'],
    ['docker.io/nginx', 'docker.io/library/nginx:latest'],
    ['index.docker.io/library/nginx:1', 'docker.io/library/nginx:1'],
    ['ghcr.io/x/y:1.0', 'ghcr.io/x/y:1.0'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/app:v1', 'localhost:5000/app:v1'],
    ['127.0.0.1:5000/a/b/c', '127.0.0.1:5000/a/b/c:latest'],
    [`nginx@${D}`, `docker.io/library/nginx@${D}`],
    [`nginx:1.27@${D}`, `docker.io/library/nginx:1.27@${D}`],
    ['Registry.Example.com/app', 'registry.example.com/app:latest'],
  ];
  for (const [input, want] of cases) {
    it(`normalises ${input}`, () => assert.equal(formatReference(parseImageReference(input)), want));
  }

  it('keeps the tag and replaces nothing when pinning', () => {
    assert.equal(pinnedReference('nginx:1.27', D), `docker.io/library/nginx:1.27@${D}`);
    assert.equal(pinnedReference(parseImageReference(`ghcr.io/a/b@${D}`), D), `ghcr.io/a/b@${D}`);
  });

  for (const bad of [
    '',
    'Nginx',
    'ghcr.io/Org/app',
    'nginx:',
    'nginx@sha256:1234',
    'a//b',
    ' nginx',
    'nginx:bad tag',
    'ghcr.io/x/y@md5:abcdef',
  ]) {
    it(`rejects ${JSON.stringify(bad)} with a message naming it`, () => {
      assert.throws(
        () => parseImageReference(bad),
        (err: Error) => err.message.includes(`"${bad}"`),
      );
    });
  }
});

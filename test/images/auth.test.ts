import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CredentialStore } from '../../src/images/auth.js';
import { parseChallenge } from '../../src/images/registry.js';
import { tempDir } from './fixtures.js';

describe('images: credentials and challenges', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.remove());

  const b64 = (s: string): string => Buffer.from(s).toString('base64');

  it('finds Docker Hub credentials under the legacy index URL key', async () => {
    const path = join(tmp.path, 'config.json');
    writeFileSync(
      path,
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hub:pw') },
          'https://ghcr.io': { auth: b64('gh:token:with:colons') },
          'registry.example.com:5000': { username: 'u', password: 'p' },
        },
      }),
    );
    const store = new CredentialStore(path);
    assert.deepEqual(await store.get('docker.io'), { kind: 'basic', username: 'hub', password: 'pw' });
    assert.deepEqual(await store.get('ghcr.io'), { kind: 'basic', username: 'gh', password: 'token:with:colons' });
    assert.deepEqual(await store.get('registry.example.com:5000'), { kind: 'basic', username: 'u', password: 'p' });
    assert.equal(await store.get('quay.io'), undefined);
  });

  it('searches DOCKER_CONFIG, then the containers auth files, when no path is given', async () => {
    writeFileSync(join(tmp.path, 'config.json'), JSON.stringify({ auths: { 'a.example': { auth: b64('a:1') } } }));
    writeFileSync(join(tmp.path, 'auth.json'), JSON.stringify({ auths: { 'b.example': { auth: b64('b:2') } } }));
    const store = new CredentialStore(undefined, {
      DOCKER_CONFIG: tmp.path,
      REGISTRY_AUTH_FILE: join(tmp.path, 'auth.json'),
      HOME: tmp.path,
    });
    assert.deepEqual(await store.get('a.example'), { kind: 'basic', username: 'a', password: '1' });
    assert.deepEqual(await store.get('b.example'), { kind: 'basic', username: 'b', password: '2' });
  });

  it('reports a malformed config file by path and an auth value without a colon by registry', async () => {
    const path = join(tmp.path, 'config.json');
    writeFileSync(path, '{not json');
    assert.throws(
      () => new CredentialStore(path),
      (err: Error) => err.message.includes(path),
    );
    writeFileSync(path, JSON.stringify({ auths: { 'x.example': { auth: b64('nocolon') } } }));
    await assert.rejects(new CredentialStore(path).get('x.example'), /x\.example/);
  });

  it('reports a credential helper that is not installed', async () => {
    const path = join(tmp.path, 'config.json');
    writeFileSync(path, JSON.stringify({ credsStore: 'does-not-exist-anywhere' }));
    await assert.rejects(
      new CredentialStore(path).get('ghcr.io'),
      /docker-credential-does-not-exist-anywhere.*not found/,
    );
  });

  it('parses WWW-Authenticate challenges', () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
      ),
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
      },
    );
    assert.deepEqual(parseChallenge('Basic realm="x"'), { scheme: 'basic', params: { realm: 'x' } });
    assert.deepEqual(parseChallenge('Bearer realm=unquoted, error="invalid_token"'), {
      scheme: 'bearer',
      params: { realm: 'unquoted', error: 'invalid_token' },
    });
  });
});

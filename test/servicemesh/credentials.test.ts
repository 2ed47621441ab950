/** Loading the Initializer's files: clear failures, and a set written halfway is never used. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CredentialWatcher } from '../../src/servicemesh/credential-watcher.js';
import { loadCredentials, type MeshCredentials } from '../../src/servicemesh/credentials.js';
import { newMeshPki, workloadCredentials, writeTlsDir, type MeshPki, type WorkloadCredentials } from './pki.js';

describe('service mesh: mesh credentials', () => {
  let dir: string;
  let pki: MeshPki;
  let good: WorkloadCredentials;

  before(async () => {
    pki = await newMeshPki();
    good = await workloadCredentials(pki, { sans: ['web', '10.0.0.7'] });
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kc-tls-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const refused = (pattern: RegExp) => (err: Error) => {
    assert.equal(err.name, 'UserError');
    assert.match(err.message, pattern);
    return true;
  };

  it('loads a set the Coordinator issued and describes it', () => {
    writeTlsDir(dir, good);
    const c = loadCredentials(dir);
    assert.equal(c.leaf.subject, 'CN=web');
    assert.equal(c.ca.subject, 'CN=system:coordinator:intermediate');
    assert.ok(c.leaf.notAfter.getTime() > Date.now() + 300 * 24 * 3600 * 1000);
    assert.match(c.ca.fingerprint, /^[0-9a-f]{64}$/);
  });

  it('names the missing file and the Initializer', () => {
    assert.throws(
      () => loadCredentials(dir),
      refused(/mesh-ca\.pem: cannot read the mesh credentials: no such file or directory; the Initializer writes them/),
    );
    writeTlsDir(dir, good);
    rmSync(join(dir, 'key.pem'));
    assert.throws(() => loadCredentials(dir), refused(/key\.pem: cannot read the mesh credentials: no such file/));
  });

  it('refuses a key of another run, a chain from another mesh CA, an expired certificate', async () => {
    const other = await workloadCredentials(pki);
    writeTlsDir(dir, { ...good, keyPem: other.keyPem });
    assert.throws(
      () => loadCredentials(dir),
      refused(/key\.pem is not the key of the first certificate of certChain\.pem/),
    );
    const otherCa = await workloadCredentials(await newMeshPki());
    writeTlsDir(dir, { ...good, caPem: otherCa.caPem });
    assert.throws(
      () => loadCredentials(dir),
      refused(/certChain\.pem: the mesh certificate is not signed by mesh-ca\.pem/),
    );
    writeTlsDir(dir, await workloadCredentials(pki, { issuedAt: new Date(Date.now() - 2 * 365 * 24 * 3600 * 1000) }));
    assert.throws(() => loadCredentials(dir), refused(/the mesh certificate expired at/));
  });

  it('refuses files that are not what they should be', () => {
    writeTlsDir(dir, good);
    const leafOnly = good.chainPem.slice(0, good.chainPem.indexOf('-----END CERTIFICATE-----') + 26);
    writeFileSync(join(dir, 'mesh-ca.pem'), leafOnly);
    assert.throws(() => loadCredentials(dir), refused(/mesh-ca\.pem: is not a CA certificate/));
    writeFileSync(join(dir, 'mesh-ca.pem'), good.caPem + good.caPem);
    assert.throws(() => loadCredentials(dir), refused(/holds 2 certificates/));
    writeFileSync(join(dir, 'mesh-ca.pem'), `junk\n${good.caPem}`);
    assert.throws(() => loadCredentials(dir), refused(/mesh-ca\.pem: not a PEM file/));
    writeFileSync(join(dir, 'mesh-ca.pem'), good.caPem);
    writeFileSync(join(dir, 'key.pem'), good.keyPem + good.keyPem);
    assert.throws(() => loadCredentials(dir), refused(/exactly one PKCS#8 PRIVATE KEY block/));
    writeFileSync(join(dir, 'certChain.pem'), 'x'.repeat(300 * 1024));
    assert.throws(() => loadCredentials(dir), refused(/too large for a credentials file/));
  });

  it('the watcher keeps a set written halfway out and switches once the set is whole', async () => {
    writeTlsDir(dir, good);
    const changes: [MeshCredentials, MeshCredentials][] = [];
    const errors: string[] = [];
    const w = new CredentialWatcher({
      dir,
      current: loadCredentials(dir),
      onChange: (n, p) => changes.push([n, p]),
      onError: (m) => errors.push(m),
    });
    w.check();
    assert.equal(changes.length, 0, 'an unchanged set is no change');
    const next = await workloadCredentials(await newMeshPki(), { sans: ['web2'] });
    writeFileSync(join(dir, 'mesh-ca.pem'), next.caPem);
    w.check();
    assert.equal(changes.length, 0);
    assert.match(w.state.pendingError ?? '', /not signed by mesh-ca\.pem/);
    assert.equal(errors.length, 1);
    w.check();
    assert.equal(errors.length, 1, 'the same reason is reported once');
    writeTlsDir(dir, next);
    w.check();
    assert.equal(changes.length, 1);
    assert.equal(changes[0]![0].leaf.subject, 'CN=web2');
    assert.equal(changes[0]![1].leaf.subject, 'CN=web');
    assert.notEqual(changes[0]![0].ca.fingerprint, changes[0]![1].ca.fingerprint);
    assert.equal(w.state.pendingError, undefined);
    assert.equal(w.state.reloads, 1);
  });
});

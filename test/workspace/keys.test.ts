import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPublicKey } from '../../src/workspace/keys.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

describe('owner key files', () => {
  let dir: string;
  before(() => {
    dir = tempDir('kc-keys-');
  });
  after(() => removeDir(dir));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  const p384 = () => generateKeyPairSync('ec', { namedCurve: 'P-384' });

  it('reads one public or private key block', () => {
    const k = p384();
    const pub = k.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    assert.ok(loadPublicKey(file('pub.pem', pub), 'workload-owner').equals(k.publicKey));
    assert.ok(
      loadPublicKey(
        file('priv.pem', k.privateKey.export({ type: 'sec1', format: 'pem' }) as string),
        'workload-owner',
      ).equals(k.publicKey),
    );
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    assert.ok(
      loadPublicKey(
        file('rsa.pem', rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }) as string),
        'seedshare-owner',
      ).equals(rsa.publicKey),
    );
  });

  it('refuses a file with two keys instead of taking the first', () => {
    const a = p384().publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const b = p384().publicKey.export({ type: 'spki', format: 'pem' }) as string;
    assert.throws(
      () => loadPublicKey(file('two.pem', `${a}${b}`), 'workload-owner'),
      /two\.pem: not a PEM-encoded private or public key: expected exactly one PEM block, found 2/,
    );
  });

  it('refuses text around the block, other block types and a mention of a private key in a comment', () => {
    const a = p384().publicKey.export({ type: 'spki', format: 'pem' }) as string;
    assert.throws(
      () => loadPublicKey(file('c.pem', `# not a PRIVATE KEY\n${a}`), 'workload-owner'),
      /c\.pem: not a PEM-encoded private or public key: unexpected content at offset 0/,
    );
    assert.throws(
      () => loadPublicKey(file('cert.pem', a.replace(/PUBLIC KEY/g, 'CERTIFICATE')), 'workload-owner'),
      /not a PEM-encoded private or public key \(a CERTIFICATE block\)/,
    );
  });
});

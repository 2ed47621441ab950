import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { AMD_ARKS } from '../../src/attestation/roots/amd.js';
import { INTEL_SGX_ROOT_CA } from '../../src/attestation/roots/intel.js';
import { pinnedCertificate } from '../../src/attestation/roots/pinned.js';
import { commonName } from '../../src/attestation/x509.js';
import { read } from './vectors.js';

/** `CN=<name> cert=<sha256>` pairs from the shared FINGERPRINTS.txt. */
function publishedFingerprints(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of read('FINGERPRINTS.txt').toString('utf8').split('\n')) {
    const m = /^CN=(.+?)\s+cert=([0-9a-f]{64})/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

describe('attestation: pinned roots', () => {
  const published = publishedFingerprints();

  for (const [product, root] of Object.entries(AMD_ARKS)) {
    it(`pins ARK-${product} by the fingerprint in FINGERPRINTS.txt`, () => {
      const cert = new X509Certificate(root.pem);
      const digest = createHash('sha256').update(cert.raw).digest('hex');
      assert.equal(commonName(cert.subject), `ARK-${product}`);
      assert.equal(digest, published.get(`ARK-${product}`));
      assert.equal(root.sha256, digest);
      assert.ok(cert.verify(cert.publicKey), 'self-signed');
      assert.equal(pinnedCertificate(root).raw.equals(cert.raw), true);
    });
  }

  it('pins the Intel SGX Root CA by the fingerprint in FINGERPRINTS.txt', () => {
    const cert = new X509Certificate(INTEL_SGX_ROOT_CA.pem);
    const digest = createHash('sha256').update(cert.raw).digest('hex');
    assert.equal(digest, published.get('Intel SGX Root CA'));
    assert.equal(INTEL_SGX_ROOT_CA.sha256, digest);
  });

  it('refuses a root constant whose bytes do not match its pin', () => {
    assert.throws(
      () => pinnedCertificate({ pem: AMD_ARKS.Milan.pem, sha256: AMD_ARKS.Genoa.sha256 }),
      /does not match its fingerprint/,
    );
  });
});

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { checkIssuedBy } from '../../src/attestation/x509.js';
import { forgeCertificate, name, seq } from './der-builder.js';
import { checkIs } from './assertions.js';

describe('certificate chain links', () => {
  const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ca = forgeCertificate({ subject: name('CA'), issuer: name('CA'), publicKey: keys.publicKey, signingKey: keys.privateKey, alg: 'ecdsa-sha256', ca: true });
  const leaf = (extensions = [] as { oid: string; critical?: boolean; value: Buffer }[]) =>
    forgeCertificate({ subject: name('leaf'), issuer: name('CA'), publicKey: keys.publicKey, signingKey: keys.privateKey, alg: 'ecdsa-sha256', extensions });

  it('accepts a correctly signed child of a CA', () => {
    checkIssuedBy(leaf(), ca, 'test', 'leaf');
  });

  it('rejects an unknown critical extension, but not an unknown non-critical one', () => {
    checkIssuedBy(leaf([{ oid: '1.2.3.4', value: seq() }]), ca, 'test', 'leaf');
    assert.throws(() => checkIssuedBy(leaf([{ oid: '1.2.3.4', critical: true, value: seq() }]), ca, 'test', 'leaf'), checkIs('test'));
  });

  it('rejects an issuer that is not a CA, a name mismatch and a wrong key', () => {
    const notCa = forgeCertificate({ subject: name('CA'), issuer: name('CA'), publicKey: keys.publicKey, signingKey: keys.privateKey, alg: 'ecdsa-sha256' });
    assert.throws(() => checkIssuedBy(leaf(), notCa, 'test', 'leaf'), /not a CA/);
    const other = forgeCertificate({ subject: name('Other'), issuer: name('Other'), publicKey: keys.publicKey, signingKey: keys.privateKey, alg: 'ecdsa-sha256', ca: true });
    assert.throws(() => checkIssuedBy(leaf(), other, 'test', 'leaf'), /issuer name does not match/);
    const otherKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const impostor = forgeCertificate({ subject: name('CA'), issuer: name('CA'), publicKey: otherKeys.publicKey, signingKey: otherKeys.privateKey, alg: 'ecdsa-sha256', ca: true });
    assert.throws(() => checkIssuedBy(leaf(), impostor, 'test', 'leaf'), /signature does not verify/);
  });
});

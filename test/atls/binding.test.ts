/** The aTLS binding values: report data, the nonce in the server name, and the exporter label. */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import {
  CLIENT_EVIDENCE_HEADER,
  EKM_LABEL,
  EKM_SIZE,
  NONCE_SIZE,
  SNI_SUFFIX,
  newNonce,
  nonceFromServerName,
  nonceToServerName,
  reportData,
  spkiDer,
} from '../../src/atls/binding.js';

describe('aTLS binding values', () => {
  it('binds SHA-512 of the SPKI followed by the nonce, in that order', () => {
    const spki = spkiDer(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const nonce = Buffer.alloc(32, 7);
    const rd = reportData(spki, nonce);
    assert.equal(rd.length, 64);
    assert.deepEqual(
      rd,
      createHash('sha512')
        .update(Buffer.concat([spki, nonce]))
        .digest(),
    );
    assert.notDeepEqual(
      rd,
      createHash('sha512')
        .update(Buffer.concat([nonce, spki]))
        .digest(),
    );
  });

  it('names a key by its SPKI DER, the same for the private key and its public half, each caller its own copy', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const want = publicKey.export({ type: 'spki', format: 'der' });
    assert.deepEqual(spkiDer(privateKey), want);
    assert.deepEqual(spkiDer(publicKey), want);
    const mine = spkiDer(privateKey);
    mine.fill(0);
    assert.deepEqual(spkiDer(privateKey), want, 'changing a returned SPKI does not change the next one');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
    assert.deepEqual(spkiDer(other), other.export({ type: 'spki', format: 'der' }));
    assert.notDeepEqual(spkiDer(other), want);
  });

  it('uses the names and sizes docs/protocol.md specifies', () => {
    assert.equal(NONCE_SIZE, 32);
    assert.equal(SNI_SUFFIX, '.atls-nonce.invalid');
    assert.equal(EKM_LABEL, 'EXPORTER-contrast-atls-client-evidence');
    assert.equal(EKM_SIZE, 32);
    assert.equal(CLIENT_EVIDENCE_HEADER, 'contrast-atls-evidence-bin');
  });

  it('draws fresh 32-byte nonces', () => {
    const a = newNonce();
    const b = newNonce();
    assert.equal(a.length, 32);
    assert.notDeepEqual(a, b);
  });

  it('writes the nonce as two 32-digit hex labels under .atls-nonce.invalid and reads it back', () => {
    const nonce = Buffer.from('00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210', 'hex');
    const name = nonceToServerName(nonce);
    assert.equal(name, '00112233445566778899aabbccddeeff.0123456789abcdeffedcba9876543210.atls-nonce.invalid');
    assert.deepEqual(nonceFromServerName(name), nonce);
  });

  it('refuses to write a nonce of another size', () => {
    assert.throws(() => nonceToServerName(Buffer.alloc(31)), /^Error: nonce must be 32 bytes$/);
    assert.throws(() => nonceToServerName(Buffer.alloc(33)), /nonce must be 32 bytes/);
  });

  it('reads no nonce from any other server name', () => {
    const hex = 'ab'.repeat(16);
    for (const name of [
      undefined,
      '',
      'coordinator',
      `${hex}.${hex}.atls-nonce.invalid.`,
      `x${hex}.${hex}.atls-nonce.invalid`,
      `${hex}.${hex}.atls-nonce.invalid.example.com`,
      `www.${hex}.${hex}.atls-nonce.invalid`,
      `${hex.toUpperCase()}.${hex}.atls-nonce.invalid`,
      `${hex}${hex}.atls-nonce.invalid`,
      `${hex}.${hex}.invalid`,
      `${hex.slice(2)}.${hex}ab.atls-nonce.invalid`,
      `${hex}.${hex}xatls-nonce.invalid`,
      `${hex}x${hex}.atls-nonce.invalid`,
    ]) {
      assert.equal(nonceFromServerName(name), undefined, String(name));
    }
  });
});

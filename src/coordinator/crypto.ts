/**
 * Small key helpers of the Coordinator: deterministic P-384 keys from secret bytes, and
 * conversion between node:crypto KeyObjects and WebCrypto keys (which @peculiar/x509 needs to
 * build certificates).
 */
import 'reflect-metadata';
import { createECDH, createHash, createPrivateKey, hkdfSync, webcrypto, type KeyObject } from 'node:crypto';
import { spkiDer } from '../atls/binding.js';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

type CryptoKey = webcrypto.CryptoKey;
type SigningAlgorithm = { name: string; hash?: string };

const P384_ORDER = BigInt(
  '0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973',
);

function b64url(buf: Buffer): string {
  return buf.toString('base64url');
}

/** A P-384 private key whose scalar is taken from `d` (48 bytes, 0 < d < n). */
function p384KeyFromScalar(d: Buffer): KeyObject {
  const ecdh = createECDH('secp384r1');
  ecdh.setPrivateKey(d);
  const pub = ecdh.getPublicKey();
  return createPrivateKey({
    key: { kty: 'EC', crv: 'P-384', d: b64url(d), x: b64url(pub.subarray(1, 49)), y: b64url(pub.subarray(49, 97)) },
    format: 'jwk',
  });
}

/**
 * Deterministic P-384 key from a secret: rejection sampling over HKDF-SHA256 output, so every
 * scalar in [1, n) is equally likely and the same secret always gives the same key.
 */
export function deriveP384Key(secret: Uint8Array): KeyObject {
  for (let counter = 0; counter < 1000; counter++) {
    const d = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), `ECDSA P-384 scalar ${counter}`, 48));
    const n = BigInt(`0x${d.toString('hex')}`);
    if (n > 0n && n < P384_ORDER) return p384KeyFromScalar(d);
  }
  throw new Error('cannot derive a P-384 key (HKDF output never in range)');
}

type KeyAlg = { name: 'ECDSA'; namedCurve: 'P-256' | 'P-384' } | { name: 'RSASSA-PKCS1-v1_5'; hash: 'SHA-256' };

function webAlgorithm(key: KeyObject): KeyAlg {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { name: 'ECDSA', namedCurve: 'P-256' };
    if (curve === 'secp384r1') return { name: 'ECDSA', namedCurve: 'P-384' };
    throw new Error(`unsupported curve ${curve}`);
  }
  if (key.asymmetricKeyType === 'rsa') return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  throw new Error(`unsupported key type ${key.asymmetricKeyType}`);
}

/** The signature algorithm a certificate signed by `key` uses. */
export function signingAlgorithm(key: KeyObject): SigningAlgorithm {
  const alg = webAlgorithm(key);
  if (alg.name === 'ECDSA') return { name: 'ECDSA', hash: alg.namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256' };
  return alg;
}

export async function toCryptoPrivateKey(key: KeyObject): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', key.export({ type: 'pkcs8', format: 'der' }), webAlgorithm(key), false, [
    'sign',
  ]) as Promise<CryptoKey>;
}

export async function toCryptoPublicKey(key: KeyObject): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('spki', spkiDer(key), webAlgorithm(key), true, ['verify']) as Promise<CryptoKey>;
}

export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export { x509 };

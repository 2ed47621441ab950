/**
 * Owner keys as manifests list them: workload owners as hex of the PKIX (SubjectPublicKeyInfo)
 * DER of an ECDSA key, seed-share owners as hex of the PKCS#1 DER of an RSA key, each exactly in
 * its canonical encoding. Part of the manifest schema (./manifest.ts); the key files of a
 * workspace are src/workspace/keys.ts.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';

/** Hex of the PKIX (SubjectPublicKeyInfo) DER of a workload owner key, as manifests list it. */
export function workloadOwnerKeyHex(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'der' }).toString('hex');
}

/** Hex of the PKCS#1 DER of a seed-share owner key, as manifests list it. */
export function seedshareOwnerKeyHex(key: KeyObject): string {
  return key.export({ type: 'pkcs1', format: 'der' }).toString('hex');
}

/**
 * Why a manifest's key entry is refused; the caller adds the field (e.g.
 * `SeedshareOwnerPubKeys[1]`) and the file.
 */
export class OwnerKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OwnerKeyError';
  }
}

const LOWER_HEX = /^(?:[0-9a-f]{2})+$/;
/** Curves Go's crypto/x509 (upstream's parser) and Node both accept for ECDSA, minus P-224. */
const ECDSA_CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
export const MIN_SEEDSHARE_RSA_BITS = 2048;
const MAX_RSA_BITS = 16384;

function hexBytes(hex: unknown): Buffer {
  if (typeof hex !== 'string') throw new OwnerKeyError('must be a hex-encoded public key (a string)');
  if (!LOWER_HEX.test(hex))
    throw new OwnerKeyError(
      `must be a hex-encoded public key (${hex.length === 0 ? 'it is empty' : 'lower-case hex digits, an even number of them'})`,
    );
  return Buffer.from(hex, 'hex');
}

/**
 * A workload owner key as manifests list it: hex of the PKIX (SubjectPublicKeyInfo) DER of an
 * ECDSA public key on P-256, P-384 or P-521. The bytes must be exactly the key's canonical
 * encoding (uncompressed point, named curve, nothing after it): Node's parser ignores trailing
 * bytes, so the key is exported again and compared.
 */
export function parseWorkloadOwnerKeyHex(hex: unknown): KeyObject {
  const der = hexBytes(hex);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    throw new OwnerKeyError('is not a PKIX (SubjectPublicKeyInfo) DER public key');
  }
  if (key.asymmetricKeyType !== 'ec')
    throw new OwnerKeyError(
      `is a${key.asymmetricKeyType === 'rsa' ? 'n' : ''} ${key.asymmetricKeyType ?? 'unknown'} key; a workload owner key must be ECDSA`,
    );
  const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
  if (!ECDSA_CURVES[curve])
    throw new OwnerKeyError(`ECDSA key on curve ${curve || '(unnamed)'}; expected P-256, P-384 or P-521`);
  // OpenSSL keeps a compressed point compressed on export; going through the coordinates gives
  // the one encoding upstream (Go's x509) accepts and our callers' keys are compared in.
  const jwk = key.export({ format: 'jwk' });
  const canonical = createPublicKey({ key: { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y }, format: 'jwk' }).export({
    type: 'spki',
    format: 'der',
  });
  requireCanonical(
    der,
    canonical,
    'is not the canonical encoding of the key (e.g. a compressed point or explicit curve parameters)',
  );
  return key;
}

/** The listed bytes must be the key's own encoding: trailing bytes and other encodings are refused. */
function requireCanonical(der: Buffer, canonical: Buffer, otherEncoding: string): void {
  if (canonical.equals(der)) return;
  throw new OwnerKeyError(
    canonical.length < der.length && der.subarray(0, canonical.length).equals(canonical)
      ? `has ${der.length - canonical.length} trailing byte(s) after the key`
      : otherEncoding,
  );
}

/**
 * A seed-share owner key as manifests list it: hex of the PKCS#1 DER of an RSA public key with
 * at least 2048 bits and an odd public exponent ≥ 3, exactly its canonical encoding.
 */
export function parseSeedshareOwnerKeyHex(hex: unknown): KeyObject {
  const der = hexBytes(hex);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: der, format: 'der', type: 'pkcs1' });
  } catch {
    let hint = '';
    try {
      const other = createPublicKey({ key: der, format: 'der', type: 'spki' });
      hint =
        other.asymmetricKeyType === 'rsa'
          ? ' (it is PKIX/SubjectPublicKeyInfo; list the PKCS#1 form)'
          : ` (it is a PKIX ${other.asymmetricKeyType} key; seed-share owner keys are RSA)`;
    } catch {
      /* not PKIX either */
    }
    throw new OwnerKeyError(`is not an RSA public key in PKCS#1 DER${hint}`);
  }
  const details = key.asymmetricKeyDetails ?? {};
  const bits = details.modulusLength ?? 0;
  if (bits < MIN_SEEDSHARE_RSA_BITS)
    throw new OwnerKeyError(`RSA key of ${bits} bits; at least ${MIN_SEEDSHARE_RSA_BITS} required`);
  if (bits > MAX_RSA_BITS) throw new OwnerKeyError(`RSA key of ${bits} bits; at most ${MAX_RSA_BITS} accepted`);
  const e = details.publicExponent ?? 0n;
  if (e < 3n || e % 2n === 0n || e >= 2n ** 32n)
    throw new OwnerKeyError(`RSA public exponent ${e} is not an odd number from 3 to 2^32-1`);
  const canonical = key.export({ type: 'pkcs1', format: 'der' });
  requireCanonical(der, canonical, 'is not the canonical DER encoding of the key');
  return key;
}

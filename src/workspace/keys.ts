/**
 * Owner keys of a deployment, created once in the workspace and never overwritten:
 * - workload owner: ECDSA P-384, may update the manifest;
 * - seed-share owner: RSA-4096, receives an encrypted share of the Coordinator's secret seed.
 * Manifests list their public keys as hex of PKIX DER (workload) and PKCS#1 DER (seed share).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';

export const WORKLOAD_OWNER_KEY = 'workload-owner.pem';
export const SEEDSHARE_OWNER_KEY = 'seedshare-owner.pem';

export type OwnerKeyKind = 'workload-owner' | 'seedshare-owner';

/** Create the key file if it does not exist yet (mode 0600). Returns true when created. */
export function ensureKey(path: string, kind: OwnerKeyKind): boolean {
  if (existsSync(path)) return false;
  const pem = kind === 'workload-owner'
    ? generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'sec1', format: 'pem' })
    : generateKeyPairSync('rsa', { modulusLength: 4096 }).privateKey.export({ type: 'pkcs1', format: 'pem' });
  try {
    writeFileAtomic(path, pem as string, { mode: 0o600, exclusive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false; // created concurrently: keep theirs
    throw new UserError(`cannot write key: ${(err as Error).message}`, { file: path });
  }
  return true;
}

/** Read a private or public key file and check its type. */
export function loadPublicKey(path: string, kind: OwnerKeyKind): KeyObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read key: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file: path });
  }
  let key: KeyObject;
  try {
    key = text.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(text)) : createPublicKey(text);
  } catch {
    throw new UserError('not a PEM-encoded private or public key', { file: path });
  }
  if (text.includes('PRIVATE KEY')) warnIfReadableByOthers(path);
  const details = key.asymmetricKeyDetails ?? {};
  if (kind === 'workload-owner' && !(key.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1')) {
    throw new UserError(`a workload owner key must be ECDSA P-384, found ${describeKey(key)}`, { file: path });
  }
  if (kind === 'seedshare-owner' && !(key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048)) {
    throw new UserError(`a seed-share owner key must be RSA with at least 2048 bits, found ${describeKey(key)}`, { file: path });
  }
  return key;
}

function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  return `${key.asymmetricKeyType}${d.namedCurve ? ` ${d.namedCurve}` : ''}${d.modulusLength ? ` ${d.modulusLength} bits` : ''}`;
}

function warnIfReadableByOthers(path: string): void {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) process.stderr.write(`Warning: ${path}: private key is accessible by other users (mode ${mode.toString(8)}); run chmod 600 ${path}\n`);
}

/** Hex of the PKIX (SubjectPublicKeyInfo) DER of a workload owner key, as manifests list it. */
export function workloadOwnerKeyHex(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'der' }).toString('hex');
}

/** Hex of the PKCS#1 DER of a seed-share owner key, as manifests list it. */
export function seedshareOwnerKeyHex(key: KeyObject): string {
  return key.export({ type: 'pkcs1', format: 'der' }).toString('hex');
}

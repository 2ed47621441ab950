/**
 * Owner key files of a deployment, created once in the workspace and never overwritten:
 * - workload owner: ECDSA P-384, may update the manifest;
 * - seed-share owner: RSA-4096, receives an encrypted share of the Coordinator's secret seed.
 * How manifests list their public keys is src/coordinator/owner-keys.ts.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.js';
import { readPemBlocks } from '../util/encoding.js';
import { UserError } from '../util/errors.js';
import { MIN_SEEDSHARE_RSA_BITS } from '../coordinator/owner-keys.js';

export const WORKLOAD_OWNER_KEY = 'workload-owner.pem';
export const SEEDSHARE_OWNER_KEY = 'seedshare-owner.pem';

export type OwnerKeyKind = 'workload-owner' | 'seedshare-owner';

/** Create the key file if it does not exist yet (mode 0600). Returns true when created. */
export function ensureKey(path: string, kind: OwnerKeyKind): boolean {
  if (existsSync(path)) return false;
  const pem =
    kind === 'workload-owner'
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
    throw new UserError(`cannot read key: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      file: path,
    });
  }
  const { key, isPrivate } = parseKeyPem(text, path);
  if (isPrivate) warnIfReadableByOthers(path);
  const details = key.asymmetricKeyDetails ?? {};
  if (kind === 'workload-owner' && !(key.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1')) {
    throw new UserError(`a workload owner key must be ECDSA P-384, found ${describeKey(key)}`, { file: path });
  }
  if (
    kind === 'seedshare-owner' &&
    !(key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= MIN_SEEDSHARE_RSA_BITS)
  ) {
    throw new UserError(
      `a seed-share owner key must be RSA with at least ${MIN_SEEDSHARE_RSA_BITS} bits, found ${describeKey(key)}`,
      { file: path },
    );
  }
  return key;
}

const PRIVATE_LABELS = new Set(['PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY']);
const PUBLIC_LABELS: Record<string, 'spki' | 'pkcs1'> = { 'PUBLIC KEY': 'spki', 'RSA PUBLIC KEY': 'pkcs1' };

/**
 * Exactly one PEM key block and nothing else: a file holding two keys would otherwise be read
 * as its first key, whatever a reviewer of the second one believed was added.
 */
function parseKeyPem(text: string, path: string): { key: KeyObject; isPrivate: boolean } {
  let blocks;
  try {
    blocks = readPemBlocks(text);
  } catch (err) {
    throw new UserError(`not a PEM-encoded private or public key: ${(err as Error).message}`, { file: path });
  }
  if (blocks.length !== 1)
    throw new UserError(
      `not a PEM-encoded private or public key: expected exactly one PEM block, found ${blocks.length}`,
      { file: path },
    );
  const [{ label, der }] = blocks as [{ label: string; der: Buffer }];
  try {
    if (PRIVATE_LABELS.has(label)) return { key: createPublicKey(createPrivateKey(text)), isPrivate: true };
    const type = PUBLIC_LABELS[label];
    if (type) return { key: createPublicKey({ key: der, format: 'der', type }), isPrivate: false };
  } catch (err) {
    throw new UserError(`not a usable ${label}: ${(err as Error).message}`, { file: path });
  }
  throw new UserError(`not a PEM-encoded private or public key (a ${label} block)`, { file: path });
}

function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  return `${key.asymmetricKeyType}${d.namedCurve ? ` ${d.namedCurve}` : ''}${d.modulusLength ? ` ${d.modulusLength} bits` : ''}`;
}

function warnIfReadableByOthers(path: string): void {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077)
    process.stderr.write(
      `Warning: ${path}: private key is accessible by other users (mode ${mode.toString(8)}); run chmod 600 ${path}\n`,
    );
}

/**
 * Seed shares: the seed encrypted to every seed-share owner key of the manifest with
 * RSA-OAEP-SHA256 and the label `seedshare`, so any one owner can recover the Coordinator.
 */
import { constants, createPrivateKey, privateDecrypt, publicEncrypt, type KeyObject } from 'node:crypto';
import { decodeBase64Strict } from '../util/encoding.js';
import { parseSeedshareOwnerKeyHex } from './owner-keys.js';
import { SALT_SIZE } from './seedengine.js';

const SEEDSHARE_LABEL = Buffer.from('seedshare');

export interface SeedShare {
  /** Hex of the owner's PKCS#1 DER public key, exactly as listed in the manifest. */
  PublicKey: string;
  EncryptedSeed: Buffer;
}

export interface SeedShareDocument {
  SeedShares: SeedShare[];
  salt: Buffer;
}

/** The owner's RSA key, parsed as strictly as the manifest validation does (≥ 2048 bits, canonical PKCS#1). */
function seedshareKeyFromHex(hex: string): KeyObject {
  return parseSeedshareOwnerKeyHex(hex);
}

export function encryptSeedShares(seed: Buffer, salt: Buffer, ownerKeys: readonly string[]): SeedShareDocument {
  return {
    SeedShares: ownerKeys.map((hex) => ({
      PublicKey: hex,
      EncryptedSeed: publicEncrypt(
        {
          key: seedshareKeyFromHex(hex),
          padding: constants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: 'sha256',
          oaepLabel: SEEDSHARE_LABEL,
        },
        seed,
      ),
    })),
    salt,
  };
}

export function decryptSeedShare(share: SeedShare, privateKey: KeyObject | string): Buffer {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  return privateDecrypt(
    { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: SEEDSHARE_LABEL },
    share.EncryptedSeed,
  );
}

/** JSON form of `seed-shares.json` (bytes as base64, like Go's encoding/json). */
export function seedShareDocumentToJson(doc: SeedShareDocument): string {
  return `${JSON.stringify(
    {
      SeedShares: doc.SeedShares.map((s) => ({
        PublicKey: s.PublicKey,
        EncryptedSeed: s.EncryptedSeed.toString('base64'),
      })),
      salt: doc.salt.toString('base64'),
    },
    null,
    2,
  )}\n`;
}

export function seedShareDocumentFromJson(text: string): SeedShareDocument {
  let v: { SeedShares?: { PublicKey?: unknown; EncryptedSeed?: unknown }[]; salt?: unknown };
  try {
    v = JSON.parse(text) as typeof v;
  } catch (err) {
    throw new Error(`not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof v !== 'object' || v === null || !Array.isArray(v.SeedShares) || typeof v.salt !== 'string')
    throw new Error('expected {"SeedShares": [...], "salt": "<base64>"}');
  const salt = strictBase64(v.salt, 'salt');
  if (salt.length !== SALT_SIZE) throw new Error(`salt has ${salt.length} bytes, expected ${SALT_SIZE}`);
  return {
    SeedShares: v.SeedShares.map((s, i) => {
      if (typeof s !== 'object' || s === null || typeof s.PublicKey !== 'string' || typeof s.EncryptedSeed !== 'string')
        throw new Error(`SeedShares[${i}] needs PublicKey and EncryptedSeed strings`);
      const encrypted = strictBase64(s.EncryptedSeed, `SeedShares[${i}].EncryptedSeed`);
      if (encrypted.length === 0) throw new Error(`SeedShares[${i}].EncryptedSeed is empty`);
      return { PublicKey: s.PublicKey, EncryptedSeed: encrypted };
    }),
    salt,
  };
}

function strictBase64(text: string, what: string): Buffer {
  const bytes = decodeBase64Strict(text);
  if (!bytes) throw new Error(`${what} is not canonical base64`);
  return bytes;
}

/** The document has exactly one share for each of `owners` (the manifest's SeedshareOwnerPubKeys), in order. */
export function seedSharesCover(doc: SeedShareDocument, owners: readonly string[]): boolean {
  return doc.SeedShares.length === owners.length && doc.SeedShares.every((s, i) => s.PublicKey === owners[i]);
}

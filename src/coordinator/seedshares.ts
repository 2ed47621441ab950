/**
 * Seed shares: the seed encrypted to every seed-share owner key of the manifest with
 * RSA-OAEP-SHA256 and the label `seedshare`, so any one owner can recover the Coordinator.
 */
import { constants, createPrivateKey, createPublicKey, privateDecrypt, publicEncrypt, type KeyObject } from 'node:crypto';

export const SEEDSHARE_LABEL = Buffer.from('seedshare');

export interface SeedShare {
  /** Hex of the owner's PKCS#1 DER public key, exactly as listed in the manifest. */
  PublicKey: string;
  EncryptedSeed: Buffer;
}

export interface SeedShareDocument {
  SeedShares: SeedShare[];
  salt: Buffer;
}

export function seedshareKeyFromHex(hex: string): KeyObject {
  return createPublicKey({ key: Buffer.from(hex, 'hex'), format: 'der', type: 'pkcs1' });
}

export function encryptSeedShares(seed: Buffer, salt: Buffer, ownerKeys: readonly string[]): SeedShareDocument {
  return {
    SeedShares: ownerKeys.map((hex) => ({
      PublicKey: hex,
      EncryptedSeed: publicEncrypt({ key: seedshareKeyFromHex(hex), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: SEEDSHARE_LABEL }, seed),
    })),
    salt,
  };
}

export function decryptSeedShare(share: SeedShare, privateKey: KeyObject | string): Buffer {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: SEEDSHARE_LABEL }, share.EncryptedSeed);
}

/** JSON form of `seed-shares.json` (bytes as base64, like Go's encoding/json). */
export function seedShareDocumentToJson(doc: SeedShareDocument): string {
  return `${JSON.stringify({
    SeedShares: doc.SeedShares.map((s) => ({ PublicKey: s.PublicKey, EncryptedSeed: s.EncryptedSeed.toString('base64') })),
    salt: doc.salt.toString('base64'),
  }, null, 2)}\n`;
}

export function seedShareDocumentFromJson(text: string): SeedShareDocument {
  const v = JSON.parse(text) as { SeedShares?: { PublicKey?: unknown; EncryptedSeed?: unknown }[]; salt?: unknown };
  if (!Array.isArray(v.SeedShares) || typeof v.salt !== 'string') throw new Error('expected {"SeedShares": [...], "salt": "<base64>"}');
  return {
    SeedShares: v.SeedShares.map((s, i) => {
      if (typeof s.PublicKey !== 'string' || typeof s.EncryptedSeed !== 'string') throw new Error(`SeedShares[${i}] needs PublicKey and EncryptedSeed strings`);
      return { PublicKey: s.PublicKey, EncryptedSeed: Buffer.from(s.EncryptedSeed, 'base64') };
    }),
    salt: Buffer.from(v.salt, 'base64'),
  };
}

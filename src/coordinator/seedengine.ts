/**
 * The seed engine: every long-lived secret of a deployment derives from one 64-byte seed and a
 * 32-byte salt with HKDF-SHA256 and upstream Contrast's info strings. Whoever holds the seed
 * (the running Coordinator, or a seed-share owner after decrypting a share) can re-derive the
 * root CA key, the history signing key and every workload secret.
 */
import { hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { deriveP384Key } from './crypto.js';

const SEED_SIZE = 64;
export const SALT_SIZE = 32;

const INFO_POD_STATE = 'POD STATE SECRET';
const INFO_HISTORY = 'HISTORY SECRET';
const INFO_TRANSACTION_SIGNING = 'TRANSACTION SIGNING SECRET';
const INFO_ROOT_CA = 'ROOT CA SEED';
const INFO_WORKLOAD_PREFIX = 'WORKLOAD SECRET ID: ';

function hkdf(secret: Uint8Array, salt: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, salt, info, secret.length));
}

export class SeedEngine {
  readonly podStateSeed: Buffer;
  readonly historySeed: Buffer;
  readonly transactionSigningKey: KeyObject;
  readonly rootCAKey: KeyObject;

  constructor(
    readonly seed: Buffer,
    readonly salt: Buffer,
  ) {
    if (seed.length !== SEED_SIZE) throw new Error(`the seed must be ${SEED_SIZE} bytes, got ${seed.length}`);
    if (salt.length !== SALT_SIZE) throw new Error(`the salt must be ${SALT_SIZE} bytes, got ${salt.length}`);
    this.podStateSeed = hkdf(seed, salt, INFO_POD_STATE);
    this.historySeed = hkdf(seed, salt, INFO_HISTORY);
    this.transactionSigningKey = deriveP384Key(hkdf(seed, salt, INFO_TRANSACTION_SIGNING));
    this.rootCAKey = deriveP384Key(hkdf(seed, salt, INFO_ROOT_CA));
  }

  static generate(): SeedEngine {
    return new SeedEngine(randomBytes(SEED_SIZE), randomBytes(SALT_SIZE));
  }

  /** 64 bytes, stable for a WorkloadSecretID across manifest updates and recovery. */
  workloadSecret(workloadSecretId: string): Buffer {
    return Buffer.from(
      hkdfSync(
        'sha256',
        this.podStateSeed,
        this.salt,
        `${INFO_WORKLOAD_PREFIX}${workloadSecretId}`,
        this.podStateSeed.length,
      ),
    );
  }
}

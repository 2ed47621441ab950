/**
 * The manifest history, content-addressed in a Store (layout as upstream Contrast):
 *
 *   policies/<sha256 hex of the initdata bytes>   the policy documents
 *   manifests/<sha256 hex of the manifest bytes>  the manifests exactly as set
 *   transitions/<sha256 hex of the 64 bytes>      ManifestHash(32) ‖ PreviousTransitionHash(32)
 *   transitions/latest                            TransitionHash(32) ‖ signature
 *
 * The chain starts at the all-zero hash. `latest` is signed with the seed engine's transaction
 * signing key (ECDSA P-384, SHA-256 over the 32-byte transition hash, ASN.1 DER signature) and
 * replaced only by compare-and-swap, so a crash or a concurrent writer never leaves a broken
 * chain: objects are written first, the pointer last.
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import { sha256 } from './crypto.js';
import type { Store } from './store/interface.js';

export const ZERO_HASH = Buffer.alloc(32);

/** How many store operations a large manifest runs at once (policies are independent objects). */
const STORE_CONCURRENCY = 16;

/** `fn` over `items` with at most `limit` calls pending; results in input order; the first failure rejects. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

export interface Transition {
  manifestHash: Buffer;
  previousTransitionHash: Buffer;
}

export interface LatestTransition {
  transitionHash: Buffer;
  signature: Buffer;
  /** The stored bytes, for compare-and-swap. */
  raw: Buffer;
}

export interface HistoryEntry {
  transitionHash: Buffer;
  manifestHash: Buffer;
  manifest: Buffer;
}

export class HistoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HistoryError';
  }
}

function transitionBytes(t: Transition): Buffer {
  return Buffer.concat([t.manifestHash, t.previousTransitionHash]);
}

export function transitionHash(t: Transition): Buffer {
  return sha256(transitionBytes(t));
}

function signTransitionHash(hash: Buffer, key: KeyObject): Buffer {
  return sign('sha256', hash, key);
}

export function verifyTransitionSignature(hash: Buffer, signature: Buffer, key: KeyObject): boolean {
  try {
    return verify('sha256', hash, key, signature);
  } catch {
    return false;
  }
}

export class History {
  constructor(readonly store: Store) {}

  private async putContent(prefix: string, bytes: Uint8Array): Promise<Buffer> {
    const hash = sha256(bytes);
    const key = `${prefix}/${hash.toString('hex')}`;
    const existing = await this.store.get(key);
    if (!existing || !existing.equals(bytes)) await this.store.set(key, bytes);
    return hash;
  }

  private async getContent(prefix: string, hash: Buffer | string): Promise<Buffer | undefined> {
    const hex = typeof hash === 'string' ? hash : hash.toString('hex');
    const bytes = await this.store.get(`${prefix}/${hex}`);
    if (bytes && sha256(bytes).toString('hex') !== hex)
      throw new HistoryError(`${prefix}/${hex} does not match its hash: the store was modified`);
    return bytes;
  }

  setPolicy(bytes: Uint8Array): Promise<Buffer> {
    return this.putContent('policies', bytes);
  }
  getPolicy(hash: Buffer | string): Promise<Buffer | undefined> {
    return this.getContent('policies', hash);
  }
  setManifest(bytes: Uint8Array): Promise<Buffer> {
    return this.putContent('manifests', bytes);
  }
  getManifest(hash: Buffer | string): Promise<Buffer | undefined> {
    return this.getContent('manifests', hash);
  }
  setTransition(t: Transition): Promise<Buffer> {
    return this.putContent('transitions', transitionBytes(t));
  }

  async getTransition(hash: Buffer): Promise<Transition | undefined> {
    const bytes = await this.getContent('transitions', hash);
    if (!bytes) return undefined;
    if (bytes.length !== 64)
      throw new HistoryError(`transition ${hash.toString('hex')} has ${bytes.length} bytes, expected 64`);
    return { manifestHash: bytes.subarray(0, 32), previousTransitionHash: bytes.subarray(32) };
  }

  /** The latest pointer; with a key, its signature must verify (else HistoryError). */
  async getLatest(verifyKey?: KeyObject): Promise<LatestTransition | undefined> {
    const raw = await this.store.get('transitions/latest');
    if (!raw) return undefined;
    if (raw.length < 33) throw new HistoryError('transitions/latest is truncated');
    const latest = { transitionHash: raw.subarray(0, 32), signature: raw.subarray(32), raw };
    if (verifyKey && !verifyTransitionSignature(latest.transitionHash, latest.signature, verifyKey)) {
      throw new HistoryError('the signature on transitions/latest does not verify with the transaction signing key');
    }
    return latest;
  }

  /** Point `latest` at `hash` if it still is `previous`. Returns false on a lost race. */
  async setLatest(previous: LatestTransition | undefined, hash: Buffer, key: KeyObject): Promise<boolean> {
    return (await this.advanceLatest(previous, hash, key)) !== undefined;
  }

  /** As setLatest, returning the new pointer (undefined on a lost race). */
  async advanceLatest(
    previous: LatestTransition | undefined,
    hash: Buffer,
    key: KeyObject,
  ): Promise<LatestTransition | undefined> {
    const signature = signTransitionHash(hash, key);
    const raw = Buffer.concat([hash, signature]);
    if (!(await this.store.compareAndSwap('transitions/latest', previous?.raw, raw))) return undefined;
    return { transitionHash: Buffer.from(hash), signature, raw };
  }

  /** Store many policies, at most `concurrency` writes at a time; returns their hashes in order. */
  setPolicies(policies: readonly Uint8Array[], concurrency = STORE_CONCURRENCY): Promise<Buffer[]> {
    return mapLimit(policies, concurrency, (p) => this.setPolicy(p));
  }

  /** Read many policies (verified against their hashes), at most `concurrency` at a time. */
  getPolicies(hashes: readonly string[], concurrency = STORE_CONCURRENCY): Promise<(Buffer | undefined)[]> {
    return mapLimit(hashes, concurrency, (h) => this.getPolicy(h));
  }

  /** Every manifest from the first to `latest`, oldest first. */
  async walk(latest: LatestTransition | undefined): Promise<HistoryEntry[]> {
    const entries: HistoryEntry[] = [];
    let hash = latest?.transitionHash;
    const seen = new Set<string>();
    while (hash && !hash.equals(ZERO_HASH)) {
      const hex = hash.toString('hex');
      if (seen.has(hex)) throw new HistoryError(`the transition chain has a cycle at ${hex}`);
      seen.add(hex);
      const t = await this.getTransition(hash);
      if (!t) throw new HistoryError(`transition ${hex} is missing from the store`);
      const manifest = await this.getManifest(t.manifestHash);
      if (!manifest) throw new HistoryError(`manifest ${t.manifestHash.toString('hex')} is missing from the store`);
      entries.push({ transitionHash: hash, manifestHash: t.manifestHash, manifest });
      hash = t.previousTransitionHash;
    }
    return entries.reverse();
  }
}

/** Rebuild the chain from manifests (oldest first) and return the final transition hash. */
export function chainHash(manifests: readonly Uint8Array[]): Buffer {
  let prev: Buffer = ZERO_HASH;
  for (const m of manifests) prev = transitionHash({ manifestHash: sha256(m), previousTransitionHash: prev });
  return prev;
}

/**
 * The Coordinator's persistent key-value store. Keys are slash-separated paths
 * (`manifests/<hash>`, `transitions/latest`, …). Contents are not secret (the history is
 * integrity-protected by the signed `transitions/latest`), but every write must be atomic:
 * a reader or a crash sees the old or the new value, never a mix.
 */
export interface Store {
  /** undefined when the key does not exist. */
  get(key: string): Promise<Buffer | undefined>;
  /** Create or replace. */
  set(key: string, value: Uint8Array): Promise<void>;
  /**
   * Replace the value only if it currently equals `expected` (undefined = must not exist).
   * Returns false, changing nothing, when the current value differs.
   */
  compareAndSwap(key: string, expected: Uint8Array | undefined, value: Uint8Array): Promise<boolean>;
}

export function checkKey(key: string): void {
  if (!/^[a-z0-9]+(\/[a-zA-Z0-9._-]+)*$/.test(key) || key.split('/').some((p) => p === '..' || p === '.')) {
    throw new Error(`invalid store key ${JSON.stringify(key)}`);
  }
}

import { BoundedCache } from './bounded-cache.js';
import type { CollateralFetcher, Fetched } from './collateral-fetcher.js';
import { CollateralUnavailableError } from './errors.js';

/**
 * Collateral with a nextUpdate (CRLs, Intel's TCB info and QE identity), kept between
 * verifications and replaced before it expires — one rule for the AMD KDS and Intel PCS
 * clients: a kept item is served until its nextUpdate is `refreshBeforeMs` away; from then on
 * a refresh is tried, at most every `minRefreshIntervalMs` while the kept one is still current
 * (which is served when the refresh fails); a missing or expired item is fetched, and a
 * failure then reaches the caller. An answer is kept (memory, then the cache directory) only
 * after its check.
 */

export const REFRESH_DEFAULTS = {
  refreshBeforeMs: 24 * 3600_000,
  minRefreshIntervalMs: 3600_000,
} as const;

export interface RefreshOptions {
  /** A kept item is refreshed once its nextUpdate is this close (or past). Unset: 24 h. */
  readonly refreshBeforeMs?: number;
  /** While a kept item is still current, a refresh of it is tried at most this often. Unset: 1 h. */
  readonly minRefreshIntervalMs?: number;
}

/** One item: where it comes from, how it is checked, read from and written to the cache. */
export interface KeptItem<T> {
  /** The fetcher's request key; also the key the item is kept under. */
  readonly key: string;
  readonly url: string;
  readonly lane: string;
  /** What it is, for messages ("CRL", "QE identity"). */
  readonly item: string;
  readonly maxBytes: number;
  /** What the cache directory holds, if anything. */
  readonly stored: () => T | undefined;
  readonly nextUpdate: (v: T) => Date | undefined;
  /** The answer as kept; throws (AttestationError) when it is unusable. */
  readonly accept: (got: Fetched) => T;
  /** Writes it to the cache directory; false when that failed (it is then kept in memory only). */
  readonly store: (v: T) => boolean;
}

interface Kept<T> {
  readonly value: T;
  readonly nextUpdate?: Date;
}

/** How many items are kept in memory; keys are a few per product, FMSPC or CA. */
const KEPT_ENTRIES = 256;

export class KeptCollateral {
  private readonly memory = new BoundedCache<string, Kept<unknown>>(KEPT_ENTRIES);
  private readonly lastTry = new BoundedCache<string, number>(KEPT_ENTRIES);
  private readonly refreshBeforeMs: number;
  private readonly minRefreshIntervalMs: number;

  constructor(
    private readonly fetcher: CollateralFetcher,
    opts: RefreshOptions = {},
  ) {
    this.refreshBeforeMs = opts.refreshBeforeMs ?? REFRESH_DEFAULTS.refreshBeforeMs;
    this.minRefreshIntervalMs = opts.minRefreshIntervalMs ?? REFRESH_DEFAULTS.minRefreshIntervalMs;
  }

  /** The kept copy (memory, else the cache directory), current or not, without the network. */
  peek<T>(spec: KeptItem<T>): T | undefined {
    const kept = this.memory.get(spec.key) as Kept<T> | undefined;
    if (kept) return kept.value;
    const stored = spec.stored();
    if (stored === undefined) return undefined;
    this.keep(spec, stored);
    return stored;
  }

  /** The item to use at `now` (verification time), refreshed by the rule above; undefined when the service has none. */
  async get<T>(spec: KeptItem<T>, now: Date): Promise<T | undefined> {
    if (!this.memory.get(spec.key)) this.peek(spec);
    const kept = this.memory.get(spec.key) as Kept<T> | undefined;
    const left = kept?.nextUpdate ? kept.nextUpdate.getTime() - now.getTime() : -Infinity;
    if (kept && left > this.refreshBeforeMs) return kept.value;
    const current = kept !== undefined && left >= 0;
    const tried = this.lastTry.get(spec.key);
    const clock = this.fetcher.clock.now();
    if (current && tried !== undefined && clock - tried < this.minRefreshIntervalMs) return kept!.value;
    this.lastTry.set(spec.key, clock);
    let value: T | undefined;
    try {
      const got = await this.fetcher.get({
        key: spec.key,
        url: spec.url,
        lane: spec.lane,
        item: spec.item,
        maxBytes: spec.maxBytes,
        check: (body, headers) => {
          value = spec.accept({ body, headers });
          return undefined;
        },
      });
      // 404: what we have (the verifier judges its dates), or nothing. A request shared with
      // another caller checked the body in that caller's closure: check it here too.
      if (!got) return kept?.value;
      value ??= spec.accept(got);
    } catch (err) {
      // A refresh that fails while the kept copy is still current is no reason to stop.
      if (current && err instanceof CollateralUnavailableError) return kept!.value;
      throw err;
    }
    this.keep(spec, value);
    // A cache directory that cannot be written (read-only file system) costs a fetch after a
    // restart, not an admission.
    spec.store(value);
    return value;
  }

  private keep<T>(spec: KeptItem<T>, value: T): void {
    const next = spec.nextUpdate(value);
    this.memory.set(spec.key, { value, ...(next ? { nextUpdate: next } : {}) });
  }
}

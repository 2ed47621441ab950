import { setTimeout as sleepFor } from 'node:timers/promises';
import { BoundedCache } from './bounded-cache.js';
import { AttestationError, CollateralUnavailableError } from './errors.js';

/**
 * The HTTP side of collateral services (AMD KDS, Intel PCS), built to be driven by evidence
 * from peers that are not authenticated yet: named lanes that each serve one request at a
 * time, spaced; a bound on distinct waiting requests per lane; identical requests sharing one
 * fetch; a negative cache for "not found" and refusals; a backoff after failures; a timeout per
 * request and a cap on body size. What a body must be is the caller's (`check`); nothing
 * returned here is trusted beyond that.
 */

/** Time for the fetcher: spacing, timeouts and the negative cache. Injected by tests. */
export interface CollateralClock {
  /** Milliseconds; only differences matter. */
  now(): number;
  /** Resolves after `ms` milliseconds; rejects once `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const SYSTEM_CLOCK: CollateralClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleepFor(ms, undefined, signal ? { signal } : {}),
};

/** The check ids a service reports its failures under (literal per service, so tests can name them). */
export interface FetcherChecks {
  /** Unreachable, timed out, 408/429/5xx (CollateralUnavailableError); another 4xx (AttestationError). */
  readonly failed: string;
  /** The lane's queue is full. */
  readonly busy: string;
  /** The same request failed recently and is not sent again yet. */
  readonly backoff: string;
  /** The body exceeds its cap. */
  readonly size: string;
  /** The body is not what was asked for. */
  readonly invalid: string;
}

export interface FetcherOptions {
  /** The service's name in messages ("AMD KDS", "Intel PCS"). */
  readonly service: string;
  readonly checks: FetcherChecks;
  readonly minIntervalMs: number;
  readonly timeoutMs: number;
  readonly maxQueued: number;
  readonly notFoundTtlMs: number;
  readonly failureBackoffMs: number;
  readonly fetch?: typeof fetch;
  readonly clock?: CollateralClock;
}

/** The numbers a service sets defaults for and a caller may override. */
type FetcherTuning = Pick<
  FetcherOptions,
  'minIntervalMs' | 'timeoutMs' | 'maxQueued' | 'notFoundTtlMs' | 'failureBackoffMs'
>;

/** A service's fetcher options: what the caller set, the service's defaults for the rest. */
export function fetcherOptions(
  service: string,
  checks: FetcherChecks,
  given: Partial<FetcherTuning> & Pick<FetcherOptions, 'fetch' | 'clock'>,
  defaults: FetcherTuning,
): FetcherOptions {
  return {
    service,
    checks,
    minIntervalMs: given.minIntervalMs ?? defaults.minIntervalMs,
    timeoutMs: given.timeoutMs ?? defaults.timeoutMs,
    maxQueued: given.maxQueued ?? defaults.maxQueued,
    notFoundTtlMs: given.notFoundTtlMs ?? defaults.notFoundTtlMs,
    failureBackoffMs: given.failureBackoffMs ?? defaults.failureBackoffMs,
    ...(given.fetch ? { fetch: given.fetch } : {}),
    ...(given.clock ? { clock: given.clock } : {}),
  };
}

export interface FetchRequest {
  /** Identifies the request for deduplication, the negative cache and messages (a path or URL). */
  readonly key: string;
  readonly url: string;
  /** Requests of one lane wait behind each other; lanes are independent. */
  readonly lane: string;
  /** What is asked for, for messages ("VCEK", "TCB info"). */
  readonly item: string;
  readonly maxBytes: number;
  /** A problem with the body (it is then not returned), or undefined when it is usable. */
  readonly check: (body: Buffer, headers: Headers) => string | undefined;
}

export interface Fetched {
  readonly body: Buffer;
  readonly headers: Headers;
}

/** How many request keys the negative cache remembers (oldest forgotten first). */
const NEGATIVE_CACHE_ENTRIES = 4096;

interface Job {
  readonly req: FetchRequest;
  readonly resolve: (v: Fetched | undefined) => void;
  readonly reject: (err: unknown) => void;
}

class Lane {
  readonly waiting: Job[] = [];
  running = false;
  lastStart = -Infinity;
}

/** A remembered answer: "not found", a refusal (4xx) or a failure (backoff). */
interface Remembered {
  readonly until: number;
  readonly error?: AttestationError;
}

export class CollateralFetcher {
  private readonly inflight = new Map<string, Promise<Fetched | undefined>>();
  private readonly lanes = new Map<string, Lane>();
  private readonly remembered = new BoundedCache<string, Remembered>(NEGATIVE_CACHE_ENTRIES);
  readonly clock: CollateralClock;

  constructor(private readonly cfg: FetcherOptions) {
    this.clock = cfg.clock ?? SYSTEM_CLOCK;
  }

  /** The body (undefined for a 404), or a rejection with the service's check ids. */
  get(req: FetchRequest): Promise<Fetched | undefined> {
    const { service, checks } = this.cfg;
    const now = this.clock.now();
    const known = this.remembered.get(req.key);
    if (known && now < known.until) {
      if (!known.error) return Promise.resolve(undefined);
      if (!(known.error instanceof CollateralUnavailableError)) return Promise.reject(known.error);
      return Promise.reject(
        new CollateralUnavailableError(
          checks.backoff,
          `not asking ${service} for the ${req.item} ${req.key} again for ${known.until - now} ms: the last attempt failed (${known.error.detail})`,
          { cause: known.error, retryAfterMs: known.until - now },
        ),
      );
    }
    const shared = this.inflight.get(req.key);
    if (shared) return shared;
    let lane = this.lanes.get(req.lane);
    if (!lane) this.lanes.set(req.lane, (lane = new Lane()));
    if (lane.waiting.length >= this.cfg.maxQueued) {
      return Promise.reject(
        new CollateralUnavailableError(
          checks.busy,
          `${lane.waiting.length} distinct ${service} requests are already waiting; not queueing the ${req.item} ${req.key}`,
          { retryAfterMs: (lane.waiting.length + 1) * this.cfg.minIntervalMs },
        ),
      );
    }
    const p = new Promise<Fetched | undefined>((resolve, reject) => lane.waiting.push({ req, resolve, reject }));
    this.inflight.set(req.key, p);
    const done = () => {
      this.inflight.delete(req.key);
    };
    p.then(done, done);
    void this.pump(lane);
    return p;
  }

  private async pump(lane: Lane): Promise<void> {
    if (lane.running) return;
    lane.running = true;
    try {
      for (let job = lane.waiting.shift(); job; job = lane.waiting.shift()) {
        try {
          const wait = lane.lastStart + this.cfg.minIntervalMs - this.clock.now();
          if (wait > 0) await this.clock.sleep(wait);
          lane.lastStart = this.clock.now();
          job.resolve(await this.request(job.req));
        } catch (err) {
          job.reject(err);
        }
      }
    } finally {
      lane.running = false;
    }
  }

  private async request(req: FetchRequest): Promise<Fetched | undefined> {
    const { service, checks } = this.cfg;
    const what = `the ${req.item} ${req.url}`;
    const abort = new AbortController();
    const timer = new AbortController();
    let timedOut = false;
    this.clock.sleep(this.cfg.timeoutMs, timer.signal).then(
      () => {
        timedOut = true;
        abort.abort();
      },
      () => undefined,
    );
    const unreachable = (err: unknown) =>
      new CollateralUnavailableError(
        checks.failed,
        timedOut
          ? `${service} did not deliver ${what} within ${this.cfg.timeoutMs} ms`
          : `cannot fetch ${what} from ${service} (${(err as Error).message})`,
        { cause: err },
      );
    try {
      let res: Response;
      try {
        res = await (this.cfg.fetch ?? fetch)(req.url, { signal: abort.signal });
      } catch (err) {
        throw unreachable(err);
      }
      if (!res.ok) {
        await res.body?.cancel().catch(() => undefined);
        if (res.status === 404) {
          this.remember(req.key, this.cfg.notFoundTtlMs);
          return undefined;
        }
        const retryAfter = Number(res.headers.get('retry-after') ?? NaN) * 1000;
        if (res.status === 408 || res.status === 429 || res.status >= 500) {
          throw new CollateralUnavailableError(
            checks.failed,
            `${service} answered ${res.status} for ${what}`,
            Number.isFinite(retryAfter) ? { retryAfterMs: retryAfter } : undefined,
          );
        }
        const refused = new AttestationError(checks.failed, `${service} refused ${what}`, '200', String(res.status));
        this.remember(req.key, this.cfg.notFoundTtlMs, refused);
        throw refused;
      }
      let body: Buffer;
      try {
        body = await readBounded(
          res,
          req.maxBytes,
          `${service} %s for ${what}; at most ${req.maxBytes} bytes are accepted`,
          checks.size,
        );
      } catch (err) {
        throw err instanceof AttestationError ? err : unreachable(err);
      }
      let problem: string | undefined;
      try {
        problem = req.check(body, res.headers);
      } catch (err) {
        if (!(err instanceof AttestationError)) throw err;
        problem = err.detail;
      }
      if (problem !== undefined)
        throw new CollateralUnavailableError(
          checks.invalid,
          `${service} sent something unusable for ${what}: ${problem}`,
        );
      return { body, headers: res.headers };
    } catch (err) {
      if (err instanceof CollateralUnavailableError) {
        this.remember(req.key, Math.max(this.cfg.failureBackoffMs, err.retryAfterMs ?? 0), err);
      }
      throw err;
    } finally {
      timer.abort();
    }
  }

  private remember(key: string, forMs: number, error?: AttestationError): void {
    this.remembered.set(key, { until: this.clock.now() + forMs, ...(error ? { error } : {}) });
  }
}

/** The body, refusing it as soon as it is known to exceed `max` bytes (`message` has a %s for how). */
async function readBounded(res: Response, max: number, message: string, check: string): Promise<Buffer> {
  const tooLarge = (how: string) => new CollateralUnavailableError(check, message.replace('%s', how));
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge(`announced ${declared} bytes`);
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(`sent more than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

/**
 * A counting semaphore: at most `limit` tasks run at once, in arrival order. A task may hand
 * its slot on before it ends (`handOff`, for the tail of its work): the next one starts while
 * it finishes. At most `limit` tasks run on without a slot, so no more than twice `limit` run.
 */
export class Limiter {
  private running = 0;
  private handedOff = 0;
  private readonly queue: (() => void)[] = [];
  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`concurrency must be a positive integer, got ${limit}`);
  }

  async run<T>(task: (handOff: () => void) => Promise<T>): Promise<T> {
    // A finishing task hands its slot straight to the next waiter, so the count never overshoots.
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.running++;
    let holdsSlot = true;
    const handOff = (): void => {
      if (!holdsSlot || this.handedOff >= this.limit) return;
      holdsSlot = false;
      this.handedOff++;
      this.release();
    };
    try {
      return await task(handOff);
    } finally {
      if (holdsSlot) this.release();
      else this.handedOff--;
    }
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.running--;
  }
}

/** Remembers one promise per key, so concurrent and later callers share one computation. */
export class OncePerKey<T> {
  private readonly map = new Map<string, Promise<T>>();
  /** `forgetFailures`: a failed computation is dropped so that a later caller tries again. */
  constructor(private readonly forgetFailures = false) {}
  get(key: string, compute: () => Promise<T>): Promise<T> {
    let p = this.map.get(key);
    if (!p) {
      p = compute();
      this.map.set(key, p);
      if (this.forgetFailures)
        p.catch(() => {
          if (this.map.get(key) === p) this.map.delete(key);
        });
    }
    return p;
  }
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Test doubles for the AMD KDS client: a clock whose time only moves when a test says so, and
 * an in-process KDS (an injected fetch) that records every request with the fake time.
 */
import { X509Certificate, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { KdsClock } from '../../src/attestation/snp/kds.js';
import { subjectDer } from '../../src/attestation/x509.js';
import { forgeCrl } from './der-builder.js';
import { pemBlocks } from './vectors.js';

/** Lets promise callbacks and stream reads run; no time passes on the fake clock. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

interface Timer {
  readonly at: number;
  readonly resolve: () => void;
}

/** Time starts at 0 and moves only through advance() and run(); sleeps are recorded. */
export class FakeClock implements KdsClock {
  private t = 0;
  private timers: Timer[] = [];
  readonly sleeps: number[] = [];

  now = (): number => this.t;

  sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      this.sleeps.push(ms);
      const timer: Timer = { at: this.t + ms, resolve };
      this.timers.push(timer);
      signal?.addEventListener(
        'abort',
        () => {
          this.timers = this.timers.filter((x) => x !== timer);
          reject(new Error('sleep aborted'));
        },
        { once: true },
      );
    });

  /** Moves time forward by `ms`, firing every timer that becomes due, then settles. */
  async advance(ms: number): Promise<void> {
    await settle();
    this.t += ms;
    const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const x of due) x.resolve();
    await settle();
  }

  /**
   * Awaits `p`, moving time to the next timer whenever nothing else can happen, as real time
   * would (spacing waits pass at once). Fails if `p` can only settle through a test's action.
   */
  async drive<T>(p: Promise<T>): Promise<T> {
    let done = false;
    const watched = p.finally(() => {
      done = true;
    });
    watched.catch(() => undefined);
    for (let i = 0; i < 1000 && !done; i++) {
      await settle();
      if (done) break;
      const next = Math.min(...this.timers.map((x) => x.at));
      if (!Number.isFinite(next)) throw new Error('nothing can settle the promise: no timer is pending');
      await this.advance(next - this.t);
    }
    return watched;
  }

  /** Jumps from timer to timer (at most `maxJumpMs` each) until none is pending. */
  async run(maxJumpMs = Infinity): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      await settle();
      const next = Math.min(...this.timers.map((x) => x.at));
      if (!Number.isFinite(next) || next - this.t > maxJumpMs) return;
      await this.advance(next - this.t);
    }
    throw new Error('the fake clock kept finding timers');
  }
}

export interface KdsCall {
  readonly url: string;
  readonly path: string;
  readonly at: number;
  readonly signal?: AbortSignal;
}

export type KdsHandler = (path: string, signal: AbortSignal | undefined) => Response | Promise<Response>;

/** An in-process KDS: every request is recorded (with the fake time) and answered by `handler`. */
export function fakeKds(handler: KdsHandler, clock?: FakeClock) {
  const calls: KdsCall[] = [];
  const fetch = (async (input: string | URL, init?: RequestInit) => {
    const url = String(input);
    const path = url.replace(/^https:\/\/kds\.test/, '');
    const signal = init?.signal ?? undefined;
    calls.push({ url, path, at: clock?.now() ?? 0, ...(signal ? { signal } : {}) });
    return handler(path, signal);
  }) as unknown as typeof globalThis.fetch;
  return { fetch, calls, count: (re: RegExp) => calls.filter((c) => re.test(c.path)).length };
}

/** Requests whose answers the test releases later; a request also ends when its signal aborts. */
export class Held {
  private readonly waiting: { resolve: (r: Response) => void }[] = [];

  handle(signal: AbortSignal | undefined): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      this.waiting.push({ resolve });
      signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')), { once: true });
    });
  }

  get size(): number {
    return this.waiting.length;
  }

  release(answer: () => Response): void {
    for (const w of this.waiting.splice(0)) w.resolve(answer());
  }
}

export const notFound = () => new Response('not found', { status: 404 });

/** A copy of `report` claiming another (random) chip id; its signature no longer verifies. */
export function withRandomChipId(report: Buffer): Buffer {
  const out = Buffer.from(report);
  randomBytes(64).copy(out, 0x1a0);
  return out;
}

const genuineMilanArk = () => new X509Certificate(pemBlocks('amd/go-sev-guest/ask_ark_milan.pem')[1]!);
let forgeKey: ReturnType<typeof generateKeyPairSync> | undefined;

/** A CRL naming AMD's Milan ARK as issuer but signed by our own key (AMD's real CRLs are not in the vectors). */
export function forgedMilanCrl(thisUpdate: Date, nextUpdate: Date, revoked: bigint[] = []): Buffer {
  forgeKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 });
  return forgeCrl({
    issuer: subjectDer(genuineMilanArk()),
    signingKey: forgeKey.privateKey,
    alg: 'rsa-pss-sha384',
    thisUpdate,
    nextUpdate,
    revoked,
  });
}

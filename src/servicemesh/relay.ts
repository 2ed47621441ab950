/**
 * Copies bytes both ways between two connected sockets until both directions are done, with
 * the limits every proxied connection gets:
 *
 *  - backpressure: a side that does not read stops the other side from being read (`pipe`),
 *    so a connection holds at most the sockets' buffers (highWaterMark, 16 KiB each way, plus
 *    one TLS record), whatever the peers send;
 *  - idle: no byte in either direction for `idleTimeoutMs` closes both sockets;
 *  - half-close: once one side has finished sending, the other has `halfCloseTimeoutMs` to
 *    finish too; a side that neither sends nor closes cannot keep the connection forever;
 *  - an error or reset on either side destroys both.
 *
 * Both sockets must be made with allowHalfOpen, so a FIN travels through as a FIN.
 */
import type { Socket } from 'node:net';

export interface RelayLimits {
  idleTimeoutMs: number;
  halfCloseTimeoutMs: number;
}

export type CloseReason = 'done' | 'idle' | 'half-close-timeout' | 'error' | 'closed-by-proxy';

export interface RelayResult {
  reason: CloseReason;
  /** Bytes from `a` to `b` and from `b` to `a`. */
  aToB: number;
  bToA: number;
  error?: string;
}

export interface Relay {
  /** Destroy both sockets now (reload with a new mesh CA, shutdown). */
  close(reason?: CloseReason): void;
  readonly done: Promise<RelayResult>;
}

export function relay(a: Socket, b: Socket, limits: RelayLimits): Relay {
  let aToB = 0;
  let bToA = 0;
  let reason: CloseReason | undefined;
  let error: string | undefined;
  let halfCloseTimer: NodeJS.Timeout | undefined;
  let resolveDone!: (r: RelayResult) => void;
  const done = new Promise<RelayResult>((resolve) => {
    resolveDone = resolve;
  });

  const destroyBoth = (why: CloseReason, err?: Error): void => {
    reason ??= why;
    if (err && error === undefined) error = err.message;
    a.destroy();
    b.destroy();
  };

  a.on('data', (chunk: Buffer) => {
    aToB += chunk.length;
  });
  b.on('data', (chunk: Buffer) => {
    bToA += chunk.length;
  });
  a.pipe(b);
  b.pipe(a);

  for (const s of [a, b]) {
    s.setTimeout(limits.idleTimeoutMs, () => destroyBoth('idle'));
    s.on('error', (err) => destroyBoth('error', err));
    s.on('end', () => {
      // `pipe` ends the other side (our FIN); from now on the other direction is on a clock.
      if (halfCloseTimer === undefined) {
        halfCloseTimer = setTimeout(() => destroyBoth('half-close-timeout'), limits.halfCloseTimeoutMs);
        halfCloseTimer.unref();
      }
    });
  }

  let closed = 0;
  const onClose = (self: Socket, other: Socket) => (): void => {
    // A side that went away without a proper end leaves nothing to wait for on the other.
    if (!other.destroyed && !(self.readableEnded && self.writableFinished)) other.destroy();
    if (++closed < 2) return;
    clearTimeout(halfCloseTimer);
    resolveDone({ reason: reason ?? 'done', aToB, bToA, ...(error !== undefined ? { error } : {}) });
  };
  a.once('close', onClose(a, b));
  b.once('close', onClose(b, a));

  return { close: (why = 'closed-by-proxy') => destroyBoth(why), done };
}

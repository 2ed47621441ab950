import { UserError } from '../util/errors.js';

/**
 * A failed attestation check. `check` names the step (stable, machine-readable, e.g.
 * `snp.report.signature`), `expected`/`actual` are the values compared, already rendered for
 * humans (hex for bytes). The message carries all three so a pasted log line is enough to
 * reproduce the decision.
 */
export class AttestationError extends UserError {
  constructor(
    readonly check: string,
    readonly detail: string,
    readonly expected?: string,
    readonly actual?: string,
    options?: { cause?: unknown },
  ) {
    super(formatMessage(check, detail, expected, actual), {}, options);
    this.name = 'AttestationError';
  }
}

function formatMessage(check: string, detail: string, expected?: string, actual?: string): string {
  let msg = `attestation check ${check} failed: ${detail}`;
  if (expected !== undefined) msg += `; expected ${expected}`;
  if (actual !== undefined) msg += `; actual ${actual}`;
  return msg;
}

/** Throws an AttestationError unless `cond` holds. */
export function ensure(cond: boolean, check: string, detail: string, expected?: string, actual?: string): asserts cond {
  if (!cond) throw new AttestationError(check, detail, expected, actual);
}

/**
 * Verification could not be completed because collateral (a certificate or CRL from AMD KDS)
 * cannot be obtained right now: KDS is unreachable, slow, throttling us, answered with
 * something unusable, or our own request queue is full. The evidence was not judged; the same
 * evidence may verify later, so callers should answer "retry later" (gRPC UNAVAILABLE), not
 * "denied". Like go-sev-guest's CRLUnavailableErr, it exists so callers can tell network
 * trouble from a verdict. `retryAfterMs` is a hint, when we know when asking again can help.
 */
export class CollateralUnavailableError extends AttestationError {
  readonly retryAfterMs?: number;

  constructor(check: string, detail: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(check, detail, undefined, undefined, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'CollateralUnavailableError';
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = Math.max(0, Math.ceil(options.retryAfterMs));
  }
}

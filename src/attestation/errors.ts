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

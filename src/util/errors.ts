/**
 * Errors that reach the user, in three kinds (after Shopify cli-kit's AbortError / BugError):
 *
 *  - UserError: the input or the environment is wrong (exit 1). It names where (file,
 *    document, resource, field) and may say what to try and what to run next. These parts are
 *    fields; the message is made from them once, so nothing has to be cut out of it again.
 *  - UsageError: wrong flags or arguments (exit 2).
 *  - BugError: a broken invariant of kubectl-contrast itself; its message says so and asks
 *    for a report.
 */

/** Where in the input a problem was found. Every part is optional. */
export interface InputLocation {
  file?: string;
  /** 1-based index of the document inside a multi-document stream. */
  document?: number;
  kind?: string;
  name?: string;
  namespace?: string;
  /** Dotted path inside the resource, e.g. `spec.template.spec.runtimeClassName`. */
  field?: string;
}

export function describeLocation(loc: InputLocation): string {
  const parts: string[] = [];
  if (loc.file !== undefined) parts.push(loc.file);
  if (loc.document !== undefined) parts.push(`document ${loc.document}`);
  if (loc.kind !== undefined || loc.name !== undefined) {
    const ns = loc.namespace ? `${loc.namespace}/` : '';
    parts.push(`${loc.kind ?? '<no kind>'} ${ns}${loc.name ?? '<no name>'}`);
  }
  if (loc.field !== undefined) parts.push(`field ${loc.field}`);
  return parts.join(', ');
}

export interface UserErrorOptions {
  cause?: unknown;
  /** What is probably wrong or what to try, e.g. "check --kubeconfig". */
  hint?: string;
  /** The command or action that moves the user on, e.g. "run `kubectl contrast generate` again". */
  nextStep?: string;
}

/** "<where>: <reason>; <hint>; <next step>", leaving out what is not there. */
function formatUserError(reason: string, location: InputLocation, options: UserErrorOptions = {}): string {
  const where = describeLocation(location);
  return [where ? `${where}: ${reason}` : reason, options.hint, options.nextStep]
    .filter((p) => p !== undefined && p !== '')
    .join('; ');
}

/** A failure caused by the input or the environment: exit code 1. */
export class UserError extends Error {
  readonly exitCode: number = 1;
  /** The problem itself, without location, hint or next step. */
  readonly reason: string;
  readonly hint?: string;
  readonly nextStep?: string;

  constructor(
    reason: string,
    readonly location: InputLocation = {},
    options: UserErrorOptions = {},
  ) {
    super(
      formatUserError(reason, location, options),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'UserError';
    this.reason = reason;
    if (options.hint !== undefined) this.hint = options.hint;
    if (options.nextStep !== undefined) this.nextStep = options.nextStep;
  }

  /** The same error with more context filled in where it is still missing. */
  withLocation(outer: InputLocation): UserError {
    return new UserError(this.reason, { ...outer, ...this.location }, this.options());
  }

  private options(): UserErrorOptions {
    const out: UserErrorOptions = {};
    if (this.cause !== undefined) out.cause = this.cause;
    if (this.hint !== undefined) out.hint = this.hint;
    if (this.nextStep !== undefined) out.nextStep = this.nextStep;
    return out;
  }
}

/** Add `outer` to a UserError that does not name its place yet; other errors pass unchanged. */
export function locate(err: unknown, outer: InputLocation): unknown {
  return err instanceof UserError ? err.withLocation(outer) : err;
}

/**
 * Report every problem found, not just the first: one as it is, several as one UserError that
 * lists each with its own location (`what` names them: "problems", "workloads need changes").
 */
export function throwAll(problems: readonly UserError[], what = 'problems'): void {
  if (problems.length === 1) throw problems[0]!;
  if (problems.length > 1)
    throw new UserError(
      `${problems.length} ${what}:\n${problems.map((p) => `  - ${p.message.replace(/\n/g, '\n    ')}`).join('\n')}`,
    );
}

/** Wrong flags or arguments: exit code 2. */
export class UsageError extends Error {
  readonly exitCode: number = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A broken invariant: kubectl-contrast itself is wrong, not the input. Exit code 1. */
export class BugError extends Error {
  readonly exitCode: number = 1;
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${reason} (this is a bug in kubectl-contrast: please report it with the command line and, if you can, the input)`,
      options,
    );
    this.name = 'BugError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Errors that reach the user. Every message names where the problem is (file, document,
 * resource, field) so it can be pasted into a bug report and acted on.
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

/** A failure caused by the input or the environment: exit code 1. */
export class UserError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, readonly location: InputLocation = {}, options?: { cause?: unknown }) {
    const where = describeLocation(location);
    super(where ? `${where}: ${message}` : message, options);
    this.name = 'UserError';
  }

  /** The same error with more context filled in where it is still missing. */
  withLocation(outer: InputLocation): UserError {
    const merged = { ...outer, ...this.location };
    const bare = this.bareMessage();
    return new UserError(bare, merged, { cause: this.cause });
  }

  private bareMessage(): string {
    const where = describeLocation(this.location);
    return where ? this.message.slice(where.length + 2) : this.message;
  }
}

/** Wrong flags or arguments: exit code 2. */
export class UsageError extends Error {
  readonly exitCode: number = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

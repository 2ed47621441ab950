/**
 * Warnings of a run. Whoever finds something worth a warning adds it here; the front end
 * decides where warnings go (standard error, render.log, KRM `results`), all spelled by
 * warningLine.
 */
import { describeLocation, type InputLocation } from './errors.js';

export interface Warning {
  message: string;
  location: InputLocation;
  /** A stable name for warnings that callers single out (e.g. to drop one that cannot apply). */
  code?: WarningCode;
}

export type WarningCode = 'no-coordinator' | 'missing-reference-values';

/** Where a module that finds warnings sends them. */
export type Warn = (message: string, location?: InputLocation, code?: WarningCode) => void;

export class Diagnostics {
  readonly warnings: Warning[] = [];

  /** `forward` also gets every warning as it comes (a command that prints them at once). */
  constructor(private readonly forward?: Warn) {}

  /** Bound, so it can be handed on as a Warn callback. */
  readonly warn: Warn = (message, location = {}, code) => {
    this.warnings.push(code === undefined ? { message, location } : { message, location, code });
    this.forward?.(message, location, code);
  };
}

/** The warning with its location, as one line of text. */
export function formatWarning(w: Pick<Warning, 'message' | 'location'>): string {
  const where = describeLocation(w.location);
  return where ? `${where}: ${w.message}` : w.message;
}

/** How a warning is printed on standard error and in render.log. */
export function warningLine(w: Pick<Warning, 'message' | 'location'>): string {
  return `Warning: ${formatWarning(w)}`;
}

/** A Warn that prints straight to standard error, for commands without a place to collect. */
export const warnOnStderr: Warn = (message, location = {}) => {
  process.stderr.write(`${warningLine({ message, location })}\n`);
};

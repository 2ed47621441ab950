import { describeLocation, type InputLocation } from '../util/errors.js';

export interface Warning {
  message: string;
  location: InputLocation;
}

/** Warnings collected during a run; the front end decides where they go (stderr, KRM results). */
export class Diagnostics {
  readonly warnings: Warning[] = [];
  warn(message: string, location: InputLocation = {}): void {
    this.warnings.push({ message, location });
  }
  static format(w: Warning): string {
    const where = describeLocation(w.location);
    return where ? `${where}: ${w.message}` : w.message;
  }
}

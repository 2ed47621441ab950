/**
 * How much the CLI says on standard error: kubectl's `-v N` (0–10) and upstream Contrast's
 * `--log-level debug|info|warn|error` set one level for the run. Messages that say what
 * happened, warnings and errors are always printed; `debug` (-v 4 or more, --log-level debug,
 * or CONTRAST_DEBUG=1) adds what the CLI is doing step by step and the stack of an unexpected
 * error.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

let level: LogLevel = process.env.CONTRAST_DEBUG ? 'debug' : 'info';

/** kubectl's levels: 0–3 are its default output, 4 and above are debug output. */
export function levelFromVerbosity(v: number): LogLevel {
  return v >= 4 ? 'debug' : 'info';
}

/** upstream's --log-level: a name, or a number as slog counts (-4 debug, 0 info, 4 warn, 8 error). */
export function parseLogLevel(text: string): LogLevel | undefined {
  const t = text.trim().toLowerCase();
  if ((LEVELS as readonly string[]).includes(t)) return t as LogLevel;
  if (/^-?\d+$/.test(t)) {
    const n = Number(t);
    return n <= -4 ? 'debug' : n < 4 ? 'info' : n < 8 ? 'warn' : 'error';
  }
  return undefined;
}

export function setLogLevel(l: LogLevel): void {
  level = l;
}

export function debugEnabled(): boolean {
  return level === 'debug';
}

/** A step of the work, on standard error, when debugging. */
export function debug(message: string): void {
  if (level === 'debug') process.stderr.write(`debug: ${message}\n`);
}

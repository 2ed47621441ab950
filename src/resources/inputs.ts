/**
 * Collect the YAML inputs of a command: files, directories (recursively, `*.yaml` and
 * `*.yml`, in a stable order) or `-` for standard input.
 */
import { isUtf8 } from 'node:buffer';
import { readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { UserError } from '../util/errors.js';
import { warnOnStderr, type Warn } from '../util/diagnostics.js';
import { describeFsError } from '../util/files.js';

export const STDIN = '-';

export interface InputFile {
  /** Path as the user can recognise it, or `<stdin>`. */
  name: string;
  /** Real path for in-place writes; undefined for stdin. */
  path?: string;
  text: string;
}

/** Refuse inputs that would take unbounded memory; Kubernetes objects are far smaller. */
const MAX_INPUT_BYTES = 256 * 1024 * 1024;

function expandPaths(paths: string[], warn: Warn = warnOnStderr): string[] {
  const files: string[] = [];
  for (const p of paths) {
    if (p === STDIN) {
      files.push(p);
      continue;
    }
    let st;
    try {
      st = statSync(p);
    } catch (err) {
      throw new UserError(`cannot read input: ${describeFsError(err)}`, { file: p });
    }
    if (st.isDirectory()) files.push(...yamlFilesUnder(p, warn));
    else files.push(p);
  }
  const unique = [...new Set(files)];
  if (unique.filter((f) => f === STDIN).length > 0 && unique.length > 1) {
    throw new UserError('"-" (standard input) cannot be combined with file or directory inputs');
  }
  return unique;
}

function yamlFilesUnder(dir: string, warn: Warn): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    const entries = readdirSync(d, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const e of entries) {
      const full = join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile() && /\.ya?ml$/i.test(e.name)) out.push(full);
    }
  };
  walk(dir);
  if (out.length === 0) warn('no *.yaml or *.yml files found', { file: relative('.', dir) || dir });
  return out;
}

function readInputFile(path: string): InputFile {
  let buf: Buffer;
  try {
    const size = statSync(path).size;
    if (size > MAX_INPUT_BYTES)
      throw new UserError(`input is larger than ${MAX_INPUT_BYTES / 1024 / 1024} MiB`, { file: path });
    buf = readFileSync(path);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`cannot read input: ${describeFsError(err)}`, { file: path });
  }
  return { name: path, path, text: refuseNul(decodeUtf8(buf, path), path) };
}

/**
 * Standard input, decoded as it arrives: each read goes into one reused buffer and straight into
 * a string piece, so the input is never held as bytes, chunks and one concatenated copy at once
 * (three times its size; a 100 MB stream peaked at 400 MB). Pieces end on a character boundary;
 * the bytes of a character cut by a read are carried over to the next one.
 */
export async function readStdin(): Promise<InputFile> {
  const pieces: string[] = [];
  let size = 0;
  let carry: Buffer = Buffer.alloc(0);
  let decoded = 0;
  try {
    for await (const bytes of stdinChunks()) {
      size += bytes.length;
      if (size > MAX_INPUT_BYTES)
        throw new UserError(`standard input is larger than ${MAX_INPUT_BYTES / 1024 / 1024} MiB`, { file: STDIN_NAME });
      const data = carry.length > 0 ? Buffer.concat([carry, bytes]) : bytes;
      const whole = wholeCharacters(data);
      pieces.push(decodeUtf8(data.subarray(0, whole), STDIN_NAME, decoded === 0));
      decoded += whole;
      carry = Buffer.from(data.subarray(whole));
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`cannot read standard input: ${describeFsError(err)}`, { file: STDIN_NAME });
  }
  if (carry.length > 0) throw new UserError('input is not valid UTF-8', { file: STDIN_NAME });
  return { name: STDIN_NAME, text: refuseNul(pieces.join(''), STDIN_NAME) };
}

const STDIN_NAME = '<stdin>';
const READ_BYTES = 1024 * 1024;

/**
 * Reads of file descriptor 0 into one buffer, handed out before the next read overwrites it. A
 * descriptor that another process left non-blocking (EAGAIN) is read through process.stdin instead.
 */
async function* stdinChunks(): AsyncGenerator<Buffer> {
  const buf = Buffer.allocUnsafe(READ_BYTES);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, READ_BYTES, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      for await (const chunk of process.stdin) yield chunk as Buffer;
      return;
    }
    if (n === 0) return;
    yield buf.subarray(0, n);
  }
}

/** The length of the longest prefix of `b` that does not end inside a UTF-8 sequence. */
export function wholeCharacters(b: Uint8Array): number {
  let lead = b.length - 1;
  while (lead >= 0 && lead > b.length - 4 && (b[lead]! & 0xc0) === 0x80) lead--;
  if (lead < 0) return b.length;
  const c = b[lead]!;
  const needs = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
  return lead + needs > b.length ? lead : b.length;
}

/**
 * Strict UTF-8 (a BOM at the start of the input is dropped); invalid bytes are an error rather
 * than silent U+FFFD. Validated first, then decoded by Buffer, whose strings of ASCII text take
 * one byte a character (TextDecoder's take two).
 */
function decodeUtf8(bytes: Buffer, name: string, atStart = true): string {
  if (!isUtf8(bytes)) throw new UserError('input is not valid UTF-8', { file: name });
  const bom = atStart && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  return bytes.toString('utf8', bom);
}

function refuseNul(text: string, name: string): string {
  if (text.includes('\u0000')) throw new UserError('input contains a NUL byte; YAML does not allow it', { file: name });
  return text;
}

/** The inputs named by `paths` (none: standard input). */
export async function readInputs(paths: string[], warn: Warn = warnOnStderr): Promise<InputFile[]> {
  const files = expandPaths(paths.length === 0 ? [STDIN] : paths, warn);
  const out: InputFile[] = [];
  for (const f of files) out.push(f === STDIN ? await readStdin() : readInputFile(f));
  return out;
}

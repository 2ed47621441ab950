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
 * Standard input, read into one buffer and decoded once at the end. The buffer is a resizable
 * ArrayBuffer: it grows in place (the address space up to the size limit is reserved, memory is
 * used as it fills), so no grown-out copy waits for the collector. Decoding pieces as they
 * arrived and joining them held the text twice on the JavaScript heap, where V8 is slow to give
 * the first copy back (a 100 MB stream peaked at 400 MB).
 */
export async function readStdin(): Promise<InputFile> {
  let text: string;
  try {
    text = await withStdinBytes((bytes) => decodeUtf8(bytes, STDIN_NAME));
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`cannot read standard input: ${describeFsError(err)}`, { file: STDIN_NAME });
  }
  return { name: STDIN_NAME, text: refuseNul(text, STDIN_NAME) };
}

const STDIN_NAME = '<stdin>';
const FIRST_BYTES = 1024 * 1024;
const GROW_BYTES = 8 * 1024 * 1024;

interface Resizable extends ArrayBuffer {
  resize(byteLength: number): void;
}

/**
 * `use` of everything on file descriptor 0; the bytes are given back to the system right after
 * (the buffer shrinks to nothing), not when the collector gets to them. A descriptor that
 * another process left non-blocking (EAGAIN) is read through process.stdin instead.
 */
async function withStdinBytes<T>(use: (bytes: Buffer) => T): Promise<T> {
  // One byte more than the limit, so that a larger input is seen to be larger.
  const limit = MAX_INPUT_BYTES + 1;
  const memory = new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable)(
    FIRST_BYTES,
    {
      maxByteLength: limit,
    },
  );
  let size = 0;
  /** The free part of the buffer, at least `needed` bytes (it grows in place, so in small steps). */
  const room = (needed: number): Buffer => {
    if (size + needed > memory.byteLength)
      memory.resize(Math.min(Math.max(memory.byteLength + GROW_BYTES, size + needed), limit));
    return Buffer.from(memory, size, memory.byteLength - size);
  };
  const added = (n: number) => {
    size += n;
    if (size > MAX_INPUT_BYTES)
      throw new UserError(`standard input is larger than ${MAX_INPUT_BYTES / 1024 / 1024} MiB`, { file: STDIN_NAME });
  };
  try {
    for (;;) {
      const free = room(1);
      let n: number;
      try {
        n = readSync(0, free, 0, free.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
          const take = Math.min(chunk.length, limit - size);
          added(chunk.copy(room(take), 0, 0, take));
        }
        break;
      }
      if (n === 0) break;
      added(n);
    }
    return use(Buffer.from(memory, 0, size));
  } finally {
    memory.resize(0);
  }
}

/**
 * Strict UTF-8 (a BOM at the start of the input is dropped); invalid bytes are an error rather
 * than silent U+FFFD. Validated first, then decoded by Buffer, whose strings of ASCII text take
 * one byte a character (TextDecoder's take two).
 */
function decodeUtf8(bytes: Buffer, name: string): string {
  if (!isUtf8(bytes)) throw new UserError('input is not valid UTF-8', { file: name });
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
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

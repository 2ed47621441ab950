/**
 * Collect the YAML inputs of a command: files, directories (recursively, `*.yaml` and
 * `*.yml`, in a stable order) or `-` for standard input.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
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
  return { name: path, path, text: decodeUtf8(buf, path) };
}

export async function readStdin(): Promise<InputFile> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_INPUT_BYTES)
      throw new UserError(`standard input is larger than ${MAX_INPUT_BYTES / 1024 / 1024} MiB`, { file: '<stdin>' });
    chunks.push(chunk as Buffer);
  }
  return { name: '<stdin>', text: decodeUtf8(Buffer.concat(chunks), '<stdin>') };
}

/** Strict UTF-8 (a BOM is dropped); invalid bytes are an error rather than silent U+FFFD. */
function decodeUtf8(buf: Buffer, name: string): string {
  try {
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(buf);
    if (text.includes('\u0000'))
      throw new UserError('input contains a NUL byte; YAML does not allow it', { file: name });
    return text;
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError('input is not valid UTF-8', { file: name });
  }
}

/** The inputs named by `paths` (none: standard input). */
export async function readInputs(paths: string[], warn: Warn = warnOnStderr): Promise<InputFile[]> {
  const files = expandPaths(paths.length === 0 ? [STDIN] : paths, warn);
  const out: InputFile[] = [];
  for (const f of files) out.push(f === STDIN ? await readStdin() : readInputFile(f));
  return out;
}

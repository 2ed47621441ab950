/**
 * Writing large texts without a second copy of them: a 100 MB stream written at once becomes
 * a 100 MB Buffer first. These write it in slices of 1 MiB instead.
 */

const SLICE = 1 << 20;

/** `text` as UTF-8 Buffers of about `size` characters each; a surrogate pair is never split. */
export function* utf8Slices(text: string, size = SLICE): Generator<Buffer> {
  for (let start = 0; start < text.length;) {
    let end = Math.min(start + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end++;
    yield Buffer.from(text.slice(start, end), 'utf8');
    start = end;
  }
}

/** Write `text` to standard output, slice by slice, waiting whenever the pipe is full. */
export async function writeStdout(text: string): Promise<void> {
  for (const slice of utf8Slices(text)) {
    if (!process.stdout.write(slice)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
  }
}

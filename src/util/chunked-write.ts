/**
 * Writing large texts without a second copy of them: a 100 MB stream written at once becomes
 * a 100 MB Buffer first, and 1 MiB Buffers made one after another wait for the collector
 * (30 MB of them at a time). These encode slice by slice into one reused buffer instead.
 */

const SLICE = 1 << 20;

/**
 * `text` as UTF-8, about `size` characters at a time, in one buffer that is filled again for
 * each slice: a slice is valid until the next one is asked for. A surrogate pair is never split.
 */
export function* utf8Slices(text: string, size = SLICE): Generator<Buffer> {
  // Three bytes at most for each UTF-16 unit (a pair of them makes four).
  const buf = Buffer.allocUnsafe(Math.min(size + 1, text.length) * 3);
  for (let start = 0; start < text.length;) {
    let end = Math.min(start + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end++;
    const n = buf.write(text.slice(start, end), 'utf8');
    yield buf.subarray(0, n);
    start = end;
  }
}

/** Write `text` to standard output, slice by slice, each one written before the buffer is filled again. */
export async function writeStdout(text: string): Promise<void> {
  for (const slice of utf8Slices(text)) {
    await new Promise<void>((resolve, reject) => process.stdout.write(slice, (err) => (err ? reject(err) : resolve())));
  }
}

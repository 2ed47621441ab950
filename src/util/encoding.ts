/**
 * Strict readers of the text encodings that carry bytes from peers and files: base64 and PEM.
 * Node's own decoders skip what they do not understand (a base64 decoder ignores stray
 * characters; a PEM reader takes the first block and ignores the rest), so one input could be
 * read two ways. These accept exactly one spelling of each value.
 */

/** Canonical base64 (padding included, no whitespace, zero padding bits), else undefined. */
export function decodeBase64Strict(text: string): Buffer | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

export interface PemBlock {
  label: string;
  der: Buffer;
}

/**
 * The blocks of a PEM text (RFC 7468 strict form): `-----BEGIN <label>-----`, canonical
 * base64 lines, `-----END <label>-----`, and nothing but whitespace between blocks. Headers
 * (encrypted legacy keys) and explanatory text are refused. Throws an Error naming the offset.
 */
export function readPemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END ([A-Z0-9 ]+)-----/y;
  let pos = 0;
  for (;;) {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
    if (pos === text.length) return blocks;
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m)
      throw new Error(`unexpected content at offset ${pos} (only PEM blocks separated by whitespace are accepted)`);
    if (m[1] !== m[3]) throw new Error(`block ${blocks.length + 1} begins as ${m[1]} and ends as ${m[3]}`);
    const der = decodeBase64Strict(m[2]!.replace(/\r?\n/g, ''));
    if (!der) throw new Error(`block ${blocks.length + 1} is not canonical base64`);
    blocks.push({ label: m[1]!, der });
    pos = re.lastIndex;
  }
}

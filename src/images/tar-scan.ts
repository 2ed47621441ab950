/**
 * A push-based tar reader for scanning: it parses headers (ustar, pax extended headers,
 * GNU long names) and hands over the content only of the entries the caller asks for;
 * everything else is skipped by counting bytes, without copying. This keeps scanning a
 * decompressed layer close to the cost of decompressing it.
 */

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'directory' | 'other';

export interface TarHeader {
  name: string;
  type: TarEntryType;
  /** The raw typeflag character, for messages. */
  typeflag: string;
  size: number;
  linkname: string;
}

export interface TarVisitor {
  /** Return a byte limit to receive the entry's content, or undefined to skip it. */
  entry(header: TarHeader): number | undefined;
  /** The content of an entry for which entry() returned a limit. */
  content(header: TarHeader, data: Buffer): void;
}

export function parseNumeric(buf: Buffer, start: number, len: number): number {
  if (buf[start]! & 0x80) {
    let n = buf[start]! & 0x7f;
    for (let i = start + 1; i < start + len; i++) n = n * 256 + buf[i]!;
    return n;
  }
  let n = 0;
  let seen = false;
  for (let i = start; i < start + len; i++) {
    const c = buf[i]!;
    if (c === 0) break;
    if (c === 0x20) {
      if (seen) break;
      continue;
    }
    if (c < 0x30 || c > 0x37) throw new Error('malformed tar header: bad octal number');
    n = n * 8 + (c - 0x30);
    seen = true;
  }
  return n;
}

function cString(buf: Buffer, start: number, len: number): string {
  let end = start;
  while (end < start + len && buf[end] !== 0) end++;
  return buf.toString('utf8', start, end);
}

export function parsePaxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = parseInt(data.toString('ascii', pos, space), 10);
    if (!Number.isFinite(len) || len <= 0 || pos + len > data.length) break;
    const record = data.toString('utf8', space + 1, pos + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

function headerChecksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === parseNumeric(h, 148, 8);
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '5': 'directory',
};
const MAX_EXTENSION = 1024 * 1024;

/** Feed decompressed tar bytes with push(); `finished` is set at the end-of-archive marker. */
export class TarScanner {
  finished = false;
  private readonly header = Buffer.alloc(512);
  private headerFill = 0;
  /** Bytes of the current entry's content still to come. */
  private remaining = 0;
  /** Padding after the current content. */
  private padding = 0;
  private collecting:
    { header: TarHeader; chunks: Buffer[]; kind: 'visit' | 'pax' | 'longname' | 'longlink' } | undefined;
  private pax: Record<string, string> = {};
  private longName: string | undefined;
  private longLink: string | undefined;

  constructor(private readonly visitor: TarVisitor) {}

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length && !this.finished) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - pos);
        if (this.collecting) this.collecting.chunks.push(Buffer.from(chunk.subarray(pos, pos + n)));
        this.remaining -= n;
        pos += n;
        if (this.remaining === 0) this.finishEntry();
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - pos);
        this.padding -= n;
        pos += n;
        continue;
      }
      const n = Math.min(512 - this.headerFill, chunk.length - pos);
      chunk.copy(this.header, this.headerFill, pos, pos + n);
      this.headerFill += n;
      pos += n;
      if (this.headerFill === 512) {
        this.headerFill = 0;
        this.onHeader();
      }
    }
  }

  /** Call at the end of input: a tar that stops mid-entry is truncated. */
  end(): void {
    if (this.finished) return;
    if (this.remaining > 0 || this.headerFill > 0) throw new Error('truncated tar stream');
    this.finished = true;
  }

  private onHeader(): void {
    const h = this.header;
    let zero = true;
    for (let i = 0; i < 512; i++)
      if (h[i] !== 0) {
        zero = false;
        break;
      }
    if (zero) {
      this.finished = true;
      return;
    }
    if (!headerChecksumOk(h)) throw new Error('malformed tar header (checksum mismatch)');
    const typeflag = String.fromCharCode(h[156]!);
    let size = parseNumeric(h, 124, 12);
    const padTo = (n: number): number => (512 - (n % 512)) % 512;
    if (typeflag === 'x' || typeflag === 'L' || typeflag === 'K' || typeflag === 'g') {
      if (size > MAX_EXTENSION) throw new Error('malformed tar: oversized extended header');
      const kind = typeflag === 'x' ? 'pax' : typeflag === 'L' ? 'longname' : typeflag === 'K' ? 'longlink' : undefined;
      this.collecting = kind
        ? { header: { name: '', type: 'other', typeflag, size, linkname: '' }, chunks: [], kind }
        : undefined;
      this.remaining = size;
      this.padding = padTo(size);
      if (size === 0) this.finishEntry();
      return;
    }
    const ustar = h.toString('latin1', 257, 262) === 'ustar';
    const prefix = ustar ? cString(h, 345, 155) : '';
    const baseName = cString(h, 0, 100);
    const name = this.longName ?? this.pax['path'] ?? (prefix ? `${prefix}/${baseName}` : baseName);
    const linkname = this.longLink ?? this.pax['linkpath'] ?? cString(h, 157, 100);
    if (this.pax['size'] !== undefined) size = Number(this.pax['size']);
    this.pax = {};
    this.longName = undefined;
    this.longLink = undefined;
    const type = TYPES[typeflag] ?? 'other';
    // Only regular files carry content; other types may state a size that is not stored.
    const stored = type === 'file' || type === 'other' ? size : 0;
    const header: TarHeader = { name, type, typeflag, size: stored, linkname };
    const limit = this.visitor.entry(header);
    if (limit !== undefined && type === 'file') {
      if (stored > limit) throw new Error(`${name} is larger than ${limit} bytes`);
      this.collecting = { header, chunks: [], kind: 'visit' };
    } else {
      this.collecting = undefined;
    }
    this.remaining = stored;
    this.padding = padTo(stored);
    if (stored === 0) this.finishEntry();
  }

  private finishEntry(): void {
    const c = this.collecting;
    this.collecting = undefined;
    if (!c) return;
    const data = Buffer.concat(c.chunks);
    if (c.kind === 'pax') this.pax = parsePaxRecords(data);
    else if (c.kind === 'longname') this.longName = cString(data, 0, data.length);
    else if (c.kind === 'longlink') this.longLink = cString(data, 0, data.length);
    else this.visitor.content(c.header, data);
  }
}

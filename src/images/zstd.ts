/**
 * A streaming Zstandard decoder (RFC 8878), for zstd-compressed image layers: Node 20's zlib
 * has no zstd, and a native addon would not fit the single executable. Written from the RFC;
 * section numbers below are RFC 8878's.
 *
 * Bounded and fail-closed: input is taken in chunks and buffered at most one block (128 KiB)
 * at a time; the history is one window, refused above MAX_WINDOW (zstd's own default decoder
 * limit, which `zstd --long` stays within); output leaves in pieces of at most one block.
 * Every structural rule the RFC states is checked (reserved bits, table descriptions, sizes,
 * offsets within the history, bitstreams consumed exactly, the frame content size, the XXH64
 * content checksum), and a violation is an error saying what is wrong.
 *
 * Supported: any number of frames (3.1), skippable frames (3.1.2, skipped), raw, RLE and
 * compressed blocks (3.1.1.2), all literal and sequence modes, the content checksum.
 * Not supported (an error): dictionaries (frames with a Dictionary_ID) and legacy formats.
 */

export const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

/** Largest window accepted: 128 MiB (2^27), zstd's default decoder limit. */
export const MAX_WINDOW = 1 << 27;
/** Block_Maximum_Size (3.1.1.2.3). */
const BLOCK_MAX = 128 * 1024;

export class ZstdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ZstdError';
  }
}
const corrupt = (what: string): never => {
  throw new ZstdError(`malformed zstd data: ${what}`);
};

// --- bit readers ---------------------------------------------------------------------------

/** Reads a backward bitstream (4.1, 4.2.2): from the last byte's highest set bit down to the first byte. */
class BackwardBits {
  /** Bits not yet read, counted from the start of the stream. */
  left: number;
  constructor(
    private readonly src: Uint8Array,
    private readonly start: number,
    end: number,
  ) {
    if (end <= start) corrupt('empty bitstream');
    const last = src[end - 1]!;
    if (last === 0) corrupt('bitstream without its end mark');
    this.left = (end - start - 1) * 8 + (31 - Math.clz32(last));
  }
  /** The next n bits (n <= 24) without consuming them; bits before the start read as zero. */
  peek(n: number): number {
    if (n === 0 || this.left <= 0) return 0;
    let pos = this.left - n;
    let shiftIn = 0;
    if (pos < 0) {
      shiftIn = -pos;
      pos = 0;
    }
    const src = this.src;
    const i = this.start + (pos >> 3);
    const v = src[i]! | ((src[i + 1] ?? 0) << 8) | ((src[i + 2] ?? 0) << 16) | ((src[i + 3] ?? 0) << 24);
    const bits = n - shiftIn;
    return (((v >>> (pos & 7)) & ((1 << bits) - 1)) << shiftIn) >>> 0;
  }
  /** Read n bits (n <= 31); reading past the start gives zeros and makes `left` negative. */
  read(n: number): number {
    if (n <= 24) {
      const v = this.peek(n);
      this.left -= n;
      return v;
    }
    const hi = this.read(n - 16);
    return hi * 65536 + this.read(16);
  }
  skip(n: number): void {
    this.left -= n;
  }
}

// --- FSE (4.1) -----------------------------------------------------------------------------

interface FseTable {
  log: number;
  symbol: Uint8Array;
  nbBits: Uint8Array;
  baseline: Uint16Array;
}

/** Build the decoding table from normalized counts (-1: "less than 1"), 4.1.1. */
function buildFse(counts: ArrayLike<number>, symbols: number, log: number): FseTable {
  const size = 1 << log;
  const symbol = new Uint8Array(size);
  const nbBits = new Uint8Array(size);
  const baseline = new Uint16Array(size);
  const next = new Uint16Array(symbols);
  let high = size - 1;
  for (let s = 0; s < symbols; s++) {
    if (counts[s] === -1) {
      symbol[high--] = s;
      next[s] = 1;
    } else {
      next[s] = counts[s]!;
    }
  }
  const step = (size >> 1) + (size >> 3) + 3;
  const mask = size - 1;
  let pos = 0;
  for (let s = 0; s < symbols; s++) {
    for (let i = 0; i < counts[s]!; i++) {
      symbol[pos] = s;
      do pos = (pos + step) & mask;
      while (pos > high);
    }
  }
  if (pos !== 0) corrupt('FSE table description does not fill the table');
  for (let u = 0; u < size; u++) {
    const s = symbol[u]!;
    const n = next[s]++;
    const bits = log - (31 - Math.clz32(n));
    nbBits[u] = bits;
    baseline[u] = (n << bits) - size;
  }
  return { log, symbol, nbBits, baseline };
}

/** An FSE table description (4.1.1) at `src[pos]`; returns the table and the bytes it took. */
function readFseDescription(
  src: Uint8Array,
  pos: number,
  end: number,
  maxSymbol: number,
  maxLog: number,
): { table: FseTable; size: number } {
  const at = (bit: number): number => {
    const i = pos + (bit >> 3);
    if (i >= end) corrupt('FSE table description runs past its section');
    const v = src[i]! | ((i + 1 < end ? src[i + 1]! : 0) << 8) | ((i + 2 < end ? src[i + 2]! : 0) << 16);
    return v >>> (bit & 7);
  };
  const log = (at(0) & 15) + 5;
  let bit = 4;
  if (log > maxLog) corrupt(`FSE accuracy log ${log} above the maximum ${maxLog}`);
  const size = 1 << log;
  let remaining = size + 1;
  let threshold = size;
  let nbBits = log + 1;
  const counts: number[] = [];
  let previousZero = false;
  while (remaining > 1) {
    if (previousZero) {
      for (;;) {
        const repeat = at(bit) & 3;
        bit += 2;
        for (let i = 0; i < repeat; i++) counts.push(0);
        if (counts.length > maxSymbol + 1) corrupt('FSE table description has too many symbols');
        if (repeat !== 3) break;
      }
    }
    const v = at(bit);
    const max = 2 * threshold - 1 - remaining;
    let count: number;
    if ((v & (threshold - 1)) < max) {
      count = v & (threshold - 1);
      bit += nbBits - 1;
    } else {
      count = v & (2 * threshold - 1);
      if (count >= threshold) count -= max;
      bit += nbBits;
    }
    count--;
    remaining -= count < 0 ? -count : count;
    counts.push(count);
    if (counts.length > maxSymbol + 1) corrupt('FSE table description has too many symbols');
    previousZero = count === 0;
    while (remaining < threshold) {
      nbBits--;
      threshold >>= 1;
    }
  }
  if (remaining !== 1) corrupt('FSE table description with wrong probabilities');
  const bytes = (bit + 7) >> 3;
  if (pos + bytes > end) corrupt('FSE table description runs past its section');
  return { table: buildFse(counts, counts.length, log), size: bytes };
}

function rleTable(symbol: number): FseTable {
  return { log: 0, symbol: Uint8Array.of(symbol), nbBits: Uint8Array.of(0), baseline: Uint16Array.of(0) };
}

// --- Huffman (4.2) -------------------------------------------------------------------------

interface HuffTable {
  maxBits: number;
  symbol: Uint8Array;
  nbBits: Uint8Array;
}

/** Huffman_Tree_Description (4.2.1) at `src[pos]`; returns the table and the bytes it took. */
function readHuffmanTree(src: Uint8Array, pos: number, end: number): { table: HuffTable; size: number } {
  if (pos >= end) corrupt('missing Huffman tree description');
  const header = src[pos]!;
  const weights = new Uint8Array(256);
  let count = 0;
  let size: number;
  if (header >= 128) {
    count = header - 127;
    size = 1 + ((count + 1) >> 1);
    if (pos + size > end) corrupt('Huffman weights run past the literals section');
    for (let i = 0; i < count; i++) {
      const b = src[pos + 1 + (i >> 1)]!;
      weights[i] = i & 1 ? b & 15 : b >> 4;
    }
  } else {
    size = 1 + header;
    if (header === 0 || pos + size > end) corrupt('Huffman weights run past the literals section');
    const { table, size: descSize } = readFseDescription(src, pos + 1, pos + size, 12, 6);
    const bits = new BackwardBits(src, pos + 1 + descSize, pos + size);
    let s1 = bits.read(table.log);
    let s2 = bits.read(table.log);
    // Two interleaved states (4.2.1.2) until the stream is overrun; then the other state's last symbol.
    for (;;) {
      if (count >= 255) corrupt('too many Huffman weights');
      weights[count++] = table.symbol[s1]!;
      s1 = table.baseline[s1]! + bits.read(table.nbBits[s1]!);
      if (bits.left < 0) {
        weights[count++] = table.symbol[s2]!;
        break;
      }
      if (count >= 255) corrupt('too many Huffman weights');
      weights[count++] = table.symbol[s2]!;
      s2 = table.baseline[s2]! + bits.read(table.nbBits[s2]!);
      if (bits.left < 0) {
        if (count >= 256) corrupt('too many Huffman weights');
        weights[count++] = table.symbol[s1]!;
        break;
      }
    }
  }
  // The last weight is implied: the sum of 2^(w-1) must reach the next power of two (4.2.1.1).
  let total = 0;
  for (let i = 0; i < count; i++) {
    if (weights[i]! > 11) corrupt('Huffman weight above 11');
    if (weights[i]!) total += 1 << (weights[i]! - 1);
  }
  if (total === 0) corrupt('Huffman weights are all zero');
  const maxBits = 32 - Math.clz32(total);
  if (maxBits > 11) corrupt('Huffman code longer than 11 bits');
  const rest = (1 << maxBits) - total;
  if (rest & (rest - 1)) corrupt('Huffman weights do not sum to a power of two');
  if (count >= 256) corrupt('too many Huffman weights');
  weights[count++] = 32 - Math.clz32(rest);
  // Codes in order of increasing weight, ties by symbol (4.2.1.3): a table indexed by maxBits bits.
  const start = new Uint32Array(13);
  const perWeight = new Uint32Array(13);
  for (let i = 0; i < count; i++) perWeight[weights[i]!]!++;
  let next = 0;
  for (let w = 1; w <= maxBits; w++) {
    start[w] = next;
    next += perWeight[w]! << (w - 1);
  }
  const tableSize = 1 << maxBits;
  if (next !== tableSize) corrupt('Huffman weights do not fill the code space');
  const symbol = new Uint8Array(tableSize);
  const nbBits = new Uint8Array(tableSize);
  for (let s = 0; s < count; s++) {
    const w = weights[s]!;
    if (w === 0) continue;
    const len = 1 << (w - 1);
    const from = start[w]!;
    symbol.fill(s, from, from + len);
    nbBits.fill(maxBits + 1 - w, from, from + len);
    start[w] = from + len;
  }
  return { table: { maxBits, symbol, nbBits }, size };
}

function decodeHuffmanStream(
  t: HuffTable,
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  from: number,
  to: number,
): void {
  const bits = new BackwardBits(src, start, end);
  const { maxBits, symbol, nbBits } = t;
  for (let i = from; i < to; i++) {
    const v = bits.peek(maxBits);
    out[i] = symbol[v]!;
    bits.skip(nbBits[v]!);
  }
  if (bits.left !== 0) corrupt('Huffman stream not consumed exactly');
}

// --- sequences (3.1.1.3.2) -----------------------------------------------------------------

const LL_BASE = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024,
  2048, 4096, 8192, 16384, 32768, 65536,
];
const LL_BITS = [
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
];
const ML_BASE = [
  3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33,
  34, 35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051, 4099, 8195, 16387, 32771, 65539,
];
const ML_BITS = [
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3,
  3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
];
// Predefined distributions (3.1.1.3.2.2).
const LL_DEFAULT = buildFse(
  [4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1, -1, -1, -1, -1],
  36,
  6,
);
const ML_DEFAULT = buildFse(
  [
    1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1,
  ],
  53,
  6,
);
const OF_DEFAULT = buildFse(
  [1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1],
  29,
  5,
);

// --- XXH64, for the content checksum (3.1.1), on 32-bit halves ------------------------------

/** A 64-bit value as two unsigned 32-bit halves. */
type U64 = [hi: number, lo: number];
const P1: U64 = [0x9e3779b1, 0x85ebca87];
const P2: U64 = [0xc2b2ae3d, 0x27d4eb4f];
const P3: U64 = [0x165667b1, 0x9e3779f9];
const P4: U64 = [0x85ebca77, 0xc2b2ae63];
const P5: U64 = [0x27d4eb2f, 0x165667c5];

function add(a: U64, b: U64): U64 {
  const lo = a[1] + b[1];
  return [(a[0] + b[0] + (lo > 0xffffffff ? 1 : 0)) >>> 0, lo >>> 0];
}
function mul(a: U64, b: U64): U64 {
  const a0 = a[1] & 0xffff;
  const a1 = a[1] >>> 16;
  const b0 = b[1] & 0xffff;
  const b1 = b[1] >>> 16;
  const lo = a0 * b0;
  const m1 = a1 * b0;
  const m2 = a0 * b1;
  const t = (lo >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
  const resLo = ((t << 16) | (lo & 0xffff)) >>> 0;
  const resHi = (a1 * b1 + (m1 >>> 16) + (m2 >>> 16) + (t >>> 16)) >>> 0;
  return [(resHi + Math.imul(a[0], b[1]) + Math.imul(a[1], b[0])) >>> 0, resLo];
}
function rotl(a: U64, r: number): U64 {
  if (r === 32) return [a[1], a[0]];
  if (r > 32) return rotl([a[1], a[0]], r - 32);
  return [((a[0] << r) | (a[1] >>> (32 - r))) >>> 0, ((a[1] << r) | (a[0] >>> (32 - r))) >>> 0];
}
function xor(a: U64, b: U64): U64 {
  return [(a[0] ^ b[0]) >>> 0, (a[1] ^ b[1]) >>> 0];
}
function shr(a: U64, r: number): U64 {
  return r >= 32 ? [0, a[0] >>> (r - 32)] : [a[0] >>> r, ((a[1] >>> r) | (a[0] << (32 - r))) >>> 0];
}
const round = (acc: U64, lane: U64): U64 => mul(rotl(add(acc, mul(lane, P2)), 31), P1);
const lane64 = (b: Uint8Array, i: number): U64 => [
  (b[i + 4]! | (b[i + 5]! << 8) | (b[i + 6]! << 16) | (b[i + 7]! << 24)) >>> 0,
  (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0,
];

// The stripe loop's round without allocations: result in outHi/outLo.
let outHi = 0;
let outLo = 0;
function mulInto(ahi: number, alo: number, bhi: number, blo: number): void {
  const a0 = alo & 0xffff;
  const a1 = alo >>> 16;
  const b0 = blo & 0xffff;
  const b1 = blo >>> 16;
  const lo = a0 * b0;
  const m1 = a1 * b0;
  const m2 = a0 * b1;
  const t = (lo >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
  outLo = ((t << 16) | (lo & 0xffff)) >>> 0;
  outHi = (a1 * b1 + (m1 >>> 16) + (m2 >>> 16) + (t >>> 16) + Math.imul(ahi, blo) + Math.imul(alo, bhi)) >>> 0;
}
/** acc = rotl(acc + lane * P2, 31) * P1 */
function roundInto(accHi: number, accLo: number, laneHi: number, laneLo: number): void {
  mulInto(laneHi, laneLo, P2[0], P2[1]);
  const lo = accLo + outLo;
  const hi = (accHi + outHi + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  const l = lo >>> 0;
  // rotl 31
  const rh = ((hi << 31) | (l >>> 1)) >>> 0;
  const rl = ((l << 31) | (hi >>> 1)) >>> 0;
  mulInto(rh, rl, P1[0], P1[1]);
}

/** Streaming XXH64 with seed 0. */
export class Xxh64 {
  private readonly v: U64[] = [add(P1, P2), [P2[0], P2[1]], [0, 0], [0x61c8864e, 0x7a143579]]; // seed 0: v4 = -P1
  private readonly buf = new Uint8Array(32);
  private fill = 0;
  private total = 0;
  update(data: Uint8Array): void {
    this.total += data.length;
    let i = 0;
    if (this.fill > 0) {
      const n = Math.min(32 - this.fill, data.length);
      this.buf.set(data.subarray(0, n), this.fill);
      this.fill += n;
      i = n;
      if (this.fill < 32) return;
      this.stripe(this.buf, 0);
      this.fill = 0;
    }
    for (; i + 32 <= data.length; i += 32) this.stripe(data, i);
    if (i < data.length) {
      this.buf.set(data.subarray(i), 0);
      this.fill = data.length - i;
    }
  }
  private stripe(b: Uint8Array, i: number): void {
    const v = this.v;
    for (let k = 0; k < 4; k++, i += 8) {
      const acc = v[k]!;
      roundInto(
        acc[0],
        acc[1],
        (b[i + 4]! | (b[i + 5]! << 8) | (b[i + 6]! << 16) | (b[i + 7]! << 24)) >>> 0,
        (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0,
      );
      acc[0] = outHi;
      acc[1] = outLo;
    }
  }
  /** The low 32 bits of the digest. */
  digestLow32(): number {
    let h: U64;
    const v = this.v;
    if (this.total >= 32) {
      h = add(add(rotl(v[0]!, 1), rotl(v[1]!, 7)), add(rotl(v[2]!, 12), rotl(v[3]!, 18)));
      for (const x of v) h = add(mul(xor(h, round([0, 0], x)), P1), P4);
    } else {
      h = P5;
    }
    h = add(h, [Math.floor(this.total / 2 ** 32) >>> 0, this.total >>> 0]);
    const b = this.buf;
    let i = 0;
    for (; i + 8 <= this.fill; i += 8) h = add(mul(rotl(xor(h, round([0, 0], lane64(b, i))), 27), P1), P4);
    if (i + 4 <= this.fill) {
      const w: U64 = [0, (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0];
      h = add(mul(rotl(xor(h, mul(w, P1)), 23), P2), P3);
      i += 4;
    }
    for (; i < this.fill; i++) h = mul(rotl(xor(h, mul([0, b[i]!], P5)), 11), P1);
    h = mul(xor(h, shr(h, 33)), P2);
    h = mul(xor(h, shr(h, 29)), P3);
    h = xor(h, shr(h, 32));
    return h[1];
  }
}

// --- the streaming decoder -----------------------------------------------------------------

/** Input chunks, taken by exact byte counts. */
class Input {
  private chunks: Uint8Array[] = [];
  /** Index of the first chunk not fully taken, and the offset into it. */
  private first = 0;
  private head = 0;
  length = 0;
  push(c: Uint8Array): void {
    if (c.length === 0) return;
    if (this.first > 64 && this.first * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
    this.chunks.push(c);
    this.length += c.length;
  }
  /** The next n bytes (n <= length), as a view when they sit in one chunk. */
  take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const out = this.peek(n);
    this.skip(n);
    return out;
  }
  /** The first n bytes (n <= length) without taking them. */
  peek(n: number): Uint8Array {
    const first = this.chunks[this.first]!;
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = new Uint8Array(n);
    let filled = 0;
    for (let c = this.first, at = this.head; filled < n; c++, at = 0) {
      const chunk = this.chunks[c]!;
      const k = Math.min(n - filled, chunk.length - at);
      out.set(chunk.subarray(at, at + k), filled);
      filled += k;
    }
    return out;
  }
  skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const c = this.chunks[this.first]!;
      const k = Math.min(n, c.length - this.head);
      n -= k;
      this.head += k;
      if (this.head === c.length) {
        this.chunks[this.first++] = EMPTY;
        this.head = 0;
      }
    }
  }
}
const EMPTY = new Uint8Array(0);

type State = { at: 'magic' } | { at: 'skip'; left: number } | { at: 'header' } | { at: 'block' } | { at: 'checksum' };

interface Frame {
  window: number;
  contentSize: number | undefined;
  checksum: Xxh64 | undefined;
  blockMax: number;
  /** The history: a ring of window + one block. Grows up to that as output accumulates. */
  ring: Uint8Array;
  ringCapacity: number;
  /** Bytes output in this frame. */
  pos: number;
  rep: [number, number, number];
  ll: FseTable | undefined;
  of: FseTable | undefined;
  ml: FseTable | undefined;
  huffman: HuffTable | undefined;
}

/**
 * Feed compressed bytes with push(), then end(). Output goes to `out` one block at a time (a
 * view into the history, valid until the call returns); `out` returning false stops decoding.
 */
export class ZstdDecoder {
  private readonly input = new Input();
  private state: State = { at: 'magic' };
  private frame: Frame | undefined;
  private stopped = false;
  private readonly literals = new Uint8Array(BLOCK_MAX);
  /** Frames decoded so far (for messages and tests). */
  frames = 0;

  constructor(private readonly out: (chunk: Buffer) => boolean) {}

  push(chunk: Uint8Array): void {
    this.input.push(chunk);
    this.run();
  }

  end(): void {
    this.run();
    if (this.stopped) return;
    if (this.state.at !== 'magic' || this.input.length > 0) {
      throw new ZstdError(
        this.state.at === 'magic'
          ? `truncated zstd data: ${this.input.length} bytes after the last frame are no frame`
          : 'truncated zstd data: the input ends inside a frame',
      );
    }
    if (this.frames === 0) throw new ZstdError('no zstd frame in the input');
  }

  private run(): void {
    const input = this.input;
    while (!this.stopped) {
      const st = this.state;
      if (st.at === 'magic') {
        if (input.length < 4) return;
        const magic = this.readU32();
        if (magic === ZSTD_MAGIC) this.state = { at: 'header' };
        else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) this.state = { at: 'skip', left: -1 };
        else corrupt(`not a zstd frame (magic 0x${magic.toString(16).padStart(8, '0')})`);
      } else if (st.at === 'skip') {
        // Skippable frame (3.1.2): a 4-byte size, then that many bytes to ignore.
        if (st.left < 0) {
          if (input.length < 4) return;
          st.left = this.readU32();
        }
        const n = Math.min(st.left, input.length);
        input.skip(n);
        st.left -= n;
        if (st.left > 0) return;
        this.frames++;
        this.state = { at: 'magic' };
      } else if (st.at === 'header') {
        if (!this.readFrameHeader()) return;
        this.state = { at: 'block' };
      } else if (st.at === 'block') {
        if (!this.readBlock()) return;
      } else {
        if (input.length < 4) return;
        const want = this.readU32();
        const got = this.frame!.checksum!.digestLow32();
        if (want !== got) corrupt('content checksum mismatch');
        this.endFrame();
      }
    }
  }

  private readU32(): number {
    const b = this.input.take(4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }

  /** Frame_Header (3.1.1.1); false while its bytes have not all arrived. */
  private readFrameHeader(): boolean {
    const input = this.input;
    if (input.length < 1) return false;
    const desc = input.peek(1)[0]!;
    const fcsFlag = desc >> 6;
    const single = (desc >> 5) & 1;
    const checksumFlag = (desc >> 2) & 1;
    if (desc & 8) corrupt('reserved bit set in the frame header');
    const didSize = [0, 1, 2, 4][desc & 3]!;
    const fcsSize = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag]!;
    const size = 1 + (single ? 0 : 1) + didSize + fcsSize;
    if (input.length < size) return false;
    const b = input.take(size);
    let i = 1;
    let window = 0;
    if (!single) {
      const wd = b[i++]!;
      const base = 2 ** (10 + (wd >> 3));
      window = base + (base / 8) * (wd & 7);
    }
    let did = 0;
    for (let k = 0; k < didSize; k++) did += b[i++]! * 2 ** (8 * k);
    if (did !== 0) throw new ZstdError(`zstd frames with a dictionary (ID ${did}) are not supported`);
    let contentSize: number | undefined;
    if (fcsSize > 0) {
      let v = 0;
      for (let k = 0; k < fcsSize; k++) v += b[i++]! * 2 ** (8 * k);
      contentSize = fcsSize === 2 ? v + 256 : v;
    }
    if (single) window = contentSize!;
    if (window > MAX_WINDOW)
      throw new ZstdError(`zstd frame needs a window of ${window} bytes, above the limit of ${MAX_WINDOW}`);
    const blockMax = Math.min(Math.max(window, 1), BLOCK_MAX);
    const ringCapacity = window + BLOCK_MAX;
    this.frame = {
      window,
      contentSize,
      checksum: checksumFlag ? new Xxh64() : undefined,
      blockMax,
      ring: new Uint8Array(Math.min(ringCapacity, 256 * 1024)),
      ringCapacity,
      pos: 0,
      rep: [1, 4, 8],
      ll: undefined,
      of: undefined,
      ml: undefined,
      huffman: undefined,
    };
    return true;
  }

  private endFrame(): void {
    const f = this.frame!;
    if (f.contentSize !== undefined && f.pos !== f.contentSize)
      corrupt(`frame content size says ${f.contentSize} bytes, the blocks gave ${f.pos}`);
    this.frame = undefined;
    this.frames++;
    this.state = { at: 'magic' };
  }

  /** One block (3.1.1.2); false while its bytes have not all arrived. */
  private readBlock(): boolean {
    const input = this.input;
    if (input.length < 3) return false;
    const f = this.frame!;
    const h = input.peek(3);
    const header = h[0]! | (h[1]! << 8) | (h[2]! << 16);
    const last = header & 1;
    const type = (header >> 1) & 3;
    const size = header >>> 3;
    if (type === 3) corrupt('reserved block type');
    if (size > f.blockMax) corrupt(`block of ${size} bytes above the maximum of ${f.blockMax}`);
    const stored = type === 1 ? 1 : size;
    if (input.length < 3 + stored) return false;
    input.skip(3);
    const body = input.take(stored);
    const start = f.pos;
    this.reserve(f.blockMax);
    if (type === 0) this.writeBytes(body, 0, size);
    else if (type === 1) this.writeRun(body[0]!, size);
    else this.decompressBlock(body);
    if (f.contentSize !== undefined && f.pos > f.contentSize) corrupt('more data than the frame content size');
    this.emit(start, f.pos);
    if (last) {
      if (f.checksum) this.state = { at: 'checksum' };
      else this.endFrame();
    }
    return true;
  }

  /** Make room for `n` more bytes in the ring (it grows until it holds a window and a block). */
  private reserve(n: number): void {
    const f = this.frame!;
    if (f.ring.length === f.ringCapacity || f.pos + n <= f.ring.length) return;
    let size = f.ring.length;
    while (size < f.pos + n) size *= 2;
    const next = new Uint8Array(Math.min(size, f.ringCapacity));
    next.set(f.ring.subarray(0, f.pos));
    f.ring = next;
  }

  private emit(from: number, to: number): void {
    const f = this.frame!;
    if (to === from) return;
    const ring = f.ring;
    const cap = ring.length;
    let a = from % cap;
    let left = to - from;
    while (left > 0 && !this.stopped) {
      const n = Math.min(left, cap - a);
      const view = ring.subarray(a, a + n);
      f.checksum?.update(view);
      if (!this.out(Buffer.from(view.buffer, view.byteOffset, view.length))) this.stopped = true;
      left -= n;
      a = 0;
    }
  }

  private writeBytes(src: Uint8Array, from: number, n: number): void {
    const f = this.frame!;
    const ring = f.ring;
    const cap = ring.length;
    let at = f.pos % cap;
    let i = from;
    let left = n;
    while (left > 0) {
      const k = Math.min(left, cap - at);
      ring.set(src.subarray(i, i + k), at);
      i += k;
      left -= k;
      at = 0;
    }
    f.pos += n;
  }

  private writeRun(byte: number, n: number): void {
    const f = this.frame!;
    const ring = f.ring;
    const cap = ring.length;
    let at = f.pos % cap;
    let left = n;
    while (left > 0) {
      const k = Math.min(left, cap - at);
      ring.fill(byte, at, at + k);
      left -= k;
      at = 0;
    }
    f.pos += n;
  }

  /** Copy `length` bytes from `offset` back (3.1.1.4); the ranges may overlap. */
  private copyMatch(offset: number, length: number): void {
    const f = this.frame!;
    if (offset > f.pos) corrupt(`match offset ${offset} before the start of the frame`);
    if (offset > f.window) corrupt(`match offset ${offset} beyond the window of ${f.window} bytes`);
    const ring = f.ring;
    const cap = ring.length;
    let dst = f.pos % cap;
    let src = (f.pos - offset) % cap;
    f.pos += length;
    if (offset >= length && src + length <= cap && dst + length <= cap) {
      ring.copyWithin(dst, src, src + length);
      return;
    }
    for (let i = 0; i < length; i++) {
      ring[dst] = ring[src]!;
      if (++dst === cap) dst = 0;
      if (++src === cap) src = 0;
    }
  }

  private decompressBlock(b: Uint8Array): void {
    const f = this.frame!;
    const end = b.length;
    // Literals_Section_Header (3.1.1.3.1.1)
    if (end < 1) corrupt('empty compressed block');
    const b0 = b[0]!;
    const litType = b0 & 3;
    const sizeFormat = (b0 >> 2) & 3;
    let pos: number;
    let litSize: number;
    const lit = this.literals;
    if (litType === 0 || litType === 1) {
      if (sizeFormat === 0 || sizeFormat === 2) {
        litSize = b0 >> 3;
        pos = 1;
      } else if (sizeFormat === 1) {
        if (end < 2) corrupt('truncated literals header');
        litSize = (b0 >> 4) + (b[1]! << 4);
        pos = 2;
      } else {
        if (end < 3) corrupt('truncated literals header');
        litSize = (b0 >> 4) + (b[1]! << 4) + (b[2]! << 12);
        pos = 3;
      }
      if (litSize > f.blockMax) corrupt('literals larger than a block');
      if (litType === 0) {
        if (pos + litSize > end) corrupt('raw literals run past the block');
        lit.set(b.subarray(pos, pos + litSize), 0);
        pos += litSize;
      } else {
        if (pos + 1 > end) corrupt('RLE literals run past the block');
        lit.fill(b[pos]!, 0, litSize);
        pos += 1;
      }
    } else {
      let compSize: number;
      let streams = 4;
      if (sizeFormat <= 1) {
        if (end < 3) corrupt('truncated literals header');
        const h = b0 | (b[1]! << 8) | (b[2]! << 16);
        litSize = (h >> 4) & 0x3ff;
        compSize = (h >> 14) & 0x3ff;
        if (sizeFormat === 0) streams = 1;
        pos = 3;
      } else if (sizeFormat === 2) {
        if (end < 4) corrupt('truncated literals header');
        const h = (b0 | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
        litSize = (h >>> 4) & 0x3fff;
        compSize = h >>> 18;
        pos = 4;
      } else {
        if (end < 5) corrupt('truncated literals header');
        const h = (b0 | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
        litSize = (h >>> 4) & 0x3ffff;
        compSize = (h >>> 22) + (b[4]! << 10);
        pos = 5;
      }
      if (litSize > f.blockMax) corrupt('literals larger than a block');
      if (pos + compSize > end) corrupt('compressed literals run past the block');
      let p = pos;
      const litEnd = pos + compSize;
      if (litType === 2) {
        const { table, size } = readHuffmanTree(b, p, litEnd);
        f.huffman = table;
        p += size;
      } else if (!f.huffman) {
        corrupt('treeless literals without a previous Huffman table');
      }
      const t = f.huffman!;
      if (streams === 1) {
        decodeHuffmanStream(t, b, p, litEnd, lit, 0, litSize);
      } else {
        if (p + 6 > litEnd) corrupt('truncated Huffman jump table');
        const s1 = b[p]! | (b[p + 1]! << 8);
        const s2 = b[p + 2]! | (b[p + 3]! << 8);
        const s3 = b[p + 4]! | (b[p + 5]! << 8);
        p += 6;
        const s4 = litEnd - p - s1 - s2 - s3;
        if (s4 < 1 || s1 < 1 || s2 < 1 || s3 < 1) corrupt('Huffman stream sizes do not fit');
        const seg = Math.floor((litSize + 3) / 4);
        if (seg * 3 > litSize) corrupt('too few literals for four Huffman streams');
        decodeHuffmanStream(t, b, p, p + s1, lit, 0, seg);
        decodeHuffmanStream(t, b, p + s1, p + s1 + s2, lit, seg, 2 * seg);
        decodeHuffmanStream(t, b, p + s1 + s2, p + s1 + s2 + s3, lit, 2 * seg, 3 * seg);
        decodeHuffmanStream(t, b, p + s1 + s2 + s3, litEnd, lit, 3 * seg, litSize);
      }
      pos = litEnd;
    }

    // Sequences_Section_Header (3.1.1.3.2.1)
    if (pos >= end) corrupt('missing sequences section');
    let nbSeq = b[pos++]!;
    if (nbSeq >= 128) {
      if (nbSeq < 255) {
        if (pos >= end) corrupt('truncated sequences header');
        nbSeq = ((nbSeq - 128) << 8) + b[pos++]!;
      } else {
        if (pos + 2 > end) corrupt('truncated sequences header');
        nbSeq = b[pos]! + (b[pos + 1]! << 8) + 0x7f00;
        pos += 2;
      }
    }
    const blockStart = f.pos;
    if (nbSeq === 0) {
      if (pos !== end) corrupt('bytes after a block without sequences');
      this.writeBytes(lit, 0, litSize);
      return;
    }
    if (pos >= end) corrupt('truncated sequences header');
    const modes = b[pos++]!;
    if (modes & 3) corrupt('reserved bits set in the sequence compression modes');
    const table = (mode: number, previous: FseTable | undefined, def: FseTable, maxSym: number, maxLog: number) => {
      switch (mode) {
        case 0:
          return def;
        case 1: {
          if (pos >= end) corrupt('truncated RLE sequence table');
          const s = b[pos++]!;
          if (s > maxSym) corrupt('RLE sequence symbol out of range');
          return rleTable(s);
        }
        case 2: {
          const d = readFseDescription(b, pos, end, maxSym, maxLog);
          pos += d.size;
          return d.table;
        }
        default:
          if (!previous) corrupt('repeated sequence table without a previous one');
          return previous!;
      }
    };
    f.ll = table(modes >> 6, f.ll, LL_DEFAULT, 35, 9);
    f.of = table((modes >> 4) & 3, f.of, OF_DEFAULT, 31, 8);
    f.ml = table((modes >> 2) & 3, f.ml, ML_DEFAULT, 52, 9);
    const ll = f.ll;
    const of = f.of;
    const ml = f.ml;
    const bits = new BackwardBits(b, pos, end);
    let llState = bits.read(ll.log);
    let ofState = bits.read(of.log);
    let mlState = bits.read(ml.log);
    const rep = f.rep;
    let litPos = 0;
    for (let n = 0; n < nbSeq; n++) {
      const ofCode = of.symbol[ofState]!;
      const mlCode = ml.symbol[mlState]!;
      const llCode = ll.symbol[llState]!;
      if (ofCode > 31) corrupt('offset code out of range');
      const ofValue = 2 ** ofCode + bits.read(ofCode);
      const matchLength = ML_BASE[mlCode]! + bits.read(ML_BITS[mlCode]!);
      const litLength = LL_BASE[llCode]! + bits.read(LL_BITS[llCode]!);
      // Repeat offsets (3.1.1.5).
      let offset: number;
      if (ofValue > 3) {
        offset = ofValue - 3;
        rep[2] = rep[1];
        rep[1] = rep[0];
        rep[0] = offset;
      } else {
        const idx = ofValue - 1 + (litLength === 0 ? 1 : 0);
        if (idx === 0) offset = rep[0];
        else if (idx === 1) {
          offset = rep[1];
          rep[1] = rep[0];
          rep[0] = offset;
        } else {
          offset = idx === 2 ? rep[2] : rep[0] - 1;
          rep[2] = rep[1];
          rep[1] = rep[0];
          rep[0] = offset;
        }
        if (offset === 0) corrupt('repeat offset of zero');
      }
      if (n + 1 < nbSeq) {
        llState = ll.baseline[llState]! + bits.read(ll.nbBits[llState]!);
        mlState = ml.baseline[mlState]! + bits.read(ml.nbBits[mlState]!);
        ofState = of.baseline[ofState]! + bits.read(of.nbBits[ofState]!);
      }
      if (bits.left < 0) corrupt('sequences bitstream overrun');
      if (litPos + litLength > litSize) corrupt('sequence takes more literals than the block has');
      if (f.pos - blockStart + litLength + matchLength > f.blockMax) corrupt('block decodes to more than a block');
      if (litLength > 0) this.writeBytes(lit, litPos, litLength);
      litPos += litLength;
      this.copyMatch(offset, matchLength);
    }
    if (bits.left !== 0) corrupt('sequences bitstream not consumed exactly');
    if (f.pos - blockStart + litSize - litPos > f.blockMax) corrupt('block decodes to more than a block');
    this.writeBytes(lit, litPos, litSize - litPos);
  }
}

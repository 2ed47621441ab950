import { AttestationError } from './errors.js';

/**
 * A minimal DER reader for the few structures Node's X509Certificate does not expose
 * (certificate extensions, CRLs, Intel's SGX extension). Definite lengths and low tag numbers
 * only; anything else is rejected rather than guessed at. Every read is bounds-checked.
 */
export interface DerNode {
  /** The identifier octet (class, constructed bit and tag number). */
  readonly tag: number;
  /** The whole element: identifier, length and content. */
  readonly raw: Buffer;
  readonly content: Buffer;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function fail(detail: string): never {
  throw new AttestationError('asn1.decode', detail);
}

/** Reads one element starting at `offset`. */
export function readElement(buf: Buffer, offset = 0): DerNode {
  if (offset + 2 > buf.length) fail(`truncated element header at offset ${offset}`);
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) fail(`high tag numbers are not supported (offset ${offset})`);
  let pos = offset + 1;
  const first = buf[pos++]!;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) fail(`indefinite length at offset ${offset}`);
    if (n > 4) fail(`length of ${n} octets at offset ${offset}`);
    if (pos + n > buf.length) fail(`truncated length at offset ${offset}`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[pos++]!;
    if (length < 0x80 || buf[pos - n] === 0) fail(`non-minimal length at offset ${offset}`);
  }
  if (pos + length > buf.length)
    fail(`element at offset ${offset} claims ${length} bytes, only ${buf.length - pos} left`);
  return { tag, raw: buf.subarray(offset, pos + length), content: buf.subarray(pos, pos + length) };
}

/** Parses `buf` as exactly one element; trailing bytes are an error. */
export function readSingle(buf: Buffer): DerNode {
  const node = readElement(buf, 0);
  if (node.raw.length !== buf.length) fail(`${buf.length - node.raw.length} trailing bytes after element`);
  return node;
}

/** The elements inside a constructed node. */
export function children(node: DerNode): DerNode[] {
  if ((node.tag & 0x20) === 0) fail(`tag 0x${node.tag.toString(16)} is not constructed`);
  const out: DerNode[] = [];
  for (let pos = 0; pos < node.content.length;) {
    const child = readElement(node.content, pos);
    out.push(child);
    pos += child.raw.length;
  }
  return out;
}

export function expectTag(node: DerNode, tag: number, what: string): DerNode {
  if (node.tag !== tag) fail(`${what}: tag 0x${node.tag.toString(16)}, want 0x${tag.toString(16)}`);
  return node;
}

/** A non-negative INTEGER as a JS number; rejects values that do not fit 2^48. */
export function readSmallUint(node: DerNode, what: string): number {
  expectTag(node, TAG.INTEGER, what);
  const c = node.content;
  if (c.length === 0 || (c[0]! & 0x80) !== 0) fail(`${what}: not a non-negative integer`);
  if (c.length > 7) fail(`${what}: integer too large`);
  let v = 0;
  for (const b of c) v = v * 256 + b;
  return v;
}

/** Dotted-decimal text of an OBJECT IDENTIFIER. */
export function readOid(node: DerNode): string {
  expectTag(node, TAG.OID, 'object identifier');
  const c = node.content;
  if (c.length === 0 || (c[c.length - 1]! & 0x80) !== 0) fail('malformed object identifier');
  const arcs: number[] = [];
  let v = 0;
  for (const b of c) {
    if (v > 2 ** 45) fail('object identifier arc too large');
    v = v * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(v);
      v = 0;
    }
  }
  const first = arcs.shift()!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

/** UTCTime or GeneralizedTime (the two forms X.509 allows) as a Date. */
export function readTime(node: DerNode): Date {
  const s = node.content.toString('latin1');
  let m: RegExpExecArray | null;
  if (node.tag === TAG.UTC_TIME && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const yy = Number(m[1]);
    return utc(yy >= 50 ? 1900 + yy : 2000 + yy, m.slice(2));
  }
  if (node.tag === TAG.GENERALIZED_TIME && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    return utc(Number(m[1]), m.slice(2));
  }
  fail(`unsupported time encoding ${JSON.stringify(s)}`);
}

function utc(year: number, rest: string[]): Date {
  const [mo, d, h, mi, se] = rest.map(Number) as [number, number, number, number, number];
  return new Date(Date.UTC(year, mo - 1, d, h, mi, se));
}

/** Universal tag numbers whose constructed form only BER allows (DER encodes them primitive). */
const PRIMITIVE_ONLY = new Set([
  0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x0c, 0x12, 0x13, 0x14, 0x16, 0x17, 0x18, 0x1a, 0x1e,
]);
const MAX_DEPTH = 32;

/**
 * Checks that `node` and everything inside it is distinguished encoding: definite minimal
 * lengths (readElement), primitive forms of primitive types, canonical BOOLEAN, INTEGER, BIT
 * STRING, NULL and time values, no end-of-contents. Such an encoding is the only encoding of
 * its value, so two parsers cannot read it differently. Throws asn1.decode otherwise.
 */
export function checkDistinguished(node: DerNode, depth = 0): void {
  if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
  const universal = (node.tag & 0xc0) === 0;
  const number = node.tag & 0x1f;
  if (node.tag === 0) fail('end-of-contents octets (BER indefinite form)');
  if ((node.tag & 0x20) !== 0) {
    if (universal && PRIMITIVE_ONLY.has(number)) fail(`constructed encoding of universal type ${number} (BER only)`);
    for (const child of children(node)) checkDistinguished(child, depth + 1);
    return;
  }
  if (!universal) return;
  const c = node.content;
  switch (node.tag) {
    case TAG.BOOLEAN:
      if (c.length !== 1 || (c[0] !== 0x00 && c[0] !== 0xff)) fail('BOOLEAN must be one octet 00 or ff');
      break;
    case TAG.INTEGER:
    case TAG.ENUMERATED:
      if (c.length === 0) fail('empty INTEGER');
      if (c.length > 1 && ((c[0] === 0x00 && c[1]! < 0x80) || (c[0] === 0xff && c[1]! >= 0x80)))
        fail('INTEGER is not minimally encoded');
      break;
    case TAG.BIT_STRING: {
      const unused = c[0];
      if (unused === undefined || unused > 7 || (c.length === 1 && unused !== 0)) fail('malformed BIT STRING');
      if (unused > 0 && (c[c.length - 1]! & ((1 << unused) - 1)) !== 0) fail('BIT STRING padding bits are not zero');
      break;
    }
    case TAG.NULL:
      if (c.length !== 0) fail('NULL with content');
      break;
    case TAG.OID:
      readOid(node);
      if (c[0] === 0x80 || c.some((b, i) => b === 0x80 && (i === 0 || (c[i - 1]! & 0x80) === 0)))
        fail('object identifier arc with a leading zero octet');
      break;
    case TAG.UTC_TIME:
    case TAG.GENERALIZED_TIME:
      readTime(node);
      break;
    default:
      break;
  }
}

/**
 * The DER writer: just enough to build aTLS and mesh certificates with node:crypto alone (the
 * hot path of every aTLS connection and of every attested pod; a general X.509 library is an
 * order of magnitude slower here). The one DER reader is src/attestation/der.ts.
 */

export function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...body: Uint8Array[]): Buffer {
  const b = Buffer.concat(body);
  return Buffer.concat([Buffer.from([tag]), len(b.length), b]);
}

export const seq = (...body: Uint8Array[]) => tlv(0x30, ...body);

export const octetString = (body: Uint8Array) => tlv(0x04, body);

export const utf8String = (text: string) => tlv(0x0c, Buffer.from(text, 'utf8'));

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => BigInt(a));
  if (arcs.length < 2) throw new Error(`invalid OID ${dotted}`);
  const out: number[] = [];
  const push = (v: bigint): void => {
    const bytes: number[] = [Number(v & 0x7fn)];
    for (let x = v >> 7n; x > 0n; x >>= 7n) bytes.unshift(Number((x & 0x7fn) | 0x80n));
    out.push(...bytes);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return tlv(0x06, Buffer.from(out));
}

const two = (n: number) => String(n).padStart(2, '0');
const monthToSecond = (d: Date) =>
  `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;

export function utcTime(d: Date): Buffer {
  return tlv(0x17, Buffer.from(`${two(d.getUTCFullYear() % 100)}${monthToSecond(d)}`, 'ascii'));
}

/** A validity time as X.509 wants it: UTCTime up to 2049, GeneralizedTime from 2050 on. */
export function x509Time(d: Date): Buffer {
  if (d.getUTCFullYear() < 2050) return utcTime(d);
  return tlv(0x18, Buffer.from(`${d.getUTCFullYear()}${monthToSecond(d)}`, 'ascii'));
}

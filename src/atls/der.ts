/**
 * Just enough DER to build and read aTLS certificates with node:crypto alone (the hot path of
 * every aTLS connection; a general X.509 library is an order of magnitude slower here).
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

export function oidToString(body: Buffer): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const b of body) {
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs.shift() ?? 0n;
  const a0 = first < 40n ? 0n : first < 80n ? 1n : 2n;
  return [a0, first - a0 * 40n, ...arcs].join('.');
}

export function utcTime(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0');
  const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return tlv(0x17, Buffer.from(s, 'ascii'));
}

export interface Node {
  tag: number;
  /** Offset of the contents inside the buffer. */
  start: number;
  end: number;
  body: Buffer;
  /** The whole element including tag and length. */
  raw: Buffer;
}

export function read(buf: Buffer, pos = 0): Node {
  const tag = buf[pos];
  if (tag === undefined) throw new Error('DER: unexpected end');
  let l = buf[pos + 1];
  if (l === undefined) throw new Error('DER: unexpected end');
  let off = pos + 2;
  if (l & 0x80) {
    const n = l & 0x7f;
    if (n === 0 || n > 4) throw new Error('DER: unsupported length');
    l = 0;
    for (let i = 0; i < n; i++) l = l * 256 + (buf[off + i] ?? 0);
    off += n;
  }
  if (off + l > buf.length) throw new Error('DER: length runs past the data');
  return { tag, start: off, end: off + l, body: buf.subarray(off, off + l), raw: buf.subarray(pos, off + l) };
}

export function children(node: Node): Node[] {
  const out: Node[] = [];
  let pos = 0;
  while (pos < node.body.length) {
    const c = read(node.body, pos);
    out.push(c);
    pos = c.end;
  }
  return out;
}

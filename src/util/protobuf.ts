/**
 * A minimal proto3 codec for the Coordinator's messages and SEV-SNP evidence: length-delimited
 * (bytes, string, embedded message) and varint (bool) fields, repeated or singular. Unknown
 * fields are skipped, so newer peers with extra fields still interoperate. It sits in util so
 * that attestation, which decodes evidence, does not depend on the Coordinator.
 */

export type FieldType = 'bytes' | 'string' | 'bool' | 'message';

export interface Field {
  no: number;
  name: string;
  type: FieldType;
  repeated?: boolean;
  message?: Schema;
}

export type Schema = readonly Field[];

export class ProtoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtoError';
  }
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

function readVarint(buf: Buffer, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new ProtoError('truncated varint');
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if (!(b & 0x80)) {
      if (result > Number.MAX_SAFE_INTEGER) throw new ProtoError('varint too large');
      return [result, pos];
    }
    mul *= 0x80;
  }
  throw new ProtoError('varint too long');
}

function encodeValue(f: Field, v: unknown): Buffer | undefined {
  switch (f.type) {
    case 'bool':
      return v ? Buffer.concat([varint((f.no << 3) | 0), Buffer.from([1])]) : undefined;
    case 'string': {
      const b = Buffer.from(String(v ?? ''), 'utf8');
      return b.length === 0 && !f.repeated ? undefined : Buffer.concat([varint((f.no << 3) | 2), varint(b.length), b]);
    }
    case 'bytes': {
      const b = v === undefined || v === null ? Buffer.alloc(0) : Buffer.from(v as Uint8Array);
      return b.length === 0 && !f.repeated ? undefined : Buffer.concat([varint((f.no << 3) | 2), varint(b.length), b]);
    }
    case 'message': {
      if (v === undefined || v === null) return undefined;
      const b = encode(f.message!, v as Record<string, unknown>);
      return Buffer.concat([varint((f.no << 3) | 2), varint(b.length), b]);
    }
  }
}

export function encode(schema: Schema, obj: Record<string, unknown>): Buffer {
  const parts: Buffer[] = [];
  for (const f of schema) {
    const v = obj[f.name];
    const values = f.repeated ? ((v as unknown[] | undefined) ?? []) : [v];
    for (const item of values) {
      const b = encodeValue(f, item);
      if (b) parts.push(b);
    }
  }
  return Buffer.concat(parts);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function utf8(body: Buffer, name: string): string {
  try {
    return UTF8.decode(body);
  } catch {
    throw new ProtoError(`field ${name} is not valid UTF-8`);
  }
}

export function decode<T = Record<string, unknown>>(schema: Schema, data: Uint8Array): T {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: Record<string, unknown> = {};
  for (const f of schema) {
    if (f.repeated) out[f.name] = [];
    else if (f.type === 'bytes') out[f.name] = Buffer.alloc(0);
    else if (f.type === 'string') out[f.name] = '';
    else if (f.type === 'bool') out[f.name] = false;
  }
  // proto3 lets a repeated singular field override (or, for messages, merge with) the earlier
  // one; no encoder of ours or upstream's writes one twice, so a second copy is refused rather
  // than read one way here and another way elsewhere.
  const seen = new Set<number>();
  let pos = 0;
  while (pos < buf.length) {
    let tag: number;
    [tag, pos] = readVarint(buf, pos);
    const no = Math.floor(tag / 8);
    const wire = tag & 7;
    if (no === 0) throw new ProtoError('field number 0');
    const f = schema.find((x) => x.no === no);
    let value: unknown;
    if (wire === 0) {
      let n: number;
      [n, pos] = readVarint(buf, pos);
      if (f?.type === 'bool' && n > 1) throw new ProtoError(`field ${f.name}: bool value ${n}`);
      value = n !== 0;
    } else if (wire === 2) {
      let len: number;
      [len, pos] = readVarint(buf, pos);
      if (pos + len > buf.length) throw new ProtoError(`field ${no}: length ${len} runs past the message`);
      const body = buf.subarray(pos, pos + len);
      pos += len;
      if (f?.type === 'string') value = utf8(body, f.name);
      else if (f?.type === 'message') value = decode(f.message!, body);
      else value = Buffer.from(body);
    } else if (wire === 1 || wire === 5) {
      // fixed64 / fixed32: no field of ours has these types; skipped when unknown, refused below when known.
      pos += wire === 1 ? 8 : 4;
    } else {
      throw new ProtoError(`unsupported wire type ${wire} for field ${no}`);
    }
    if (!f) continue;
    const expectedWire = f.type === 'bool' ? 0 : 2;
    if (wire !== expectedWire) throw new ProtoError(`field ${f.name} has wire type ${wire}, expected ${expectedWire}`);
    if (f.repeated) {
      (out[f.name] as unknown[]).push(value);
    } else {
      if (seen.has(no)) throw new ProtoError(`field ${f.name} appears twice`);
      seen.add(no);
      out[f.name] = value;
    }
  }
  if (pos !== buf.length) throw new ProtoError('truncated message');
  return out as T;
}

/**
 * The proto3 codec (src/util/protobuf.ts) byte for byte: what each field type encodes to (the
 * wire format upstream Contrast's Go code reads), what is left out, defaults on decode, and one
 * refusal per malformed input, each with the message that names it.
 */
import assert from 'node:assert/strict';
import { decode, encode, ProtoError, type Schema } from '../../src/util/protobuf.js';

const Inner: Schema = [{ no: 1, name: 'x', type: 'bytes' }];
const S: Schema = [
  { no: 1, name: 'b', type: 'bytes' },
  { no: 2, name: 's', type: 'string' },
  { no: 3, name: 'f', type: 'bool' },
  { no: 4, name: 'm', type: 'message', message: Inner },
  { no: 5, name: 'rb', type: 'bytes', repeated: true },
  { no: 6, name: 'rs', type: 'string', repeated: true },
  { no: 7, name: 'rm', type: 'message', repeated: true, message: Inner },
  { no: 200, name: 'big', type: 'bytes' },
];
const h = (hex: string) => Buffer.from(hex.replace(/\s/g, ''), 'hex');
const refuses = (data: Buffer, message: string | RegExp) =>
  assert.throws(
    () => decode(S, data),
    (e: unknown) =>
      e instanceof ProtoError &&
      e.name === 'ProtoError' &&
      (typeof message === 'string' ? e.message === message : message.test(e.message)),
  );

describe('proto3 codec', () => {
  describe('encode', () => {
    it('writes each field type as tag, length and content, in schema order', () => {
      assert.deepEqual(encode(S, { b: Buffer.from('ab') }), h('0a02 6162'));
      assert.deepEqual(encode(S, { s: 'hé' }), h('1203 68c3a9'));
      assert.deepEqual(encode(S, { f: true }), h('1801'));
      assert.deepEqual(encode(S, { m: { x: Buffer.from('z') } }), h('2203 0a017a'));
      assert.deepEqual(encode(S, { m: {} }), h('2200'), 'an empty message is present');
      assert.deepEqual(encode(S, { big: Buffer.from('q') }), h('c20c01 71'), 'a two-byte tag');
      assert.deepEqual(encode(S, { f: true, b: Buffer.from('a') }), h('0a0161 1801'));
    });

    it('leaves out proto3 defaults of singular fields, keeps every element of repeated ones', () => {
      assert.deepEqual(encode(S, {}), Buffer.alloc(0));
      assert.deepEqual(encode(S, { b: Buffer.alloc(0), s: '', f: false, m: undefined }), Buffer.alloc(0));
      assert.deepEqual(encode(S, { b: null, s: null, m: null }), Buffer.alloc(0));
      assert.deepEqual(encode(S, { rb: [Buffer.alloc(0), Buffer.from('a')] }), h('2a00 2a0161'));
      assert.deepEqual(encode(S, { rs: ['', 'b'] }), h('3200 320162'));
      assert.deepEqual(encode(S, { rm: [{}, { x: Buffer.from('c') }] }), h('3a00 3a03 0a0163'));
      assert.deepEqual(encode(S, { rb: [] }), Buffer.alloc(0));
    });

    it('writes multi-byte lengths (127, 128, 16384 bytes)', () => {
      for (const [n, head] of [
        [127, '0a7f'],
        [128, '0a8001'],
        [300, '0aac02'],
        [16383, '0aff7f'],
        [16384, '0a808001'],
      ] as const) {
        const b = Buffer.alloc(n, 1);
        const out = encode(S, { b });
        assert.deepEqual(out.subarray(0, out.length - n), h(head), `length ${n}`);
        assert.deepEqual(decode<{ b: Buffer }>(S, out).b, b);
      }
    });
  });

  describe('decode', () => {
    it('gives defaults for absent fields and a copy of the bytes', () => {
      const d = decode<Record<string, unknown>>(S, Buffer.alloc(0));
      assert.deepEqual(d, { b: Buffer.alloc(0), s: '', f: false, rb: [], rs: [], rm: [], big: Buffer.alloc(0) });
      assert.equal('m' in d, false, 'an absent message stays absent');
      const data = h('0a0161');
      const got = decode<{ b: Buffer }>(S, data).b;
      data[2] = 0x62;
      assert.deepEqual(got, Buffer.from('a'), 'not a view of the input');
    });

    it('reads what encode writes, from any view of a larger buffer', () => {
      const msg = {
        b: Buffer.from('b'),
        s: 'ß',
        f: true,
        m: { x: Buffer.from('x') },
        rb: [Buffer.from('1'), Buffer.alloc(0)],
        rs: ['', 'r'],
        rm: [{ x: Buffer.alloc(0) }],
        big: Buffer.from('g'),
      };
      const enc = encode(S, msg);
      const padded = Buffer.concat([Buffer.from('junk'), enc, Buffer.from('more')]);
      assert.deepEqual(decode(S, padded.subarray(4, 4 + enc.length)), msg);
      assert.deepEqual(decode(S, new Uint8Array(enc)), msg);
    });

    it('skips unknown fields of every wire type; known fields of the wrong wire type are refused', () => {
      // field 9: varint, fixed64, length-delimited, fixed32.
      const unknown = h('4805 4901020304050607 08 4a0161 4d01020304');
      assert.deepEqual(decode<{ b: Buffer }>(S, Buffer.concat([unknown, h('0a0161')])).b, Buffer.from('a'));
      refuses(h('0801'), 'field b has wire type 0, expected 2');
      refuses(h('1a0101'), 'field f has wire type 2, expected 0');
      refuses(h('1d01020304'), 'field f has wire type 5, expected 0');
      refuses(h('210102030405060708'), 'field m has wire type 1, expected 2');
    });

    it('bools are 0 or 1, unknown varints any value', () => {
      assert.equal(decode<{ f: boolean }>(S, h('1800')).f, false);
      assert.equal(decode<{ f: boolean }>(S, h('1801')).f, true);
      refuses(h('1802'), 'field f: bool value 2');
      refuses(h('18ff01'), 'field f: bool value 255');
      assert.doesNotThrow(() => decode(S, h('48ff01')));
    });

    it('a singular field once, a repeated one any number of times, in order', () => {
      refuses(h('0a0161 0a0162'), 'field b appears twice');
      refuses(h('1801 1800'), 'field f appears twice');
      refuses(h('2200 2200'), 'field m appears twice');
      assert.deepEqual(decode<{ rs: string[] }>(S, h('320161 320162 320163')).rs, ['a', 'b', 'c']);
    });

    it('refuses malformed input with a message naming what is wrong', () => {
      refuses(h('0201'), 'field number 0');
      refuses(h('0001'), 'field number 0');
      refuses(h('80'), 'truncated varint');
      refuses(h('0a'), 'truncated varint');
      refuses(h('0a80'), 'truncated varint');
      refuses(h('ffffffffffffffffff01'), 'varint too large');
      refuses(h('0a ffffffffffffffff7f'), 'varint too large');
      refuses(h('ffffffffffffffffffff01'), 'varint too long');
      refuses(h('0a0261'), 'field 1: length 2 runs past the message');
      refuses(h('4a05 61'), 'field 9: length 5 runs past the message');
      refuses(h('4b'), 'unsupported wire type 3 for field 9');
      refuses(h('4c'), 'unsupported wire type 4 for field 9');
      refuses(h('4e'), 'unsupported wire type 6 for field 9');
      refuses(h('4f'), 'unsupported wire type 7 for field 9');
      refuses(h('49 01020304050607'), 'truncated message');
      refuses(h('4d 010203'), 'truncated message');
      refuses(h('1202c328'), 'field s is not valid UTF-8');
      refuses(h('3201ff'), 'field rs is not valid UTF-8');
      refuses(h('2202 0a05'), 'field 1: length 5 runs past the message');
      // Controls at the edges: the largest exact varint, a length that ends at the last byte.
      assert.doesNotThrow(() => decode(S, h('48 ffffffffffffff0f')));
      assert.doesNotThrow(() => decode(S, h('49 0102030405060708')));
      assert.doesNotThrow(() => decode(S, h('4d 01020304')));
      assert.deepEqual(decode<{ s: string }>(S, h('1202c3a9')).s, 'é');
    });
  });
});

/**
 * The DER reader (src/attestation/der.ts) that every certificate extension, CRL and SGX
 * extension goes through. Each refusal must be asn1.decode with its reason; each boundary is
 * tested from both sides, so a reader that accepts one byte too much or too little fails here.
 */
import assert from 'node:assert/strict';
import { AttestationError } from '../../src/attestation/errors.js';
import {
  TAG,
  checkDistinguished,
  children,
  expectTag,
  readElement,
  readOid,
  readSingle,
  readSmallUint,
  readTime,
} from '../../src/attestation/der.js';

const b = (...bytes: number[]) => Buffer.from(bytes);

/** An assert.throws matcher: asn1.decode with a detail matching `reason`. */
function asn1(reason: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof AttestationError, `expected an AttestationError, got ${String(err)}`);
    assert.equal(err.check, 'asn1.decode', err.message);
    assert.match(err.detail, reason);
    return true;
  };
}

/** DER of one element with the given tag and content (any length form the content needs). */
function el(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len = n < 0x80 ? b(n) : n < 0x100 ? b(0x81, n) : b(0x82, n >> 8, n & 0xff);
  return Buffer.concat([b(tag), len, content]);
}

describe('DER reader: element headers and lengths', () => {
  it('reads tag, content and the whole element, at an offset too', () => {
    const buf = b(0xff, 0x04, 0x02, 0xaa, 0xbb, 0xee);
    const n = readElement(buf, 1);
    assert.equal(n.tag, 0x04);
    assert.deepEqual(n.content, b(0xaa, 0xbb));
    assert.deepEqual(n.raw, b(0x04, 0x02, 0xaa, 0xbb));
  });

  it('reads an empty element that is exactly two bytes long', () => {
    const n = readSingle(b(0x05, 0x00));
    assert.equal(n.tag, TAG.NULL);
    assert.equal(n.content.length, 0);
    assert.equal(n.raw.length, 2);
  });

  it('refuses a header that is cut short', () => {
    assert.throws(() => readElement(b()), asn1(/truncated element header at offset 0/));
    assert.throws(() => readElement(b(0x04)), asn1(/truncated element header at offset 0/));
    assert.throws(() => readElement(b(0x30, 0x00, 0x04), 2), asn1(/truncated element header at offset 2/));
  });

  it('refuses high tag numbers, primitive and constructed, and accepts tag number 30', () => {
    assert.throws(() => readElement(b(0x1f, 0x01, 0x00)), asn1(/high tag numbers/));
    assert.throws(() => readElement(b(0xbf, 0x01, 0x00)), asn1(/high tag numbers/));
    assert.equal(readSingle(b(0x1e, 0x00)).tag, 0x1e);
  });

  it('takes a length below 0x80 in short form (127 bytes) and 0x80 or more in long form', () => {
    const short = readSingle(Buffer.concat([b(0x04, 0x7f), Buffer.alloc(0x7f, 1)]));
    assert.equal(short.content.length, 0x7f);
    const long = readSingle(Buffer.concat([b(0x04, 0x81, 0x80), Buffer.alloc(0x80, 2)]));
    assert.equal(long.content.length, 0x80);
    assert.equal(long.content[0], 2);
    const two = readSingle(Buffer.concat([b(0x04, 0x82, 0x01, 0x00), Buffer.alloc(0x100, 3)]));
    assert.equal(two.content.length, 0x100);
    assert.equal(two.raw.length, 0x104);
  });

  it('refuses the indefinite length and lengths of more than four octets', () => {
    assert.throws(() => readElement(b(0x30, 0x80, 0x00, 0x00)), asn1(/indefinite length at offset 0/));
    assert.throws(() => readElement(b(0x04, 0x85, 1, 0, 0, 0, 0)), asn1(/length of 5 octets/));
    // Four length octets are read (the element is then too long for the buffer).
    assert.throws(() => readElement(b(0x04, 0x84, 0x01, 0x00, 0x00, 0x00)), asn1(/claims 16777216 bytes, only 0 left/));
  });

  it('refuses length octets that run past the buffer', () => {
    assert.throws(() => readElement(b(0x04, 0x81)), asn1(/truncated length/));
    assert.throws(() => readElement(b(0x04, 0x82, 0x01)), asn1(/truncated length/));
  });

  it('refuses non-minimal long-form lengths', () => {
    assert.throws(
      () => readElement(Buffer.concat([b(0x04, 0x81, 0x7f), Buffer.alloc(0x7f)])),
      asn1(/non-minimal length/),
    );
    assert.throws(
      () => readElement(Buffer.concat([b(0x04, 0x82, 0x00, 0x80), Buffer.alloc(0x80)])),
      asn1(/non-minimal length/),
    );
  });

  it('refuses content longer than the buffer, and accepts content that ends exactly at its end', () => {
    assert.throws(() => readElement(b(0x04, 0x03, 1, 2)), asn1(/claims 3 bytes, only 2 left/));
    assert.equal(readElement(b(0x04, 0x02, 1, 2)).content.length, 2);
  });

  it('refuses trailing bytes after a single element', () => {
    assert.throws(() => readSingle(b(0x05, 0x00, 0x00)), asn1(/^1 trailing bytes after element/));
    assert.throws(() => readSingle(b(0x05, 0x00, 0x05, 0x00)), asn1(/^2 trailing bytes/));
  });
});

describe('DER reader: structure', () => {
  it('lists the children of a constructed element in order', () => {
    const seq = readSingle(b(0x30, 0x07, 0x02, 0x01, 0x05, 0x04, 0x02, 0xaa, 0xbb));
    const kids = children(seq);
    assert.deepEqual(
      kids.map((k) => k.tag),
      [TAG.INTEGER, TAG.OCTET_STRING],
    );
    assert.deepEqual(kids[1]!.content, b(0xaa, 0xbb));
    assert.deepEqual(children(readSingle(b(0x30, 0x00))), []);
    // Context-specific constructed tags have children too.
    assert.equal(children(readSingle(b(0xa3, 0x02, 0x05, 0x00)))[0]!.tag, TAG.NULL);
  });

  it('refuses to list children of a primitive element, and a child that overruns its parent', () => {
    assert.throws(() => children(readSingle(b(0x04, 0x02, 0x05, 0x00))), asn1(/tag 0x4 is not constructed/));
    assert.throws(() => children(readSingle(b(0x30, 0x02, 0x04, 0x05))), asn1(/claims 5 bytes/));
  });

  it('checks an expected tag', () => {
    const n = readSingle(b(0x02, 0x01, 0x01));
    assert.equal(expectTag(n, TAG.INTEGER, 'x'), n);
    assert.throws(() => expectTag(n, TAG.OCTET_STRING, 'the serial'), asn1(/^the serial: tag 0x2, want 0x4$/));
  });
});

describe('DER reader: INTEGER, OBJECT IDENTIFIER and time values', () => {
  it('reads small non-negative integers up to seven octets', () => {
    assert.equal(readSmallUint(readSingle(b(0x02, 0x01, 0x00)), 'v'), 0);
    assert.equal(readSmallUint(readSingle(b(0x02, 0x01, 0x7f)), 'v'), 127);
    assert.equal(readSmallUint(readSingle(b(0x02, 0x02, 0x00, 0xff)), 'v'), 255);
    assert.equal(readSmallUint(readSingle(b(0x02, 0x02, 0x01, 0x02)), 'v'), 258);
    assert.equal(
      readSmallUint(readSingle(b(0x02, 0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07)), 'v'),
      0x01020304050607,
    );
  });

  it('refuses integers that are not small and non-negative', () => {
    assert.throws(() => readSmallUint(readSingle(b(0x04, 0x01, 0x01)), 'blSPL'), asn1(/^blSPL: tag 0x4, want 0x2/));
    assert.throws(() => readSmallUint(readSingle(b(0x02, 0x00)), 'blSPL'), asn1(/^blSPL: not a non-negative integer/));
    assert.throws(
      () => readSmallUint(readSingle(b(0x02, 0x01, 0x80)), 'blSPL'),
      asn1(/^blSPL: not a non-negative integer/),
    );
    assert.throws(
      () => readSmallUint(readSingle(b(0x02, 0x08, 0, 1, 2, 3, 4, 5, 6, 7)), 'blSPL'),
      asn1(/^blSPL: integer too large/),
    );
  });

  it('reads object identifiers, splitting the first octet into the first two arcs', () => {
    const oid = (...c: number[]) => readOid(readSingle(Buffer.concat([b(0x06, c.length), b(...c)])));
    assert.equal(oid(0x55, 0x04, 0x03), '2.5.4.3');
    assert.equal(oid(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02), '1.2.840.10045.4.3.2');
    assert.equal(oid(0x09), '0.9');
    assert.equal(oid(39), '0.39');
    assert.equal(oid(40), '1.0');
    assert.equal(oid(79), '1.39');
    assert.equal(oid(80), '2.0');
    assert.equal(oid(0x81, 0x00), '2.48');
    // An arc of 2^52: the accumulator reaches exactly 2^45 before its last octet, which is allowed.
    assert.equal(oid(0x2a, 0x88, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), `1.2.${2 ** 52}`);
  });

  it('refuses malformed object identifiers', () => {
    assert.throws(() => readOid(readSingle(b(0x04, 0x01, 0x2a))), asn1(/object identifier: tag 0x4, want 0x6/));
    assert.throws(() => readOid(readSingle(b(0x06, 0x00))), asn1(/malformed object identifier/));
    assert.throws(() => readOid(readSingle(b(0x06, 0x02, 0x2a, 0x86))), asn1(/malformed object identifier/));
    // One octet more and the arc could no longer be represented exactly.
    assert.throws(
      () => readOid(readSingle(b(0x06, 0x0a, 0x2a, 0x88, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00))),
      asn1(/arc too large/),
    );
  });

  it('reads UTCTime (years 1950-2049) and GeneralizedTime', () => {
    const t = (tag: number, s: string) => readTime(readSingle(el(tag, Buffer.from(s))));
    assert.equal(t(TAG.UTC_TIME, '250102030405Z').toISOString(), '2025-01-02T03:04:05.000Z');
    assert.equal(t(TAG.UTC_TIME, '491231235959Z').toISOString(), '2049-12-31T23:59:59.000Z');
    assert.equal(t(TAG.UTC_TIME, '500101000000Z').toISOString(), '1950-01-01T00:00:00.000Z');
    assert.equal(t(TAG.UTC_TIME, '991130120000Z').toISOString(), '1999-11-30T12:00:00.000Z');
    assert.equal(t(TAG.GENERALIZED_TIME, '20501231235958Z').toISOString(), '2050-12-31T23:59:58.000Z');
  });

  it('refuses other time encodings', () => {
    const t = (tag: number, s: string) => () => readTime(readSingle(el(tag, Buffer.from(s))));
    for (const [tag, s] of [
      [TAG.UTC_TIME, '2501020304Z'],
      [TAG.UTC_TIME, '250102030405'],
      [TAG.UTC_TIME, '250102030405+0100'],
      [TAG.UTC_TIME, 'x250102030405Z'],
      [TAG.UTC_TIME, '20250102030405Z'],
      [TAG.GENERALIZED_TIME, '250102030405Z'],
      [TAG.GENERALIZED_TIME, '20250102030405.5Z'],
      [TAG.GENERALIZED_TIME, '20250102030405Zx'],
      [TAG.GENERALIZED_TIME, 'x20250102030405Z'],
      [TAG.UTC_TIME, '250102030405Zx'],
      [TAG.OCTET_STRING, '250102030405Z'],
    ] as const) {
      assert.throws(t(tag, s), asn1(/unsupported time encoding/), s);
    }
  });
});

describe('DER reader: distinguished encoding', () => {
  const distinguished = (...bytes: number[]) => checkDistinguished(readSingle(b(...bytes)));
  const refused = (reason: RegExp, ...bytes: number[]) =>
    assert.throws(() => distinguished(...bytes), asn1(reason), Buffer.from(bytes).toString('hex'));

  it('accepts canonical encodings of every checked type', () => {
    for (const bytes of [
      [0x01, 0x01, 0x00],
      [0x01, 0x01, 0xff],
      [0x02, 0x01, 0x00],
      [0x02, 0x02, 0x00, 0x80],
      [0x02, 0x02, 0xff, 0x7f],
      [0x02, 0x02, 0x01, 0x00],
      [0x0a, 0x01, 0x05],
      [0x03, 0x01, 0x00],
      [0x03, 0x02, 0x00, 0xff],
      [0x03, 0x02, 0x01, 0xfe],
      [0x03, 0x02, 0x07, 0x80],
      [0x05, 0x00],
      [0x06, 0x03, 0x55, 0x04, 0x03],
      [0x06, 0x03, 0x2a, 0x81, 0x00],
      [0x06, 0x04, 0x2a, 0x81, 0x80, 0x01],
      [0x17, 0x0d, ...Buffer.from('250101000000Z')],
      [0x30, 0x03, 0x02, 0x01, 0x01],
      [0xa4, 0x02, 0x05, 0x00],
      [0xa3, 0x03, 0x02, 0x01, 0x01],
      [0x80, 0x02, 0x00, 0x01],
      [0x84, 0x01, 0x00],
      [0x0c, 0x02, 0x41, 0x42],
    ]) {
      assert.doesNotThrow(() => distinguished(...bytes), Buffer.from(bytes).toString('hex'));
    }
  });

  it('refuses end-of-contents octets and constructed forms of primitive types', () => {
    refused(/end-of-contents/, 0x00, 0x00);
    refused(/end-of-contents/, 0x30, 0x02, 0x00, 0x00);
    refused(/constructed encoding of universal type 4/, 0x24, 0x03, 0x04, 0x01, 0x00);
    refused(/constructed encoding of universal type 3/, 0x23, 0x00);
    refused(/constructed encoding of universal type 2/, 0x22, 0x00);
    refused(/constructed encoding of universal type 1/, 0x21, 0x00);
    refused(/constructed encoding of universal type 12/, 0x2c, 0x00);
    refused(/constructed encoding of universal type 23/, 0x37, 0x00);
  });

  it('refuses non-canonical BOOLEAN, INTEGER, ENUMERATED, BIT STRING and NULL values', () => {
    refused(/BOOLEAN/, 0x01, 0x01, 0x01);
    refused(/BOOLEAN/, 0x01, 0x00);
    refused(/BOOLEAN/, 0x01, 0x02, 0x00, 0x00);
    refused(/empty INTEGER/, 0x02, 0x00);
    refused(/empty INTEGER/, 0x0a, 0x00);
    refused(/not minimally encoded/, 0x02, 0x02, 0x00, 0x7f);
    refused(/not minimally encoded/, 0x02, 0x02, 0xff, 0x80);
    refused(/not minimally encoded/, 0x0a, 0x02, 0x00, 0x01);
    refused(/malformed BIT STRING/, 0x03, 0x00);
    refused(/malformed BIT STRING/, 0x03, 0x02, 0x08, 0x00);
    refused(/malformed BIT STRING/, 0x03, 0x01, 0x01);
    refused(/padding bits are not zero/, 0x03, 0x02, 0x01, 0x01);
    refused(/padding bits are not zero/, 0x03, 0x02, 0x07, 0x40);
    refused(/NULL with content/, 0x05, 0x01, 0x00);
  });

  it('refuses object identifiers with a leading zero octet in an arc, and malformed times', () => {
    refused(/leading zero octet/, 0x06, 0x02, 0x80, 0x01);
    refused(/leading zero octet/, 0x06, 0x03, 0x2a, 0x80, 0x01);
    refused(/malformed object identifier/, 0x06, 0x00);
    refused(/unsupported time encoding/, 0x17, 0x03, 0x31, 0x32, 0x33);
    refused(/unsupported time encoding/, 0x18, 0x03, 0x31, 0x32, 0x33);
  });

  it('checks every nested element', () => {
    refused(/not minimally encoded/, 0x30, 0x06, 0x30, 0x04, 0x02, 0x02, 0x00, 0x01);
    refused(/BOOLEAN/, 0xa0, 0x03, 0x01, 0x01, 0x01);
  });

  it('accepts 33 levels of nesting and refuses 34', () => {
    const nest = (levels: number) => {
      let x = b(0x05, 0x00);
      for (let i = 0; i < levels - 1; i++) x = Buffer.concat([b(0x30, x.length), x]);
      return x;
    };
    assert.doesNotThrow(() => checkDistinguished(readSingle(nest(33))));
    assert.throws(() => checkDistinguished(readSingle(nest(34))), asn1(/nesting deeper than 32/));
  });
});

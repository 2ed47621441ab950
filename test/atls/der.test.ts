/** The DER writer of src/atls/der.ts (aTLS and mesh certificates); what it writes reads back with the one reader. */
import assert from 'node:assert/strict';
import { len, octetString, oid, seq, tlv, utcTime, utf8String, x509Time } from '../../src/atls/der.js';
import { children, readOid, readSingle, readTime } from '../../src/attestation/der.js';

const hex = (b: Buffer) => b.toString('hex');

describe('aTLS DER writer', () => {
  it('writes short lengths below 0x80 and minimal long lengths from 0x80 on', () => {
    assert.equal(hex(len(0)), '00');
    assert.equal(hex(len(0x7f)), '7f');
    assert.equal(hex(len(0x80)), '8180');
    assert.equal(hex(len(0xff)), '81ff');
    assert.equal(hex(len(0x100)), '820100');
    assert.equal(hex(len(0x12345)), '83012345');
  });

  it('writes elements and sequences of concatenated contents', () => {
    assert.equal(hex(tlv(0x04, Buffer.from([1]), Buffer.from([2, 3]))), '0403010203');
    assert.equal(hex(seq()), '3000');
    assert.equal(hex(seq(tlv(0x05))), '30020500');
    assert.equal(hex(tlv(0x04, Buffer.alloc(0x80))).slice(0, 6), '048180');
  });

  it('writes object identifiers, with multi-octet arcs', () => {
    assert.equal(hex(oid('1.2')), '06012a');
    assert.equal(hex(oid('2.5.4.3')), '0603550403');
    assert.equal(hex(oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
    assert.equal(hex(oid('1.3.9901.2.4242')), '06062bcd2d02a112');
    assert.equal(hex(oid('2.999.1')), '0603883701');
  });

  it('refuses an object identifier with fewer than two arcs', () => {
    assert.throws(() => oid('1'), /^Error: invalid OID 1$/);
  });

  it('writes validity times as UTCTime up to 2049 and GeneralizedTime from 2050 on', () => {
    assert.equal(x509Time(new Date('2049-12-31T23:59:59Z')).toString('latin1'), '\x17\x0d491231235959Z');
    assert.equal(x509Time(new Date('2050-01-01T00:00:00Z')).toString('latin1'), '\x18\x0f20500101000000Z');
    assert.equal(x509Time(new Date('2126-07-08T09:10:11Z')).toString('latin1'), '\x18\x0f21260708091011Z');
    assert.equal(
      readTime(readSingle(x509Time(new Date('2050-01-01T00:00:00Z')))).toISOString(),
      '2050-01-01T00:00:00.000Z',
    );
  });

  it('writes OCTET STRINGs and UTF8Strings', () => {
    assert.equal(hex(octetString(Buffer.from([1, 2]))), '04020102');
    assert.equal(hex(utf8String('Aä€')), '0c0641c3a4e282ac');
  });

  it('writes UTCTime as YYMMDDHHMMSSZ', () => {
    assert.equal(utcTime(new Date('2009-01-02T03:04:05.678Z')).toString('latin1'), '\x17\x0d090102030405Z');
    assert.equal(utcTime(new Date('2031-12-31T23:59:59Z')).toString('latin1'), '\x17\x0d311231235959Z');
  });
});

describe('aTLS DER writer, read back', () => {
  it('reads object identifiers back, splitting the first octet', () => {
    for (const dotted of [
      '0.9',
      '0.39',
      '1.0',
      '1.2.840.10045.4.3.2',
      '1.39',
      '2.0',
      '2.5.4.3',
      '2.999.1',
      '1.3.9901.2.4242',
    ]) {
      assert.equal(readOid(readSingle(oid(dotted))), dotted);
    }
  });

  it('lists children in order', () => {
    const s = readSingle(seq(tlv(0x02, Buffer.from([5])), tlv(0x04, Buffer.from('hi')), seq()));
    assert.deepEqual(
      children(s).map((c) => [c.tag, hex(c.content)]),
      [
        [0x02, '05'],
        [0x04, '6869'],
        [0x30, ''],
      ],
    );
    assert.deepEqual(children(readSingle(seq())), []);
  });
});

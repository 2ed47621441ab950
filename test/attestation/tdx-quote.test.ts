/**
 * The TDX quote parser: header, body and the nested signature data. Quotes are rebuilt from
 * their parts so that each length and type can be changed alone; every refusal names the field
 * that did not fit and what was left for it.
 */
import assert from 'node:assert/strict';
import { parseTdxQuote, type TdxQuote } from '../../src/attestation/tdx/quote.js';
import { rejects } from './assertions.js';
import { TDX } from './vectors.js';

interface Parts {
  signed: Buffer;
  signature: Buffer;
  attestationKey: Buffer;
  certType: number;
  qeReport: Buffer;
  qeReportSignature: Buffer;
  qeAuthData: Buffer;
  innerType: number;
  pck: Buffer;
  trailing: Buffer;
  /** Adjustments of the declared lengths. */
  sigLenDelta?: number;
  certLenDelta?: number;
  authLenDelta?: number;
  pckLenDelta?: number;
}

function partsOf(q: TdxQuote): Parts {
  return {
    signed: Buffer.from(q.signedBytes),
    signature: Buffer.from(q.signature),
    attestationKey: Buffer.from(q.attestationKey),
    certType: 6,
    qeReport: Buffer.from(q.qeReport.raw),
    qeReportSignature: Buffer.from(q.qeReportSignature),
    qeAuthData: Buffer.from(q.qeAuthData),
    innerType: 5,
    pck: Buffer.from(q.pckChainPem),
    trailing: q.raw.subarray(q.raw.length - q.trailingBytes),
  };
}

const u16 = (v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
};
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};

function build(p: Parts): Buffer {
  const inner = Buffer.concat([u16(p.innerType), u32(p.pck.length + (p.pckLenDelta ?? 0)), p.pck]);
  const cert = Buffer.concat([
    p.qeReport,
    p.qeReportSignature,
    u16(p.qeAuthData.length + (p.authLenDelta ?? 0)),
    p.qeAuthData,
    inner,
  ]);
  const sig = Buffer.concat([
    p.signature,
    p.attestationKey,
    u16(p.certType),
    u32(cert.length + (p.certLenDelta ?? 0)),
    cert,
  ]);
  return Buffer.concat([p.signed, u32(sig.length + (p.sigLenDelta ?? 0)), sig, p.trailing]);
}

const v4 = () => partsOf(parseTdxQuote(TDX.cosQuote())); // 3065 trailing bytes
const v5 = () => partsOf(parseTdxQuote(TDX.v5Quote()));

async function refused(quote: Buffer, detail: string, expected?: string, actual?: string) {
  const err = await rejects(() => parseTdxQuote(quote), 'tdx.quote.parse');
  assert.equal(err.detail, detail);
  if (expected !== undefined || actual !== undefined) assert.deepEqual([err.expected, err.actual], [expected, actual]);
}

describe('TDX quote parser: rebuilt quotes', () => {
  it('rebuilds the genuine quotes byte for byte', () => {
    assert.deepEqual(build(v4()), TDX.cosQuote());
    assert.deepEqual(build(v5()), TDX.v5Quote());
    assert.deepEqual(build(partsOf(parseTdxQuote(TDX.sprQuote()))), TDX.sprQuote());
  });

  it('reads header, body, signature data and trailing bytes', () => {
    const q = parseTdxQuote(TDX.v5Quote());
    assert.deepEqual([q.header.version, q.header.attestationKeyType, q.header.teeType, q.bodyType], [5, 2, 0x81, 3]);
    assert.equal(q.header.qeVendorId.toString('hex'), '939a7233f79c4ca9940a0db3957f0607');
    assert.equal(q.header.userData.length, 20);
    assert.equal(q.signedBytes.length, 48 + 6 + 648);
    assert.equal(q.body.teeTcbSvn2?.length, 16);
    assert.equal(q.body.mrServiceTd?.length, 48);
    assert.equal(q.signature.length, 64);
    assert.equal(q.attestationKey.length, 64);
    assert.equal(q.qeReport.raw.length, 384);
    const cos = parseTdxQuote(TDX.cosQuote());
    assert.equal(cos.header.version, 4);
    assert.ok(!('bodyType' in cos));
    assert.ok(!('teeTcbSvn2' in cos.body));
    assert.equal(cos.signedBytes.length, 48 + 584);
    assert.equal(cos.trailingBytes, 3065);
  });

  it('reads the fields of the body in order', () => {
    const p = v4();
    const body = Buffer.alloc(584);
    for (let i = 0; i < 584; i++) body[i] = i & 0xff;
    p.signed = Buffer.concat([p.signed.subarray(0, 48), body]);
    const q = parseTdxQuote(build(p)).body;
    const at = (b: Buffer) => b[0]!;
    const offsets = [
      [q.teeTcbSvn, 0, 16],
      [q.mrSeam, 16, 48],
      [q.mrSignerSeam, 64, 48],
      [q.seamAttributes, 112, 8],
      [q.tdAttributes, 120, 8],
      [q.xfam, 128, 8],
      [q.mrTd, 136, 48],
      [q.mrConfigId, 184, 48],
      [q.mrOwner, 232, 48],
      [q.mrOwnerConfig, 280, 48],
      [q.rtmrs[0], 328, 48],
      [q.rtmrs[1], 376, 48],
      [q.rtmrs[2], 424, 48],
      [q.rtmrs[3], 472, 48],
      [q.reportData, 520, 64],
    ] as const;
    for (const [field, offset, length] of offsets) {
      assert.equal(field.length, length);
      assert.equal(at(field), offset & 0xff);
    }
  });

  it('reads the QE report fields at their offsets', () => {
    const p = v4();
    const report = Buffer.alloc(384);
    for (let i = 0; i < 384; i++) report[i] = (i * 7) & 0xff;
    p.qeReport = report;
    const r = parseTdxQuote(build(p)).qeReport;
    assert.deepEqual(r.cpuSvn, report.subarray(0, 16));
    assert.equal(r.miscSelect, report.readUInt32LE(0x10));
    assert.deepEqual(r.attributes, report.subarray(0x30, 0x40));
    assert.deepEqual(r.mrEnclave, report.subarray(0x40, 0x60));
    assert.deepEqual(r.mrSigner, report.subarray(0x80, 0xa0));
    assert.equal(r.isvProdId, report.readUInt16LE(0x100));
    assert.equal(r.isvSvn, report.readUInt16LE(0x102));
    assert.deepEqual(r.reportData, report.subarray(0x140, 0x180));
  });

  it('accepts an empty QE auth data and a v5 quote with a TDX 1.0 body', () => {
    const p = v4();
    p.qeAuthData = Buffer.alloc(0);
    assert.equal(parseTdxQuote(build(p)).qeAuthData.length, 0);
    const q = v5();
    const header = Buffer.from(q.signed.subarray(0, 54));
    header.writeUInt16LE(2, 48);
    header.writeUInt32LE(584, 50);
    q.signed = Buffer.concat([header, q.signed.subarray(54, 54 + 584)]);
    const parsed = parseTdxQuote(build(q));
    assert.equal(parsed.bodyType, 2);
    assert.ok(!('teeTcbSvn2' in parsed.body));
    assert.ok(!('mrServiceTd' in parsed.body));
  });
});

describe('TDX quote parser: header refusals', () => {
  const withHeader = (f: (b: Buffer) => void, base = TDX.cosQuote()) => {
    const b = Buffer.from(base);
    f(b);
    return b;
  };

  it('refuses other versions, key types and TEE types', async () => {
    await refused(
      withHeader((b) => b.writeUInt16LE(3, 0)),
      'unsupported quote version',
      '4 or 5',
      '3',
    );
    await refused(
      withHeader((b) => b.writeUInt16LE(6, 0)),
      'unsupported quote version',
      '4 or 5',
      '6',
    );
    await refused(
      withHeader((b) => b.writeUInt16LE(3, 2)),
      'unsupported attestation key type',
      '2 (ECDSA-256 with P-256)',
      '3',
    );
    await refused(
      withHeader((b) => b.writeUInt32LE(0, 4)),
      'not a TDX quote',
      '0x81',
      '0x0',
    );
  });

  it('refuses v5 body types and sizes that do not go together', async () => {
    for (const [type, size] of [
      [2, 648],
      [3, 584],
      [1, 584],
      [4, 648],
    ] as const) {
      await refused(
        withHeader((b) => {
          b.writeUInt16LE(type, 48);
          b.writeUInt32LE(size, 50);
        }, TDX.v5Quote()),
        'unsupported v5 body type or size',
        'type 2 (584 bytes) or 3 (648 bytes)',
        `type ${type} (${size} bytes)`,
      );
    }
  });

  it('names the header or body field that runs past the end', async () => {
    const quote = TDX.v5Quote();
    const fields: [number, string, number][] = [
      [0, 'version', 2],
      [2, 'attestation key type', 2],
      [4, 'TEE type', 4],
      [8, 'PCE SVN', 2],
      [10, 'QE SVN', 2],
      [12, 'QE vendor id', 16],
      [28, 'user data', 20],
      [48, 'body type', 2],
      [50, 'body size', 4],
      [54, 'TEE_TCB_SVN', 16],
      [70, 'MR_SEAM', 48],
      [118, 'MR_SIGNER_SEAM', 48],
      [166, 'SEAM_ATTRIBUTES', 8],
      [174, 'TD_ATTRIBUTES', 8],
      [182, 'XFAM', 8],
      [190, 'MR_TD', 48],
      [238, 'MR_CONFIG_ID', 48],
      [286, 'MR_OWNER', 48],
      [334, 'MR_OWNER_CONFIG', 48],
      [382, 'RTMR0', 48],
      [430, 'RTMR1', 48],
      [478, 'RTMR2', 48],
      [526, 'RTMR3', 48],
      [574, 'REPORT_DATA', 64],
      [638, 'TEE_TCB_SVN_2', 16],
      [654, 'MR_SERVICETD', 48],
      [702, 'signature data length', 4],
    ];
    for (const [offset, name, size] of fields) {
      await refused(
        quote.subarray(0, offset + 1),
        `${name} runs past the end of its enclosing data`,
        `${size} bytes`,
        '1 bytes left',
      );
    }
    await refused(Buffer.alloc(0), 'version runs past the end of its enclosing data', '2 bytes', '0 bytes left');
  });
});

describe('TDX quote parser: signature data refusals', () => {
  it('refuses signature data longer than the quote', async () => {
    const p = v4();
    p.trailing = Buffer.alloc(0);
    p.sigLenDelta = 1;
    const q = build(p);
    const sigLen = q.readUInt32LE(48 + 584);
    await refused(q, 'signature data runs past the end of the quote', `${sigLen} bytes`, `${sigLen - 1} bytes left`);
  });

  it('names the field that runs past the end of the signature data', async () => {
    const full = build(v4()).readUInt32LE(48 + 584);
    for (const [sigLen, name, size, left] of [
      [10, 'quote signature', 64, 10],
      [64 + 10, 'attestation key', 64, 10],
      [129, 'certification data type', 2, 1],
      [131, 'certification data length', 4, 1],
    ] as const) {
      const p = v4();
      p.sigLenDelta = sigLen - full;
      await refused(build(p), `${name} runs past the end of its enclosing data`, `${size} bytes`, `${left} bytes left`);
    }
  });

  it('refuses certification data longer than the signature data, and bytes after it', async () => {
    const p = v4();
    p.certLenDelta = 1;
    const certLen = build(v4()).readUInt32LE(48 + 584 + 4 + 128 + 2);
    await refused(
      build(p),
      'QE report certification data runs past the end of its enclosing data',
      `${certLen + 1} bytes`,
      `${certLen} bytes left`,
    );
    const q = v4();
    q.sigLenDelta = 5;
    await refused(build(q), 'signature data has 5 unexplained bytes');
  });

  it('names the field that runs past the end of the certification data', async () => {
    const p0 = v4();
    const certLen = build(p0).readUInt32LE(48 + 584 + 4 + 128 + 2);
    const authLen = p0.qeAuthData.length;
    for (const [len, name, size, left] of [
      [100, 'QE report', 384, 100],
      [384 + 10, 'QE report signature', 64, 10],
      [448 + 1, 'QE auth data length', 2, 1],
      [450 + authLen - 1, 'QE auth data', authLen, authLen - 1],
      [450 + authLen + 1, 'inner certification data type', 2, 1],
      [450 + authLen + 2 + 3, 'PCK chain length', 4, 3],
      [450 + authLen + 6 + 10, 'PCK certificate chain', p0.pck.length, 10],
    ] as const) {
      const p = v4();
      p.certLenDelta = len - certLen;
      p.sigLenDelta = len - certLen;
      await refused(build(p), `${name} runs past the end of its enclosing data`, `${size} bytes`, `${left} bytes left`);
    }
    const p = v4();
    p.certLenDelta = 7;
    p.sigLenDelta = 7;
    await refused(build(p), 'QE report certification data has 7 unexplained bytes');
  });

  it('refuses declared QE auth data and PCK chain lengths that do not fit', async () => {
    const a = v4();
    a.authLenDelta = 1;
    // One byte more of auth data shifts everything after it: the inner type is no longer 5.
    assert.equal(
      (await rejects(() => parseTdxQuote(build(a)), 'tdx.quote.parse')).detail,
      'unsupported inner certification data type',
    );
    const b = v4();
    b.pckLenDelta = 1;
    await refused(
      build(b),
      'PCK certificate chain runs past the end of its enclosing data',
      `${b.pck.length + 1} bytes`,
      `${b.pck.length} bytes left`,
    );
    const c = v4();
    c.pckLenDelta = -1;
    await refused(build(c), 'QE report certification data has 1 unexplained bytes');
  });

  it('refuses other certification data types', async () => {
    const p = v4();
    p.certType = 5;
    await refused(build(p), 'unsupported certification data type', '6 (QE report)', '5');
    const q = v4();
    q.innerType = 6;
    await refused(build(q), 'unsupported inner certification data type', '5 (PCK certificate chain)', '6');
  });
});

/**
 * TDX architectural bits and reference values, judged directly on parsed TD report bodies (the
 * parser does not check signatures), and what verifyTdx reports for each step end to end.
 */
import assert from 'node:assert/strict';
import type { TdxReferenceValues } from '../../src/attestation/reference-values.js';
import type { PckExtension } from '../../src/attestation/tdx/pck.js';
import { parseTdxQuote, type EnclaveReport, type TdReportBody } from '../../src/attestation/tdx/quote.js';
import { validateTdxFixedBits, validateTdxReference } from '../../src/attestation/tdx/validate.js';
import { verifyTdx } from '../../src/attestation/tdx/verify.js';
import { rejects } from './assertions.js';
import { TDX, TDX_COLLATERAL_TIME } from './vectors.js';

const quote = TDX.v5Quote();
const body0 = parseTdxQuote(quote).body;
const le64 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
};
const body = (over: Partial<TdReportBody> = {}): TdReportBody => ({ ...body0, ...over });
const pck = (over: Partial<PckExtension> = {}): PckExtension => ({
  ppid: Buffer.alloc(16),
  sgxTcbComponents: Array(16).fill(0),
  pceSvn: 0,
  cpuSvn: Buffer.alloc(16),
  pceId: Buffer.alloc(2),
  fmspc: Buffer.alloc(6),
  ...over,
});
const hex = (b: Buffer) => b.toString('hex');
const ref = (over: Partial<TdxReferenceValues> = {}): TdxReferenceValues => ({ MrTd: hex(body0.mrTd), ...over });

async function refused(fn: () => unknown, check: string, detail: string, expected?: string, actual?: string) {
  const err = await rejects(fn, check);
  assert.equal(err.detail, detail);
  assert.equal(err.expected, expected);
  assert.equal(err.actual, actual);
}
const qeReport0 = parseTdxQuote(quote).qeReport;
const judge =
  (
    b: TdReportBody,
    r: TdxReferenceValues,
    ctx: { pck?: PckExtension; tcbEvaluationDataNumber?: number; qeReport?: EnclaveReport } = {},
  ) =>
  () =>
    validateTdxReference(
      {
        body: b,
        pck: ctx.pck ?? pck(),
        qeReport: ctx.qeReport ?? qeReport0,
        ...(ctx.tcbEvaluationDataNumber !== undefined ? { tcbEvaluationDataNumber: ctx.tcbEvaluationDataNumber } : {}),
      },
      r,
    );

describe('TDX architectural bits', () => {
  const xfam = le64(0x3n);

  it('allows only DEBUG, SEPT_VE_DISABLE, PKS and PERFMON in TD_ATTRIBUTES', async () => {
    for (const bit of [0n, 28n, 30n, 63n]) validateTdxFixedBits(body({ tdAttributes: le64(1n << bit), xfam }));
    for (const bit of [1n, 27n, 29n, 31n, 62n]) {
      await refused(
        () => validateTdxFixedBits(body({ tdAttributes: le64(1n << bit), xfam })),
        'tdx.tdattributes',
        'TD_ATTRIBUTES has reserved bits set',
        'only bits of 0x8000000050000001',
        `0x${(1n << bit).toString(16)}`,
      );
    }
  });

  it('requires XFAM bits 0 and 1 and nothing outside its fixed-0 mask', async () => {
    validateTdxFixedBits(body({ tdAttributes: le64(0n), xfam: le64(0x6dbe7n) }));
    validateTdxFixedBits(body({ tdAttributes: le64(0n), xfam: le64(0x3n) }));
    for (const v of [0x1n, 0x2n, 0x0n, 0x3n | (1n << 3n), 0x3n | (1n << 63n)]) {
      await refused(
        () => validateTdxFixedBits(body({ tdAttributes: le64(0n), xfam: le64(v) })),
        'tdx.xfam',
        'XFAM violates its fixed bits',
        'bits 0x3 set, none outside 0x6dbe7',
        `0x${v.toString(16)}`,
      );
    }
  });
});

describe('TDX reference values', () => {
  it('accepts the sample against its own values', () => {
    judge(
      body0,
      ref({
        Rtmrs: body0.rtmrs.map(hex),
        MrSeam: hex(body0.mrSeam),
        Xfam: hex(body0.xfam),
        TdAttributes: hex(body0.tdAttributes),
        MinimumTeeTcbSvn: hex(body0.teeTcbSvn),
      }),
    )();
  });

  it('refuses a debug TD before anything else', async () => {
    await refused(
      judge(body({ tdAttributes: le64(1n) }), { MrTd: '' }),
      'tdx.tdattributes.debug',
      'the TD is in debug mode',
      'DEBUG=0',
      'DEBUG=1',
    );
  });

  it('requires MRTD and compares the measurements that are set', async () => {
    await refused(judge(body0, { MrTd: '' }), 'tdx.mrtd', 'the reference values name no MrTd');
    await refused(
      judge(body0, ref({ MrTd: 'AA'.repeat(48) })),
      'tdx.mrtd',
      'MRTD does not match',
      'aa'.repeat(48),
      hex(body0.mrTd),
    );
    for (let i = 0; i < 4; i++) {
      const rtmrs = ['', '', '', ''];
      rtmrs[i] = 'bb'.repeat(48);
      await refused(
        judge(body0, ref({ Rtmrs: rtmrs })),
        `tdx.rtmr${i}`,
        `RTMR${i} does not match`,
        'bb'.repeat(48),
        hex(body0.rtmrs[i]!),
      );
      rtmrs[i] = hex(body0.rtmrs[i]!);
      judge(body0, ref({ Rtmrs: rtmrs }))();
    }
    judge(body0, ref({ Rtmrs: [] }))();
    await refused(
      judge(body0, ref({ MrSeam: 'cc'.repeat(48) })),
      'tdx.mrseam',
      'MRSEAM does not match',
      'cc'.repeat(48),
      hex(body0.mrSeam),
    );
    await refused(
      judge(body0, ref({ TdAttributes: '0000000000000010' })),
      'tdx.tdattributes',
      'TD_ATTRIBUTES does not match',
      '0000000000000010',
      hex(body0.tdAttributes),
    );
  });

  it('compares XFAM ignoring the CET bits 11 and 12, and refuses a malformed XFAM', async () => {
    const x = body0.xfam.readBigUInt64LE(0);
    judge(body0, ref({ Xfam: hex(le64(x ^ (1n << 11n) ^ (1n << 12n))).toUpperCase() }))();
    await refused(
      judge(body0, ref({ Xfam: hex(le64(x ^ (1n << 10n))) })),
      'tdx.xfam',
      'XFAM does not match (CET bits ignored)',
      hex(le64(x ^ (1n << 10n))),
      hex(body0.xfam),
    );
    await refused(
      judge(body0, ref({ Xfam: hex(le64(x ^ (1n << 13n))).toUpperCase() })),
      'tdx.xfam',
      'XFAM does not match (CET bits ignored)',
      hex(le64(x ^ (1n << 13n))),
      hex(body0.xfam),
    );
    await rejects(judge(body0, ref({ Xfam: 'zz'.repeat(8) })), 'tdx.xfam');
    await rejects(judge(body0, ref({ Xfam: hex(body0.xfam).slice(2) })), 'tdx.xfam');
    await rejects(judge(body0, ref({ Xfam: `${hex(body0.xfam)}00` })), 'tdx.xfam');
  });

  it('requires every TEE_TCB_SVN byte to reach its minimum', async () => {
    const svn = body0.teeTcbSvn; // 0b01040000…
    judge(body0, ref({ MinimumTeeTcbSvn: hex(svn) }))();
    judge(body0, ref({ MinimumTeeTcbSvn: '00'.repeat(16) }))();
    for (const i of [0, 2, 15]) {
      const min = Buffer.from(svn);
      min[i] = min[i]! + 1;
      await refused(
        judge(body0, ref({ MinimumTeeTcbSvn: hex(min).toUpperCase() })),
        'tdx.teetcbsvn',
        `TEE_TCB_SVN component ${i} is below the minimum`,
        hex(min),
        hex(svn),
      );
    }
    await refused(
      judge(body0, ref({ MinimumTeeTcbSvn: 'xyz' })),
      'tdx.teetcbsvn',
      'TEE_TCB_SVN component 0 is below the minimum',
      'xyz',
      hex(svn),
    );
  });

  it('needs verified TCB info for a minimum TCB evaluation data number', async () => {
    judge(body0, ref({ MinTCBEvaluationDataNumber: 0 }))();
    await refused(
      judge(body0, ref({ MinTCBEvaluationDataNumber: 15 })),
      'tdx.tcbevaluationdatanumber',
      'a minimum TCB evaluation data number is set, but no TCB info was verified',
      '>= 15',
      'no collateral',
    );
    judge(body0, ref({ MinTCBEvaluationDataNumber: 15 }), { tcbEvaluationDataNumber: 15 })();
    await refused(
      judge(body0, ref({ MinTCBEvaluationDataNumber: 16 }), { tcbEvaluationDataNumber: 15 }),
      'tdx.tcbevaluationdatanumber',
      'the TCB info is older than the minimum evaluation data number',
      '>= 16',
      '15',
    );
  });

  it('restricts platform instance ids when AllowedPIIDs is non-empty', async () => {
    const piid = Buffer.alloc(16, 0x42);
    judge(body0, ref({ AllowedPIIDs: [] }))();
    judge(body0, ref({ AllowedPIIDs: ['00'.repeat(16), hex(piid).toUpperCase()] }), {
      pck: pck({ platformInstanceId: piid }),
    })();
    await refused(
      judge(body0, ref({ AllowedPIIDs: ['00'.repeat(16), '11'.repeat(16)] }), {
        pck: pck({ platformInstanceId: piid }),
      }),
      'tdx.piid',
      'the platform instance id is not allowed',
      `${'00'.repeat(16)} | ${'11'.repeat(16)}`,
      hex(piid),
    );
    await refused(
      judge(body0, ref({ AllowedPIIDs: [hex(piid)] })),
      'tdx.piid',
      'the platform instance id is not allowed',
      hex(piid),
      'none in the PCK certificate',
    );
    await rejects(
      judge(body0, ref({ AllowedPIIDs: ['not hex'] }), { pck: pck({ platformInstanceId: piid }) }),
      'tdx.piid',
    );
  });

  it('refuses requirements it cannot evaluate instead of ignoring them', async () => {
    for (const key of ['MemoryIntegrity', 'SMTDisabled', 'StaticPlatform'] as const) {
      await refused(
        judge(body0, ref({ [key]: true })),
        'tdx.unsupported',
        `the reference value ${key} is not supported by this verifier`,
        `${key}=false`,
        `${key}=true`,
      );
      judge(body0, ref({ [key]: false }))();
    }
  });
});

describe('TDX verification: what each step reports', () => {
  const inspect = { allowMissingCollateral: true, now: new Date('2026-11-23T00:00:00Z') };
  const q = parseTdxQuote(quote);
  const at = (b: Buffer) => b.byteOffset - q.raw.byteOffset;
  const flip = (offset: number) => {
    const b = Buffer.from(quote);
    b[offset]! ^= 1;
    return b;
  };

  it('names the QE report signature, the key binding and the quote signature', async () => {
    await refused(
      () => verifyTdx({ quote: flip(at(q.qeReport.raw) + 0x30) }, null, {}, inspect),
      'tdx.qe.signature',
      'the QE report signature does not verify with the PCK key',
      'signed by the PCK certificate',
      'bad signature',
    );
    const err = await rejects(() => verifyTdx({ quote: flip(at(q.qeAuthData)) }, null, {}, inspect), 'tdx.qe.binding');
    assert.equal(err.detail, 'the QE report does not vouch for the attestation key');
    assert.match(err.expected!, /^[0-9a-f]{64}0{64}$/);
    assert.equal(err.actual, hex(q.qeReport.reportData));
    await refused(
      () => verifyTdx({ quote: flip(at(q.signature) + 1) }, null, {}, inspect),
      'tdx.quote.signature',
      'the quote signature does not verify with the attestation key',
      'a signature over header and TD report',
      'bad signature',
    );
  });

  it("refuses a quote from another vendor's QE", async () => {
    const other = flip(12);
    await refused(
      () => verifyTdx({ quote: other }, null, {}, inspect),
      'tdx.quote.vendor',
      "the quote was not made by Intel's QE",
      '939a7233f79c4ca9940a0db3957f0607',
      hex(other.subarray(12, 28)),
    );
  });

  it('compares MRCONFIGID as a 32-byte policy hash padded with zeros, or as all 48 bytes', async () => {
    verifyTdx({ quote }, null, { mrConfigId: Buffer.from(q.body.mrConfigId) }, inspect);
    verifyTdx({ quote }, null, { mrConfigId: Buffer.from(q.body.mrConfigId.subarray(0, 32)) }, inspect);
    await refused(
      () => verifyTdx({ quote }, null, { mrConfigId: Buffer.alloc(48, 1) }, inspect),
      'tdx.mrconfigid',
      'MRCONFIGID does not match the expected policy hash',
      '01'.repeat(48),
      hex(q.body.mrConfigId),
    );
    await refused(
      () => verifyTdx({ quote }, null, { reportData: Buffer.alloc(64, 3) }, inspect),
      'tdx.reportdata',
      'REPORT_DATA does not match the expected binding',
      '03'.repeat(64),
      hex(q.body.reportData),
    );
  });

  it('names the FMSPC when TCB info is missing', async () => {
    const err = await rejects(() => verifyTdx({ quote }, null, {}, { now: inspect.now }), 'tdx.tcbinfo.missing');
    assert.equal(
      err.detail,
      "no TCB info for FMSPC 90c06f000000: the platform's TCB status cannot be evaluated; pass Intel PCS's TCB info " +
        'for this FMSPC with --tcb-info (and its issuer chain with --cert-chain), a collateral directory or --fetch, or --allow-missing-collateral ' +
        "(allowMissingCollateral) to check the quote's authenticity only",
    );
  });

  it('requires the QE identity with the TCB info, unless told to inspect only', async () => {
    const col = { tcbInfo: TDX.tcbInfo(), tcbInfoIssuerChain: TDX.tcbChain() };
    const spr = TDX.sprQuote();
    const err = await rejects(
      () =>
        verifyTdx(
          { quote: spr },
          null,
          {},
          { now: TDX_COLLATERAL_TIME, collateral: col, acceptedTcbStatuses: ['NotSupported'] },
        ),
      'tdx.qeidentity.missing',
    );
    assert.match(
      err.detail,
      /^no QE identity: the quoting enclave's signer, product id and version cannot be checked; .*--qe-identity.*--allow-missing-collateral/,
    );
    const inspected = verifyTdx(
      { quote: spr },
      null,
      {},
      {
        now: TDX_COLLATERAL_TIME,
        collateral: col,
        acceptedTcbStatuses: ['NotSupported'],
        allowMissingCollateral: true,
      },
    );
    assert.equal(inspected.qeIdentityChecked, false);
    assert.equal(inspected.tcb?.qe, undefined);
    const full = verifyTdx(
      { quote: spr },
      null,
      {},
      {
        now: TDX_COLLATERAL_TIME,
        collateral: { ...col, qeIdentity: TDX.qeIdentity() },
        acceptedTcbStatuses: ['NotSupported'],
      },
    );
    assert.equal(full.qeIdentityChecked, true);
    assert.equal(full.tcb?.qe?.status, 'UpToDate');
  });

  it('names the CRL that cannot be parsed', async () => {
    let err = await rejects(
      () => verifyTdx({ quote }, null, {}, { ...inspect, collateral: { pckCrl: Buffer.from('junk') } }),
      'tdx.crl.pck',
    );
    assert.match(err.detail, /^the CRL cannot be parsed \(/);
    err = await rejects(
      () => verifyTdx({ quote }, null, {}, { ...inspect, collateral: { rootCrl: Buffer.from('junk') } }),
      'tdx.crl.root',
    );
    assert.match(err.detail, /^the CRL cannot be parsed \(/);
  });

  it('reports which CRLs were checked, the platform and the entry that matched', () => {
    const spr = TDX.sprQuote();
    const base = { now: TDX_COLLATERAL_TIME, allowMissingCollateral: true };
    assert.deepEqual(verifyTdx({ quote: spr }, null, {}, base).crlChecked, { root: false, pck: false });
    assert.deepEqual(
      verifyTdx({ quote: spr }, null, {}, { ...base, collateral: { rootCrl: TDX.rootCrl() } }).crlChecked,
      { root: true, pck: false },
    );
    assert.deepEqual(
      verifyTdx({ quote: spr }, null, {}, { ...base, collateral: { pckCrl: TDX.pckCrl() } }).crlChecked,
      { root: false, pck: true },
    );
    const r = verifyTdx({ quote }, null, {}, inspect);
    assert.equal(r.tee, 'tdx');
    assert.equal(r.tcbStatus, 'NotEvaluated');
    assert.ok(!('referenceValueIndex' in r));
    assert.ok(!('tcb' in r));
    assert.equal(verifyTdx({ quote }, [{ MrTd: '00'.repeat(48) }, ref()], {}, inspect).referenceValueIndex, 1);
  });

  it('accepts only UpToDate unless told otherwise', async () => {
    const col = { tcbInfo: TDX.tcbInfo(), tcbInfoIssuerChain: TDX.tcbChain(), qeIdentity: TDX.qeIdentity() };
    const err = await rejects(
      () => verifyTdx({ quote: TDX.sprQuote() }, null, {}, { now: TDX_COLLATERAL_TIME, collateral: col }),
      'tdx.tcb.status',
    );
    assert.equal(err.expected, 'UpToDate');
    assert.equal(
      verifyTdx(
        { quote: TDX.sprQuote() },
        null,
        {},
        { now: TDX_COLLATERAL_TIME, collateral: col, acceptedTcbStatuses: ['NotSupported'] },
      ).tcbStatus,
      'NotSupported',
    );
  });
});

/**
 * Intel PCS collateral: TCB info and QE identity, their signing chain and dates, their shape,
 * and the TCB status they give the platform, the TDX module and the quoting enclave.
 */
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import {
  shapeTcbInfo,
  verifyQeIdentity,
  verifyTcbInfo,
  type QeIdentity,
  type TdxTcbInfo,
} from '../../src/attestation/tdx/collateral.js';
import { readPckExtension } from '../../src/attestation/tdx/pck.js';
import { parseTdxQuote } from '../../src/attestation/tdx/quote.js';
import { splitSignedJson } from '../../src/attestation/tdx/signed-json.js';
import {
  TCB_STATUSES,
  evaluateTdxTcb,
  isTcbStatus,
  requireAcceptedStatus,
} from '../../src/attestation/tdx/tcb-status.js';
import { verifyTdx } from '../../src/attestation/tdx/verify.js';
import { parseCrl } from '../../src/attestation/x509.js';
import { INTEL_SGX_ROOT_CA } from '../../src/attestation/roots/intel.js';
import { subjectDer } from '../../src/attestation/x509.js';
import { forgeCertificate, name, oid, seq, set, utf8 } from './der-builder.js';
import { checkIs, rejects } from './assertions.js';
import { TDX, TDX_COLLATERAL_TIME } from './vectors.js';

const at = (iso: string) => new Date(iso);
const spr = () => TDX.sprQuote();
const pemsOf = (quote: Buffer) =>
  parseTdxQuote(quote)
    .pckChainPem.toString('latin1')
    .match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!;
const pckOf = (quote: Buffer) => readPckExtension(new X509Certificate(pemsOf(quote)[0]!));
const inspect = { allowMissingCollateral: true, acceptedTcbStatuses: ['UpToDate', 'NotSupported'] as const };

/** The v5 sample's TCB info, shaped (its signing certificate is not in the vectors; see tdx-verify.test.ts). */
const v5Info = (): TdxTcbInfo => shapeTcbInfo(splitSignedJson(TDX.tcbInfoV5(), 'tcbInfo', 'test').value);
const sprQe = (): QeIdentity => verifyQeIdentity(TDX.qeIdentity(), TDX.qeChain(), TDX_COLLATERAL_TIME);

describe('TDX collateral: signatures, signers and dates', () => {
  it('verifies the genuine QE identity and TCB info and returns their bodies', () => {
    const qe = sprQe();
    assert.equal(qe.id, 'TD_QE');
    assert.equal(qe.version, 2);
    assert.equal(qe.mrsigner, 'dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5', 'hex is lower-cased');
    assert.equal(qe.isvprodid, 2);
    assert.deepEqual(
      qe.tcbLevels.map((l) => l.tcb.isvsvn),
      [4],
    );
    const info = verifyTcbInfo(TDX.tcbInfo(), TDX.tcbChain(), TDX_COLLATERAL_TIME, parseCrl(TDX.rootCrl()));
    assert.equal(info.fmspc, '50806f000000');
    assert.equal(info.tcbEvaluationDataNumber, 15);
  });

  it("takes the QE identity's chain, else the TCB info's, and refuses a QE identity without one", async () => {
    const base = { ...inspect, now: TDX_COLLATERAL_TIME };
    const viaTcbChain = verifyTdx(
      { quote: spr() },
      null,
      {},
      {
        ...base,
        collateral: { tcbInfo: TDX.tcbInfo(), tcbInfoIssuerChain: TDX.tcbChain(), qeIdentity: TDX.qeIdentity() },
      },
    );
    assert.deepEqual(viaTcbChain.tcb?.qe, { status: 'UpToDate', isvsvn: 4 });
    const own = verifyTdx(
      { quote: spr() },
      null,
      {},
      {
        ...base,
        collateral: {
          tcbInfo: TDX.tcbInfo(),
          tcbInfoIssuerChain: TDX.tcbChain(),
          qeIdentity: TDX.qeIdentity(),
          qeIdentityIssuerChain: TDX.qeChain(),
        },
      },
    );
    assert.deepEqual(own.tcb?.qe, { status: 'UpToDate', isvsvn: 4 });
    const err = await rejects(
      () => verifyTdx({ quote: spr() }, null, {}, { ...base, collateral: { qeIdentity: TDX.qeIdentity() } }),
      'tdx.qeidentity.signer',
    );
    assert.equal(err.detail, 'the QE identity was given without its issuer chain');
    const e2 = await rejects(
      () => verifyTdx({ quote: spr() }, null, {}, { ...base, collateral: { tcbInfo: TDX.tcbInfo() } }),
      'tdx.tcbinfo.signer',
    );
    assert.equal(e2.detail, 'TCB info was given without its issuer chain');
  });

  it('refuses a QE identity signed by anything but the TCB signing certificate under the pinned root', async () => {
    const base = { ...inspect, now: TDX_COLLATERAL_TIME };
    let err = await rejects(
      () =>
        verifyTdx(
          { quote: spr() },
          null,
          {},
          {
            ...base,
            collateral: { qeIdentity: TDX.qeIdentity(), qeIdentityIssuerChain: TDX.read('pckCrlIssuerChain.pem') },
          },
        ),
      'tdx.qeidentity.signer',
    );
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      [
        "the collateral signer is not Intel's TCB signing certificate",
        'CN=Intel SGX TCB Signing',
        'CN=Intel SGX PCK Platform CA',
      ],
    );
    err = await rejects(
      () => verifyQeIdentity(TDX.qeIdentity(), Buffer.from(pemsOf(spr()).slice(0, 2).join('\n')), TDX_COLLATERAL_TIME),
      'tdx.qeidentity.signer',
    );
    assert.match(err.detail, /root that is not the pinned Intel SGX Root CA/);
    assert.equal(err.expected, `sha256 ${INTEL_SGX_ROOT_CA.sha256}`);
    err = await rejects(
      () => verifyQeIdentity(TDX.qeIdentity(), Buffer.from(pemsOf(spr()).join('\n')), TDX_COLLATERAL_TIME),
      'tdx.qeidentity.signer',
    );
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['the issuer chain must hold the TCB signing certificate and the root', '2 certificates', '3'],
    );
    // A certificate named like Intel's TCB signer under the genuine root, but not signed by it.
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const root = new X509Certificate(pemsOf(spr())[2]!);
    const fake = forgeCertificate({
      subject: name('Intel SGX TCB Signing'),
      issuer: subjectDer(root),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      alg: 'ecdsa-sha256',
    });
    err = await rejects(
      () =>
        verifyQeIdentity(TDX.qeIdentity(), Buffer.from(`${fake.toString()}\n${root.toString()}`), TDX_COLLATERAL_TIME),
      'tdx.qeidentity.signer',
    );
    assert.match(
      err.detail,
      /^the TCB signing certificate must be signed by the Intel SGX Root CA: signature does not verify/,
    );
    const nameless = forgeCertificate({
      subject: seq(set(seq(oid('2.5.4.10'), utf8('Intel')))),
      issuer: subjectDer(root),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      alg: 'ecdsa-sha256',
    });
    err = await rejects(
      () =>
        verifyTcbInfo(TDX.tcbInfo(), Buffer.from(`${nameless.toString()}\n${root.toString()}`), TDX_COLLATERAL_TIME),
      'tdx.tcbinfo.signer',
    );
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ["the collateral signer is not Intel's TCB signing certificate", 'CN=Intel SGX TCB Signing', 'CN=<none>'],
    );
    // After the signing certificate expired (2025-05-21).
    err = await rejects(
      () => verifyQeIdentity(TDX.qeIdentity(), TDX.qeChain(), at('2025-05-22T00:00:00Z')),
      'tdx.qeidentity.signer',
    );
    assert.match(err.detail, /the TCB signing certificate is not valid/);
    // The genuine root CRL does not list the signer; an expired root CRL fails the signer check.
    assert.equal(
      verifyQeIdentity(TDX.qeIdentity(), TDX.qeChain(), TDX_COLLATERAL_TIME, parseCrl(TDX.rootCrl())).id,
      'TD_QE',
    );
    await rejects(
      () => verifyQeIdentity(TDX.qeIdentity(), TDX.qeChain(), at('2024-06-20T00:00:00Z'), parseCrl(TDX.rootCrl())),
      'tdx.crl.root',
    );
  });

  it('refuses a QE identity whose signature does not cover the body as served', async () => {
    const text = TDX.qeIdentity().toString('utf8');
    const spaced = Buffer.from(text.replace('"isvprodid":2', '"isvprodid": 2'));
    assert.notDeepEqual(spaced, TDX.qeIdentity());
    const err = await rejects(
      () => verifyQeIdentity(spaced, TDX.qeChain(), TDX_COLLATERAL_TIME),
      'tdx.qeidentity.signature',
    );
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['the enclaveIdentity signature does not verify', 'signed by Intel SGX TCB Signing', 'bad signature'],
    );
    const info = Buffer.from(TDX.tcbInfo().toString('utf8').replace('"pceId":"0000"', '"pceId": "0000"'));
    const e2 = await rejects(() => verifyTcbInfo(info, TDX.tcbChain(), TDX_COLLATERAL_TIME), 'tdx.tcbinfo.signature');
    assert.equal(e2.detail, 'the tcbInfo signature does not verify');
  });

  it('refuses documents that are not a signed QE identity', async () => {
    // TCB info and QE identity have the same signer: a body verified as one is not the other.
    verifyTcbInfo(TDX.tcbInfo(), TDX.tcbChain(), TDX_COLLATERAL_TIME);
    let err = await rejects(
      () => verifyQeIdentity(TDX.tcbInfo(), TDX.qeChain(), TDX_COLLATERAL_TIME),
      'tdx.qeidentity.parse',
    );
    assert.match(err.detail, /expected exactly the keys "enclaveIdentity" and "signature"/);
    verifyQeIdentity(TDX.qeIdentity(), TDX.qeChain(), TDX_COLLATERAL_TIME);
    err = await rejects(
      () => verifyTcbInfo(TDX.qeIdentity(), TDX.tcbChain(), TDX_COLLATERAL_TIME),
      'tdx.tcbinfo.parse',
    );
    assert.match(err.detail, /expected exactly the keys "tcbInfo" and "signature"/);
    err = await rejects(
      () => verifyQeIdentity(Buffer.from('{"enclaveIdentity":'), TDX.qeChain(), TDX_COLLATERAL_TIME),
      'tdx.qeidentity.parse',
    );
    assert.match(err.detail, /^not JSON/);
    await rejects(
      () =>
        verifyQeIdentity(
          Buffer.from(`{"enclaveIdentity":{},"signature":"${'ab'.repeat(63)}"}`),
          TDX.qeChain(),
          TDX_COLLATERAL_TIME,
        ),
      'tdx.qeidentity.parse',
    );
  });

  it('accepts a QE identity from its issueDate to its nextUpdate, inclusive, and not outside', async () => {
    const chain = TDX.qeChain();
    assert.equal(verifyQeIdentity(TDX.qeIdentity(), chain, at('2023-06-08T07:24:59Z')).id, 'TD_QE');
    assert.equal(verifyQeIdentity(TDX.qeIdentity(), chain, at('2023-07-08T07:24:59Z')).id, 'TD_QE');
    let err = await rejects(
      () => verifyQeIdentity(TDX.qeIdentity(), chain, at('2023-06-08T07:24:58Z')),
      'tdx.qeidentity.validity',
    );
    assert.equal(err.detail, 'the QE identity is not yet valid');
    assert.deepEqual([err.expected, err.actual], ['issueDate <= 2023-06-08T07:24:58.000Z', '2023-06-08T07:24:59Z']);
    err = await rejects(
      () => verifyQeIdentity(TDX.qeIdentity(), chain, at('2023-07-08T07:25:00Z')),
      'tdx.qeidentity.validity',
    );
    assert.equal(err.detail, 'the QE identity is out of date (past nextUpdate); fetch fresh collateral');
    assert.deepEqual([err.expected, err.actual], ['nextUpdate >= 2023-07-08T07:25:00.000Z', '2023-07-08T07:24:59Z']);
    // Through the verifier: the QE identity is checked even without TCB info.
    await rejects(
      () =>
        verifyTdx(
          { quote: spr() },
          null,
          {},
          {
            ...inspect,
            now: at('2024-01-01T00:00:00Z'),
            collateral: { qeIdentity: TDX.qeIdentity(), qeIdentityIssuerChain: chain },
          },
        ),
      'tdx.qeidentity.validity',
    );
  });

  it('accepts TCB info from its issueDate to its nextUpdate, inclusive, and not outside', async () => {
    const chain = TDX.tcbChain();
    assert.equal(verifyTcbInfo(TDX.tcbInfo(), chain, at('2023-06-18T08:42:58Z')).id, 'TDX');
    assert.equal(verifyTcbInfo(TDX.tcbInfo(), chain, at('2023-07-18T08:42:58Z')).id, 'TDX');
    const early = await rejects(
      () => verifyTcbInfo(TDX.tcbInfo(), chain, at('2023-06-18T08:42:57Z')),
      'tdx.tcbinfo.validity',
    );
    assert.equal(early.detail, 'the TCB info is not yet valid');
    const late = await rejects(
      () => verifyTcbInfo(TDX.tcbInfo(), chain, at('2023-07-18T08:42:59Z')),
      'tdx.tcbinfo.validity',
    );
    assert.match(late.detail, /^the TCB info is out of date/);
  });

  it('checks the dates on every call, although the signature check is cached', async () => {
    const chain = TDX.qeChain();
    verifyQeIdentity(TDX.qeIdentity(), chain, TDX_COLLATERAL_TIME);
    await rejects(
      () => verifyQeIdentity(TDX.qeIdentity(), chain, at('2023-07-09T00:00:00Z')),
      'tdx.qeidentity.validity',
    );
    await rejects(() => verifyQeIdentity(TDX.qeIdentity(), chain, at('2025-06-01T00:00:00Z')), 'tdx.qeidentity.signer');
  });
});

describe('TDX collateral: shape of TCB info', () => {
  const body = () =>
    JSON.parse(JSON.stringify(splitSignedJson(TDX.tcbInfoV5(), 'tcbInfo', 't').value)) as Record<string, any>;
  const refused = (edit: (b: Record<string, any>) => void, reason: RegExp) => {
    const b = body();
    edit(b);
    assert.throws(
      () => shapeTcbInfo(b),
      (e: unknown) => checkIs('tdx.tcbinfo.parse')(e) && reason.test((e as Error).message),
      reason.source,
    );
  };

  it('reads ids, dates, the module and the levels, lower-casing hex', () => {
    const info = v5Info();
    assert.deepEqual(
      [info.id, info.version, info.issueDate, info.nextUpdate, info.fmspc, info.pceId, info.tcbEvaluationDataNumber],
      ['TDX', 3, '2026-02-01T14:49:26Z', '2026-03-03T14:49:26Z', '90c06f000000', '0000', 18],
    );
    assert.deepEqual(info.tdxModule, {
      mrsigner: '00'.repeat(48),
      attributes: '00'.repeat(8),
      attributesMask: 'ff'.repeat(8),
    });
    assert.deepEqual(
      info.tdxModuleIdentities?.map((m) => m.id),
      ['TDX_03', 'TDX_01'],
    );
    assert.equal(info.tdxModuleIdentities?.[1]?.tcbLevels[0]?.tcb.isvsvn, 6);
    assert.equal(info.tcbLevels[0]?.tcb.sgxtcbcomponents.length, 16);
    assert.equal(info.tcbLevels[0]?.tcb.pcesvn, 13);
    assert.equal(info.tcbLevels[0]?.tcbStatus, 'UpToDate');
    assert.ok(!('tdxModuleIdentities' in shapeTcbInfo({ ...body(), tdxModuleIdentities: undefined })));
  });

  it('refuses bodies of the wrong shape, naming the field', () => {
    assert.throws(
      () => shapeTcbInfo([]),
      (e: unknown) => checkIs('tdx.tcbinfo.parse')(e) && /tcbInfo must be an object/.test((e as Error).message),
    );
    assert.throws(() => shapeTcbInfo(null), checkIs('tdx.tcbinfo.parse'));
    refused((b) => {
      b.tdxModule = 'x';
    }, /tcbInfo\.tdxModule must be an object/);
    refused((b) => {
      b.tdxModuleIdentities = {};
    }, /tdxModuleIdentities must be a list/);
    refused((b) => {
      b.tdxModuleIdentities[1] = 5;
    }, /tdxModuleIdentities\[1\] must be an object/);
    refused((b) => {
      b.tdxModuleIdentities[0].id = 3;
    }, /tdxModuleIdentities\[0\]\.id must be a string/);
    refused((b) => {
      b.tdxModuleIdentities[0].mrsigner = 'ab';
    }, /tdxModuleIdentities\[0\]\.mrsigner must be 48 bytes as hex/);
    refused((b) => {
      b.tdxModuleIdentities[0].attributes = 'zz'.repeat(8);
    }, /tdxModuleIdentities\[0\]\.attributes must be 8 bytes as hex/);
    refused((b) => {
      b.tdxModuleIdentities[0].attributesMask = 'ff'.repeat(9);
    }, /tdxModuleIdentities\[0\]\.attributesMask must be 8 bytes/);
    refused((b) => {
      b.tdxModuleIdentities[0].tcbLevels = [{ tcb: { isvsvn: -1 }, tcbDate: '', tcbStatus: '' }];
    }, /tdxModuleIdentities\[0\]\.tcbLevels\[0\]\.tcb\.isvsvn must be a non-negative integer/);
    refused((b) => {
      b.tdxModuleIdentities[0].tcbLevels = [{ tcb: 1, tcbDate: '', tcbStatus: '' }];
    }, /tcbLevels\[0\]\.tcb must be an object/);
    refused((b) => {
      b.tdxModuleIdentities[0].tcbLevels = [{ tcb: { isvsvn: 1 }, tcbDate: 1, tcbStatus: '' }];
    }, /tcbLevels\[0\]\.tcbDate must be a string/);
    refused((b) => {
      b.tdxModuleIdentities[0].tcbLevels = [{ tcb: { isvsvn: 1 }, tcbDate: '', tcbStatus: null }];
    }, /tcbLevels\[0\]\.tcbStatus must be a string/);
    refused((b) => {
      b.tdxModuleIdentities[0].tcbLevels = [7];
    }, /tdxModuleIdentities\[0\]\.tcbLevels\[0\] must be an object/);
    refused((b) => {
      b.tdxModuleIdentities[0].tcbLevels = 'x';
    }, /tdxModuleIdentities\[0\]\.tcbLevels must be a list/);
    refused((b) => {
      b.id = 1;
    }, /^attestation check tdx\.tcbinfo\.parse failed: id must be a string/);
    refused((b) => {
      b.version = 1.5;
    }, /version must be a non-negative integer/);
    refused((b) => {
      b.version = '3';
    }, /version must be a non-negative integer/);
    refused((b) => {
      b.issueDate = 0;
    }, /issueDate must be a string/);
    refused((b) => {
      b.nextUpdate = undefined;
    }, /nextUpdate must be a string/);
    refused((b) => {
      b.fmspc = '90c06f00000';
    }, /fmspc must be 6 bytes as hex/);
    refused((b) => {
      b.pceId = '00000';
    }, /pceId must be 2 bytes as hex/);
    refused((b) => {
      b.tcbEvaluationDataNumber = -1;
    }, /tcbEvaluationDataNumber must be a non-negative integer/);
    refused((b) => {
      b.tdxModule.mrsigner = '00';
    }, /tdxModule\.mrsigner must be 48 bytes as hex/);
    refused((b) => {
      b.tdxModule.attributes = '00';
    }, /tdxModule\.attributes must be 8 bytes as hex/);
    refused((b) => {
      b.tdxModule.attributesMask = 'gg'.repeat(8);
    }, /tdxModule\.attributesMask must be 8 bytes as hex/);
    refused((b) => {
      b.tcbLevels = {};
    }, /tcbLevels must be a list/);
    refused((b) => {
      b.tcbLevels[2] = [];
    }, /tcbLevels\[2\] must be an object/);
    refused((b) => {
      b.tcbLevels[0].tcb = null;
    }, /tcbLevels\[0\]\.tcb must be an object/);
    refused((b) => {
      b.tcbLevels[0].tcb.sgxtcbcomponents.pop();
    }, /tcbLevels\[0\]\.tcb\.sgxtcbcomponents must have 16 components/);
    refused((b) => {
      b.tcbLevels[0].tcb.sgxtcbcomponents = 'x';
    }, /tcbLevels\[0\]\.tcb\.sgxtcbcomponents must be a list/);
    refused((b) => {
      b.tcbLevels[0].tcb.sgxtcbcomponents[15] = 0;
    }, /tcbLevels\[0\]\.tcb\.sgxtcbcomponents\[15\] must be an object/);
    refused((b) => {
      b.tcbLevels[0].tcb.sgxtcbcomponents[3].svn = '1';
    }, /tcbLevels\[0\]\.tcb\.sgxtcbcomponents\[3\]\.svn must be a non-negative integer/);
    refused((b) => {
      b.tcbLevels[0].tcb.pcesvn = -2;
    }, /tcbLevels\[0\]\.tcb\.pcesvn must be a non-negative integer/);
    refused((b) => {
      b.tcbLevels[1].tcb.tdxtcbcomponents.push({ svn: 0 });
    }, /tcbLevels\[1\]\.tcb\.tdxtcbcomponents must have 16 components/);
    refused((b) => {
      b.tcbLevels[0].tcbDate = 5;
    }, /tcbLevels\[0\]\.tcbDate must be a string/);
    refused((b) => {
      b.tcbLevels[0].tcbStatus = {};
    }, /tcbLevels\[0\]\.tcbStatus must be a string/);
    refused((b) => {
      b.tcbLevels[0].advisoryIDs = ['INTEL-SA-1', 2];
    }, /tcbLevels\[0\]\.advisoryIDs\[1\] must be a string/);
  });

  it('keeps advisory ids only where they are a list', () => {
    const b = body();
    b.tcbLevels[0].advisoryIDs = ['INTEL-SA-00001'];
    b.tcbLevels[1].advisoryIDs = 'INTEL-SA-00002';
    const info = shapeTcbInfo(b);
    assert.deepEqual(info.tcbLevels[0]?.advisoryIDs, ['INTEL-SA-00001']);
    assert.ok(!('advisoryIDs' in info.tcbLevels[1]!));
  });
});

describe('TDX TCB status', () => {
  const v5 = () => parseTdxQuote(TDX.v5Quote());
  const sprInfo = () => verifyTcbInfo(TDX.tcbInfo(), TDX.tcbChain(), TDX_COLLATERAL_TIME);
  const qeOf = (quote: Buffer) => parseTdxQuote(quote).qeReport;

  it('evaluates platform, module and QE and takes the worst', () => {
    const e = evaluateTdxTcb(v5Info(), pckOf(TDX.v5Quote()), v5().body, {
      identity: sprQe(),
      report: qeOf(TDX.v5Quote()),
    });
    assert.equal(e.platform.status, 'UpToDate');
    assert.equal(e.platform.tcbDate, v5Info().tcbLevels[0]!.tcbDate);
    assert.deepEqual(e.module, { id: 'TDX_01', status: 'UpToDate' });
    assert.deepEqual(e.qe, { status: 'UpToDate', isvsvn: 7 });
    assert.equal(e.status, 'UpToDate');
    assert.equal(e.tcbEvaluationDataNumber, 18);
    // Without a QE identity there is no QE status.
    assert.ok(!('qe' in evaluateTdxTcb(v5Info(), pckOf(TDX.v5Quote()), v5().body)));
  });

  it('refuses TCB info whose TDX module signer or attributes differ from the report', async () => {
    const body = v5().body;
    const pck = pckOf(TDX.v5Quote());
    let info = v5Info();
    let err = await rejects(
      () => evaluateTdxTcb({ ...info, tdxModule: { ...info.tdxModule, mrsigner: 'ab'.repeat(48) } }, pck, body),
      'tdx.tcbinfo.module',
    );
    assert.equal(err.detail, 'MR_SIGNER_SEAM is not the TDX module signer Intel lists');
    assert.deepEqual([err.expected, err.actual], ['ab'.repeat(48), '00'.repeat(48)]);
    err = await rejects(
      () => evaluateTdxTcb({ ...info, tdxModule: { ...info.tdxModule, attributes: '0100000000000000' } }, pck, body),
      'tdx.tcbinfo.module',
    );
    assert.equal(err.detail, 'SEAM_ATTRIBUTES do not match the TCB info');
    // A mask or value of the wrong length matches nothing.
    info = v5Info();
    await rejects(
      () => evaluateTdxTcb({ ...info, tdxModule: { ...info.tdxModule, attributesMask: 'ff'.repeat(7) } }, pck, body),
      'tdx.tcbinfo.module',
    );
    await rejects(
      () => evaluateTdxTcb({ ...info, tdxModule: { ...info.tdxModule, attributes: '00'.repeat(7) } }, pck, body),
      'tdx.tcbinfo.module',
    );
  });

  it('refuses a TDX module update whose identity differs from the one Intel lists', async () => {
    const body = v5().body;
    assert.equal(body.teeTcbSvn[1], 1, 'the v5 sample runs a TDX module update (TDX_01)');
    const pck = pckOf(TDX.v5Quote());
    const info = v5Info();
    const withModule = (edit: Partial<NonNullable<TdxTcbInfo['tdxModuleIdentities']>[number]>) => ({
      ...info,
      tdxModuleIdentities: info.tdxModuleIdentities!.map((m) => (m.id === 'TDX_01' ? { ...m, ...edit } : m)),
    });
    let err = await rejects(
      () => evaluateTdxTcb(withModule({ mrsigner: 'cd'.repeat(48) }), pck, body),
      'tdx.tcbinfo.module',
    );
    assert.equal(err.detail, 'MR_SIGNER_SEAM does not match TDX_01');
    err = await rejects(
      () => evaluateTdxTcb(withModule({ attributes: '0000000000000080' }), pck, body),
      'tdx.tcbinfo.module',
    );
    assert.equal(err.detail, 'SEAM_ATTRIBUTES do not match TDX_01');
    // Lower-case ids in the collateral are the same module.
    assert.deepEqual(evaluateTdxTcb(withModule({ id: 'tdx_01' }), pck, body).module, {
      id: 'TDX_01',
      status: 'UpToDate',
    });
    // A module version the TCB info does not list, or older than all its levels, is not supported.
    const unlisted = evaluateTdxTcb(
      { ...info, tdxModuleIdentities: info.tdxModuleIdentities!.filter((m) => m.id !== 'TDX_01') },
      pck,
      body,
    );
    assert.deepEqual(unlisted.module, { id: 'TDX_01', status: 'NotSupported' });
    assert.equal(unlisted.status, 'NotSupported');
    assert.deepEqual(evaluateTdxTcb({ ...info, tdxModuleIdentities: undefined }, pck, body).module, {
      id: 'TDX_01',
      status: 'NotSupported',
    });
    const old = withModule({
      tcbLevels: [{ tcb: { isvsvn: body.teeTcbSvn[0]! + 1 }, tcbStatus: 'UpToDate', tcbDate: '' }],
    });
    assert.deepEqual(evaluateTdxTcb(old, pck, body).module, { id: 'TDX_01', status: 'NotSupported' });
    const exact = withModule({
      tcbLevels: [{ tcb: { isvsvn: body.teeTcbSvn[0]! }, tcbStatus: 'OutOfDate', tcbDate: '' }],
    });
    assert.deepEqual(evaluateTdxTcb(exact, pck, body).module, { id: 'TDX_01', status: 'OutOfDate' });
    assert.equal(evaluateTdxTcb(exact, pck, body).status, 'OutOfDate');
  });

  it('refuses TCB info for another PCE', async () => {
    const info = v5Info();
    const err = await rejects(
      () => evaluateTdxTcb({ ...info, pceId: 'ffff' }, pckOf(TDX.v5Quote()), v5().body),
      'tdx.tcbinfo.fmspc',
    );
    assert.deepEqual([err.detail, err.expected, err.actual], ['the TCB info is for another PCE', '0000', 'ffff']);
    const e2 = await rejects(
      () => evaluateTdxTcb({ ...info, fmspc: '000000000000' }, pckOf(TDX.v5Quote()), v5().body),
      'tdx.tcbinfo.fmspc',
    );
    assert.deepEqual(
      [e2.detail, e2.expected, e2.actual],
      ['the TCB info is for another platform model (FMSPC)', '90c06f000000', '000000000000'],
    );
  });

  it('compares bytes 0 and 1 of TEE_TCB_SVN when no module update is running', () => {
    const body = parseTdxQuote(spr()).body; // TEE_TCB_SVN 03 00 04 …
    const pck = pckOf(spr());
    const info = sprInfo();
    const level = (tdx0: number) => ({
      tcb: {
        sgxtcbcomponents: Array.from({ length: 16 }, () => ({ svn: 0 })),
        pcesvn: 0,
        tdxtcbcomponents: Array.from({ length: 16 }, (_, i) => ({ svn: i === 0 ? tdx0 : 0 })),
      },
      tcbDate: 'd',
      tcbStatus: 'UpToDate',
    });
    assert.equal(
      evaluateTdxTcb({ ...info, tcbLevels: [level(body.teeTcbSvn[0]!)] }, pck, body).platform.status,
      'UpToDate',
    );
    assert.equal(
      evaluateTdxTcb({ ...info, tcbLevels: [level(body.teeTcbSvn[0]! + 1)] }, pck, body).platform.status,
      'NotSupported',
    );
  });

  it('names module updates in upper-case hex (TDX_0B)', () => {
    const q = v5();
    const svn = Buffer.from(q.body.teeTcbSvn);
    svn[1] = 0x0b;
    const body = { ...q.body, teeTcbSvn: svn };
    const info = v5Info();
    const identity = {
      ...info.tdxModuleIdentities![1]!,
      id: 'TDX_0B',
      tcbLevels: [{ tcb: { isvsvn: 0 }, tcbStatus: 'SWHardeningNeeded', tcbDate: '' }],
    };
    const e = evaluateTdxTcb({ ...info, tdxModuleIdentities: [identity] }, pckOf(TDX.v5Quote()), body);
    assert.deepEqual(e.module, { id: 'TDX_0B', status: 'SWHardeningNeeded' });
  });

  it('judges a quote without a module update by all TEE_TCB_SVN bytes and reports no module', () => {
    const q = parseTdxQuote(spr());
    assert.equal(q.body.teeTcbSvn[1], 0);
    const e = evaluateTdxTcb(sprInfo(), pckOf(spr()), q.body);
    assert.ok(!('module' in e));
    assert.equal(e.platform.status, 'NotSupported');
    assert.ok(!('tcbDate' in e.platform));
  });

  it('puts the platform at the first level that every component reaches', () => {
    const body = v5().body;
    const pck = pckOf(TDX.v5Quote());
    const info = v5Info();
    const level = (status: string, sgx: number, pce: number, tdx: number) => ({
      tcb: {
        sgxtcbcomponents: Array.from({ length: 16 }, (_, i) => ({ svn: i === 0 ? sgx : 0 })),
        pcesvn: pce,
        tdxtcbcomponents: Array.from({ length: 16 }, (_, i) => ({ svn: i === 2 ? tdx : 0 })),
      },
      tcbDate: `date-${status}`,
      tcbStatus: status,
    });
    const sgx0 = pck.sgxTcbComponents[0]!;
    const tdx2 = body.teeTcbSvn[2]!;
    const with_ = (...levels: ReturnType<typeof level>[]) =>
      evaluateTdxTcb({ ...info, tcbLevels: levels }, pck, body).platform;
    assert.deepEqual(with_(level('UpToDate', sgx0 + 1, 0, 0), level('SWHardeningNeeded', sgx0, 0, 0)), {
      status: 'SWHardeningNeeded',
      tcbDate: 'date-SWHardeningNeeded',
    });
    assert.equal(
      with_(level('UpToDate', 0, pck.pceSvn + 1, 0), level('OutOfDate', 0, pck.pceSvn, 0)).status,
      'OutOfDate',
    );
    assert.equal(with_(level('UpToDate', 0, 0, tdx2 + 1), level('Revoked', 0, 0, tdx2)).status, 'Revoked');
    assert.equal(with_(level('UpToDate', sgx0 + 1, 0, 0)).status, 'NotSupported');
    // Bytes 0 and 1 of TEE_TCB_SVN describe the module update here and are not compared.
    const high = level('UpToDate', 0, 0, 0);
    high.tcb.tdxtcbcomponents[0]!.svn = 255;
    high.tcb.tdxtcbcomponents[1]!.svn = 255;
    assert.equal(with_(high).status, 'UpToDate');
    high.tcb.tdxtcbcomponents[3]!.svn = 1;
    assert.equal(with_(high).status, 'NotSupported');
    // An unknown status string counts as the most severe.
    assert.equal(with_(level('SomethingNew', 0, 0, 0)).status, 'NotSupported');
    const advised = { ...level('UpToDate', 0, 0, 0), advisoryIDs: ['INTEL-SA-00837'] };
    assert.deepEqual(with_(advised).advisoryIDs, ['INTEL-SA-00837']);
  });

  it('refuses a QE that is not the enclave the QE identity describes', async () => {
    const body = v5().body;
    const pck = pckOf(TDX.v5Quote());
    const report = qeOf(TDX.v5Quote());
    const qe = sprQe();
    const evalWith = (identity: QeIdentity) => evaluateTdxTcb(v5Info(), pck, body, { identity, report });
    let err = await rejects(() => evalWith({ ...qe, mrsigner: '00'.repeat(32) }), 'tdx.qeidentity.mismatch');
    assert.equal(err.detail, "the QE was not signed by Intel's QE signer");
    assert.deepEqual([err.expected, err.actual], ['00'.repeat(32), qe.mrsigner]);
    err = await rejects(() => evalWith({ ...qe, isvprodid: 1 }), 'tdx.qeidentity.mismatch');
    assert.equal(err.detail, 'the QE product id does not match');
    assert.deepEqual([err.expected, err.actual], ['1', '2']);
    err = await rejects(() => evalWith({ ...qe, miscselect: '00000001' }), 'tdx.qeidentity.mismatch');
    assert.equal(err.detail, 'the QE MISCSELECT does not match');
    assert.deepEqual([err.expected, err.actual], ['00000001', '00000000']);
    err = await rejects(() => evalWith({ ...qe, attributes: '15'.padEnd(32, '0') }), 'tdx.qeidentity.mismatch');
    assert.equal(err.detail, 'the QE attributes do not match');
    // The masks decide which bits count.
    assert.equal(
      evalWith({ ...qe, attributes: '15'.padEnd(32, '0'), attributesMask: 'ff'.padEnd(32, '0') }).qe?.status,
      'UpToDate',
    );
    // MISCSELECT is compared in its big-endian rendering: a mask on the low byte catches bit 0.
    const misc = { ...report, miscSelect: 1 };
    await rejects(
      () => evaluateTdxTcb(v5Info(), pck, body, { identity: { ...qe, miscselectMask: '000000ff' }, report: misc }),
      'tdx.qeidentity.mismatch',
    );
    assert.equal(
      evaluateTdxTcb(v5Info(), pck, body, {
        identity: { ...qe, miscselect: '00000001', miscselectMask: '000000ff' },
        report: misc,
      }).qe?.status,
      'UpToDate',
    );
  });

  it('gives the QE the status of the first level its ISVSVN reaches', () => {
    const body = v5().body;
    const pck = pckOf(TDX.v5Quote());
    const report = qeOf(TDX.v5Quote()); // ISVSVN 7
    const qe = sprQe();
    const levels = (...l: [number, string][]) => ({
      ...qe,
      tcbLevels: l.map(([isvsvn, tcbStatus]) => ({ tcb: { isvsvn }, tcbStatus, tcbDate: '' })),
    });
    const status = (identity: QeIdentity) => evaluateTdxTcb(v5Info(), pck, body, { identity, report });
    assert.deepEqual(status(levels([8, 'UpToDate'], [7, 'SWHardeningNeeded'], [1, 'OutOfDate'])).qe, {
      status: 'SWHardeningNeeded',
      isvsvn: 7,
    });
    assert.equal(status(levels([8, 'UpToDate'], [7, 'SWHardeningNeeded'])).status, 'SWHardeningNeeded');
    assert.deepEqual(status(levels([8, 'UpToDate'])).qe, { status: 'NotSupported', isvsvn: 7 });
    assert.equal(status(levels([6, 'Weird'])).qe?.status, 'NotSupported');
  });

  it('accepts only the listed statuses and names every part in the refusal', async () => {
    assert.ok(isTcbStatus('UpToDate'));
    assert.ok(!isTcbStatus('uptodate'));
    assert.equal(TCB_STATUSES.length, 8);
    const e = {
      status: 'OutOfDate' as const,
      platform: { status: 'OutOfDate' as const },
      module: { id: 'TDX_01', status: 'UpToDate' as const },
      qe: { status: 'UpToDate' as const, isvsvn: 7 },
      tcbEvaluationDataNumber: 1,
    };
    assert.doesNotThrow(() => requireAcceptedStatus(e, ['UpToDate', 'OutOfDate']));
    let err = await rejects(() => requireAcceptedStatus(e, ['UpToDate', 'SWHardeningNeeded']), 'tdx.tcb.status');
    assert.equal(
      err.detail,
      'the TCB status is not accepted (platform OutOfDate, module TDX_01 UpToDate, QE UpToDate)',
    );
    assert.deepEqual([err.expected, err.actual], ['UpToDate | SWHardeningNeeded', 'OutOfDate']);
    err = await rejects(
      () =>
        requireAcceptedStatus({ status: 'Revoked', platform: { status: 'Revoked' }, tcbEvaluationDataNumber: 1 }, []),
      'tdx.tcb.status',
    );
    assert.equal(err.detail, 'the TCB status is not accepted (platform Revoked)');
  });

  it('ranks statuses from UpToDate to NotSupported when taking the worst', () => {
    const body = v5().body;
    const pck = pckOf(TDX.v5Quote());
    const report = qeOf(TDX.v5Quote());
    const info = v5Info();
    for (let i = 0; i < TCB_STATUSES.length; i++) {
      for (let j = 0; j < TCB_STATUSES.length; j++) {
        const identity = { ...sprQe(), tcbLevels: [{ tcb: { isvsvn: 0 }, tcbStatus: TCB_STATUSES[j]!, tcbDate: '' }] };
        const tcbInfo = {
          ...info,
          tcbLevels: info.tcbLevels.map((l) => ({ ...l, tcbStatus: TCB_STATUSES[i]! })),
          tdxModuleIdentities: undefined,
        };
        const e = evaluateTdxTcb(
          {
            ...tcbInfo,
            tdxModuleIdentities: info.tdxModuleIdentities!.map((m) => ({
              ...m,
              tcbLevels: m.tcbLevels.map((l) => ({ ...l, tcbStatus: 'UpToDate' })),
            })),
          },
          pck,
          body,
          { identity, report },
        );
        assert.equal(e.status, TCB_STATUSES[Math.max(i, j)], `${TCB_STATUSES[i]} and ${TCB_STATUSES[j]}`);
      }
    }
  });
});

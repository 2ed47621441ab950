import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, verify as cryptoVerify } from 'node:crypto';
import { verifyTdx, type TdxReferenceValues, type TdxVerifyOptions } from '../../src/attestation/index.js';
import { parseTdxQuote } from '../../src/attestation/tdx/quote.js';
import { readPckExtension } from '../../src/attestation/tdx/pck.js';
import { shapeTcbInfo } from '../../src/attestation/tdx/collateral.js';
import { splitSignedJson } from '../../src/attestation/tdx/signed-json.js';
import { evaluateTdxTcb } from '../../src/attestation/tdx/tcb-status.js';
import { validateTdxReference } from '../../src/attestation/tdx/validate.js';
import { checkCrl, parseCrl, subjectDer } from '../../src/attestation/x509.js';
import { forgeCertificate } from './der-builder.js';
import { checkIs, rejects } from './assertions.js';
import { TDX, TDX_COLLATERAL_TIME } from './vectors.js';

const NOW = new Date('2026-11-23T00:00:00Z');

const fullCollateral = (): TdxVerifyOptions['collateral'] => ({
  tcbInfo: TDX.tcbInfo(),
  tcbInfoIssuerChain: TDX.tcbChain(),
  qeIdentity: TDX.qeIdentity(),
  qeIdentityIssuerChain: TDX.qeChain(),
  pckCrl: TDX.pckCrl(),
  rootCrl: TDX.rootCrl(),
});

const inspect = { allowMissingCollateral: true, now: NOW };

function refFor(quote: Buffer, over: Partial<TdxReferenceValues> = {}): TdxReferenceValues {
  const b = parseTdxQuote(quote).body;
  return {
    MrTd: b.mrTd.toString('hex'),
    Rtmrs: b.rtmrs.map((r) => r.toString('hex')),
    MrSeam: b.mrSeam.toString('hex'),
    Xfam: b.xfam.toString('hex'),
    TdAttributes: b.tdAttributes.toString('hex'),
    MinimumTeeTcbSvn: b.teeTcbSvn.toString('hex'),
    ...over,
  };
}

/** The quote with its PCK chain replaced, every enclosing length adjusted. */
function withPckChain(quoteBytes: Buffer, pem: Buffer): Buffer {
  const q = parseTdxQuote(quoteBytes);
  const start = q.pckChainPem.byteOffset - q.raw.byteOffset;
  const delta = pem.length - q.pckChainPem.length;
  const out = Buffer.concat([q.raw.subarray(0, start), pem, q.raw.subarray(start + q.pckChainPem.length)]);
  out.writeUInt32LE(pem.length, start - 4);
  const sigLenAt = q.signedBytes.length;
  out.writeUInt32LE(q.raw.readUInt32LE(sigLenAt) + delta, sigLenAt);
  const certLenAt = sigLenAt + 4 + 128 + 2;
  out.writeUInt32LE(q.raw.readUInt32LE(certLenAt) + delta, certLenAt);
  return out;
}

/** PEM blocks laid out as the quoting enclave writes them (each block ends in one LF). */
const pemChain = (blocks: string[]) => Buffer.from(blocks.map((b) => `${b.trimEnd()}\n`).join(''));

function pckPems(quote: Buffer): string[] {
  return parseTdxQuote(quote)
    .pckChainPem.toString('latin1')
    .match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!;
}

describe('TDX verification: genuine quotes', () => {
  it('verifies the v4 SPR quote with all 2023 collateral and CRLs, and reports TCB level not supported', () => {
    const err = (() => {
      try {
        verifyTdx({ quote: TDX.sprQuote() }, null, {}, { now: TDX_COLLATERAL_TIME, collateral: fullCollateral() });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(checkIs('tdx.tcb.status')(err), String(err));
    const r = verifyTdx(
      { quote: TDX.sprQuote() },
      null,
      {},
      { now: TDX_COLLATERAL_TIME, collateral: fullCollateral(), acceptedTcbStatuses: ['UpToDate', 'NotSupported'] },
    );
    assert.equal(r.quoteVersion, 4);
    assert.equal(r.tcbStatus, 'NotSupported');
    assert.equal(r.tcb?.platform.status, 'NotSupported');
    assert.deepEqual(r.tcb?.qe, { status: 'UpToDate', isvsvn: 4 });
    assert.equal(r.tcb?.tcbEvaluationDataNumber, 15);
    assert.deepEqual(r.crlChecked, { root: true, pck: true });
    assert.equal(r.pck.extension.fmspc.toString('hex'), '50806f000000');
    assert.equal(r.quote.trailingBytes, 39);
  });

  it('verifies the v5 quote (TDX 1.5 body) and the padded COS quote offline without collateral', () => {
    const v5 = verifyTdx({ quote: TDX.v5Quote() }, null, {}, inspect);
    assert.equal(v5.quoteVersion, 5);
    assert.equal(v5.quote.bodyType, 3);
    assert.equal(v5.tcbStatus, 'NotEvaluated');
    assert.equal(v5.pck.extension.fmspc.toString('hex'), '90c06f000000');
    const cos = verifyTdx({ quote: TDX.cosQuote() }, null, {}, inspect);
    assert.equal(cos.quoteVersion, 4);
    assert.equal(cos.quote.trailingBytes, 3065);
    assert.equal(cos.pck.extension.fmspc.toString('hex'), '00806f050000');
  });

  it('evaluates the v5 quote as UpToDate (platform and module TDX_01) against its Intel-signed TCB info', () => {
    // The TCB signing certificate in the vectors expired in 2025, before this TCB info was
    // issued (Intel re-issued it with the same key), so check the signature with that key here.
    const signed = splitSignedJson(TDX.tcbInfoV5(), 'tcbInfo', 'test');
    const signer = new X509Certificate(TDX.tcbChain());
    assert.ok(
      cryptoVerify('sha256', signed.signed, { key: signer.publicKey, dsaEncoding: 'ieee-p1363' }, signed.signature),
    );
    const q = parseTdxQuote(TDX.v5Quote());
    const pck = readPckExtension(new X509Certificate(pckPems(TDX.v5Quote())[0]!));
    const e = evaluateTdxTcb(shapeTcbInfo(signed.value), pck, q.body);
    assert.equal(e.status, 'UpToDate');
    assert.equal(e.platform.status, 'UpToDate');
    assert.deepEqual(e.module, { id: 'TDX_01', status: 'UpToDate' });
    assert.equal(e.tcbEvaluationDataNumber, 18);
  });

  it('rejects collateral for another platform (FMSPC)', () => {
    const signed = splitSignedJson(TDX.tcbInfoV5(), 'tcbInfo', 'test');
    const spr = parseTdxQuote(TDX.sprQuote());
    const pck = readPckExtension(new X509Certificate(pckPems(TDX.sprQuote())[0]!));
    assert.throws(() => evaluateTdxTcb(shapeTcbInfo(signed.value), pck, spr.body), checkIs('tdx.tcbinfo.fmspc'));
  });

  it('requires TCB info unless told to verify without it', async () => {
    await rejects(() => verifyTdx({ quote: TDX.v5Quote() }, null, {}, { now: NOW }), 'tdx.tcbinfo.missing');
  });
});

describe('TDX verification: time', () => {
  it('rejects the 2023 collateral now: expired CRL, expired signing certificate, stale TCB info', async () => {
    await rejects(
      () => verifyTdx({ quote: TDX.sprQuote() }, null, {}, { now: NOW, collateral: fullCollateral() }),
      'tdx.crl.root',
    );
    const { pckCrl: _p, rootCrl: _r, ...noCrls } = fullCollateral()!;
    await rejects(
      () => verifyTdx({ quote: TDX.sprQuote() }, null, {}, { now: NOW, collateral: noCrls }),
      'tdx.tcbinfo.signer',
    );
    await rejects(
      () =>
        verifyTdx({ quote: TDX.sprQuote() }, null, {}, { now: new Date('2024-01-01T00:00:00Z'), collateral: noCrls }),
      'tdx.tcbinfo.validity',
    );
    await rejects(
      () =>
        verifyTdx(
          { quote: TDX.v5Quote() },
          null,
          {},
          {
            now: new Date('2026-02-02T00:00:00Z'),
            collateral: { tcbInfo: TDX.tcbInfoV5(), tcbInfoIssuerChain: TDX.tcbChain() },
          },
        ),
      'tdx.tcbinfo.signer',
    );
  });

  it('rejects a PCK certificate that is not yet valid', async () => {
    await rejects(
      () => verifyTdx({ quote: TDX.v5Quote() }, null, {}, { ...inspect, now: new Date('2025-01-01T00:00:00Z') }),
      'tdx.pck.validity',
    );
  });
});

describe('TDX verification: tampering', () => {
  it('rejects a flip of any byte in the header or TD report body', async () => {
    const quote = TDX.v5Quote();
    const signedLength = parseTdxQuote(quote).signedBytes.length;
    const allowed = new Set(['tdx.quote.parse', 'tdx.quote.signature', 'tdx.quote.vendor']);
    for (let off = 0; off < signedLength; off++) {
      const bad = Buffer.from(quote);
      bad[off]! ^= 0x01;
      const err = await rejects(() => verifyTdx({ quote: bad }, null, {}, inspect));
      assert.ok(allowed.has(err.check), `offset ${off}: ${err.message}`);
    }
  });

  it('rejects a changed measurement with the quote-signature check', async () => {
    const bad = Buffer.from(TDX.v5Quote());
    bad[0x36 + 0x88]! ^= 0xff; // MR_TD
    await rejects(() => verifyTdx({ quote: bad }, null, {}, inspect), 'tdx.quote.signature');
  });

  it('rejects a changed QE report, QE auth data or attestation key', async () => {
    const quote = TDX.sprQuote();
    const q = parseTdxQuote(quote);
    const at = (b: Buffer) => b.byteOffset - q.raw.byteOffset;
    for (const [offset, check] of [
      [at(q.qeReport.raw) + 0x10, 'tdx.qe.signature'],
      [at(q.qeAuthData), 'tdx.qe.binding'],
      [at(q.attestationKey) + 5, 'tdx.qe.binding'],
      [at(q.signature) + 3, 'tdx.quote.signature'],
    ] as const) {
      const bad = Buffer.from(quote);
      bad[offset]! ^= 0x01;
      await rejects(() => verifyTdx({ quote: bad }, null, {}, inspect), check);
    }
  });

  it("rejects a PCK chain ending in a self-made root with Intel's name", async () => {
    const quote = TDX.cosQuote();
    const [leaf, intermediate, root] = pckPems(quote).map((p) => new X509Certificate(p)) as [
      X509Certificate,
      X509Certificate,
      X509Certificate,
    ];
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const fakeRoot = forgeCertificate({
      subject: subjectDer(root),
      issuer: subjectDer(root),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      alg: 'ecdsa-sha256',
      ca: true,
    });
    const fakeCa = forgeCertificate({
      subject: subjectDer(intermediate),
      issuer: subjectDer(root),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      alg: 'ecdsa-sha256',
      ca: true,
    });
    const swapRoot = Buffer.from([leaf, intermediate, fakeRoot].map((c) => c.toString()).join(''));
    const err = await rejects(
      () => verifyTdx({ quote: withPckChain(quote, swapRoot) }, null, {}, inspect),
      'tdx.pck.root',
    );
    assert.match(err.message, /44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3/);
    const swapCa = Buffer.from([leaf, fakeCa, root].map((c) => c.toString()).join(''));
    await rejects(() => verifyTdx({ quote: withPckChain(quote, swapCa) }, null, {}, inspect), 'tdx.pck.chain');
    await rejects(
      () =>
        verifyTdx(
          { quote: withPckChain(quote, Buffer.from([leaf, intermediate].map((c) => c.toString()).join(''))) },
          null,
          {},
          inspect,
        ),
      'tdx.pck.chain',
    );
  });

  it('turns an unreadable certificate key into an attestation error (found by fuzzing)', async () => {
    const quote = TDX.cosQuote();
    const pems = pckPems(quote);
    const der = new X509Certificate(pems[0]!).raw;
    const point = der.indexOf(Buffer.from('03420004', 'hex'));
    assert.ok(point > 0);
    const bad = Buffer.from(der);
    bad[point + 3] = 0x05; // not an uncompressed point: Node throws when the key is read
    const pem = `-----BEGIN CERTIFICATE-----\n${bad
      .toString('base64')
      .match(/.{1,64}/g)!
      .join('\n')}\n-----END CERTIFICATE-----`;
    await rejects(
      () => verifyTdx({ quote: withPckChain(quote, pemChain([pem, pems[1]!, pems[2]!])) }, null, {}, inspect),
      'tdx.pck.chain',
    );
  });

  it('rejects a PCK certificate from another platform (its key did not sign this QE report)', async () => {
    await rejects(
      () => verifyTdx({ quote: withPckChain(TDX.cosQuote(), pemChain(pckPems(TDX.sprQuote()))) }, null, {}, inspect),
      'tdx.qe.signature',
    );
  });

  it('rejects tampered or wrongly signed collateral', async () => {
    const tcbInfo = Buffer.from(
      TDX.tcbInfo().toString('utf8').replace('"tcbEvaluationDataNumber":15', '"tcbEvaluationDataNumber":16'),
    );
    const base = { now: TDX_COLLATERAL_TIME, acceptedTcbStatuses: ['NotSupported' as const] };
    await rejects(
      () =>
        verifyTdx(
          { quote: TDX.sprQuote() },
          null,
          {},
          { ...base, collateral: { tcbInfo, tcbInfoIssuerChain: TDX.tcbChain() } },
        ),
      'tdx.tcbinfo.signature',
    );
    const qe = Buffer.from(TDX.qeIdentity().toString('utf8').replace('"isvsvn":4', '"isvsvn":3'));
    await rejects(
      () =>
        verifyTdx(
          { quote: TDX.sprQuote() },
          null,
          {},
          { ...base, collateral: { tcbInfo: TDX.tcbInfo(), tcbInfoIssuerChain: TDX.tcbChain(), qeIdentity: qe } },
        ),
      'tdx.qeidentity.signature',
    );
    // The PCK CRL issuer chain is Intel's, but its first certificate is not the TCB signer.
    await rejects(
      () =>
        verifyTdx(
          { quote: TDX.sprQuote() },
          null,
          {},
          { ...base, collateral: { tcbInfo: TDX.tcbInfo(), tcbInfoIssuerChain: TDX.read('pckCrlIssuerChain.pem') } },
        ),
      'tdx.tcbinfo.signer',
    );
  });

  it("detects a revoked PCK serial on Intel's genuine PCK CRL and rejects a tampered CRL", () => {
    const crl = parseCrl(TDX.pckCrl());
    const serial = [...crl.revoked][0]!;
    const [, intermediate] = pckPems(TDX.sprQuote()).map((p) => new X509Certificate(p));
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const revokedPck = forgeCertificate({
      subject: subjectDer(intermediate!),
      issuer: subjectDer(intermediate!),
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      alg: 'ecdsa-sha256',
      serial: BigInt(`0x${serial}`),
    });
    assert.throws(() => checkCrl(crl, intermediate!, TDX_COLLATERAL_TIME, [revokedPck], 'tdx.crl.pck'), /revoked/);
    const tampered = Buffer.from(TDX.pckCrl());
    tampered[tampered.length - 10]! ^= 1;
    assert.throws(
      () =>
        verifyTdx(
          { quote: TDX.sprQuote() },
          null,
          {},
          { now: TDX_COLLATERAL_TIME, allowMissingCollateral: true, collateral: { pckCrl: tampered } },
        ),
      checkIs('tdx.crl.pck'),
    );
  });

  it('rejects truncated quotes and tolerates trailing bytes', async () => {
    const quote = TDX.v5Quote();
    for (const n of [0, 10, 48, 100, 0x36 + 648, 0x36 + 648 + 4, 1000, 2000, quote.length - 1]) {
      await rejects(() => verifyTdx({ quote: quote.subarray(0, n) }, null, {}, inspect), 'tdx.quote.parse');
    }
    const padded = Buffer.concat([quote, Buffer.alloc(4096, 0xee)]);
    assert.equal(verifyTdx({ quote: padded }, null, {}, inspect).quote.trailingBytes, 4096);
  });
});

describe('TDX verification: reference values and expectations', () => {
  it('accepts matching reference values and expectations', () => {
    const quote = TDX.v5Quote();
    const q = parseTdxQuote(quote);
    const r = verifyTdx(
      { quote },
      [refFor(quote)],
      { reportData: q.body.reportData, mrConfigId: Buffer.alloc(32) },
      inspect,
    );
    assert.equal(r.referenceValueIndex, 0);
  });

  it('rejects each mismatching measurement with expected and actual values', async () => {
    const quote = TDX.v5Quote();
    const cases: [Partial<TdxReferenceValues>, string][] = [
      [{ MrTd: '00'.repeat(48) }, 'tdx.mrtd'],
      [{ Rtmrs: ['', '', '11'.repeat(48), ''] }, 'tdx.rtmr2'],
      [{ MrSeam: '22'.repeat(48) }, 'tdx.mrseam'],
      [{ Xfam: 'e700060000000000' }, 'tdx.xfam'],
      [{ TdAttributes: '0000000000000000' }, 'tdx.tdattributes'],
      [{ MinimumTeeTcbSvn: '0c010400000000000000000000000000' }, 'tdx.teetcbsvn'],
      [{ MinTCBEvaluationDataNumber: 18 }, 'tdx.tcbevaluationdatanumber'],
      [{ AllowedPIIDs: ['00'.repeat(16)] }, 'tdx.piid'],
      [{ SMTDisabled: true }, 'tdx.unsupported'],
    ];
    for (const [over, check] of cases)
      await rejects(() => verifyTdx({ quote }, [refFor(quote, over)], {}, inspect), check);
    const err = await rejects(
      () => verifyTdx({ quote }, [refFor(quote, { MrTd: 'ab'.repeat(48) })], {}, inspect),
      'tdx.mrtd',
    );
    assert.equal(err.expected, 'ab'.repeat(48));
    assert.equal(err.actual, parseTdxQuote(quote).body.mrTd.toString('hex'));
  });

  it('ignores the CET bits of XFAM as upstream does', () => {
    const quote = TDX.v5Quote();
    const xfam = Buffer.from(parseTdxQuote(quote).body.xfam);
    xfam[1]! ^= 0x18; // bits 11 and 12
    verifyTdx({ quote }, [refFor(quote, { Xfam: xfam.toString('hex') })], {}, inspect);
  });

  it('checks the TCB evaluation data number against verified collateral', async () => {
    const base = {
      now: TDX_COLLATERAL_TIME,
      collateral: fullCollateral(),
      acceptedTcbStatuses: ['NotSupported' as const],
    };
    const quote = TDX.sprQuote();
    verifyTdx({ quote }, [refFor(quote, { MinTCBEvaluationDataNumber: 15 })], {}, base);
    await rejects(
      () => verifyTdx({ quote }, [refFor(quote, { MinTCBEvaluationDataNumber: 16 })], {}, base),
      'tdx.tcbevaluationdatanumber',
    );
  });

  it('rejects a debug TD whatever the reference values say', () => {
    const q = parseTdxQuote(TDX.v5Quote());
    const tdAttributes = Buffer.from(q.body.tdAttributes);
    tdAttributes[0]! |= 1;
    const body = { ...q.body, tdAttributes };
    const pck = readPckExtension(new X509Certificate(pckPems(TDX.v5Quote())[0]!));
    assert.throws(
      () =>
        validateTdxReference(
          { body, pck, qeReport: q.qeReport },
          refFor(TDX.v5Quote(), { TdAttributes: tdAttributes.toString('hex') }),
        ),
      checkIs('tdx.tdattributes.debug'),
    );
  });

  it('rejects wrong MRCONFIGID and REPORT_DATA', async () => {
    const quote = TDX.v5Quote();
    const err = await rejects(
      () => verifyTdx({ quote }, null, { mrConfigId: Buffer.alloc(32, 7) }, inspect),
      'tdx.mrconfigid',
    );
    assert.equal(err.expected, `${'07'.repeat(32)}${'00'.repeat(16)}`);
    await rejects(() => verifyTdx({ quote }, null, { reportData: Buffer.alloc(64) }, inspect), 'tdx.reportdata');
  });

  it('refuses an empty reference-value list', async () => {
    await rejects(() => verifyTdx({ quote: TDX.v5Quote() }, [], {}, inspect), 'tdx.referencevalues');
  });
});

/**
 * Genuine TDX quotes carry their PCK chain as PEM. Inside an aTLS certificate they must be read
 * as evidence of the outer certificate's key (a lax parser reads the embedded PCK certificate
 * instead and refuses every TDX peer), and must verify through the admission path.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createAtlsCertDer, parseAtlsCert } from '../../src/atls/cert.js';
import { admitPeer } from '../../src/atls/validate.js';
import { parseTdxQuote } from '../../src/attestation/tdx/quote.js';
import { spkiDer } from '../../src/atls/binding.js';
import { TDX, TDX_COLLATERAL_TIME } from '../attestation/vectors.js';
import { rejects } from '../attestation/assertions.js';
import { OID_TDX_EVIDENCE } from '../../src/attestation/tees.js';

function refFor(quote: Buffer) {
  const b = parseTdxQuote(quote).body;
  return {
    MrTd: b.mrTd.toString('hex'), Rtmrs: b.rtmrs.map((r) => r.toString('hex')), MrSeam: b.mrSeam.toString('hex'),
    Xfam: b.xfam.toString('hex'), TdAttributes: b.tdAttributes.toString('hex'), MinimumTeeTcbSvn: b.teeTcbSvn.toString('hex'),
  };
}

const collateral = () => ({
  tcbInfo: TDX.tcbInfo(), tcbInfoIssuerChain: TDX.tcbChain(), qeIdentity: TDX.qeIdentity(), qeIdentityIssuerChain: TDX.qeChain(),
  pckCrl: TDX.pckCrl(), rootCrl: TDX.rootCrl(),
});

describe('genuine TDX quotes through the aTLS path', () => {
  const quotes = { 'v4 SPR': TDX.sprQuote(), v5: TDX.v5Quote(), 'v4 COS (padded)': TDX.cosQuote() };

  for (const [name, quote] of Object.entries(quotes)) {
    it(`reads the ${name} quote as evidence of the outer certificate's key`, () => {
      const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const peer = parseAtlsCert(createAtlsCertDer(key, { oid: OID_TDX_EVIDENCE, value: quote }));
      assert.ok(peer.spki.equals(spkiDer(key)));
      assert.equal(peer.evidence.length, 1);
      assert.ok(peer.evidence[0]!.value.equals(quote));
    });
  }

  it('admits the v4 SPR quote with its 2023 collateral and refuses it for another binding or policy', async () => {
    const quote = quotes['v4 SPR'];
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const peer = parseAtlsCert(createAtlsCertDer(key, { oid: OID_TDX_EVIDENCE, value: quote }));
    const body = parseTdxQuote(quote).body;
    const policyHash = body.mrConfigId.subarray(0, 32).toString('hex');
    const opts = {
      refs: { tdx: [refFor(quote)] }, policyHashes: [policyHash], what: 'workload policy',
      tdx: { now: TDX_COLLATERAL_TIME, collateral: collateral(), acceptedTcbStatuses: ['UpToDate', 'NotSupported'] as const },
    };
    const admitted = await admitPeer(peer, Buffer.from(body.reportData), opts);
    assert.equal(admitted.tee, 'tdx');
    assert.equal(admitted.policyHash, policyHash);
    await rejects(() => admitPeer(peer, Buffer.alloc(64, 1), opts), 'tdx.reportdata');
    await rejects(() => admitPeer(peer, Buffer.from(body.reportData), { ...opts, policyHashes: ['ab'.repeat(32)] }), 'policy.hash');
  });
});

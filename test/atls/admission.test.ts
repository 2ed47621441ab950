/** Admission of an aTLS peer: evidence, binding, policy hash, and how failures are reported. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createAtlsCertDer, parseAtlsCert, type AtlsPeer } from '../../src/atls/cert.js';
import { admitPeer } from '../../src/atls/validate.js';
import { AttestationError } from '../../src/attestation/errors.js';
import { UserError } from '../../src/util/errors.js';
import { SIM_REFS, simReport, simRootKeys } from '../attestation/sim-fakes.js';
import { rejects } from '../attestation/assertions.js';
import { OID_SIMULATED_EVIDENCE, OID_SNP_EVIDENCE } from '../../src/attestation/tees.js';
import { SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';

describe('aTLS admission', () => {
  const root = simRootKeys();
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const reportData = Buffer.alloc(64, 0x21);
  const policy = Buffer.alloc(32, 0x7a);
  const good = { oid: OID_SIMULATED_EVIDENCE, value: simReport(root.privateKey, { hostData: policy, reportData }) };
  const peerWith = (...evidence: { oid: string; value: Buffer }[]): AtlsPeer => ({
    ...parseAtlsCert(createAtlsCertDer(key)),
    evidence,
  });
  const opts = (over: object = {}) => ({
    refs: { insecure: SIM_REFS },
    policyHashes: [policy.toString('hex')],
    what: 'workload policy',
    simRoot: root.publicKey,
    onSimulated: () => undefined,
    ...over,
  });

  it('admits a peer whose evidence verifies and whose policy hash is allowed', async () => {
    const a = await admitPeer(
      peerWith(good),
      reportData,
      opts({ policyHashes: ['00'.repeat(32), policy.toString('hex')] }),
    );
    assert.deepEqual(a, {
      tee: 'insecure-sim',
      hostData: policy,
      measurement: SIMULATED_MEASUREMENT,
      policyHash: policy.toString('hex'),
    });
  });

  it('refuses a peer without evidence', async () => {
    const err = await rejects(() => admitPeer(peerWith(), reportData, opts()), 'atls.evidence');
    assert.equal(err.detail, 'the peer certificate carries no attestation evidence');
  });

  it("refuses evidence bound to another key or nonce with the platform's own check", async () => {
    await rejects(() => admitPeer(peerWith(good), Buffer.alloc(64), opts()), 'sim.reportdata');
  });

  it('refuses a policy hash that is not allowed, naming what was expected', async () => {
    let err = await rejects(
      () =>
        admitPeer(
          peerWith(good),
          reportData,
          opts({ policyHashes: ['ab'.repeat(32), 'cd'.repeat(32)], what: 'Coordinator policy' }),
        ),
      'policy.hash',
    );
    assert.match(
      err.detail,
      /^the reported policy hash \(HOSTDATA\/MRCONFIGID\) is not a Coordinator policy in the manifest; /,
    );
    assert.equal(err.expected, `${'ab'.repeat(32)} or ${'cd'.repeat(32)}`);
    assert.equal(err.actual, policy.toString('hex'));
    err = await rejects(() => admitPeer(peerWith(good), reportData, opts({ policyHashes: [] })), 'policy.hash');
    assert.equal(err.expected, '(none in the manifest)');
  });

  it('tries every piece of evidence until one verifies', async () => {
    const wrongKey = {
      oid: OID_SIMULATED_EVIDENCE,
      value: simReport(simRootKeys().privateKey, { hostData: policy, reportData }),
    };
    const a = await admitPeer(peerWith(wrongKey, good), reportData, opts());
    assert.equal(a.policyHash, policy.toString('hex'));
  });

  it('reports the one failure as it is, and several failures together', async () => {
    const wrongKey = {
      oid: OID_SIMULATED_EVIDENCE,
      value: simReport(simRootKeys().privateKey, { hostData: policy, reportData }),
    };
    const unknown = { oid: OID_SNP_EVIDENCE, value: Buffer.alloc(0) };
    const one = await rejects(() => admitPeer(peerWith(wrongKey), reportData, opts()), 'sim.report.signature');
    assert.ok(one instanceof AttestationError);
    const both = await rejects(() => admitPeer(peerWith(wrongKey, unknown), reportData, opts()), 'atls.evidence');
    assert.equal(
      both.detail,
      `${one.message}; attestation check snp.referencevalues failed: the peer sent SEV-SNP evidence but the manifest has no SNP reference values`,
    );
  });

  it('passes other errors (a malformed manifest) through at once', async () => {
    const snp = { oid: OID_SNP_EVIDENCE, value: Buffer.alloc(0) };
    await assert.rejects(
      () =>
        admitPeer(
          peerWith(snp, good),
          reportData,
          opts({ refs: { snp: [{ TrustedMeasurement: 'xyz' }], insecure: SIM_REFS } }),
        ),
      (err: unknown) => err instanceof UserError && !(err instanceof AttestationError),
    );
  });
});

/**
 * Genuine TDX quotes carry their PCK chain as PEM. Inside an aTLS certificate they must be read
 * as evidence of the outer certificate's key (a lax parser reads the embedded PCK certificate
 * instead and refuses every TDX peer), and must verify through the admission path.
 *
 * A genuine quote binds REPORT_DATA of its own, so no aTLS key and nonce of ours can match it:
 * a real Coordinator is shown to take TDX evidence to the TDX verifier with its production
 * admission options (collateral from Intel PCS, CRLs required) and to refuse it there for the
 * binding, before asking PCS for anything; the same admission options, given the binding the
 * quote carries, fetch its collateral from PCS and admit it. The binding itself (SHA-512 of key
 * and nonce) is tested apart, in binding.test.ts and the simulated end-to-end tests.
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
import { createPublicKey } from 'node:crypto';
import { admissionDispatch } from '../../src/coordinator/collateral.js';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { MemoryStore } from '../../src/coordinator/store/dir.js';
import { SimulatedIssuer, loadOrCreateSimRoot } from '../../src/issuers/simulated.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import { dialAtls } from '../../src/atls/client.js';
import { CLIENT_EVIDENCE_HEADER } from '../../src/atls/binding.js';
import { callUnary, RpcError, Status } from '../../src/coordinator/api/grpc.js';
import { MESHAPI_SERVICE } from '../../src/coordinator/api/messages.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { startLocalPcs, type LocalPcs } from '../attestation/pcs-server.js';

function refFor(quote: Buffer) {
  const b = parseTdxQuote(quote).body;
  return {
    MrTd: b.mrTd.toString('hex'),
    Rtmrs: b.rtmrs.map((r) => r.toString('hex')),
    MrSeam: b.mrSeam.toString('hex'),
    Xfam: b.xfam.toString('hex'),
    TdAttributes: b.tdAttributes.toString('hex'),
    MinimumTeeTcbSvn: b.teeTcbSvn.toString('hex'),
  };
}

const collateral = () => ({
  tcbInfo: TDX.tcbInfo(),
  tcbInfoIssuerChain: TDX.tcbChain(),
  qeIdentity: TDX.qeIdentity(),
  qeIdentityIssuerChain: TDX.qeChain(),
  pckCrl: TDX.pckCrl(),
  rootCrl: TDX.rootCrl(),
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
      refs: { tdx: [refFor(quote)] },
      policyHashes: [policyHash],
      what: 'workload policy',
      tdx: {
        now: TDX_COLLATERAL_TIME,
        collateral: collateral(),
        acceptedTcbStatuses: ['UpToDate', 'NotSupported'] as const,
      },
    };
    const admitted = await admitPeer(peer, Buffer.from(body.reportData), opts);
    assert.equal(admitted.tee, 'tdx');
    assert.equal(admitted.policyHash, policyHash);
    await rejects(() => admitPeer(peer, Buffer.alloc(64, 1), opts), 'tdx.reportdata');
    await rejects(
      () => admitPeer(peer, Buffer.from(body.reportData), { ...opts, policyHashes: ['ab'.repeat(32)] }),
      'policy.hash',
    );
  });
});

describe('a Coordinator with its production admission options and a genuine TDX quote', function () {
  this.timeout(60_000);
  const quote = TDX.sprQuote();
  const body = parseTdxQuote(quote).body;
  const env = [
    'CONTRAST_PCS_URL',
    'CONTRAST_INTEL_ROOT_CRL_URL',
    'CONTRAST_TDX_CACHE_DIR',
    'CONTRAST_SNP_CACHE_DIR',
    'CONTRAST_COLLATERAL_OFFLINE',
  ] as const;
  const saved: Partial<Record<(typeof env)[number], string>> = {};
  let pcs: LocalPcs;
  let dir: string;

  beforeEach(async () => {
    pcs = await startLocalPcs();
    dir = tempDir('kc-tdx-admit-');
    for (const k of env) saved[k] = process.env[k];
    process.env.CONTRAST_PCS_URL = pcs.baseUrl;
    process.env.CONTRAST_INTEL_ROOT_CRL_URL = pcs.rootCrlUrl;
    process.env.CONTRAST_TDX_CACHE_DIR = `${dir}/intel`;
    process.env.CONTRAST_SNP_CACHE_DIR = `${dir}/amd`;
    delete process.env.CONTRAST_COLLATERAL_OFFLINE;
  });
  afterEach(async () => {
    for (const k of env)
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    await pcs.close();
    removeDir(dir);
  });

  it("fetches the quote's collateral from PCS and admits it when the binding matches, with CRLs required", async () => {
    const dispatch = admissionDispatch();
    assert.equal(dispatch.tdx?.crlPolicy, 'require');
    assert.equal(dispatch.snp?.crlPolicy, 'require');
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const peer = parseAtlsCert(createAtlsCertDer(key, { oid: OID_TDX_EVIDENCE, value: quote }));
    const policyHash = body.mrConfigId.subarray(0, 32).toString('hex');
    const opts = {
      refs: { tdx: [refFor(quote)] },
      policyHashes: [policyHash],
      what: 'workload policy',
      ...dispatch,
      tdx: { ...dispatch.tdx, now: TDX_COLLATERAL_TIME, acceptedTcbStatuses: ['UpToDate', 'NotSupported'] as const },
    };
    const admitted = await admitPeer(peer, Buffer.from(body.reportData), opts);
    assert.equal(admitted.tee, 'tdx');
    assert.equal(pcs.requests.length, 4);
    await admitPeer(peer, Buffer.from(body.reportData), opts);
    assert.equal(pcs.requests.length, 4, 'kept, not fetched again');
    // Without the root CA CRL the same options refuse: revocation is required.
    const strict = admissionDispatch();
    pcs.answers.delete('/IntelSGXRootCA.der');
    removeDir(`${dir}/intel`);
    await rejects(
      () =>
        admitPeer(peer, Buffer.from(body.reportData), { ...opts, tdx: { ...opts.tdx, source: strict.tdx!.source! } }),
      'tdx.crl.missing',
    );
  });

  it('refuses the quote over the MeshAPI for its binding, before asking PCS for anything', async () => {
    const simDir = tempDir('kc-sim-');
    let coord: RunningCoordinator | undefined;
    try {
      coord = await startCoordinator({
        store: new MemoryStore(),
        issuer: new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(Buffer.from('coordinator policy'))),
        host: '127.0.0.1',
        userPort: 0,
        meshPort: 0,
        metricsPort: 0,
        log: () => undefined,
      });
      const policy = Buffer.from('a workload policy');
      const manifest = {
        Policies: { [sha256(policy).toString('hex')]: { SANs: ['web'], Role: 'coordinator' } },
        ReferenceValues: { tdx: [refFor(quote)] },
        WorkloadOwnerPubKeys: [],
        SeedshareOwnerPubKeys: [
          createPublicKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey)
            .export({ type: 'pkcs1', format: 'der' })
            .toString('hex'),
        ],
      };
      await coord.authority.setManifest(Buffer.from(JSON.stringify(manifest)), [policy], undefined);
      const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const conn = await dialAtls({ host: '127.0.0.1', port: coord.ports.meshapi, clientKey: key, verifyServer: null });
      let err: unknown;
      try {
        const header = createAtlsCertDer(key, { oid: OID_TDX_EVIDENCE, value: quote }).toString('base64');
        err = await callUnary(conn.session, `/${MESHAPI_SERVICE}/NewMeshCert`, Buffer.alloc(0), {
          [CLIENT_EVIDENCE_HEADER]: header,
        }).then(
          () => undefined,
          (e: unknown) => e,
        );
      } finally {
        conn.close();
      }
      assert.ok(err instanceof RpcError, String(err));
      assert.equal(err.code, Status.PERMISSION_DENIED, err.message);
      assert.match(err.message, /tdx\.reportdata/);
      assert.deepEqual(pcs.requests, []);
    } finally {
      await coord?.close();
      removeDir(simDir);
    }
  });
});

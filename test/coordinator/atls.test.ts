/** In-process tests of aTLS, the simulated platform and the Coordinator APIs (loopback). */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { SimulatedIssuer, buildSimReport, loadOrCreateSimRoot } from '../../src/issuers/simulated.js';
import { loadSimRootPublicKey, verifySimulated, SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { MemoryStore } from '../../src/coordinator/store/dir.js';
import { callUserApi } from '../../src/coordinator/client.js';
import { encode, decode } from '../../src/util/protobuf.js';
import {
  SetManifestRequestSchema,
  SetManifestResponseSchema,
  MESHAPI_SERVICE,
  NewMeshCertResponseSchema,
} from '../../src/coordinator/api/messages.js';
import { requestMeshCert } from '../../src/initializer/initializer.js';
import { dialAtls } from '../../src/atls/client.js';
import { createAtlsCert } from '../../src/atls/cert.js';
import { CLIENT_EVIDENCE_HEADER, EKM_LABEL, reportData, spkiDer } from '../../src/atls/binding.js';
import { callUnary, RpcError, Status } from '../../src/coordinator/api/grpc.js';
import { sha256, x509 } from '../../src/coordinator/crypto.js';
import type { Issuer } from '../../src/issuers/issuer.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { OID_SIMULATED_EVIDENCE } from '../../src/attestation/tees.js';

const hex = (b: Buffer) => b.toString('hex');

describe('aTLS and the Coordinator APIs (in process)', function () {
  let simDir: string;
  let coord: RunningCoordinator;
  const coordPolicy = Buffer.from('coordinator policy');
  const webPolicy = Buffer.from('web policy');
  const wo = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const so = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const manifest = {
    Policies: {
      [hex(sha256(coordPolicy))]: { SANs: ['coordinator'], Role: 'coordinator' as const },
      [hex(sha256(webPolicy))]: { SANs: ['web', '*'], WorkloadSecretID: 'web' },
    },
    ReferenceValues: { insecure: [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }] },
    WorkloadOwnerPubKeys: [hex(spkiDer(wo))],
    SeedshareOwnerPubKeys: [createPublicKey(so).export({ type: 'pkcs1', format: 'der' }).toString('hex')],
  };
  const raw = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const addr = () => ({ host: '127.0.0.1', port: coord.ports.userapi });
  const webIssuer = () => new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(webPolicy));

  before(async () => {
    simDir = tempDir('kc-sim-');
    process.env.CONTRAST_INSECURE_SIM_DIR = simDir;
    coord = await startCoordinator({
      store: new MemoryStore(),
      issuer: new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(coordPolicy)),
      host: '127.0.0.1',
      userPort: 0,
      meshPort: 0,
      metricsPort: 0,
      log: () => undefined,
    });
    const r = await callUserApi(
      'SetManifest',
      encode(SetManifestRequestSchema, { Manifest: raw, Policies: [coordPolicy, webPolicy] }),
      { address: addr(), manifest, clientKey: wo },
    );
    const res = decode<{ RootCA: Buffer; SeedSharesDoc?: unknown }>(SetManifestResponseSchema, r.response);
    assert.match(res.RootCA.toString(), /BEGIN CERTIFICATE/);
    assert.ok(res.SeedSharesDoc);
    assert.equal(r.coordinator.tee, 'insecure-sim');
  });
  after(async () => {
    await coord?.close();
    delete process.env.CONTRAST_INSECURE_SIM_DIR;
    removeDir(simDir);
  });

  it('simulated reports verify only with the right root, binding and measurement', () => {
    const root = loadOrCreateSimRoot(simDir);
    const rd = randomBytes(64);
    const rep = buildSimReport(root, sha256(webPolicy), rd);
    const refs = [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }];
    assert.equal(verifySimulated(rep, refs, { reportData: rd }, loadSimRootPublicKey(simDir)).tee, 'insecure-sim');
    const tampered = Buffer.from(rep);
    tampered[70] ^= 1;
    assert.throws(
      () => verifySimulated(tampered, refs, { reportData: rd }, loadSimRootPublicKey(simDir)),
      /sim.report.signature/,
    );
    assert.throws(
      () => verifySimulated(rep, refs, { reportData: randomBytes(64) }, loadSimRootPublicKey(simDir)),
      /sim.reportdata/,
    );
    assert.throws(
      () =>
        verifySimulated(
          rep,
          [{ Platform: 'Insecure-Sim', TrustedMeasurement: 'ab'.repeat(48) }],
          { reportData: rd },
          loadSimRootPublicKey(simDir),
        ),
      /TrustedMeasurement is abab.*measured 4e9c/,
    );
    assert.throws(() => verifySimulated(rep, [], {}, loadSimRootPublicKey(simDir)), /no reference values/);
    const otherRoot = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
    assert.throws(() => verifySimulated(rep, refs, {}, otherRoot), /sim.report.signature/);
  });

  it('issues a mesh certificate to an attested workload', async () => {
    const res = await requestMeshCert({ host: '127.0.0.1', port: coord.ports.meshapi, issuer: webIssuer() });
    const [leafPem] = res.CertChain.toString().split(/(?<=-----END CERTIFICATE-----\n)/);
    const leaf = new X509Certificate(leafPem!);
    assert.ok(leaf.publicKey.equals(createPublicKey(res.key)));
    assert.ok(leaf.verify(new X509Certificate(res.MeshCACert).publicKey));
    assert.match(leaf.subjectAltName ?? '', /DNS:web/);
    assert.equal(res.WorkloadSecret.length, 64);
    assert.equal(coord.metrics.get('contrast_meshapi_certificates_issued_total'), 1);
  });

  it('refuses a workload whose policy hash is not in the manifest', async () => {
    const issuer = new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(Buffer.from('unknown policy')));
    await assert.rejects(
      requestMeshCert({ host: '127.0.0.1', port: coord.ports.meshapi, issuer }),
      (e: RpcError) =>
        e.code === Status.PERMISSION_DENIED &&
        /policy hash .* not a workload policy in the manifest.*generate/.test(e.message),
    );
  });

  it('refuses calls without client evidence', async () => {
    const conn = await dialAtls({ host: '127.0.0.1', port: coord.ports.meshapi, verifyServer: null });
    try {
      await assert.rejects(
        callUnary(conn.session, `/${MESHAPI_SERVICE}/NewMeshCert`, Buffer.alloc(0), {}),
        (e: RpcError) => e.code === Status.UNAUTHENTICATED,
      );
    } finally {
      conn.close();
    }
  });

  /** Open a MeshAPI connection with `tlsKey` and send evidence made by `make`. */
  async function meshCallWith(
    make: (ekm: Buffer, tlsKey: ReturnType<typeof generateKeyPairSync>['privateKey']) => Promise<string>,
  ) {
    const tlsKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const conn = await dialAtls({
      host: '127.0.0.1',
      port: coord.ports.meshapi,
      clientKey: tlsKey,
      verifyServer: null,
    });
    try {
      const ekm = conn.socket.exportKeyingMaterial(32, EKM_LABEL, Buffer.alloc(0));
      const header = await make(ekm, tlsKey);
      return decode<{ CertChain: Buffer }>(
        NewMeshCertResponseSchema,
        await callUnary(conn.session, `/${MESHAPI_SERVICE}/NewMeshCert`, Buffer.alloc(0), {
          [CLIENT_EVIDENCE_HEADER]: header,
        }),
      );
    } finally {
      conn.close();
    }
  }
  const certB64 = async (key: Parameters<typeof createAtlsCert>[0], issuer: Issuer, rd: Buffer) =>
    Buffer.from(new x509.X509Certificate(await createAtlsCert(key, await issuer.issue(rd))).rawData).toString('base64');

  it('accepts correctly bound evidence made by hand (control for the negative cases)', async () => {
    const r = await meshCallWith((ekm, key) => certB64(key, webIssuer(), reportData(spkiDer(key), ekm)));
    assert.match(r.CertChain.toString(), /BEGIN CERTIFICATE/);
  });

  it('takes the evidence header with or without base64 padding (gRPC binary metadata), and only canonical base64', async () => {
    const unpadded = await meshCallWith(async (ekm, key) =>
      (await certB64(key, webIssuer(), reportData(spkiDer(key), ekm))).replace(/=+$/, ''),
    );
    assert.match(unpadded.CertChain.toString(), /BEGIN CERTIFICATE/);
    await assert.rejects(
      meshCallWith(async (ekm, key) => `${await certB64(key, webIssuer(), reportData(spkiDer(key), ekm))}!`),
      (e: RpcError) => e.code === Status.PERMISSION_DENIED && /not canonical base64/.test(e.message),
    );
  });

  it('refuses evidence for another TLS key', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    await assert.rejects(
      meshCallWith((ekm) => certB64(other, webIssuer(), reportData(spkiDer(other), ekm))),
      (e: RpcError) => e.code === Status.PERMISSION_DENIED && /another key/.test(e.message),
    );
  });

  it('refuses evidence bound to the right key but a different nonce, and replayed evidence', async () => {
    await assert.rejects(
      meshCallWith((_ekm, key) => certB64(key, webIssuer(), reportData(spkiDer(key), randomBytes(32)))),
      (e: RpcError) => e.code === Status.PERMISSION_DENIED && /REPORT_DATA/.test(e.message),
    );
    // Record evidence valid on one connection, replay it on the next connection with the same key.
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    let recorded = '';
    const open = async (send: (ekm: Buffer) => Promise<string>) => {
      const conn = await dialAtls({ host: '127.0.0.1', port: coord.ports.meshapi, clientKey: key, verifyServer: null });
      try {
        const header = await send(conn.socket.exportKeyingMaterial(32, EKM_LABEL, Buffer.alloc(0)));
        return await callUnary(conn.session, `/${MESHAPI_SERVICE}/NewMeshCert`, Buffer.alloc(0), {
          [CLIENT_EVIDENCE_HEADER]: header,
        });
      } finally {
        conn.close();
      }
    };
    await open(async (ekm) => {
      recorded = await certB64(key, webIssuer(), reportData(spkiDer(key), ekm));
      return recorded;
    });
    await assert.rejects(
      open(async () => recorded),
      (e: RpcError) => e.code === Status.PERMISSION_DENIED && /REPORT_DATA/.test(e.message),
    );
  });

  it('refuses a tampered simulated report', async () => {
    const tamper: Issuer = {
      name: 'tamper',
      issue: async (rd) => {
        const ev = await webIssuer().issue(rd);
        ev.value[15] ^= 0xff; // measurement byte
        return ev;
      },
    };
    await assert.rejects(
      requestMeshCert({ host: '127.0.0.1', port: coord.ports.meshapi, issuer: tamper }),
      (e: RpcError) => e.code === Status.PERMISSION_DENIED && /sim.report.signature/.test(e.message),
    );
    assert.ok(coord.metrics.get('contrast_meshapi_attestation_failures_total') >= 1);
    void OID_SIMULATED_EVIDENCE;
  });

  it("the client refuses a Coordinator whose policy hash is not the manifest's coordinator", async () => {
    const other = {
      ...manifest,
      Policies: { [hex(sha256(Buffer.from('x')))]: { SANs: [], Role: 'coordinator' as const } },
    };
    await assert.rejects(
      callUserApi('GetManifests', Buffer.alloc(0), { address: addr(), manifest: other, clientKey: wo }),
      /failed attestation: .*not a Coordinator policy/,
    );
  });

  it('refuses SetManifest from a key that is not a workload owner', async () => {
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    await assert.rejects(
      callUserApi(
        'SetManifest',
        encode(SetManifestRequestSchema, { Manifest: raw, Policies: [coordPolicy, webPolicy] }),
        { address: addr(), manifest, clientKey: stranger },
      ),
      /refused.*not a workload owner key.*expected one of/,
    );
  });

  it('serves probes and metrics', async () => {
    const r = await fetch(`http://127.0.0.1:${coord.ports.metrics}/metrics`);
    const text = await r.text();
    assert.match(text, /contrast_meshapi_certificates_issued_total \d+/);
    assert.match(text, /contrast_coordinator_ready 1/);
    assert.equal((await fetch(`http://127.0.0.1:${coord.ports.metrics}/probe/readiness`)).status, 200);
  });
});

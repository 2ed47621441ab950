/**
 * The external review's certificate-confusion attacks on the Coordinator (the fake-Coordinator
 * attack on the CLI is in attacks-cli.test.ts):
 *  - a captured owner certificate wrapped the same way must not authenticate SetManifest or Recover;
 *  - the Coordinator's own UserAPI certificate, re-wrapped, must not obtain a mesh certificate.
 */
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { connect as http2Connect } from 'node:http2';
import { createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { attackerKey, fetchServerCertificate, keyPem, wrapCertificate } from './attacker.js';
import { derToPem } from '../../src/attestation/certificate.js';
import { SimulatedIssuer, loadOrCreateSimRoot } from '../../src/issuers/simulated.js';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { MemoryStore } from '../../src/coordinator/store/dir.js';
import { callUserApi } from '../../src/coordinator/client.js';
import { encode } from '../../src/util/protobuf.js';
import {
  MESHAPI_SERVICE,
  RecoverRequestSchema,
  SetManifestRequestSchema,
  USERAPI_SERVICE,
} from '../../src/coordinator/api/messages.js';
import { createAtlsCertDer } from '../../src/atls/cert.js';
import { CLIENT_EVIDENCE_HEADER, EKM_LABEL, EKM_SIZE, nonceToServerName, spkiDer } from '../../src/atls/binding.js';
import { callUnary, RpcError, Status } from '../../src/coordinator/api/grpc.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import { SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';

const hex = (b: Buffer) => b.toString('hex');

/** One UserAPI/MeshAPI call over a TLS connection whose client certificate is `cert` (any bytes) for `key`. */
async function rawCall(
  port: number,
  key: KeyObject,
  cert: Buffer,
  path: string,
  body: Buffer,
  metadata: (socket: ReturnType<typeof tlsConnect>) => Promise<Record<string, string>> = async () => ({}),
): Promise<Buffer> {
  const socket = await new Promise<ReturnType<typeof tlsConnect>>((resolve, reject) => {
    const s = tlsConnect(
      {
        host: '127.0.0.1',
        port,
        servername: nonceToServerName(randomBytes(32)),
        ALPNProtocols: ['h2'],
        minVersion: 'TLSv1.3',
        rejectUnauthorized: false,
        key: keyPem(key),
        cert: derToPem(cert),
      },
      () => resolve(s),
    );
    s.once('error', reject);
  });
  const session = http2Connect(`https://127.0.0.1:${port}`, { createConnection: () => socket });
  session.on('error', () => undefined);
  try {
    return await callUnary(session, path, body, await metadata(socket), 20_000);
  } finally {
    session.close();
    socket.destroy();
  }
}

describe('certificate-confusion attacks on the Coordinator (in process)', function () {
  this.timeout(120_000);
  let simDir: string;
  let store: MemoryStore;
  let coord: RunningCoordinator;
  const coordPolicy = Buffer.from('coordinator policy');
  const webPolicy = Buffer.from('web policy');
  const owner = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const seedOwner = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const manifest = {
    Policies: {
      [hex(sha256(coordPolicy))]: {
        SANs: ['coordinator'],
        Role: 'coordinator' as const,
        WorkloadSecretID: 'coordinator',
      },
      [hex(sha256(webPolicy))]: { SANs: ['web'], WorkloadSecretID: 'web' },
    },
    ReferenceValues: { insecure: [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }] },
    WorkloadOwnerPubKeys: [hex(spkiDer(owner))],
    SeedshareOwnerPubKeys: [createPublicKey(seedOwner).export({ type: 'pkcs1', format: 'der' }).toString('hex')],
  };
  const raw = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const setRequest = () => encode(SetManifestRequestSchema, { Manifest: raw, Policies: [coordPolicy, webPolicy] });
  const start = async () =>
    startCoordinator({
      store,
      issuer: new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(coordPolicy)),
      host: '127.0.0.1',
      userPort: 0,
      meshPort: 0,
      metricsPort: 0,
      log: () => undefined,
    });

  before(async () => {
    simDir = tempDir('kc-sim-');
    process.env.CONTRAST_INSECURE_SIM_DIR = simDir;
    store = new MemoryStore();
    coord = await start();
    await callUserApi('SetManifest', setRequest(), {
      address: { host: '127.0.0.1', port: coord.ports.userapi },
      manifest,
      clientKey: owner,
    });
  });
  after(async () => {
    await coord?.close();
    delete process.env.CONTRAST_INSECURE_SIM_DIR;
    removeDir(simDir);
  });

  it("a captured workload-owner certificate wrapped in the attacker's own does not authenticate SetManifest", async () => {
    const captured = createAtlsCertDer(owner);
    const key = attackerKey();
    await assert.rejects(
      rawCall(
        coord.ports.userapi,
        key,
        wrapCertificate(key, captured),
        `/${USERAPI_SERVICE}/SetManifest`,
        setRequest(),
      ),
      (e: RpcError) => e.code === Status.PERMISSION_DENIED && /not a workload owner key/.test(e.message),
    );
    // Control: the owner's own certificate with the owner's key is accepted on the same path.
    await rawCall(coord.ports.userapi, owner, captured, `/${USERAPI_SERVICE}/SetManifest`, setRequest());
  });

  it("the Coordinator's own certificate, re-wrapped, obtains no mesh certificate (MeshAPI replay)", async () => {
    const key = attackerKey();
    // The Coordinator's aTLS key lives as long as the process: any earlier certificate of it
    // serves as the wrapped TLS client certificate.
    const earlier = await fetchServerCertificate('127.0.0.1', coord.ports.userapi, nonceToServerName(randomBytes(32)));
    const failuresBefore = coord.metrics.get('contrast_meshapi_attestation_failures_total');
    await assert.rejects(
      rawCall(
        coord.ports.meshapi,
        key,
        wrapCertificate(key, earlier),
        `/${MESHAPI_SERVICE}/NewMeshCert`,
        Buffer.alloc(0),
        async (socket) => {
          // Let the Coordinator bind its own evidence to this connection's exporter, then wrap it.
          const ekm = socket.exportKeyingMaterial(EKM_SIZE, EKM_LABEL, Buffer.alloc(0));
          const bound = await fetchServerCertificate('127.0.0.1', coord.ports.userapi, nonceToServerName(ekm));
          return { [CLIENT_EVIDENCE_HEADER]: wrapCertificate(key, bound).toString('base64') };
        },
      ),
      (e: RpcError) => e.code === Status.PERMISSION_DENIED && /REPORT_DATA/.test(e.message),
    );
    assert.equal(coord.metrics.get('contrast_meshapi_attestation_failures_total'), failuresBefore + 1);
    assert.equal(coord.metrics.get('contrast_meshapi_certificates_issued_total'), 0);
  });

  it("a captured seed-share-owner certificate wrapped in the attacker's own does not authenticate Recover", async () => {
    await coord.close();
    coord = await start();
    assert.equal(coord.authority.mode, 'recovery');
    const captured = createAtlsCertDer(seedOwner);
    const key = attackerKey();
    await assert.rejects(
      rawCall(
        coord.ports.userapi,
        key,
        wrapCertificate(key, captured),
        `/${USERAPI_SERVICE}/Recover`,
        encode(RecoverRequestSchema, { Seed: randomBytes(64), Salt: randomBytes(32) }),
      ),
      (e: RpcError) => e.code === Status.PERMISSION_DENIED && /not a seed-share owner key/.test(e.message),
    );
    assert.equal(coord.authority.mode, 'recovery');
  });
});

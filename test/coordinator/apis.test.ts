/**
 * The UserAPI and MeshAPI handlers through a real in-process Coordinator (aTLS, HTTP/2, gRPC):
 * the answers byte for byte, the per-method request limits, the log lines, the claims copied
 * into mesh certificates, and every refusal of NewMeshCert with its metric.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { SimulatedIssuer, loadOrCreateSimRoot } from '../../src/issuers/simulated.js';
import { SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { MemoryStore } from '../../src/coordinator/store/dir.js';
import { callUserApi } from '../../src/coordinator/client.js';
import { decode, encode } from '../../src/util/protobuf.js';
import {
  GetManifestsResponseSchema,
  MESHAPI_SERVICE,
  NewMeshCertResponseSchema,
  RecoverRequestSchema,
  SetManifestRequestSchema,
  SetManifestResponseSchema,
  USERAPI_SERVICE,
  type GetManifestsResponse,
  type SetManifestResponse,
} from '../../src/coordinator/api/messages.js';
import { callUnary, RpcError, Status } from '../../src/coordinator/api/grpc.js';
import { dialAtls } from '../../src/atls/client.js';
import { createAtlsCertDer } from '../../src/atls/cert.js';
import { CLIENT_EVIDENCE_HEADER, EKM_LABEL, EKM_SIZE, reportData, spkiDer } from '../../src/atls/binding.js';
import { extensions } from '../../src/attestation/x509.js';
import { parseDerCertificate } from '../../src/attestation/certificate.js';
import { octetString } from '../../src/atls/der.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import { decryptSeedShare } from '../../src/coordinator/seedshares.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { connectH2, prefix, upload } from './h2raw.js';

const hex = (b: Buffer) => b.toString('hex');
const SET = `/${USERAPI_SERVICE}/SetManifest`;
const GET = `/${USERAPI_SERVICE}/GetManifests`;
const RECOVER = `/${USERAPI_SERVICE}/Recover`;
const MESH = `/${MESHAPI_SERVICE}/NewMeshCert`;
const KiB = 1024;
const MiB = 1024 * KiB;

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}
const fieldHead = (no: number, length: number) => Buffer.from([...varint(no * 8 + 2), ...varint(length)]);
const framed = (m: Buffer) => Buffer.concat([prefix(m.length), m]);

describe('UserAPI and MeshAPI handlers (in process)', function () {
  this.timeout(120_000);
  let simDir: string;
  let store: MemoryStore;
  let coord: RunningCoordinator;
  const logs: string[] = [];
  const coordPolicy = Buffer.from('coordinator policy');
  // Policies whose lengths need one, two and three varint bytes, at the edges.
  const policies = [
    Buffer.alloc(127, 'a'),
    Buffer.alloc(128, 'b'),
    Buffer.alloc(16_383, 'c'),
    Buffer.alloc(16_384, 'd'),
  ];
  const webPolicy = policies[1]!;
  const wo = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const so = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const manifest = {
    Policies: {
      [hex(sha256(coordPolicy))]: { SANs: ['coordinator'], Role: 'coordinator' as const },
      ...Object.fromEntries(
        policies.map((p, i) => [hex(sha256(p)), { SANs: [`w${i}`], ...(i === 1 ? { WorkloadSecretID: 'web' } : {}) }]),
      ),
    },
    ReferenceValues: { insecure: [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }] },
    WorkloadOwnerPubKeys: [hex(spkiDer(wo))],
    SeedshareOwnerPubKeys: [createPublicKey(so).export({ type: 'pkcs1', format: 'der' }).toString('hex')],
  };
  const raw = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const setRequest = () => encode(SetManifestRequestSchema, { Manifest: raw, Policies: [coordPolicy, ...policies] });
  const issuer = (policy: Buffer) => new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(policy));
  const start = () =>
    startCoordinator({
      store,
      issuer: issuer(coordPolicy),
      host: '127.0.0.1',
      userPort: 0,
      meshPort: 0,
      metricsPort: 0,
      log: (m) => logs.push(m),
      limits: { bodyTimeoutMs: 300, setManifestBodyTimeoutMs: 400 },
    });
  const user = (method: 'SetManifest' | 'GetManifests' | 'Recover', req: Uint8Array, key = wo) =>
    callUserApi(method, req, { address: { host: '127.0.0.1', port: coord.ports.userapi }, manifest, clientKey: key });

  /** A NewMeshCert call with evidence for `policy` bound to the connection, and a request body. */
  async function mesh(policy: Buffer, opts: { header?: (bound: string) => string | undefined; body?: Buffer } = {}) {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const conn = await dialAtls({ host: '127.0.0.1', port: coord.ports.meshapi, clientKey: key, verifyServer: null });
    try {
      const rd = reportData(spkiDer(key), conn.socket.exportKeyingMaterial(EKM_SIZE, EKM_LABEL, Buffer.alloc(0)));
      const bound = createAtlsCertDer(key, await issuer(policy).issue(rd)).toString('base64');
      const header = opts.header ? opts.header(bound) : bound;
      return {
        key,
        res: await callUnary(
          conn.session,
          MESH,
          opts.body ?? Buffer.alloc(0),
          header === undefined ? {} : { [CLIENT_EVIDENCE_HEADER]: header },
        ),
      };
    } finally {
      conn.close();
    }
  }
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => assert.fail('not refused'),
      (e: unknown) => {
        assert.ok(e instanceof RpcError, String(e));
        return e;
      },
    );

  before(async () => {
    logs.length = 0; // a mutation run repeats the suite in one process
    simDir = tempDir('kc-sim-');
    process.env.CONTRAST_INSECURE_SIM_DIR = simDir;
    store = new MemoryStore();
    coord = await start();
  });
  after(async () => {
    await coord?.close();
    delete process.env.CONTRAST_INSECURE_SIM_DIR;
    removeDir(simDir);
  });

  it('uninitialised: NewMeshCert says to set a manifest', async () => {
    const e = await refusal(mesh(webPolicy));
    assert.equal(e.code, Status.FAILED_PRECONDITION);
    assert.equal(e.message, 'no manifest has been set yet (kubectl contrast set)');
  });

  it('SetManifest answers the CAs, the seed shares on the first set only, and logs what was set', async () => {
    const first = decode<SetManifestResponse>(
      SetManifestResponseSchema,
      (await user('SetManifest', setRequest())).response,
    );
    assert.match(first.RootCA.toString(), /^-----BEGIN CERTIFICATE-----/);
    assert.equal(first.MeshCA.toString(), coord.authority.snapshot()!.mesh.meshCAPem);
    assert.equal(first.SeedSharesDoc!.SeedShares.length, 1);
    assert.ok(
      logs.includes(`manifest set (${raw.length} bytes, 5 policies), first manifest: seed shares issued`),
      logs.join('\n'),
    );
    const again = decode<SetManifestResponse>(
      SetManifestResponseSchema,
      (await user('SetManifest', setRequest())).response,
    );
    assert.equal(again.SeedSharesDoc, undefined);
    assert.deepEqual(again.RootCA, first.RootCA);
    assert.ok(logs.includes(`manifest set (${raw.length} bytes, 5 policies)`), logs.join('\n'));
  });

  it('GetManifests answers exactly what the codec writes, policies of every varint length intact', async () => {
    const bytes = (
      await user('GetManifests', Buffer.alloc(0), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)
    ).response;
    const h = decode<GetManifestsResponse>(GetManifestsResponseSchema, bytes);
    assert.deepEqual(h.Manifests, [raw, raw]);
    assert.deepEqual(new Set(h.Policies.map(hex)), new Set([coordPolicy, ...policies].map(hex)));
    assert.deepEqual(bytes, encode(GetManifestsResponseSchema, h as unknown as Record<string, unknown>));
    assert.ok(h.SeedSharesDoc && h.LatestTransition);
    assert.equal(h.MeshCA.toString(), coord.authority.snapshot()!.mesh.meshCAPem);
    // A request with an unknown field is read (and the field ignored); a malformed one is not.
    assert.ok((await user('GetManifests', Buffer.from([0x08, 0x01]))).response.length > 0);
    await assert.rejects(user('GetManifests', Buffer.from([0x0a, 0x05])), /INVALID_ARGUMENT.*malformed request/);
  });

  it('MeshAPI: issues a certificate with the policy hash and measurement as claims, the root, the mesh CA and the workload secret', async () => {
    const issued = coord.metrics.get('contrast_meshapi_certificates_issued_total');
    const simulated = coord.metrics.get('contrast_simulated_evidence_total');
    const { key, res } = await mesh(webPolicy);
    const r = decode<{ MeshCACert: Buffer; CertChain: Buffer; RootCACert: Buffer; WorkloadSecret: Buffer }>(
      NewMeshCertResponseSchema,
      res,
    );
    const snap = coord.authority.snapshot()!;
    assert.equal(r.MeshCACert.toString(), snap.mesh.meshCAPem);
    assert.equal(r.RootCACert.toString(), snap.rootPem);
    assert.deepEqual(r.WorkloadSecret, snap.engine.workloadSecret('web'));
    const leafPem = r.CertChain.toString().split(/(?<=-----END CERTIFICATE-----\n)/)[0]!;
    const leaf = new X509Certificate(leafPem);
    assert.ok(leaf.publicKey.equals(createPublicKey(key)));
    const ext = extensions(parseDerCertificate(leaf.raw, 'leaf'));
    assert.deepEqual(Buffer.from(ext.get('1.3.9901.2.1.23')!.value), octetString(sha256(webPolicy)));
    assert.deepEqual(
      Buffer.from(ext.get('1.3.9901.2.1.22')!.value),
      octetString(Buffer.from(SIMULATED_MEASUREMENT, 'hex')),
    );
    assert.equal(coord.metrics.get('contrast_meshapi_certificates_issued_total'), issued + 1);
    assert.equal(coord.metrics.get('contrast_simulated_evidence_total'), simulated + 1);
    // An entry without a WorkloadSecretID gets no secret.
    const other = decode<{ WorkloadSecret: Buffer }>(NewMeshCertResponseSchema, (await mesh(policies[0]!)).res);
    assert.equal(other.WorkloadSecret.length, 0);
  });

  it('MeshAPI refusals: no or empty evidence (UNAUTHENTICATED), no TLS certificate, bad base64, a bad body (each counted)', async () => {
    const failures = () => coord.metrics.get('contrast_meshapi_attestation_failures_total');
    let before = failures();
    for (const header of [undefined, '']) {
      const e = await refusal(mesh(webPolicy, { header: () => header }));
      assert.equal(e.code, Status.UNAUTHENTICATED);
      assert.equal(
        e.message,
        `no client evidence: the MeshAPI requires an aTLS certificate in the ${CLIENT_EVIDENCE_HEADER} metadata`,
      );
      assert.equal(failures(), ++before);
    }
    const bad = await refusal(mesh(webPolicy, { header: (b) => `${b.slice(0, -4)}*${b.slice(-3)}` }));
    assert.equal(bad.code, Status.PERMISSION_DENIED);
    assert.equal(
      bad.message,
      `attestation check atls.certificate failed: the ${CLIENT_EVIDENCE_HEADER} metadata is not canonical base64`,
    );
    assert.equal(failures(), ++before);
    // A TLS connection without a client certificate.
    const h2 = await connectH2({ port: coord.ports.meshapi });
    try {
      const r = await upload(h2.session, MESH, {
        body: framed(Buffer.alloc(0)),
        metadata: { [CLIENT_EVIDENCE_HEADER]: 'AAAA' },
      });
      assert.equal(r.code, Status.PERMISSION_DENIED);
      assert.equal(r.message, 'attestation check atls.clientcert failed: the client presented no TLS certificate');
    } finally {
      h2.close();
    }
    assert.equal(failures(), ++before);
    const body = await refusal(mesh(webPolicy, { body: Buffer.from([0x0a, 0x09]) }));
    assert.equal(body.code, Status.INVALID_ARGUMENT);
    assert.match(body.message, /^malformed request: /);
    assert.equal(failures(), before, 'a bad body after admitted evidence is no attestation failure');
  });

  it('UserAPI limits per method: sizes by prefix, field sizes and counts, body deadlines', async () => {
    const h2 = await connectH2({ port: coord.ports.userapi, key: wo });
    try {
      const call = (path: string, body: Buffer, keepOpen = false) => upload(h2.session, path, { body, keepOpen });
      const expect = async (p: Promise<{ code?: number; message: string }>, code: number, message: string) => {
        const r = await p;
        assert.equal(r.code, code, r.message);
        assert.equal(r.message, message);
      };
      await expect(
        call(SET, prefix(64 * MiB + 1)),
        Status.RESOURCE_EXHAUSTED,
        'the request message of 67108865 bytes exceeds the limit of 67108864 bytes (64 MiB) for this method',
      );
      await expect(
        call(SET, Buffer.concat([prefix(9 * MiB), fieldHead(1, 8 * MiB + 1)])),
        Status.RESOURCE_EXHAUSTED,
        'Manifest field of 8388609 bytes exceeds the limit of 8388608 bytes (8 MiB)',
      );
      await expect(
        call(SET, Buffer.concat([prefix(2 * MiB), fieldHead(2, MiB + 1)])),
        Status.RESOURCE_EXHAUSTED,
        'Policies field of 1048577 bytes exceeds the limit of 1048576 bytes (1 MiB)',
      );
      await expect(
        call(SET, framed(Buffer.concat([fieldHead(1, 0), fieldHead(1, 0)]))),
        Status.RESOURCE_EXHAUSTED,
        'the request has more than 1 Manifest field',
      );
      await expect(
        call(SET, framed(Buffer.concat(Array(20_001).fill(fieldHead(2, 0))))),
        Status.RESOURCE_EXHAUSTED,
        'the request has more than 20000 Policies fields',
      );
      await expect(
        call(SET, framed(Buffer.concat(Array(17).fill(Buffer.from([0x18, 0x01]))))),
        Status.RESOURCE_EXHAUSTED,
        'the request has more than 16 fields that this method does not use',
      );
      await expect(
        call(SET, prefix(10), true),
        Status.DEADLINE_EXCEEDED,
        'the request body did not arrive within 0.4 s',
      );
      await expect(
        call(SET, framed(Buffer.alloc(0))),
        Status.INVALID_ARGUMENT,
        'the manifest is not valid JSON: Unexpected end of JSON input',
      );
      await expect(
        call(GET, prefix(4 * KiB + 1)),
        Status.RESOURCE_EXHAUSTED,
        'the request message of 4097 bytes exceeds the limit of 4096 bytes (4 KiB) for this method',
      );
      await expect(
        call(GET, framed(Buffer.concat(Array(17).fill(Buffer.from([0x18, 0x01]))))),
        Status.RESOURCE_EXHAUSTED,
        'the request has more than 16 fields that this method does not use',
      );
      await expect(
        call(GET, prefix(10), true),
        Status.DEADLINE_EXCEEDED,
        'the request body did not arrive within 0.3 s',
      );
      await expect(
        call(RECOVER, prefix(4 * KiB + 1)),
        Status.RESOURCE_EXHAUSTED,
        'the request message of 4097 bytes exceeds the limit of 4096 bytes (4 KiB) for this method',
      );
      await expect(
        call(RECOVER, Buffer.concat([prefix(2 * KiB), fieldHead(1, KiB + 1)])),
        Status.RESOURCE_EXHAUSTED,
        'Seed field of 1025 bytes exceeds the limit of 1024 bytes (1 KiB)',
      );
      await expect(
        call(RECOVER, Buffer.concat([prefix(2 * KiB), fieldHead(2, KiB + 1)])),
        Status.RESOURCE_EXHAUSTED,
        'Salt field of 1025 bytes exceeds the limit of 1024 bytes (1 KiB)',
      );
      await expect(
        call(RECOVER, framed(Buffer.concat([fieldHead(1, 0), fieldHead(1, 0)]))),
        Status.RESOURCE_EXHAUSTED,
        'the request has more than 1 Seed field',
      );
      await expect(
        call(RECOVER, framed(Buffer.concat([fieldHead(2, 0), fieldHead(2, 0)]))),
        Status.RESOURCE_EXHAUSTED,
        'the request has more than 1 Salt field',
      );
      await expect(
        call(RECOVER, framed(Buffer.concat(Array(17).fill(Buffer.from([0x18, 0x01]))))),
        Status.RESOURCE_EXHAUSTED,
        'the request has more than 16 fields that this method does not use',
      );
      await expect(
        call(RECOVER, prefix(10), true),
        Status.DEADLINE_EXCEEDED,
        'the request body did not arrive within 0.3 s',
      );
      // Controls at the limits: a Seed and a Salt of 1 KiB are read (and judged by the Authority).
      await expect(
        call(
          RECOVER,
          framed(Buffer.concat([fieldHead(1, KiB), Buffer.alloc(KiB), fieldHead(2, KiB), Buffer.alloc(KiB)])),
        ),
        Status.FAILED_PRECONDITION,
        'the Coordinator is already recovered (or was never restarted); nothing to do',
      );
    } finally {
      h2.close();
    }
  });

  it('after a restart: NewMeshCert waits for recovery; Recover by the seed-share owner is logged and certificates are issued again', async () => {
    const h = decode<GetManifestsResponse>(
      GetManifestsResponseSchema,
      (await user('GetManifests', Buffer.alloc(0))).response,
    );
    await coord.close();
    coord = await start();
    assert.equal(coord.authority.mode, 'recovery');
    const e = await refusal(mesh(webPolicy));
    assert.equal(e.code, Status.FAILED_PRECONDITION);
    assert.equal(
      e.message,
      'the Coordinator waits for recovery (kubectl contrast recover); no certificates until then',
    );
    const seed = decryptSeedShare(h.SeedSharesDoc!.SeedShares[0]!, so);
    const res = await user('Recover', encode(RecoverRequestSchema, { Seed: seed, Salt: h.SeedSharesDoc!.salt }), so);
    assert.deepEqual(res.response, Buffer.alloc(0));
    assert.equal(coord.authority.mode, 'ready');
    assert.ok(logs.includes('recovered: the history is verified and certificates are issued again (new mesh CA)'));
    assert.ok((await mesh(webPolicy)).res.length > 0);
    const wrong = await refusal(
      user('Recover', encode(RecoverRequestSchema, { Seed: randomBytes(64), Salt: randomBytes(32) }), so).catch(
        (err: Error & { cause?: unknown }) => {
          throw err.cause;
        },
      ),
    );
    assert.equal(wrong.code, Status.FAILED_PRECONDITION);
  });
});

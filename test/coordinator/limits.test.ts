/**
 * The Coordinator against unauthenticated and misbehaving clients (the external review's
 * resource attacks), each against a real Coordinator process with short deadlines: message
 * size limits by length prefix and by field, a global budget for buffered bodies, owner and
 * attestation checks before any body is read, stream and connection caps, handshake / header /
 * idle / attestation / body deadlines, bounded metrics, and short INVALID_ARGUMENT answers.
 * During each attack an attested Initializer and a UserAPI client must still be served, and the
 * process's peak RSS (VmHWM, reset before each attack) must stay bounded.
 *
 * Durations are never asserted: the server's deadlines are short, and a test waits (under a
 * generous mocha timeout) for the server to close what it must close.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { IncomingHttpHeaders } from 'node:http2';
import { SimulatedIssuer, loadOrCreateSimRoot } from '../../src/issuers/simulated.js';
import { callUserApi } from '../../src/coordinator/client.js';
import { decode, encode } from '../../src/util/protobuf.js';
import {
  GetManifestsResponseSchema,
  MESHAPI_SERVICE,
  SetManifestRequestSchema,
  USERAPI_SERVICE,
} from '../../src/coordinator/api/messages.js';
import { requestMeshCert } from '../../src/initializer/initializer.js';
import { callUnary, RpcError, Status } from '../../src/coordinator/api/grpc.js';
import { CLIENT_EVIDENCE_HEADER, EKM_LABEL, EKM_SIZE, reportData, spkiDer } from '../../src/atls/binding.js';
import { dialAtls } from '../../src/atls/client.js';
import { createAtlsCertDer } from '../../src/atls/cert.js';
import { AttestationError, CollateralUnavailableError } from '../../src/attestation/errors.js';
import type { SnpCollateralSource } from '../../src/attestation/snp/collateral.js';
import { startCoordinator, type RunningCoordinator } from '../../src/coordinator/server.js';
import { MemoryStore } from '../../src/coordinator/store/dir.js';
import { SNP_NOW, SNP_VECTORS } from '../attestation/vectors.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { startLimitedCoordinator, type LimitedCoordinator } from './limits-process.js';
import {
  FLAG,
  MiB,
  RawH2,
  closed,
  connectH2,
  connectTcp,
  connectTls,
  grpcHeaders,
  h2frame,
  headerBlock,
  prefix,
  upload,
  type CallResult,
} from './h2raw.js';
import { SIMULATED_MEASUREMENT } from '../../src/attestation/simulated.js';
import { OID_SNP_EVIDENCE } from '../../src/attestation/tees.js';
import { SnpEvidenceSchema } from '../../src/attestation/snp/evidence.js';

const hex = (b: Buffer) => b.toString('hex');
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SET = `/${USERAPI_SERVICE}/SetManifest`;
const GET = `/${USERAPI_SERVICE}/GetManifests`;
const MESH = `/${MESHAPI_SERVICE}/NewMeshCert`;

/** Short deadlines so attacks end quickly; limits on sizes are the production ones. */
const LIMITS = {
  handshakeTimeoutMs: 2000,
  headersTimeoutMs: 3000,
  idleTimeoutMs: 3000,
  attestationTimeoutMs: 4000,
  bodyTimeoutMs: 2000,
  setManifestBodyTimeoutMs: 10_000,
  responseTimeoutMs: 10_000,
  budgetWaitMs: 1000,
  maxConnections: { userapi: 24, meshapi: 24 },
  maxConnectionsPerAddress: { userapi: 8, meshapi: 8 },
};

/** A protobuf length-delimited field header (tag and length varints). */
function fieldHead(no: number, length: number): Buffer {
  const varint = (n: number) => {
    const out: number[] = [];
    while (n >= 0x80) {
      out.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    out.push(n);
    return out;
  };
  return Buffer.from([...varint((no << 3) | 2), ...varint(length)]);
}

function framed(message: Buffer): Buffer {
  return Buffer.concat([prefix(message.length), message]);
}

function metric(text: string, name: string, labels = ''): number {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('Coordinator limits against hostile clients (real process)', function () {
  this.timeout(180_000);
  let dir: string;
  let simDir: string;
  let c: LimitedCoordinator;
  const coordPolicy = Buffer.from('coordinator policy');
  const webPolicy = Buffer.from('web policy');
  const wo = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const so = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const manifest = {
    Policies: {
      [hex(sha256(coordPolicy))]: { SANs: ['coordinator'], Role: 'coordinator' as const },
      [hex(sha256(webPolicy))]: { SANs: ['web'], WorkloadSecretID: 'web' },
    },
    ReferenceValues: { insecure: [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }] },
    WorkloadOwnerPubKeys: [hex(spkiDer(wo))],
    SeedshareOwnerPubKeys: [createPublicKey(so).export({ type: 'pkcs1', format: 'der' }).toString('hex')],
  };
  const raw = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const webIssuer = () => new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(webPolicy));

  /** An attested Initializer and a UserAPI client are both served. */
  async function served(): Promise<void> {
    const cert = await requestMeshCert({ host: '127.0.0.1', port: c.ports.meshapi, issuer: webIssuer() });
    assert.match(cert.CertChain.toString(), /BEGIN CERTIFICATE/);
    const h = await callUserApi('GetManifests', Buffer.alloc(0), {
      address: { host: '127.0.0.1', port: c.ports.userapi },
      manifest,
      clientKey: wo,
    });
    assert.ok(decode<{ Manifests: Buffer[] }>(GetManifestsResponseSchema, h.response).Manifests.length >= 1);
  }

  /** Run an attack with the peak RSS reset before it; an attested client is served while it runs. */
  async function underAttack<T>(attack: () => Promise<T>, serveAfterMs = 300): Promise<{ result: T; grewMiB: number }> {
    c.resetPeak();
    const before = c.memory().rss;
    const [result] = await Promise.all([attack(), delay(serveAfterMs).then(served)]);
    assert.ok(c.alive(), `the Coordinator died:\n${c.log().slice(-3000)}`);
    const grewMiB = c.memory().hwm - before;
    return { result, grewMiB };
  }

  before(async () => {
    dir = tempDir('kc-limits-');
    simDir = join(dir, 'sim');
    loadOrCreateSimRoot(simDir);
    process.env.CONTRAST_INSECURE_SIM_DIR = simDir;
    c = await startLimitedCoordinator({
      stateDir: join(dir, 'state'),
      simDir,
      policyHash: hex(sha256(coordPolicy)),
      limits: LIMITS,
    });
    await callUserApi(
      'SetManifest',
      encode(SetManifestRequestSchema, { Manifest: raw, Policies: [coordPolicy, webPolicy] }),
      {
        address: { host: '127.0.0.1', port: c.ports.userapi },
        manifest,
        clientKey: wo,
        retryForMs: 20_000,
        retryIntervalMs: 200,
      },
    );
    await served();
  });
  afterEach(async function () {
    if (c && !c.alive()) throw new Error(`the Coordinator is not running any more:\n${c.log().slice(-3000)}`);
    // Every reservation of the body budget comes back once the test's streams are gone.
    while (metric(await c.metrics(), 'contrast_rpc_buffered_bytes') !== 0) await delay(100);
  });
  after(async () => {
    await c?.kill();
    delete process.env.CONTRAST_INSECURE_SIM_DIR;
    removeDir(dir);
  });

  describe('message sizes', () => {
    it('refuses a SetManifest above 64 MiB by its length prefix, without reading the body', async () => {
      const h = await connectH2({ port: c.ports.userapi, key: wo });
      try {
        const { result: r, grewMiB } = await underAttack(() =>
          upload(h.session, SET, { prefix: prefix(80 * MiB), fill: 80 * MiB }),
        );
        assert.equal(r.code, Status.RESOURCE_EXHAUSTED, r.message);
        assert.match(r.message, /67108864/);
        assert.ok(r.written < 2 * MiB, `the server consumed ${r.written} bytes of a refused body`);
        assert.ok(grewMiB < 24, `RSS grew by ${grewMiB.toFixed(1)} MiB`);
      } finally {
        h.close();
      }
    });

    it('refuses a policy above 1 MiB and a Manifest field above 8 MiB as soon as their field headers arrive', async () => {
      const h = await connectH2({ port: c.ports.userapi, key: wo });
      try {
        const big = 1 * MiB + 1;
        const policy = await upload(h.session, SET, {
          prefix: Buffer.concat([prefix(8 * MiB), fieldHead(1, raw.length), raw, fieldHead(2, big)]),
          fill: 8 * MiB,
        });
        assert.equal(policy.code, Status.RESOURCE_EXHAUSTED, policy.message);
        assert.match(policy.message, /Policies/);
        assert.ok(policy.written < 2 * MiB, `the server consumed ${policy.written} bytes`);
        const man = await upload(h.session, SET, {
          prefix: Buffer.concat([prefix(20 * MiB), fieldHead(1, 8 * MiB + 1)]),
          fill: 20 * MiB,
        });
        assert.equal(man.code, Status.RESOURCE_EXHAUSTED, man.message);
        assert.match(man.message, /Manifest/);
        assert.ok(man.written < 2 * MiB, `the server consumed ${man.written} bytes`);
        assert.ok(
          metric(
            await c.metrics(),
            'contrast_rpc_limit_rejections_total',
            '{api="userapi",method="SetManifest",limit="field_size"}',
          ) >= 2,
        );
      } finally {
        h.close();
      }
    });

    it('accepts a policy of exactly 1 MiB (control for the field limit)', async () => {
      const h = await connectH2({ port: c.ports.userapi, key: wo });
      try {
        const max = randomBytes(1 * MiB);
        const r = await upload(h.session, SET, {
          body: framed(encode(SetManifestRequestSchema, { Manifest: raw, Policies: [coordPolicy, webPolicy, max] })),
        });
        assert.equal(r.code, Status.OK, r.message);
      } finally {
        h.close();
      }
    });

    it('GetManifests, NewMeshCert and Recover requests are limited to a few KiB', async () => {
      const h = await connectH2({ port: c.ports.userapi, key: wo });
      try {
        const r = await upload(h.session, GET, { prefix: prefix(64 * 1024), fill: 64 * 1024 });
        assert.equal(r.code, Status.RESOURCE_EXHAUSTED, r.message);
        const rec = await upload(h.session, `/${USERAPI_SERVICE}/Recover`, {
          prefix: prefix(64 * 1024),
          fill: 64 * 1024,
        });
        assert.equal(rec.code, Status.RESOURCE_EXHAUSTED, rec.message);
        const ok = await upload(h.session, GET, { body: framed(Buffer.alloc(0)) });
        assert.equal(ok.code, Status.OK, ok.message);
      } finally {
        h.close();
      }
    });
  });

  describe('checks before the body', () => {
    it('SetManifest from a key that is not a workload owner is refused before its 60 MiB body is read', async () => {
      const stranger = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
      const h = await connectH2({ port: c.ports.userapi, key: stranger });
      try {
        const { result: r, grewMiB } = await underAttack(() =>
          upload(h.session, SET, { prefix: prefix(60 * MiB), fill: 60 * MiB }),
        );
        assert.equal(r.code, Status.PERMISSION_DENIED, r.message);
        assert.match(r.message, /not a workload owner key/);
        assert.ok(r.written < 2 * MiB, `the server consumed ${r.written} bytes before refusing`);
        assert.ok(grewMiB < 24, `RSS grew by ${grewMiB.toFixed(1)} MiB`);
      } finally {
        h.close();
      }
    });

    it("the CLI's client reports the early refusal of a large SetManifest and stops sending", async () => {
      const stranger = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
      const body = encode(SetManifestRequestSchema, {
        Manifest: raw,
        Policies: [coordPolicy, webPolicy, ...Array.from({ length: 20 }, () => randomBytes(MiB))],
      });
      await assert.rejects(
        callUserApi('SetManifest', body, {
          address: { host: '127.0.0.1', port: c.ports.userapi },
          manifest,
          clientKey: stranger,
        }),
        /refused.*not a workload owner key/,
      );
    });

    it('NewMeshCert without evidence, or with garbage evidence, is refused before its body is read', async () => {
      const h = await connectH2({
        port: c.ports.meshapi,
        key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      });
      try {
        const { result: none, grewMiB } = await underAttack(() =>
          upload(h.session, MESH, { prefix: prefix(60 * MiB), fill: 60 * MiB }),
        );
        assert.equal(none.code, Status.UNAUTHENTICATED, none.message);
        assert.ok(none.written < 2 * MiB, `the server consumed ${none.written} bytes before refusing`);
        assert.ok(grewMiB < 24, `RSS grew by ${grewMiB.toFixed(1)} MiB`);
        const garbage = await upload(h.session, MESH, {
          metadata: { [CLIENT_EVIDENCE_HEADER]: randomBytes(300).toString('base64') },
          prefix: prefix(60 * MiB),
          fill: 60 * MiB,
        });
        assert.equal(garbage.code, Status.PERMISSION_DENIED, garbage.message);
        assert.ok(garbage.written < 2 * MiB, `the server consumed ${garbage.written} bytes before refusing`);
        assert.ok(garbage.message.length < 400 && !/error:[0-9A-F]{8}/.test(garbage.message), garbage.message);
      } finally {
        h.close();
      }
    });
  });

  describe('streams and connections', () => {
    it('refuses streams beyond 8 per session', async () => {
      const h = await RawH2.open({ port: c.ports.userapi, ackSettings: false });
      try {
        const ids = Array.from({ length: 40 }, (_, i) => 1 + 2 * i);
        h.write(Buffer.concat(ids.map((id) => h.headers(id, grpcHeaders(GET)))));
        const refused = () => {
          const rst = h.resets();
          const last = h.goaway()?.lastStream ?? Infinity;
          return ids.filter((id) => rst.get(id) === 7 || id > last);
        };
        const settled = () =>
          ids.every((id) => h.resets().has(id) || h.answered().has(id) || id > (h.goaway()?.lastStream ?? Infinity));
        await underAttack(() => h.until(settled));
        assert.ok(refused().length >= 32, `only ${refused().length} of 40 streams were refused`);
        assert.ok(h.answered().size <= 8, `${h.answered().size} streams were served`);
      } finally {
        h.close();
      }
    });

    it('caps connections per source address and in total; slots come back when deadlines close idle connections', async () => {
      const before = await c.metrics();
      const attempt = (localAddress: string) =>
        connectTls({ port: c.ports.userapi, localAddress }).then(
          async (s) => {
            await delay(300);
            return s.destroyed ? undefined : s;
          },
          () => undefined,
        );
      const flood = await underAttack(async () => Promise.all(Array.from({ length: 20 }, () => attempt('127.0.0.3'))));
      const held = flood.result.filter((s) => s !== undefined);
      assert.ok(held.length <= 8, `${held.length} connections from one address were kept`);
      const more = await Promise.all(
        ['127.0.0.4', '127.0.0.5'].flatMap((a) => Array.from({ length: 8 }, () => attempt(a))),
      );
      const all = [...held, ...more.filter((s) => s !== undefined)];
      assert.ok(all.length <= 24);
      const extra = await attempt('127.0.0.6');
      assert.equal(extra, undefined, 'a connection above the total cap was kept');
      const after = await c.metrics();
      assert.ok(
        metric(after, 'contrast_connections_refused_total', '{api="userapi",reason="per_address"}') -
          metric(before, 'contrast_connections_refused_total', '{api="userapi",reason="per_address"}') >=
          12,
      );
      assert.ok(metric(after, 'contrast_connections_refused_total', '{api="userapi",reason="total"}') >= 1);
      // The attackers never send a request: the header deadline closes them, and the slots are free again.
      await Promise.all(all.map((s) => closed(s)));
      await served();
    });
  });

  describe('deadlines', () => {
    it('closes a TCP connection that never starts the TLS handshake', async () => {
      const s = await connectTcp(c.ports.userapi);
      await underAttack(() => closed(s));
    });

    it('closes a TLS handshake that trickles its ClientHello (absolute, not idle, deadline)', async () => {
      const s = await connectTcp(c.ports.meshapi);
      let stop = false;
      const trickle = (async () => {
        s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
        while (!stop && !s.destroyed) {
          s.write(Buffer.from([0]));
          await delay(200);
        }
      })();
      await underAttack(() => closed(s));
      stop = true;
      await trickle;
    });

    it('closes a TLS session that never speaks HTTP/2, and one without ALPN h2', async () => {
      const s = await connectTls({ port: c.ports.userapi });
      const t = await connectTls({ port: c.ports.userapi, alpn: [] });
      await underAttack(() => Promise.all([closed(s), closed(t)]));
    });

    it('closes an HTTP/2 session that sends no request, and one idle after a call', async () => {
      const a = await connectH2({ port: c.ports.userapi, key: wo });
      const b = await connectH2({ port: c.ports.userapi, key: wo });
      await callUnary(b.session, GET, Buffer.alloc(0));
      await underAttack(() => Promise.all([a.closed, b.closed]));
      assert.ok(metric(await c.metrics(), 'contrast_deadline_closes_total', '{api="userapi",deadline="idle"}') >= 1);
    });

    it('closes a session whose request headers trickle in CONTINUATION frames', async () => {
      const h = await RawH2.open({ port: c.ports.userapi });
      let stop = false;
      const block = headerBlock(grpcHeaders(GET, [['x-pad', 'a'.repeat(4000)]]));
      const trickle = (async () => {
        h.write(h2frame(1, FLAG.END_STREAM, 1, block.subarray(0, 1)));
        for (let i = 1; i < block.length && !stop && !h.socket.destroyed; i++) {
          h.write(h.continuation(1, block.subarray(i, i + 1), false));
          await delay(200);
        }
      })();
      await underAttack(() => h.closed);
      stop = true;
      await trickle;
    });

    it('answers DEADLINE_EXCEEDED to a body that trickles, and closes the stream', async () => {
      const h = await connectH2({ port: c.ports.userapi, key: wo });
      try {
        // Well-formed so far: one field whose content trickles in.
        const { result: r } = await underAttack(() =>
          upload(h.session, GET, {
            prefix: Buffer.concat([prefix(100), fieldHead(5, 98)]),
            fill: 98,
            chunk: 1,
            intervalMs: 300,
          }),
        );
        assert.equal(r.code, Status.DEADLINE_EXCEEDED, r.message);
        const s = await upload(h.session, SET, {
          prefix: Buffer.concat([prefix(MiB), fieldHead(2, MiB - 4)]),
          fill: MiB - 4,
          chunk: 16,
          intervalMs: 300,
        });
        assert.equal(s.code, Status.DEADLINE_EXCEEDED, s.message);
        assert.ok(metric(await c.metrics(), 'contrast_deadline_closes_total', '{api="userapi",deadline="body"}') >= 2);
      } finally {
        h.close();
      }
    });

    it('closes a MeshAPI session that has not attested within its deadline, however busy', async () => {
      const h = await connectH2({
        port: c.ports.meshapi,
        key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      });
      let stop = false;
      const busy = (async () => {
        while (!stop && !h.session.closed && !h.session.destroyed) {
          await upload(h.session, `/${MESHAPI_SERVICE}/Unknown`, { body: framed(Buffer.alloc(0)) });
          await delay(300);
        }
      })();
      await underAttack(() => h.closed);
      stop = true;
      await busy;
      assert.ok(
        metric(await c.metrics(), 'contrast_deadline_closes_total', '{api="meshapi",deadline="attestation"}') >= 1,
      );
    });

    it('closes a MeshAPI session after repeated failed attestations', async () => {
      const h = await connectH2({
        port: c.ports.meshapi,
        key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      });
      const codes: (number | undefined)[] = [];
      for (let i = 0; i < 10 && !h.session.closed && !h.session.destroyed; i++)
        codes.push((await upload(h.session, MESH, { body: framed(Buffer.alloc(0)) })).code);
      await h.closed;
      assert.deepEqual(codes.slice(0, 3), [Status.UNAUTHENTICATED, Status.UNAUTHENTICATED, Status.UNAUTHENTICATED]);
      assert.ok(codes.length <= 4, `the session served ${codes.length} failed attestations`);
      await served();
    });
  });

  describe('metrics and bad input', () => {
    it('unknown paths count under one label value and do not grow /metrics', async () => {
      const before = (await c.metrics()).length;
      const h = await connectH2({ port: c.ports.userapi, key: wo });
      try {
        await underAttack(async () => {
          for (let i = 0; i < 250; i++) {
            const batch = await Promise.all(
              Array.from({ length: 8 }, (_, j) =>
                upload(h.session, `/x${i}/${j}${randomBytes(8).toString('hex')}`, { body: framed(Buffer.alloc(0)) }),
              ),
            );
            for (const r of batch) assert.equal(r.code, Status.UNIMPLEMENTED);
          }
        });
      } finally {
        h.close();
      }
      const text = await c.metrics();
      assert.match(text, /contrast_userapi_requests_total\{method="unknown",code="12"\} \d+/);
      assert.ok(text.length - before < 600, `/metrics grew by ${text.length - before} bytes`);
    });

    const invalid = async (body: Buffer): Promise<CallResult> => {
      const h = await connectH2({ port: c.ports.userapi, key: wo });
      try {
        return await upload(h.session, SET, { body });
      } finally {
        h.close();
      }
    };
    const shortAndClean = (r: CallResult) => {
      assert.equal(r.code, Status.INVALID_ARGUMENT, `${r.code}: ${r.message}`);
      assert.ok(r.message.length > 0 && r.message.length < 200, r.message);
      assert.doesNotMatch(r.message, /error:[0-9A-F]{8}|internal/i);
    };

    it('a garbage protobuf is INVALID_ARGUMENT with a short message, logged and counted', async () => {
      const key = '{api="userapi",method="SetManifest",reason="protobuf"}';
      const before = metric(await c.metrics(), 'contrast_rpc_invalid_requests_total', key);
      const r = await invalid(framed(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])));
      shortAndClean(r);
      const wire = await invalid(framed(Buffer.from([0x0b, 0x01])));
      shortAndClean(wire);
      assert.equal(metric(await c.metrics(), 'contrast_rpc_invalid_requests_total', key), before + 2);
      assert.match(c.log(), /SetManifest.*INVALID_ARGUMENT/);
    });

    it('bad manifest JSON is INVALID_ARGUMENT with a short message, counted', async () => {
      const before = metric(
        await c.metrics(),
        'contrast_rpc_invalid_requests_total',
        '{api="userapi",method="SetManifest",reason="request"}',
      );
      const r = await invalid(
        framed(
          encode(SetManifestRequestSchema, { Manifest: Buffer.from(`{"Policies": ${'['.repeat(5000)}`), Policies: [] }),
        ),
      );
      shortAndClean(r);
      assert.match(r.message, /JSON/);
      assert.equal(
        metric(
          await c.metrics(),
          'contrast_rpc_invalid_requests_total',
          '{api="userapi",method="SetManifest",reason="request"}',
        ),
        before + 1,
      );
    });

    it('a bad HTTP/2 frame ends the session with GOAWAY and is counted; the Coordinator serves on', async () => {
      const before = metric(await c.metrics(), 'contrast_http2_session_errors_total', '{api="userapi"}');
      const h = await RawH2.open({ port: c.ports.userapi });
      h.write(h2frame(8, 0, 0, Buffer.alloc(4))); // WINDOW_UPDATE with increment 0 on the connection
      await underAttack(() => h.closed);
      assert.ok(h.goaway(), 'no GOAWAY before the close');
      assert.equal(metric(await c.metrics(), 'contrast_http2_session_errors_total', '{api="userapi"}'), before + 1);
    });

    it('bad gRPC frames are INVALID_ARGUMENT: a truncated message, a truncated prefix, a second message', async () => {
      const before = metric(
        await c.metrics(),
        'contrast_rpc_invalid_requests_total',
        '{api="userapi",method="SetManifest",reason="frame"}',
      );
      shortAndClean(await invalid(Buffer.concat([prefix(100), fieldHead(1, 98), Buffer.alloc(8)])));
      shortAndClean(await invalid(Buffer.from([0, 0])));
      shortAndClean(await invalid(Buffer.concat([framed(Buffer.alloc(0)), framed(Buffer.alloc(3))])));
      assert.equal(
        metric(
          await c.metrics(),
          'contrast_rpc_invalid_requests_total',
          '{api="userapi",method="SetManifest",reason="frame"}',
        ),
        before + 3,
      );
    });
  });
  // Last: these leave large garbage behind, which would hide growth in the RSS checks above.
  describe('memory', () => {
    /** A valid SetManifest of about 60 MiB: the current manifest and 58 filler policies of 1 MiB. */
    const bigSet = () =>
      framed(
        encode(SetManifestRequestSchema, {
          Manifest: raw,
          Policies: [coordPolicy, webPolicy, ...Array.from({ length: 58 }, () => randomBytes(MiB))],
        }),
      );

    it('four concurrent 60 MiB SetManifests stay within the body budget', async () => {
      const body = bigSet();
      const sessions = await Promise.all(
        Array.from({ length: 4 }, () => connectH2({ port: c.ports.userapi, key: wo, localAddress: '127.0.0.2' })),
      );
      try {
        const { result, grewMiB } = await underAttack(() =>
          Promise.all(sessions.map((s) => upload(s.session, SET, { body, chunk: MiB }))),
        );
        for (const r of result)
          assert.ok(r.code === Status.OK || r.code === Status.RESOURCE_EXHAUSTED, `${r.code}: ${r.message}`);
        assert.ok(
          result.some((r) => r.code === Status.OK),
          'at least one was served',
        );
        assert.ok(grewMiB < 200, `RSS grew by ${grewMiB.toFixed(1)} MiB`);
      } finally {
        for (const s of sessions) s.close();
      }
    });

    it('a request that does not fit the budget waits briefly, then gets RESOURCE_EXHAUSTED', async () => {
      const holder = await connectH2({ port: c.ports.userapi, key: wo, localAddress: '127.0.0.2' });
      const other = await connectH2({ port: c.ports.userapi, key: wo, localAddress: '127.0.0.2' });
      try {
        // The holder declares 60 MiB and trickles it: its reservation lasts until its body deadline.
        const holding = upload(holder.session, SET, {
          prefix: Buffer.concat([prefix(60 * MiB), fieldHead(2, MiB - 4)]),
          fill: 60 * MiB,
          chunk: 1024,
          intervalMs: 200,
        });
        await delay(500);
        const { result: r } = await underAttack(() => upload(other.session, SET, { body: bigSet(), chunk: MiB }));
        assert.equal(r.code, Status.RESOURCE_EXHAUSTED, r.message);
        assert.match(r.message, /busy|budget/);
        const held = await holding;
        assert.equal(held.code, Status.DEADLINE_EXCEEDED, held.message);
        // With the reservation released, the same request fits.
        const next = await connectH2({ port: c.ports.userapi, key: wo, localAddress: '127.0.0.2' });
        try {
          const again = await upload(next.session, SET, { body: bigSet(), chunk: MiB });
          assert.equal(again.code, Status.OK, again.message);
        } finally {
          next.close();
        }
      } finally {
        holder.close();
        other.close();
      }
    });
  });
});

describe('a history of 10,000 policies (real process)', function () {
  this.timeout(600_000);
  let dir: string;
  let c: LimitedCoordinator;
  const coordPolicy = Buffer.from('coordinator policy');
  const wo = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const so = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  // Small policies: 10,000 of the typical 40-60 KiB do not fit 64 MiB (see docs/protocol.md).
  const policies = [
    coordPolicy,
    ...Array.from({ length: 10_000 }, (_, i) => Buffer.concat([Buffer.from(`policy ${i}\n`), randomBytes(1000)])),
  ];
  const manifest = {
    Policies: Object.fromEntries(
      policies.map((p, i) => [
        hex(sha256(p)),
        i === 0
          ? { SANs: ['coordinator'], Role: 'coordinator' as const }
          : {
              SANs: [`workload-${i}`, `workload-${i}.default.svc.cluster.local`, '*'],
              WorkloadSecretID: `apps/v1/Deployment/default/workload-${i}-${'x'.repeat(60)}`,
            },
      ]),
    ),
    ReferenceValues: { insecure: [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }] },
    WorkloadOwnerPubKeys: [hex(spkiDer(wo))],
    SeedshareOwnerPubKeys: [createPublicKey(so).export({ type: 'pkcs1', format: 'der' }).toString('hex')],
  };
  const raw = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
  const opts = () => ({
    address: { host: '127.0.0.1', port: c.ports.userapi },
    manifest,
    clientKey: wo,
    retryForMs: 20_000,
    retryIntervalMs: 200,
  });
  let answerBytes = 0;

  before(async () => {
    dir = tempDir('kc-limits-10k-');
    const simDir = join(dir, 'sim');
    loadOrCreateSimRoot(simDir);
    process.env.CONTRAST_INSECURE_SIM_DIR = simDir;
    c = await startLimitedCoordinator({
      stateDir: join(dir, 'state'),
      simDir,
      policyHash: hex(sha256(coordPolicy)),
      limits: {
        setManifestBodyTimeoutMs: 120_000,
        responseTimeoutMs: 3000,
        budgetWaitMs: 1000,
        maxConnectionsPerAddress: { userapi: 32 },
      },
    });
  });
  after(async () => {
    await c?.kill();
    delete process.env.CONTRAST_INSECURE_SIM_DIR;
    removeDir(dir);
  });

  it('sets and reads back a manifest of 10,000 policies (2-3 MB of JSON)', async () => {
    assert.ok(raw.length > 2 * MiB && raw.length < 8 * MiB, `manifest of ${raw.length} bytes`);
    await callUserApi('SetManifest', encode(SetManifestRequestSchema, { Manifest: raw, Policies: policies }), opts());
    const answer = (await callUserApi('GetManifests', Buffer.alloc(0), opts())).response;
    answerBytes = answer.length;
    const h = decode<{ Manifests: Buffer[]; Policies: Buffer[] }>(GetManifestsResponseSchema, answer);
    assert.ok(h.Manifests.at(-1)!.equals(raw));
    assert.equal(h.Policies.length, policies.length);
  });

  it('GetManifests from clients that never read the answer: as many answers as fit the body budget, the rest refused, all reset by the response deadline', async () => {
    assert.ok(answerBytes > 10 * MiB, `an answer of ${answerBytes} bytes`);
    const fit = Math.floor((80 * MiB) / answerBytes);
    const before = metric(await c.metrics(), 'contrast_deadline_closes_total', '{api="userapi",deadline="response"}');
    c.resetPeak();
    const rssBefore = c.memory().rss;
    const sessions = await Promise.all(Array.from({ length: 16 }, () => connectH2({ port: c.ports.userapi, key: wo })));
    try {
      const answers = await Promise.all(
        sessions.map(
          (s) =>
            new Promise<IncomingHttpHeaders>((resolve) => {
              const req = s.session.request({
                ':method': 'POST',
                ':path': GET,
                'content-type': 'application/grpc+proto',
                te: 'trailers',
              });
              req.on('error', () => undefined);
              req.on('response', resolve);
              req.pause(); // never read: flow control stops the answer on the server
              req.end(framed(Buffer.alloc(0)));
            }),
        ),
      );
      const refused = answers.filter((h) => Number(h['grpc-status']) === Status.RESOURCE_EXHAUSTED);
      const streaming = answers.filter((h) => h['grpc-status'] === undefined && Number(h[':status']) === 200);
      assert.ok(
        streaming.length >= 1 && streaming.length <= fit,
        `${streaming.length} answers were held at once, ${fit} fit the budget`,
      );
      assert.equal(refused.length + streaming.length, 16);
      while (
        metric(await c.metrics(), 'contrast_deadline_closes_total', '{api="userapi",deadline="response"}') <
        before + streaming.length
      )
        await delay(200);
      const grew = c.memory().hwm - rssBefore;
      assert.ok(grew < 120, `RSS grew by ${grew.toFixed(1)} MiB`);
      // With the slots free again, a reader is served.
      const h = decode<{ Policies: Buffer[] }>(
        GetManifestsResponseSchema,
        (await callUserApi('GetManifests', Buffer.alloc(0), opts())).response,
      );
      assert.equal(h.Policies.length, policies.length);
    } finally {
      for (const s of sessions) s.close();
    }
  });
});

describe('MeshAPI when SEV-SNP collateral is unavailable (in process)', function () {
  this.timeout(60_000);
  // A genuine Milan report (virtee) with REPORT_DATA rewritten to bind each connection: every
  // check before the VCEK lookup passes, and the lookup is where the collateral source fails.
  const vector = SNP_VECTORS[1]!;
  const report = Buffer.from(vector.report);
  let simDir: string;
  let coord: RunningCoordinator;
  let fail: () => Promise<never>;

  before(async () => {
    simDir = tempDir('kc-sim-');
    const collateral: SnpCollateralSource = { vcek: () => fail(), certChain: () => fail(), crl: async () => undefined };
    coord = await startCoordinator({
      store: new MemoryStore(),
      issuer: new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(Buffer.from('coordinator policy'))),
      host: '127.0.0.1',
      userPort: 0,
      meshPort: 0,
      metricsPort: 0,
      log: () => undefined,
      dispatch: { snp: { collateral, product: vector.product, now: SNP_NOW } },
    });
    const policy = Buffer.from('a workload policy');
    const manifest = {
      Policies: { [hex(sha256(policy))]: { SANs: ['web'], Role: 'coordinator' } },
      ReferenceValues: {
        snp: [
          {
            ProductName: vector.product,
            TrustedMeasurement: report.subarray(0x90, 0xc0).toString('hex'),
            MinimumTCB: {
              BootloaderVersion: vector.reported.bootloader,
              TEEVersion: vector.reported.tee,
              SNPVersion: vector.reported.snp,
              MicrocodeVersion: vector.reported.microcode,
            },
            GuestPolicy: { SMT: true },
            PlatformInfo: { SMTEnabled: true, TSMEEnabled: true },
          },
        ],
      },
      WorkloadOwnerPubKeys: [],
      SeedshareOwnerPubKeys: [
        createPublicKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey)
          .export({ type: 'pkcs1', format: 'der' })
          .toString('hex'),
      ],
    };
    await coord.authority.setManifest(Buffer.from(JSON.stringify(manifest)), [policy], undefined);
  });
  after(async () => {
    await coord?.close();
    removeDir(simDir);
  });

  async function newMeshCert(): Promise<RpcError> {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const conn = await dialAtls({ host: '127.0.0.1', port: coord.ports.meshapi, clientKey: key, verifyServer: null });
    try {
      const bound = Buffer.from(report);
      reportData(spkiDer(key), conn.socket.exportKeyingMaterial(EKM_SIZE, EKM_LABEL, Buffer.alloc(0))).copy(
        bound,
        0x50,
      );
      const evidence = { oid: OID_SNP_EVIDENCE, value: encode(SnpEvidenceSchema, { report: bound }) };
      const header = createAtlsCertDer(key, evidence).toString('base64');
      const err = await callUnary(conn.session, MESH, Buffer.alloc(0), { [CLIENT_EVIDENCE_HEADER]: header }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof RpcError, `expected a refusal, got ${String(err)}`);
      return err;
    } finally {
      conn.close();
    }
  }

  it('answers UNAVAILABLE (retry) when the KDS is unreachable, and does not count an attestation failure', async () => {
    fail = async () => {
      throw new CollateralUnavailableError('snp.kds', 'cannot reach AMD KDS (test)');
    };
    const failures = coord.metrics.get('contrast_meshapi_attestation_failures_total');
    const err = await newMeshCert();
    assert.equal(err.code, Status.UNAVAILABLE, err.message);
    assert.match(err.message, /AMD KDS/);
    assert.equal(coord.metrics.get('contrast_meshapi_attestation_failures_total'), failures);
  });

  it('answers PERMISSION_DENIED for other collateral errors (control: the same path, another verdict)', async () => {
    fail = async () => {
      throw new AttestationError('snp.kds', 'AMD KDS answered 404 (test)');
    };
    const failures = coord.metrics.get('contrast_meshapi_attestation_failures_total');
    const err = await newMeshCert();
    assert.equal(err.code, Status.PERMISSION_DENIED, err.message);
    assert.match(err.message, /snp\.kds.*404/);
    assert.equal(coord.metrics.get('contrast_meshapi_attestation_failures_total'), failures + 1);
  });
});

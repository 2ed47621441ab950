/**
 * Edges the first mutation run of the Coordinator found unwatched (docs/testing.md), in process:
 * the gRPC server's lifecycle (reservations of a failing handler, the response's headers,
 * trailers, accounting and deadline, errors that are no Error, a stream error from the client),
 * an empty message that waits for the budget, and the Authority's reading of a stored history
 * that cannot be a manifest's.
 */
import assert from 'node:assert/strict';
import { connect, createServer, type ClientHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import {
  ByteBudget,
  callUnary,
  RpcError,
  serveUnary,
  Status,
  unframe,
  type CallOutcome,
  type ServeOptions,
  type UnaryMethod,
} from '../../src/coordinator/api/grpc.js';
import { Authority, ROOT_CERT_KEY, SEED_SHARES_KEY } from '../../src/coordinator/authority.js';
import { History } from '../../src/coordinator/history.js';
import { MemoryStore } from '../../src/coordinator/store/dir.js';
import { SeedEngine } from '../../src/coordinator/seedengine.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import { decryptSeedShare } from '../../src/coordinator/seedshares.js';
import { ZERO_HASH } from '../../src/coordinator/history.js';
import { prefix, upload } from './h2raw.js';
import { startCoordinator } from '../../src/coordinator/server.js';
import { SimulatedIssuer, loadOrCreateSimRoot } from '../../src/issuers/simulated.js';
import { createAtlsCertDer } from '../../src/atls/cert.js';
import { CLIENT_EVIDENCE_HEADER, EKM_LABEL, EKM_SIZE, reportData, spkiDer } from '../../src/atls/binding.js';
import { dialAtls } from '../../src/atls/client.js';
import { MESHAPI_SERVICE } from '../../src/coordinator/api/messages.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { COORD, manifest, rsa2048 } from './state-helpers.js';

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const framed = (m: Buffer) => Buffer.concat([prefix(m.length), m]);

async function serve(methods: Record<string, UnaryMethod>, opts: Partial<ServeOptions> & { capacity?: number } = {}) {
  const budget = opts.budget ?? new ByteBudget(opts.capacity ?? 1024 * 1024);
  const outcomes: CallOutcome[] = [];
  const serveOpts: ServeOptions = {
    budget,
    budgetWaitMs: opts.budgetWaitMs ?? 2000,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? 5000,
    responseTimeoutMs: opts.responseTimeoutMs ?? 10_000,
    ...(opts.onResponseTimeout ? { onResponseTimeout: opts.onResponseTimeout } : {}),
  };
  const map = new Map(Object.entries(methods).map(([k, v]) => [`/t.T/${k}`, v]));
  const server = createServer();
  server.on('stream', (stream, headers) => {
    void serveUnary(stream, headers, map, serveOpts).then((o) => outcomes.push(o));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const session: ClientHttp2Session = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  session.on('error', () => undefined);
  return {
    budget,
    outcomes,
    session,
    async next(n: number): Promise<CallOutcome> {
      while (outcomes.length < n) await delay(5);
      return outcomes[n - 1]!;
    },
    close: async () => {
      session.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const echo: UnaryMethod = {
  limits: { maxBytes: 64 },
  handle: async (c) => Buffer.from(String((await c.read()).bytes.length)),
};

describe('Coordinator edges found by mutation testing (in process)', function () {
  this.timeout(60_000);

  describe('the gRPC server', () => {
    it('an OK answer is HTTP 200, application/grpc+proto, and trailers with grpc-status 0', async () => {
      const s = await serve({ Echo: echo });
      try {
        const got = await new Promise<{
          headers: Record<string, unknown>;
          trailers: Record<string, unknown>;
          body: Buffer;
        }>((resolve) => {
          const req = s.session.request({
            ':method': 'POST',
            ':path': '/t.T/Echo',
            'content-type': 'application/grpc',
          });
          let headers = {};
          let trailers = {};
          const data: Buffer[] = [];
          req.on('response', (h) => {
            headers = h;
          });
          req.on('trailers', (t) => {
            trailers = t;
          });
          req.on('data', (c: Buffer) => data.push(c));
          req.on('close', () => resolve({ headers, trailers, body: Buffer.concat(data) }));
          req.end(framed(Buffer.alloc(0)));
        });
        assert.equal(got.headers[':status'], 200);
        assert.equal(got.headers['content-type'], 'application/grpc+proto');
        assert.equal(got.headers['grpc-status'], undefined);
        assert.equal(got.trailers['grpc-status'], '0');
        assert.deepEqual(unframe(got.body), Buffer.from('0'));
      } finally {
        await s.close();
      }
    });

    it('an empty message after an empty one, in its own DATA frame, is data after the message', async () => {
      const s = await serve({ Echo: echo });
      try {
        const r = await upload(s.session, '/t.T/Echo', { body: Buffer.concat([prefix(0), prefix(0)]), chunk: 5 });
        assert.equal(r.code, Status.INVALID_ARGUMENT);
        assert.equal(r.message, 'the request has data after its message (a unary call carries exactly one)');
      } finally {
        await s.close();
      }
    });

    it('an empty message waits too while responses hold more than the budget, then is served', async () => {
      const s = await serve({ Echo: echo }, { capacity: 100 });
      try {
        const over = s.budget.force(101);
        const req = s.session.request({ ':method': 'POST', ':path': '/t.T/Echo', 'content-type': 'application/grpc' });
        const answer = new Promise<Buffer>((resolve) => {
          const data: Buffer[] = [];
          req.on('data', (c: Buffer) => data.push(c));
          req.on('close', () => resolve(Buffer.concat(data)));
        });
        req.end(framed(Buffer.alloc(0)));
        await delay(100);
        assert.equal(s.outcomes.length, 0, 'still waiting');
        over();
        assert.deepEqual(unframe(await answer), Buffer.from('0'));
        assert.equal((await s.next(1)).code, Status.OK);
      } finally {
        await s.close();
      }
    });

    it('a reservation of a handler that then fails comes back with the stream', async () => {
      const s = await serve(
        {
          Fail: {
            limits: { maxBytes: 64 },
            handle: async (c) => {
              await c.read();
              await c.reserve(500);
              throw new RpcError(Status.FAILED_PRECONDITION, 'not now');
            },
          },
        },
        { capacity: 1000 },
      );
      try {
        await assert.rejects(callUnary(s.session, '/t.T/Fail', Buffer.alloc(0)), /not now/);
        await s.next(1);
        await delay(20);
        assert.equal(s.budget.inUse, 0);
      } finally {
        await s.close();
      }
    });

    it('a response in flight counts its bytes and prefix in the budget; without a timeout hook the deadline still resets it', async () => {
      const s = await serve(
        {
          Big: {
            limits: { maxBytes: 64 },
            handle: async (c) => {
              await c.read();
              return Buffer.alloc(1024 * 1024);
            },
          },
        },
        { responseTimeoutMs: 300 },
      );
      try {
        const req = s.session.request({ ':method': 'POST', ':path': '/t.T/Big', 'content-type': 'application/grpc' });
        req.on('error', () => undefined);
        req.end(framed(Buffer.alloc(0)));
        req.pause();
        await s.next(1);
        assert.equal(s.budget.inUse, 1024 * 1024 + 5);
        assert.equal(await new Promise<number>((r) => req.once('close', () => r(req.rstCode ?? -1))), 8);
        await delay(20);
        assert.equal(s.budget.inUse, 0);
      } finally {
        await s.close();
      }
    });

    it('the response deadline ends with the stream: a call answered in time is not reset later', async () => {
      const timeouts: string[] = [];
      const s = await serve({ Echo: echo }, { responseTimeoutMs: 100, onResponseTimeout: (m) => timeouts.push(m) });
      try {
        assert.deepEqual(await callUnary(s.session, '/t.T/Echo', Buffer.alloc(0)), Buffer.from('0'));
        await delay(250);
        assert.deepEqual(timeouts, []);
      } finally {
        await s.close();
      }
    });

    it('a handler that throws something that is no Error is an internal error; its text goes to the log', async () => {
      const s = await serve({
        Str: {
          limits: { maxBytes: 64 },
          handle: async () => {
            throw 'a string';
          },
        },
        Undef: {
          limits: { maxBytes: 64 },
          handle: async () => {
            throw undefined;
          },
        },
      });
      try {
        await assert.rejects(
          callUnary(s.session, '/t.T/Str', Buffer.alloc(0)),
          (e: RpcError) => e.code === Status.INTERNAL && e.message === 'internal error',
        );
        assert.equal((await s.next(1)).internal, 'a string');
        await assert.rejects(
          callUnary(s.session, '/t.T/Undef', Buffer.alloc(0)),
          (e: RpcError) => e.code === Status.INTERNAL,
        );
        assert.equal((await s.next(2)).internal, 'undefined');
      } finally {
        await s.close();
      }
    });

    it('a client that resets its stream with an error code does not crash the server', async () => {
      const s = await serve({ Echo: echo });
      try {
        const req = s.session.request({ ':method': 'POST', ':path': '/t.T/Echo', 'content-type': 'application/grpc' });
        req.on('error', () => undefined);
        req.write(prefix(10));
        await delay(50);
        req.close(2); // INTERNAL_ERROR: the server stream emits 'error'
        await s.next(1);
        assert.deepEqual(await callUnary(s.session, '/t.T/Echo', Buffer.alloc(0)), Buffer.from('0'), 'served on');
      } finally {
        await s.close();
      }
    });
  });

  describe('the client', () => {
    it('a session that fails names the path and the error', async () => {
      const server = createServer();
      server.on('stream', (st) => st.on('error', () => undefined));
      server.on('session', (ss) => ss.on('error', () => undefined));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const session = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      session.on('error', () => undefined);
      try {
        const p = callUnary(session, '/t.T/X', Buffer.alloc(0)).then(
          () => assert.fail('no error'),
          (e: RpcError) => e,
        );
        await delay(50);
        session.destroy(new Error('boom'));
        const e = await p;
        assert.equal(e.code, Status.UNAVAILABLE);
        assert.equal(e.message, '/t.T/X: boom');
      } finally {
        session.destroy();
        await new Promise<void>((r) => server.close(() => r()));
      }
    });
  });

  describe('the Authority and its stored history', () => {
    async function historyOf(raw: Buffer): Promise<MemoryStore> {
      const store = new MemoryStore();
      const h = new History(store);
      const engine = SeedEngine.generate();
      const manifestHash = await h.setManifest(raw);
      const t = await h.setTransition({ manifestHash, previousTransitionHash: ZERO_HASH });
      assert.ok(await h.setLatest(undefined, t, engine.transactionSigningKey));
      return store;
    }

    it('a stored latest manifest that is not one is an internal error naming its hash', async () => {
      for (const [raw, reason] of [
        [Buffer.from('[]'), 'manifest.(top level): manifest must be a JSON object'],
        [Buffer.from('{'), /^Expected property name/],
      ] as const) {
        const store = await historyOf(raw);
        await assert.rejects(Authority.open(store, { log: () => undefined }), (e: RpcError) => {
          assert.equal(e.code, Status.INTERNAL);
          const head = `the stored manifest ${sha256(raw).toString('hex')} is invalid: `;
          assert.ok(e.message.startsWith(head), e.message);
          if (typeof reason === 'string') assert.equal(e.message.slice(head.length), reason);
          else assert.match(e.message.slice(head.length), reason);
          return true;
        });
      }
    });

    it("a latest pointer at the chain's start (the zero hash) is refused", async () => {
      const store = new MemoryStore();
      assert.ok(await new History(store).setLatest(undefined, ZERO_HASH, SeedEngine.generate().transactionSigningKey));
      await assert.rejects(
        Authority.open(store, { log: () => undefined }),
        /^HistoryError: transitions\/latest points at an empty chain$/,
      );
    });

    it('a seed-share document missing from the store is not served, and is no malformed one to log', async () => {
      const store = new MemoryStore();
      await (
        await Authority.open(store, { log: () => undefined })
      ).setManifest(manifest(), [COORD, Buffer.from('web policy')], undefined);
      store.data.delete(SEED_SHARES_KEY);
      const logs: string[] = [];
      const b = await Authority.open(store, { log: (m) => logs.push(m) });
      assert.equal('seedShares' in (await b.getManifests()), false);
      assert.deepEqual(logs, []);
    });

    it('uninitialised, GetManifests says to set a manifest', async () => {
      const a = await Authority.open(new MemoryStore(), { log: () => undefined });
      await assert.rejects(
        a.getManifests(),
        (e: RpcError) =>
          e.code === Status.FAILED_PRECONDITION &&
          e.message === 'no manifest has been set yet: run `kubectl contrast set`',
      );
    });

    it('recovery without a stored root issues one silently; without a log option, log lines go to stderr', async () => {
      const store = new MemoryStore();
      const a = await Authority.open(store, { log: () => undefined });
      const r = await a.setManifest(manifest(), [COORD, Buffer.from('web policy')], undefined);
      store.data.delete(ROOT_CERT_KEY);
      const logs: string[] = [];
      const b = await Authority.open(store, { log: (m) => logs.push(m) });
      await b.recover(decryptSeedShare(r.seedShares!.SeedShares[0]!, rsa2048), r.seedShares!.salt, rsa2048);
      assert.deepEqual(logs, [], 'a missing root is no root of another seed');
      assert.ok(store.data.get(ROOT_CERT_KEY));

      store.data.set(ROOT_CERT_KEY, Buffer.from('not a certificate'));
      const written: string[] = [];
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string | Uint8Array) => {
        written.push(String(chunk));
        return true;
      }) as typeof process.stderr.write;
      try {
        const c = await Authority.open(store);
        await c.getManifests();
      } finally {
        process.stderr.write = write;
      }
      assert.equal(written.length, 1);
      assert.ok(
        written[0]!.startsWith(`coordinator: ignoring ${ROOT_CERT_KEY} from the store: `) && written[0]!.endsWith('\n'),
        written[0],
      );
    });
  });

  describe('the MeshAPI', () => {
    it('evidence for another key than the TLS client certificate fails the atls.binding check', async () => {
      const simDir = tempDir('kc-sim-');
      process.env.CONTRAST_INSECURE_SIM_DIR = simDir;
      const web = Buffer.from('web policy');
      const coord = await startCoordinator({
        store: new MemoryStore(),
        issuer: new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(COORD)),
        host: '127.0.0.1',
        userPort: 0,
        meshPort: 0,
        metricsPort: 0,
        log: () => undefined,
      });
      try {
        await coord.authority.setManifest(manifest(), [COORD, web], undefined);
        const tlsKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
        // Another key of the same curve, one of another curve, and one of another type.
        for (const other of [
          generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
          generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
          generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
        ]) {
          const conn = await dialAtls({
            host: '127.0.0.1',
            port: coord.ports.meshapi,
            clientKey: tlsKey,
            verifyServer: null,
          });
          try {
            const rd = reportData(
              spkiDer(other),
              conn.socket.exportKeyingMaterial(EKM_SIZE, EKM_LABEL, Buffer.alloc(0)),
            );
            const evidence = await new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(web)).issue(rd);
            const header = createAtlsCertDer(other, evidence).toString('base64');
            await assert.rejects(
              callUnary(conn.session, `/${MESHAPI_SERVICE}/NewMeshCert`, Buffer.alloc(0), {
                [CLIENT_EVIDENCE_HEADER]: header,
              }),
              (e: RpcError) =>
                e.code === Status.PERMISSION_DENIED &&
                e.message ===
                  'attestation check atls.binding failed: the evidence certificate is for another key than the TLS client certificate',
            );
          } finally {
            conn.close();
          }
        }
      } finally {
        await coord.close();
        delete process.env.CONTRAST_INSECURE_SIM_DIR;
        removeDir(simDir);
      }
    });
  });
});

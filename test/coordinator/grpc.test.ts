/**
 * The gRPC transport (src/coordinator/api/grpc.ts) in process: its server (serveUnary) on a
 * plain HTTP/2 listener with methods and limits chosen per test, its client (callUnary), and the
 * body budget. Every refusal is checked by status code, message and the outcome the server
 * records (the metric label); each has a control that passes the same path.
 * The Coordinator's production limits against a real process are in limits.test.ts.
 */
import assert from 'node:assert/strict';
import {
  connect,
  createServer,
  type ClientHttp2Session,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import {
  ByteBudget,
  callUnary,
  formatBytes,
  frame,
  MAX_RESPONSE_MESSAGE,
  RequestError,
  RpcError,
  serveUnary,
  Status,
  statusName,
  unframe,
  type CallOutcome,
  type RequestLimits,
  type ServeOptions,
  type UnaryMethod,
} from '../../src/coordinator/api/grpc.js';
import { ProtoError } from '../../src/util/protobuf.js';
import { prefix, upload, type CallResult } from './h2raw.js';

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hex = (b: Buffer) => b.toString('hex');

/** Two listed fields (A: once, up to 8 bytes; B: up to 3 times, 4 bytes each), two others. */
const LIMITS: RequestLimits = {
  maxBytes: 64,
  fields: { 1: { name: 'A', maxBytes: 8, maxCount: 1 }, 2: { name: 'B', maxBytes: 4, maxCount: 3 } },
  maxOtherFields: 2,
};

/** Answers the listed fields it was given, as JSON: what the handler sees of the body. */
const echo = (limits: RequestLimits = LIMITS): UnaryMethod => ({
  limits,
  handle: async (call) => {
    const body = await call.read();
    return Buffer.from(
      JSON.stringify({
        n: body.bytes.length,
        a: body.fields(1).map(hex),
        b: body.fields(2).map(hex),
        c: body.fields(3).map(hex),
      }),
    );
  },
});

interface Served {
  port: number;
  session: ClientHttp2Session;
  budget: ByteBudget;
  outcomes: CallOutcome[];
  timeouts: string[];
  /** The outcome of the next call to finish on the server. */
  outcome(): Promise<CallOutcome>;
  close(): Promise<void>;
}

async function serve(
  methods: Record<string, UnaryMethod>,
  opts: Partial<Omit<ServeOptions, 'budget'>> & { capacity?: number } = {},
): Promise<Served> {
  const budget = new ByteBudget(opts.capacity ?? 1024 * 1024);
  const outcomes: CallOutcome[] = [];
  const timeouts: string[] = [];
  let waiters: (() => void)[] = [];
  const serveOpts: ServeOptions = {
    budget,
    budgetWaitMs: opts.budgetWaitMs ?? 200,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? 5000,
    responseTimeoutMs: opts.responseTimeoutMs ?? 10_000,
    onResponseTimeout: (m) => timeouts.push(m),
  };
  const map = new Map(Object.entries(methods).map(([k, v]) => [`/t.T/${k}`, v]));
  const server: Http2Server = createServer();
  server.on('stream', (stream, headers) => {
    void serveUnary(stream, headers, map, serveOpts).then((o) => {
      outcomes.push(o);
      const w = waiters;
      waiters = [];
      for (const r of w) r();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const session = connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  let taken = 0;
  return {
    port,
    session,
    budget,
    outcomes,
    timeouts,
    outcome: async () => {
      while (outcomes.length <= taken) await new Promise<void>((r) => waiters.push(r));
      return outcomes[taken++]!;
    },
    close: async () => {
      session.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A protobuf varint. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}
/** A length-delimited field. */
const ld = (no: number, content: Buffer): Buffer =>
  Buffer.concat([Buffer.from([...varint(no * 8 + 2), ...varint(content.length)]), content]);
const framed = (message: Buffer): Buffer => Buffer.concat([prefix(message.length), message]);

/** Send `message` framed (or `body` as is) and wait for both the client's result and the server's outcome. */
async function call(
  s: Served,
  message: Buffer | undefined,
  opts: { body?: Buffer; chunk?: number; path?: string } = {},
): Promise<{ r: CallResult; o: CallOutcome }> {
  const body = opts.body ?? framed(message!);
  const [r, o] = await Promise.all([
    upload(s.session, opts.path ?? '/t.T/Echo', { body, ...(opts.chunk ? { chunk: opts.chunk } : {}) }),
    s.outcome(),
  ]);
  return { r, o };
}

function refused(res: { r: CallResult; o: CallOutcome }, code: number, message: RegExp, refusal?: string): void {
  assert.equal(res.r.code, code, `${res.r.code} ${res.r.message}`);
  assert.match(res.r.message, message);
  assert.equal(res.o.code, code);
  assert.equal(res.o.message, res.r.message);
  assert.equal(res.o.refusal, refusal);
}

describe('the gRPC transport (in process)', function () {
  this.timeout(60_000);

  describe('framing helpers and names', () => {
    it('frames one uncompressed message and unframes exactly one', () => {
      const f = frame(Buffer.from('abc'));
      assert.deepEqual(f, Buffer.from('0000000003616263', 'hex'));
      assert.deepEqual(unframe(f), Buffer.from('abc'));
      assert.deepEqual(unframe(Buffer.from('0000000000', 'hex')), Buffer.alloc(0));
      const err = (data: Buffer, code: number, msg: RegExp) =>
        assert.throws(
          () => unframe(data),
          (e: RpcError) => e.code === code && msg.test(e.message),
        );
      err(Buffer.from('00000000', 'hex'), Status.INTERNAL, /^gRPC message is truncated$/);
      err(Buffer.from('0100000000', 'hex'), Status.UNIMPLEMENTED, /^compressed gRPC messages are not supported$/);
      err(Buffer.from('000000000261', 'hex'), Status.INTERNAL, /^gRPC frame length 2 does not match 1 bytes received$/);
      err(
        Buffer.from('00000000016162', 'hex'),
        Status.INTERNAL,
        /^gRPC frame length 1 does not match 2 bytes received$/,
      );
    });

    it('names status codes, and unknown ones by number', () => {
      assert.equal(statusName(Status.PERMISSION_DENIED), 'PERMISSION_DENIED');
      assert.equal(statusName(0), 'OK');
      assert.equal(statusName(11), 'code 11');
      const e = new RpcError(Status.UNAVAILABLE, 'x');
      assert.equal(e.codeName, 'UNAVAILABLE');
      assert.equal(e.name, 'RpcError');
      const r = new RequestError(Status.RESOURCE_EXHAUSTED, 'y', 'budget');
      assert.ok(r instanceof RpcError);
      assert.equal(r.name, 'RequestError');
      assert.equal(r.reason, 'budget');
    });

    it('formats sizes in bytes, with KiB or MiB when they are whole', () => {
      assert.equal(formatBytes(1000), '1000 bytes');
      assert.equal(formatBytes(1023), '1023 bytes');
      assert.equal(formatBytes(1024), '1024 bytes (1 KiB)');
      assert.equal(formatBytes(1536), '1536 bytes');
      assert.equal(formatBytes(3 * 1024 * 1024), '3145728 bytes (3 MiB)');
      assert.equal(formatBytes(1024 * 1024 + 1024), '1049600 bytes (1025 KiB)');
      assert.equal(formatBytes(1024 * 1024 - 1024), '1047552 bytes (1023 KiB)');
      assert.equal(MAX_RESPONSE_MESSAGE, 1024 * 1024 * 1024);
    });
  });

  describe('the body budget', () => {
    it('grants what fits, refuses more than its capacity at once, and counts releases once', async () => {
      const b = new ByteBudget(100);
      await assert.rejects(
        b.acquire(101, 1000),
        (e: RequestError) =>
          e.code === Status.RESOURCE_EXHAUSTED &&
          e.reason === 'budget' &&
          e.message === "a request of 101 bytes exceeds the Coordinator's body budget of 100 bytes",
      );
      const r1 = await b.acquire(100, 0);
      assert.equal(b.inUse, 100);
      r1();
      r1();
      assert.equal(b.inUse, 0, 'a release counts once');
      const forced = b.force(150);
      assert.equal(b.inUse, 150, 'memory that exists is counted beyond the capacity');
      forced();
      assert.equal(b.inUse, 0);
    });

    it('a request that does not fit waits, and gets RESOURCE_EXHAUSTED naming what is in use after the wait', async () => {
      const b = new ByteBudget(100);
      const held = await b.acquire(60, 0);
      const started = Date.now();
      await assert.rejects(
        b.acquire(41, 50),
        (e: RequestError) =>
          e.code === Status.RESOURCE_EXHAUSTED &&
          e.reason === 'budget' &&
          e.message ===
            'the Coordinator is busy with other large requests (60 bytes of its 100 bytes body budget in use); retry later',
      );
      assert.ok(Date.now() - started >= 40, 'it waited');
      // The timed-out waiter is gone: a release grants the next one, not it.
      const next = b.acquire(40, 1000);
      const late = b.acquire(41, 1000);
      assert.equal(b.inUse, 100);
      (await next)();
      held();
      (await late)();
      assert.equal(b.inUse, 0);
    });

    it('a release grants waiters oldest first, and a large waiter does not hold back smaller ones', async () => {
      const b = new ByteBudget(100);
      const order: string[] = [];
      const wait = (name: string, n: number) =>
        b.acquire(n, 5000).then((r) => {
          order.push(name);
          return r;
        });
      const held1 = await b.acquire(50, 0);
      const held2 = await b.acquire(40, 0);
      const big = wait('big', 80);
      const small1 = wait('small1', 20);
      const small2 = wait('small2', 20);
      await delay(10);
      assert.deepEqual(order, []);
      held2();
      const [r1, r2] = await Promise.all([small1, small2]);
      assert.deepEqual(order, ['small1', 'small2'], 'the small ones pass the large one, oldest first');
      assert.equal(b.inUse, 90);
      held1();
      await delay(10);
      assert.deepEqual(order, ['small1', 'small2'], '40 + 80 does not fit');
      r1();
      (await big)();
      r2();
      assert.deepEqual(order, ['small1', 'small2', 'big']);
      assert.equal(b.inUse, 0);
    });
  });

  describe('requests the server refuses', () => {
    let s: Served;
    before(async () => {
      s = await serve(
        {
          Echo: echo(),
          Defaults: echo({ maxBytes: 64 }),
          Slow: echo({ maxBytes: 64, bodyTimeoutMs: 150 }),
          NoRead: { limits: LIMITS, handle: async () => Buffer.alloc(0) },
          ReadTwice: {
            limits: LIMITS,
            handle: async (c) => {
              await c.read();
              await c.read();
              return Buffer.alloc(0);
            },
          },
          Proto: {
            limits: LIMITS,
            handle: async (c) => {
              await c.read();
              throw new ProtoError(`bad ${'x'.repeat(300)}`);
            },
          },
          Invalid: {
            limits: LIMITS,
            handle: async (c) => {
              await c.read();
              throw new RpcError(Status.INVALID_ARGUMENT, 'bad manifest');
            },
          },
          Denied: {
            limits: LIMITS,
            handle: async () => {
              throw new RpcError(Status.PERMISSION_DENIED, 'naïve 100% «no»\r\n' + 'y'.repeat(2000));
            },
          },
          Crash: {
            limits: LIMITS,
            handle: async () => {
              throw new TypeError('secret library detail');
            },
          },
          Parts: {
            limits: LIMITS,
            handle: async (c) => {
              await c.read();
              return [Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cd')];
            },
          },
        },
        { bodyTimeoutMs: 5000 },
      );
    });
    after(async () => s.close());

    it('control: listed fields arrive as views of their content, in order, however the body is chunked', async () => {
      const msg = Buffer.concat([
        ld(1, Buffer.from('aaaa')),
        ld(2, Buffer.from('b1')),
        ld(3, Buffer.from('other')),
        ld(2, Buffer.from('b2b2')),
        Buffer.from([0x20, 0x96, 0x01]),
      ]);
      for (const chunk of [1, 3, 7, 1024]) {
        const { r, o } = await call(s, msg, { chunk });
        assert.equal(r.code, Status.OK, r.message);
        assert.deepEqual(
          unframe(r.response).toString(),
          JSON.stringify({
            n: msg.length,
            a: [hex(Buffer.from('aaaa'))],
            b: [hex(Buffer.from('b1')), hex(Buffer.from('b2b2'))],
            c: [],
          }),
        );
        assert.deepEqual(o, { method: 'Echo', code: Status.OK, message: '' });
      }
      // An empty message is a message.
      const { r } = await call(s, Buffer.alloc(0));
      assert.equal(unframe(r.response).toString(), JSON.stringify({ n: 0, a: [], b: [], c: [] }));
      assert.equal(s.budget.inUse, 0, 'every reservation came back');
    });

    it('a response in parts goes out as one message', async () => {
      const { r, o } = await call(s, Buffer.alloc(0), { path: '/t.T/Parts' });
      assert.deepEqual(unframe(r.response), Buffer.from('abcd'));
      assert.equal(o.code, Status.OK);
    });

    it('field headers: number 0, unsupported wire types, fields past the end, listed fields of another wire type', async () => {
      refused(
        await call(s, Buffer.from([0x02, 0x00])),
        Status.INVALID_ARGUMENT,
        /^malformed request: protobuf field number 0$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.from([0x0b])),
        Status.INVALID_ARGUMENT,
        /^malformed request: unsupported protobuf wire type 3 \(field 1\)$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.from([0x2c])),
        Status.INVALID_ARGUMENT,
        /^malformed request: unsupported protobuf wire type 4 \(field 5\)$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.from([0x0e])),
        Status.INVALID_ARGUMENT,
        /^malformed request: unsupported protobuf wire type 6 \(field 1\)$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.from([0x1a, 0x05, 0x61])),
        Status.INVALID_ARGUMENT,
        /^malformed request: field 3 runs past the end of the message$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.from([0x19, 1, 2, 3])),
        Status.INVALID_ARGUMENT,
        /^malformed request: field 3 runs past the end of the message$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.from([0x1d, 1, 2, 3])),
        Status.INVALID_ARGUMENT,
        /^malformed request: field 3 runs past the end of the message$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.from([0x08, 0x01])),
        Status.INVALID_ARGUMENT,
        /^malformed request: field A has wire type 0, expected 2$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.from([0x11, 0, 0, 0, 0, 0, 0, 0, 0])),
        Status.INVALID_ARGUMENT,
        /^malformed request: field B has wire type 1, expected 2$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.from([0x0d, 0, 0, 0, 0])),
        Status.INVALID_ARGUMENT,
        /^malformed request: field A has wire type 5, expected 2$/,
        'protobuf',
      );
      // Controls: fixed64, fixed32 and varint fields that fit are skipped (two others allowed).
      const ok = await call(s, Buffer.from([0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x1d, 1, 2, 3, 4]));
      assert.equal(ok.r.code, Status.OK, ok.r.message);
      const exact = await call(s, Buffer.from([0x1a, 0x01, 0x61]));
      assert.equal(exact.r.code, Status.OK, exact.r.message);
    });

    it('varints: too long (more than 10 bytes) and too large (above 2^53), in a tag and in a length', async () => {
      const long = Buffer.from([...Array(10).fill(0xff), 0x01]);
      refused(
        await call(s, long),
        Status.INVALID_ARGUMENT,
        /^malformed request: protobuf varint too long$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.concat([Buffer.from([0x1a]), long])),
        Status.INVALID_ARGUMENT,
        /^malformed request: protobuf varint too long$/,
        'protobuf',
      );
      const large = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]); // 2^59
      refused(
        await call(s, large),
        Status.INVALID_ARGUMENT,
        /^malformed request: protobuf varint too large$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.concat([Buffer.from([0x18]), large])),
        Status.INVALID_ARGUMENT,
        /^malformed request: protobuf varint too large$/,
        'protobuf',
      );
      // Control: a 9-byte varint of 2^53 - 1 (the largest exact one) is read (and runs past the end).
      const max = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
      refused(
        await call(s, Buffer.concat([Buffer.from([0x1a]), max])),
        Status.INVALID_ARGUMENT,
        /^malformed request: field 3 runs past the end/,
        'protobuf',
      );
      // A multi-byte tag: field 16 (varint), an "other" field.
      const tag16 = await call(s, Buffer.from([0x80, 0x01, 0x05]));
      assert.equal(tag16.r.code, Status.OK, tag16.r.message);
    });

    it('the message must end after a field', async () => {
      refused(
        await call(s, Buffer.from([0x1a])),
        Status.INVALID_ARGUMENT,
        /^malformed request: the message ends inside a field$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.from([0x18])),
        Status.INVALID_ARGUMENT,
        /^malformed request: the message ends inside a field$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.from([0x18, 0x80])),
        Status.INVALID_ARGUMENT,
        /^malformed request: the message ends inside a field$/,
        'protobuf',
      );
      refused(
        await call(s, Buffer.from([0x80])),
        Status.INVALID_ARGUMENT,
        /^malformed request: the message ends inside a field$/,
        'protobuf',
      );
    });

    it('field limits: occurrences and sizes of listed fields, and the count of other fields', async () => {
      refused(
        await call(s, Buffer.concat([ld(1, Buffer.from('a')), ld(1, Buffer.from('b'))])),
        Status.RESOURCE_EXHAUSTED,
        /^the request has more than 1 A field$/,
        'field_count',
      );
      const b = ld(2, Buffer.from('b'));
      refused(
        await call(s, Buffer.concat([b, b, b, b])),
        Status.RESOURCE_EXHAUSTED,
        /^the request has more than 3 B fields$/,
        'field_count',
      );
      refused(
        await call(s, ld(1, Buffer.alloc(9))),
        Status.RESOURCE_EXHAUSTED,
        /^A field of 9 bytes exceeds the limit of 8 bytes$/,
        'field_size',
      );
      refused(
        await call(s, ld(2, Buffer.alloc(5))),
        Status.RESOURCE_EXHAUSTED,
        /^B field of 5 bytes exceeds the limit of 4 bytes$/,
        'field_size',
      );
      const other = Buffer.from([0x20, 0x01]);
      refused(
        await call(s, Buffer.concat([other, ld(3, Buffer.alloc(0)), other])),
        Status.RESOURCE_EXHAUSTED,
        /^the request has more than 2 fields that this method does not use$/,
        'field_count',
      );
      // Controls: at the limits.
      for (const msg of [
        Buffer.concat([ld(1, Buffer.alloc(8)), b, b, ld(2, Buffer.alloc(4)), other, ld(3, Buffer.alloc(0))]),
      ]) {
        const ok = await call(s, msg);
        assert.equal(ok.r.code, Status.OK, ok.r.message);
      }
      // Unset: 16 other fields, and no field is listed.
      const sixteen = Buffer.concat(Array(16).fill(other));
      assert.equal((await call(s, sixteen, { path: '/t.T/Defaults' })).r.code, Status.OK);
      refused(
        await call(s, Buffer.concat([sixteen, other]), { path: '/t.T/Defaults' }),
        Status.RESOURCE_EXHAUSTED,
        /^the request has more than 16 fields that this method does not use$/,
        'field_count',
      );
      assert.equal(
        (await call(s, Buffer.concat([ld(1, Buffer.alloc(20)), ld(1, Buffer.alloc(20))]), { path: '/t.T/Defaults' })).r
          .code,
        Status.OK,
      );
    });

    it('the gRPC frame: compression, size by the prefix, a second message, a short or missing body', async () => {
      refused(
        await call(s, undefined, { body: Buffer.concat([prefix(1, 1), Buffer.from('a')]) }),
        Status.UNIMPLEMENTED,
        /^compressed gRPC messages are not supported$/,
        'frame',
      );
      refused(
        await call(s, undefined, { body: prefix(65) }),
        Status.RESOURCE_EXHAUSTED,
        /^the request message of 65 bytes exceeds the limit of 64 bytes for this method$/,
        'message_size',
      );
      refused(
        await call(s, undefined, { body: Buffer.concat([framed(Buffer.alloc(0)), framed(Buffer.alloc(0))]) }),
        Status.INVALID_ARGUMENT,
        /^the request has data after its message \(a unary call carries exactly one\)$/,
        'frame',
      );
      refused(
        await call(s, undefined, {
          body: Buffer.concat([framed(ld(3, Buffer.from('x'))), Buffer.from([0])]),
          chunk: 4,
        }),
        Status.INVALID_ARGUMENT,
        /^the request has data after its message/,
        'frame',
      );
      refused(
        await call(s, undefined, { body: Buffer.alloc(0) }),
        Status.INVALID_ARGUMENT,
        /^the request carries no message$/,
        'frame',
      );
      refused(
        await call(s, undefined, { body: Buffer.from([0, 0, 0]) }),
        Status.INVALID_ARGUMENT,
        /^the request ends inside the gRPC message prefix$/,
        'frame',
      );
      refused(
        await call(s, undefined, { body: Buffer.concat([prefix(4), Buffer.from([0x20, 0x01])]) }),
        Status.INVALID_ARGUMENT,
        /^the request ended after 2 of the 4 bytes its prefix announced$/,
        'frame',
      );
      refused(
        await call(s, undefined, { body: prefix(4) }),
        Status.INVALID_ARGUMENT,
        /^the request ended after 0 of the 4 bytes its prefix announced$/,
        'frame',
      );
      // Control: the largest message the method takes, its prefix in pieces.
      const full = Buffer.concat([ld(3, Buffer.alloc(62))]);
      const ok = await call(s, full, { chunk: 2 });
      assert.equal(ok.r.code, Status.OK, ok.r.message);
      assert.equal(s.budget.inUse, 0);
    });

    it("the body deadline of a method, and the server's", async () => {
      const sent = upload(s.session, '/t.T/Slow', { body: prefix(4), keepOpen: true });
      const [r, o] = await Promise.all([sent, s.outcome()]);
      assert.equal(r.code, Status.DEADLINE_EXCEEDED);
      assert.equal(r.message, 'the request body did not arrive within 0.15 s');
      assert.equal(o.refusal, 'body_deadline');
      const t = await serve({ Echo: echo() }, { bodyTimeoutMs: 120 });
      try {
        const [r2] = await Promise.all([
          upload(t.session, '/t.T/Echo', { body: prefix(4), keepOpen: true }),
          t.outcome(),
        ]);
        assert.equal(r2.message, 'the request body did not arrive within 0.12 s');
      } finally {
        await t.close();
      }
    });

    it('requests that are no gRPC calls: not POST, not a gRPC content type, an unknown method', async () => {
      const raw = (headers: Record<string, string>) =>
        new Promise<{ status: number; grpc?: string; message?: string }>((resolve) => {
          const req = s.session.request(headers);
          let res: { status: number; grpc?: string; message?: string } = { status: 0 };
          req.on('response', (h) => {
            res = {
              status: Number(h[':status']),
              ...(h['grpc-status'] !== undefined
                ? { grpc: String(h['grpc-status']), message: String(h['grpc-message']) }
                : {}),
            };
          });
          req.on('close', () => resolve(res));
          req.on('error', () => undefined);
          req.resume();
          req.end();
        });
      const get = await raw({ ':method': 'GET', ':path': '/t.T/Echo', 'content-type': 'application/grpc' });
      assert.deepEqual(get, { status: 200, grpc: String(Status.UNIMPLEMENTED), message: 'gRPC needs POST' });
      assert.deepEqual(await s.outcome(), { method: 'Echo', code: Status.UNIMPLEMENTED, message: 'gRPC needs POST' });
      const json = await raw({ ':method': 'POST', ':path': '/t.T/Echo', 'content-type': 'application/json' });
      assert.deepEqual(json, { status: 415 });
      assert.deepEqual(await s.outcome(), {
        method: 'Echo',
        code: Status.INVALID_ARGUMENT,
        message: 'not a gRPC content type',
        refusal: 'frame',
      });
      const none = await raw({ ':method': 'POST', ':path': '/t.T/Echo' });
      assert.deepEqual(none, { status: 415 });
      await s.outcome();
      const path = `/t.T/${'x'.repeat(300)}`;
      const unknown = await raw({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc+proto' });
      assert.equal(unknown.grpc, String(Status.UNIMPLEMENTED));
      assert.equal(unknown.message, `unknown method ${path.slice(0, 199)}%E2%80%A6`);
      const o = await s.outcome();
      assert.equal(o.method, 'unknown');
      assert.equal(o.message, `unknown method ${path.slice(0, 199)}…`);
      // A known method's name is its last path segment.
      const known = await raw({ ':method': 'POST', ':path': '/t.T/Denied', 'content-type': 'application/grpc' });
      assert.equal(known.grpc, String(Status.PERMISSION_DENIED));
      assert.equal((await s.outcome()).method, 'Denied');
    });

    it('handler errors: status and message as thrown (encoded, clipped), protobuf errors, internal errors without details', async () => {
      const session = s.session;
      const err = (path: string) =>
        callUnary(session, `/t.T/${path}`, Buffer.alloc(0)).then(
          () => assert.fail('no error'),
          (e: RpcError) => e,
        );
      const denied = await err('Denied');
      assert.equal(denied.code, Status.PERMISSION_DENIED);
      assert.equal(denied.message, `naïve 100% «no»\r\n${'y'.repeat(1024 - 17 - 1)}…`);
      const od = await s.outcome();
      assert.equal(od.message.length, 17 + 2000);
      assert.equal(od.invalid, undefined);

      const proto = await err('Proto');
      assert.equal(proto.code, Status.INVALID_ARGUMENT);
      assert.equal(proto.message, `malformed request: bad ${'x'.repeat(200 - 24)}…`);
      assert.deepEqual(await s.outcome(), {
        method: 'Proto',
        code: Status.INVALID_ARGUMENT,
        message: proto.message,
        refusal: 'protobuf',
      });

      const invalid = await err('Invalid');
      assert.equal(invalid.message, 'bad manifest');
      assert.deepEqual(await s.outcome(), {
        method: 'Invalid',
        code: Status.INVALID_ARGUMENT,
        message: 'bad manifest',
        invalid: true,
      });

      for (const [path, detail] of [
        ['Crash', /TypeError: secret library detail/],
        ['NoRead', /the NoRead handler answered without reading its request/],
        ['ReadTwice', /the request body was read twice/],
      ] as const) {
        const e = await err(path);
        assert.equal(e.code, Status.INTERNAL);
        assert.equal(e.message, 'internal error');
        const o = await s.outcome();
        assert.equal(o.message, 'internal error');
        assert.match(o.internal ?? '', detail);
      }
    });
  });

  describe('the budget, reservations and the response deadline on the server', () => {
    it('a body waits for room in the budget, then is refused with RESOURCE_EXHAUSTED', async () => {
      const s = await serve({ Echo: echo({ maxBytes: 100 }) }, { capacity: 100, budgetWaitMs: 50 });
      try {
        const held = await s.budget.acquire(60, 0);
        refused(
          await call(s, ld(3, Buffer.alloc(48))),
          Status.RESOURCE_EXHAUSTED,
          /^the Coordinator is busy with other large requests \(60 bytes of its 100 bytes body budget in use\); retry later$/,
          'budget',
        );
        // Control: one that fits.
        assert.equal((await call(s, ld(3, Buffer.alloc(38)))).r.code, Status.OK);
        held();
        assert.equal(s.budget.inUse, 0);
      } finally {
        await s.close();
      }
    });

    it('a whole body that waits for the budget is served once room is free (Node ends a paused stream)', async () => {
      const s = await serve({ Echo: echo({ maxBytes: 100 }) }, { capacity: 100, budgetWaitMs: 5000 });
      try {
        const held = await s.budget.acquire(60, 0);
        const msg = ld(3, Buffer.alloc(48));
        const pending = call(s, msg);
        await delay(100);
        held();
        const { r, o } = await pending;
        assert.equal(r.code, Status.OK, r.message);
        assert.equal(JSON.parse(unframe(r.response).toString()).n, 50);
        assert.equal(o.code, Status.OK);
        // The same with a body that ends early: its truncation is reported once the budget is granted.
        const held2 = await s.budget.acquire(60, 0);
        const short = call(s, undefined, { body: Buffer.concat([prefix(50), Buffer.from([0x20, 0x01])]) });
        await delay(100);
        held2();
        refused(
          await short,
          Status.INVALID_ARGUMENT,
          /^the request ended after 2 of the 50 bytes its prefix announced$/,
          'frame',
        );
        assert.equal(s.budget.inUse, 0);
      } finally {
        await s.close();
      }
    });

    it('reserve() holds room until the response replaces it, clamped to the whole budget', async () => {
      const seen: number[] = [];
      const box: { s?: Served } = {};
      const method: UnaryMethod = {
        limits: { maxBytes: 64 },
        handle: async (c) => {
          await c.read();
          await c.reserve(Infinity);
          seen.push(box.s!.budget.inUse);
          return Buffer.alloc(10);
        },
      };
      const s = (box.s = await serve({ Big: method }, { capacity: 1000 }));
      try {
        const res = await callUnary(s.session, '/t.T/Big', Buffer.alloc(0));
        assert.equal(res.length, 10);
        await s.outcome();
        assert.deepEqual(seen, [1000], 'the reservation is the whole budget');
        await delay(20);
        assert.equal(s.budget.inUse, 0, 'released with the stream');
      } finally {
        await s.close();
      }
    });

    it('a reservation made after the client went away is released at once', async () => {
      let gone!: () => void;
      const wentAway = new Promise<void>((r) => {
        gone = r;
      });
      const method: UnaryMethod = {
        limits: { maxBytes: 64 },
        handle: async (c) => {
          await c.read();
          c.stream.close();
          await new Promise((r) => c.stream.once('close', r));
          await c.reserve(500);
          gone();
          return Buffer.alloc(0);
        },
      };
      const s = await serve({ Gone: method }, { capacity: 1000 });
      try {
        void upload(s.session, '/t.T/Gone', { body: framed(Buffer.alloc(0)) });
        await wentAway;
        assert.equal(s.budget.inUse, 0);
        assert.deepEqual(await s.outcome(), {
          method: 'Gone',
          code: Status.CANCELLED,
          message: 'the client went away',
        });
      } finally {
        await s.close();
      }
    });

    it('a client that resets its call while the body waits for the budget is CANCELLED', async () => {
      const s = await serve({ Echo: echo() }, { capacity: 100, budgetWaitMs: 5000 });
      try {
        const held = await s.budget.acquire(95, 0);
        const req = s.session.request({ ':method': 'POST', ':path': '/t.T/Echo', 'content-type': 'application/grpc' });
        req.on('error', () => undefined);
        req.write(prefix(10));
        await delay(50);
        req.close(8);
        const o = await s.outcome();
        assert.equal(o.code, Status.CANCELLED);
        assert.equal(o.message, 'the client cancelled the call');
        held();
        await delay(20);
        assert.equal(s.budget.inUse, 0, 'the grant that came after the reset was given back');
      } finally {
        await s.close();
      }
    });

    it('a client that does not take the response in time has its stream reset', async () => {
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
        { responseTimeoutMs: 200 },
      );
      try {
        const req = s.session.request({ ':method': 'POST', ':path': '/t.T/Big', 'content-type': 'application/grpc' });
        req.on('error', () => undefined);
        req.end(framed(Buffer.alloc(0)));
        req.pause();
        const closed = new Promise<number>((r) => req.once('close', () => r(req.rstCode ?? -1)));
        assert.equal(await closed, 8, 'RST_STREAM(CANCEL)');
        assert.deepEqual(s.timeouts, ['Big']);
        await delay(20);
        assert.equal(s.budget.inUse, 0, "the response's bytes are released with the stream");
      } finally {
        await s.close();
      }
    });
  });

  describe('the client', () => {
    /** A server that answers every stream with `answer`. */
    async function fake(
      answer: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void,
    ): Promise<{ session: ClientHttp2Session; close(): Promise<void> }> {
      const server = createServer();
      server.on('stream', (stream, headers) => {
        stream.on('error', () => undefined);
        answer(stream, headers);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const session = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      session.on('error', () => undefined);
      return {
        session,
        close: async () => {
          session.destroy();
          await new Promise<void>((r) => server.close(() => r()));
        },
      };
    }
    const failure = (p: Promise<unknown>) =>
      p.then(
        () => assert.fail('no error'),
        (e: RpcError) => e,
      );

    it('reads status and message from trailers or a trailers-only answer; a message that is not percent-encoding stays as sent', async () => {
      const f = await fake((st) => {
        st.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '9', 'grpc-message': '100%zz' },
          { endStream: true },
        );
      });
      try {
        const e = await failure(callUnary(f.session, '/x', Buffer.alloc(0)));
        assert.equal(e.code, Status.FAILED_PRECONDITION);
        assert.equal(e.message, '100%zz');
      } finally {
        await f.close();
      }
      const g = await fake((st) => {
        st.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        st.once('wantTrailers', () => st.sendTrailers({ 'grpc-status': '7', 'grpc-message': 'no%20way' }));
        st.end(frame(Buffer.from('ignored')));
      });
      try {
        const e = await failure(callUnary(g.session, '/x', Buffer.alloc(0)));
        assert.equal(e.code, Status.PERMISSION_DENIED);
        assert.equal(e.message, 'no way');
      } finally {
        await g.close();
      }
      // Trailers-only without a message; and OK in the headers with the body after it.
      const h = await fake((st) => st.respond({ ':status': 200, 'grpc-status': '5' }, { endStream: true }));
      try {
        const e = await failure(callUnary(h.session, '/x', Buffer.alloc(0)));
        assert.equal(e.code, Status.NOT_FOUND);
        assert.equal(e.message, '');
      } finally {
        await h.close();
      }
      const k = await fake((st) => {
        st.respond({ ':status': 200, 'grpc-status': '0' });
        st.end(frame(Buffer.from('ok')));
      });
      try {
        assert.deepEqual(await callUnary(k.session, '/x', Buffer.alloc(0)), Buffer.from('ok'));
      } finally {
        await k.close();
      }
    });

    it('an answer without a gRPC status is UNAVAILABLE, naming the HTTP status or the closed connection', async () => {
      const f = await fake((st) => st.respond({ ':status': 503 }, { endStream: true }));
      try {
        const e = await failure(callUnary(f.session, '/t.T/X', Buffer.alloc(0)));
        assert.equal(e.code, Status.UNAVAILABLE);
        assert.equal(e.message, '/t.T/X: HTTP status 503 without a gRPC status');
      } finally {
        await f.close();
      }
      const g = await fake((st) => st.close(0));
      try {
        const e = await failure(callUnary(g.session, '/t.T/X', Buffer.alloc(0)));
        assert.equal(e.code, Status.UNAVAILABLE);
        assert.equal(e.message, '/t.T/X: the connection closed before an answer');
      } finally {
        await g.close();
      }
    });

    it('a malformed OK response is refused; a silent server hits the deadline', async () => {
      const f = await fake((st) => {
        st.respond({ ':status': 200 }, { waitForTrailers: true });
        st.once('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0' }));
        st.end(Buffer.from('0000000005ab', 'hex'));
      });
      try {
        const e = await failure(callUnary(f.session, '/x', Buffer.alloc(0)));
        assert.equal(e.code, Status.INTERNAL);
        assert.match(e.message, /frame length 5 does not match 1/);
      } finally {
        await f.close();
      }
      const g = await fake(() => undefined);
      try {
        const e = await failure(callUnary(g.session, '/t.T/X', Buffer.alloc(0), {}, 100));
        assert.equal(e.code, Status.DEADLINE_EXCEEDED);
        assert.equal(e.message, 'no answer to /t.T/X within 0.1 s');
      } finally {
        await g.close();
      }
    });

    it('sends metadata and a body larger than the flow-control window in pieces', async () => {
      const f = await fake((st, headers) => {
        const chunks: Buffer[] = [];
        st.on('data', (c: Buffer) => chunks.push(c));
        st.on('end', () => {
          st.respond({ ':status': 200 }, { waitForTrailers: true });
          st.once('wantTrailers', () => st.sendTrailers({ 'grpc-status': '0' }));
          st.end(
            frame(
              Buffer.from(
                `${String(headers['x-test'])} ${headers['content-type']} ${headers.te} ${Buffer.concat(chunks).length}`,
              ),
            ),
          );
        });
      });
      try {
        const big = Buffer.alloc(300 * 1024, 7);
        const res = await callUnary(f.session, '/x', big, { 'x-test': 'v' });
        assert.equal(res.toString(), `v application/grpc+proto trailers ${big.length + 5}`);
      } finally {
        await f.close();
      }
    });

    it('a broken session is UNAVAILABLE naming the path', async () => {
      const f = await fake(() => undefined);
      try {
        const p = failure(callUnary(f.session, '/t.T/X', Buffer.alloc(0)));
        await delay(20);
        f.session.destroy(new Error('boom'));
        const e = await p;
        assert.equal(e.code, Status.UNAVAILABLE);
        assert.match(e.message, /^\/t\.T\/X: /);
      } finally {
        await f.close();
      }
    });
  });
});

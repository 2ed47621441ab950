/**
 * gRPC unary calls over HTTP/2 (node:http2), just enough of the wire protocol for the
 * Coordinator: length-prefixed messages (1-byte compression flag, 4-byte big-endian length),
 * `application/grpc` content type, status and message in trailers (or trailers-only responses).
 *
 * The server side reads nothing a method has not asked for: a handler runs when the HEADERS
 * arrive and calls `read()` once its checks passed (owner key, attestation). The body then goes
 * into one buffer sized by the gRPC length prefix, after that size was checked against the
 * method's limit and reserved in a process-wide budget; top-level protobuf fields are checked
 * against per-field limits as their headers arrive. Until `read()`, HTTP/2 flow control keeps
 * all but one window (64 KiB) of the body on the client.
 */
import { constants as h2, type ClientHttp2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { ProtoError } from '../../util/protobuf.js';

export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

const STATUS_NAMES = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k])) as Record<number, string>;

export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `code ${code}`;
}

export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }

  get codeName(): string {
    return statusName(this.code);
  }
}

/** Why a request was refused before a handler judged it; bounded set, used as a metric label. */
export type Refusal = 'frame' | 'protobuf' | 'message_size' | 'field_size' | 'field_count' | 'budget' | 'body_deadline';

/** An RpcError raised by the transport's own checks (framing, limits, deadlines). */
export class RequestError extends RpcError {
  constructor(
    code: number,
    message: string,
    readonly reason: Refusal,
  ) {
    super(code, message);
    this.name = 'RequestError';
  }
}

/**
 * Largest response a client accepts. GetManifests carries the whole history (every policy of
 * every manifest), so this is far above any request limit; it only stops unbounded growth.
 */
export const MAX_RESPONSE_MESSAGE = 1024 * 1024 * 1024;

export function frame(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Exactly one uncompressed message, as unary calls carry (client side: a whole response). */
export function unframe(data: Buffer): Buffer {
  if (data.length < 5) throw new RpcError(Status.INTERNAL, 'gRPC message is truncated');
  if (data[0] !== 0) throw new RpcError(Status.UNIMPLEMENTED, 'compressed gRPC messages are not supported');
  const len = data.readUInt32BE(1);
  if (data.length !== 5 + len)
    throw new RpcError(Status.INTERNAL, `gRPC frame length ${len} does not match ${data.length - 5} bytes received`);
  return data.subarray(5);
}

function encodeMessage(msg: string): string {
  return msg.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}

function decodeMessage(msg: string): string {
  try {
    return decodeURIComponent(msg);
  } catch {
    return msg;
  }
}

/** Error messages travel in one header: keep them readable and well under any header limit. */
const MAX_STATUS_MESSAGE = 1024;

function clip(msg: string, max = MAX_STATUS_MESSAGE): string {
  return msg.length <= max ? msg : `${msg.slice(0, max - 1)}…`;
}

const MiB = 1024 * 1024;

export function formatBytes(n: number): string {
  return n >= MiB && n % MiB === 0
    ? `${n} bytes (${n / MiB} MiB)`
    : n >= 1024 && n % 1024 === 0
      ? `${n} bytes (${n / 1024} KiB)`
      : `${n} bytes`;
}

// --- limits and the body budget ----------------------------------------------------------

export interface FieldLimit {
  /** Field name for messages. */
  name: string;
  maxBytes: number;
  /** Occurrences in one message (a singular field should occur once). */
  maxCount: number;
}

export interface RequestLimits {
  /** Largest request message (without the 5-byte prefix). */
  maxBytes: number;
  /** Top-level length-delimited fields by number. */
  fields?: Readonly<Record<number, FieldLimit>>;
  /** Occurrences of all other fields (unknown ones, varints); each costs decoding time. */
  maxOtherFields?: number;
  /** Time to receive the body once the handler asked for it (default: the server's). */
  bodyTimeoutMs?: number;
}

/**
 * Bytes of request bodies (and responses being sent) held at once, across all streams of all
 * servers of the process. A reservation that does not fit waits up to a deadline, then fails.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiting: { n: number; grant: () => void }[] = [];

  constructor(readonly capacity: number) {}

  get inUse(): number {
    return this.used;
  }

  acquire(n: number, waitMs: number): Promise<() => void> {
    if (n > this.capacity) {
      return Promise.reject(
        new RequestError(
          Status.RESOURCE_EXHAUSTED,
          `a request of ${formatBytes(n)} exceeds the Coordinator's body budget of ${formatBytes(this.capacity)}`,
          'budget',
        ),
      );
    }
    if (this.used + n <= this.capacity) return Promise.resolve(this.take(n));
    return new Promise((resolve, reject) => {
      const entry = {
        n,
        grant: () => {
          clearTimeout(timer);
          resolve(this.take(n));
        },
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(entry), 1);
        reject(
          new RequestError(
            Status.RESOURCE_EXHAUSTED,
            `the Coordinator is busy with other large requests (${formatBytes(this.used)} of its ${formatBytes(this.capacity)} body budget in use); retry later`,
            'budget',
          ),
        );
      }, waitMs);
      this.waiting.push(entry);
    });
  }

  /** Account for memory that exists already (a response being sent); may exceed the capacity. */
  force(n: number): () => void {
    return this.take(n);
  }

  private take(n: number): () => void {
    this.used += n;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= n;
      this.pump();
    };
  }

  private pump(): void {
    // Whatever fits now, oldest first; a large waiter does not hold back small ones.
    for (let i = 0; i < this.waiting.length;) {
      const w = this.waiting[i]!;
      if (this.used + w.n <= this.capacity) {
        this.waiting.splice(i, 1);
        w.grant();
      } else {
        i++;
      }
    }
  }
}

/**
 * Checks the top-level fields of a protobuf message while its bytes arrive: a field whose
 * header announces more than its limit is refused before its content is read.
 */
class FieldScanner {
  private next = 0;
  private readonly counts = new Map<number, number>();
  private others = 0;
  /** [start, end) of the content of every occurrence of a listed field. */
  readonly spans = new Map<number, [number, number][]>();

  constructor(
    private readonly limits: RequestLimits,
    private readonly total: number,
  ) {}

  /** Check every field header within buf[0, filled). */
  advance(buf: Buffer, filled: number): void {
    while (this.next < filled) {
      const tag = varintAt(buf, this.next, filled);
      if (!tag) return;
      const [key, afterTag] = tag;
      const no = Math.floor(key / 8);
      const wire = key % 8;
      if (no === 0)
        throw new RequestError(Status.INVALID_ARGUMENT, 'malformed request: protobuf field number 0', 'protobuf');
      let end: number;
      let length: number | undefined;
      if (wire === 2) {
        const len = varintAt(buf, afterTag, filled);
        if (!len) return;
        length = len[0];
        end = len[1] + len[0];
      } else if (wire === 0) {
        const v = varintAt(buf, afterTag, filled);
        if (!v) return;
        end = v[1];
      } else if (wire === 1 || wire === 5) {
        end = afterTag + (wire === 1 ? 8 : 4);
      } else {
        throw new RequestError(
          Status.INVALID_ARGUMENT,
          `malformed request: unsupported protobuf wire type ${wire} (field ${no})`,
          'protobuf',
        );
      }
      // A field that cannot fit is malformed, whatever its limit.
      if (end > this.total)
        throw new RequestError(
          Status.INVALID_ARGUMENT,
          `malformed request: field ${no} runs past the end of the message`,
          'protobuf',
        );
      const listed = this.limits.fields?.[no];
      if (listed && length === undefined)
        throw new RequestError(
          Status.INVALID_ARGUMENT,
          `malformed request: field ${listed.name} has wire type ${wire}, expected 2`,
          'protobuf',
        );
      this.count(no, length);
      if (listed) {
        const list = this.spans.get(no) ?? [];
        list.push([end - length!, end]);
        this.spans.set(no, list);
      }
      this.next = end;
    }
  }

  /** The whole message is in: it must end exactly after a field. */
  finish(): void {
    if (this.next !== this.total)
      throw new RequestError(Status.INVALID_ARGUMENT, 'malformed request: the message ends inside a field', 'protobuf');
  }

  private count(no: number, length: number | undefined): void {
    const limit = length === undefined ? undefined : this.limits.fields?.[no];
    if (!limit) {
      if (++this.others > (this.limits.maxOtherFields ?? 16)) {
        throw new RequestError(
          Status.RESOURCE_EXHAUSTED,
          `the request has more than ${this.limits.maxOtherFields ?? 16} fields that this method does not use`,
          'field_count',
        );
      }
      return;
    }
    const n = (this.counts.get(no) ?? 0) + 1;
    this.counts.set(no, n);
    if (n > limit.maxCount)
      throw new RequestError(
        Status.RESOURCE_EXHAUSTED,
        `the request has more than ${limit.maxCount} ${limit.name} field${limit.maxCount === 1 ? '' : 's'}`,
        'field_count',
      );
    if (length! > limit.maxBytes)
      throw new RequestError(
        Status.RESOURCE_EXHAUSTED,
        `${limit.name} field of ${formatBytes(length!)} exceeds the limit of ${formatBytes(limit.maxBytes)}`,
        'field_size',
      );
  }
}

/** [value, next position], or undefined when the varint is not complete within buf[0, end). */
function varintAt(buf: Buffer, pos: number, end: number): [number, number] | undefined {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= end) return undefined;
    const b = buf[pos + i]!;
    result += (b & 0x7f) * mul;
    if (!(b & 0x80)) {
      if (result > Number.MAX_SAFE_INTEGER)
        throw new RequestError(Status.INVALID_ARGUMENT, 'malformed request: protobuf varint too large', 'protobuf');
      return [result, pos + i + 1];
    }
    mul *= 0x80;
  }
  throw new RequestError(Status.INVALID_ARGUMENT, 'malformed request: protobuf varint too long', 'protobuf');
}

// --- the server side ------------------------------------------------------------------------

export interface RequestBody {
  /** The whole request message: one buffer, sized by the gRPC prefix. */
  readonly bytes: Buffer;
  /**
   * Views into `bytes` (no copies) of each occurrence of a field listed in the method's limits,
   * in order. A caller that keeps one keeps the whole body alive: copy what outlives the call.
   */
  fields(no: number): Buffer[];
}

export interface UnaryCall {
  readonly path: string;
  /** The method name (last path segment). */
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly stream: ServerHttp2Stream;
  /** Read the request message, once. No DATA is consumed before this is called. */
  read(): Promise<RequestBody>;
  /**
   * Reserve room in the body budget for memory the handler is about to use (a large answer);
   * waits like a request body, then fails with RESOURCE_EXHAUSTED. More than the whole budget
   * is clamped to it (the call then runs alone). Held until the response replaces it.
   */
  reserve(bytes: number): Promise<void>;
}

/** A response message, whole or as consecutive parts (written without joining them). */
export type ResponseMessage = Uint8Array | readonly Uint8Array[];

export interface UnaryMethod {
  limits: RequestLimits;
  handle(call: UnaryCall): Promise<ResponseMessage>;
}

/** Methods by full path (`/package.Service/Method`). */
export type UnaryMethods = ReadonlyMap<string, UnaryMethod>;

export interface ServeOptions {
  budget: ByteBudget;
  /** How long a request waits for room in the budget. */
  budgetWaitMs: number;
  /** Time to receive a body once asked for, unless the method sets its own. */
  bodyTimeoutMs: number;
  /** Time for the client to take the whole response. */
  responseTimeoutMs: number;
  /** The client did not take the response in time; the stream was reset. */
  onResponseTimeout?: (method: string) => void;
}

export interface CallOutcome {
  /** A known method's name, or `unknown` (bounded: usable as a metric label). */
  method: string;
  code: number;
  message: string;
  /** Set when the transport refused the request (limits, framing, deadlines, bad protobuf). */
  refusal?: Refusal;
  /** The handler itself answered INVALID_ARGUMENT (e.g. bad manifest JSON). */
  invalid?: boolean;
  /** Details of an unexpected error, for the log only (never sent to the client). */
  internal?: string;
}

/** Reads the body of one stream under the method's limits; see the module comment. */
class BodyReader {
  private started = false;
  done = false;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly limits: RequestLimits,
    private readonly opts: ServeOptions,
  ) {}

  read(): Promise<RequestBody> {
    if (this.started) return Promise.reject(new Error('the request body was read twice'));
    this.started = true;
    const { stream, limits, opts } = this;
    const timeoutMs = limits.bodyTimeoutMs ?? opts.bodyTimeoutMs;
    return new Promise<RequestBody>((resolve, reject) => {
      let head: Buffer = Buffer.alloc(0);
      let expected = -1;
      let buf: Buffer | undefined;
      let filled = 0;
      let scanner: FieldScanner | undefined;
      let settled = false;
      // Node emits 'end' on a paused stream: a body that arrived whole while it waits for the
      // budget ends before its buffer exists, and is finished once the buffer is granted.
      let endedEarly = false;
      const cleanup = (): void => {
        settled = true;
        clearTimeout(timer);
        stream.off('data', onData);
        stream.off('end', onEnd);
        stream.off('close', onClose);
        stream.off('aborted', onClose);
      };
      const fail = (err: Error): void => {
        if (settled) return;
        cleanup();
        reject(err);
      };
      const take = (chunk: Buffer): void => {
        if (filled + chunk.length > expected) {
          throw new RequestError(
            Status.INVALID_ARGUMENT,
            'the request has data after its message (a unary call carries exactly one)',
            'frame',
          );
        }
        chunk.copy(buf!, filled);
        filled += chunk.length;
        scanner!.advance(buf!, filled);
      };
      const onData = (chunk: Buffer): void => {
        if (settled) return;
        try {
          if (expected >= 0) {
            take(chunk);
            return;
          }
          head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
          if (head.length < 5) return;
          if (head[0] !== 0)
            throw new RequestError(Status.UNIMPLEMENTED, 'compressed gRPC messages are not supported', 'frame');
          const len = head.readUInt32BE(1);
          if (len > limits.maxBytes) {
            throw new RequestError(
              Status.RESOURCE_EXHAUSTED,
              `the request message of ${formatBytes(len)} exceeds the limit of ${formatBytes(limits.maxBytes)} for this method`,
              'message_size',
            );
          }
          expected = len;
          const rest = head.subarray(5);
          head = Buffer.alloc(0);
          scanner = new FieldScanner(limits, len);
          // Nothing more is read until the bytes are reserved.
          stream.pause();
          opts.budget.acquire(len, opts.budgetWaitMs).then(
            (release) => {
              if (settled || stream.closed || stream.destroyed) {
                release();
                return;
              }
              stream.once('close', release);
              // Sized by the prefix, filled once: no chunk list, no concatenation.
              buf = Buffer.allocUnsafe(len);
              try {
                if (rest.length > 0) take(rest);
              } catch (err) {
                fail(err as Error);
                return;
              }
              if (endedEarly) onEnd();
              else stream.resume();
            },
            (err: Error) => fail(err),
          );
        } catch (err) {
          fail(err as Error);
        }
      };
      const onEnd = (): void => {
        if (settled) return;
        if (expected >= 0 && !buf) {
          endedEarly = true;
          return;
        }
        try {
          if (expected < 0) {
            throw new RequestError(
              Status.INVALID_ARGUMENT,
              head.length === 0 ? 'the request carries no message' : 'the request ends inside the gRPC message prefix',
              'frame',
            );
          }
          if (filled < expected)
            throw new RequestError(
              Status.INVALID_ARGUMENT,
              `the request ended after ${filled} of the ${expected} bytes its prefix announced`,
              'frame',
            );
          scanner!.finish();
          cleanup();
          this.done = true;
          const bytes = buf!;
          const spans = scanner!.spans;
          resolve({ bytes, fields: (no) => (spans.get(no) ?? []).map(([a, b]) => bytes.subarray(a, b)) });
        } catch (err) {
          fail(err as Error);
        }
      };
      const onClose = (): void => fail(new RpcError(Status.CANCELLED, 'the client cancelled the call'));
      const timer = setTimeout(
        () =>
          fail(
            new RequestError(
              Status.DEADLINE_EXCEEDED,
              `the request body did not arrive within ${timeoutMs / 1000} s`,
              'body_deadline',
            ),
          ),
        timeoutMs,
      );
      stream.on('data', onData);
      stream.once('end', onEnd);
      stream.once('close', onClose);
      // A reset while we wait for the budget (paused) shows as 'aborted'; 'close' comes later.
      stream.once('aborted', onClose);
      stream.resume();
    });
  }
}

/** Serve one HTTP/2 stream as a gRPC unary call. Resolves when the answer was handed to the stream. */
export async function serveUnary(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  methods: UnaryMethods,
  opts: ServeOptions,
): Promise<CallOutcome> {
  const path = String(headers[':path'] ?? '');
  const spec = methods.get(path);
  const method = spec ? path.slice(path.lastIndexOf('/') + 1) : 'unknown';
  // The peer may reset the stream at any point; that is not our error.
  stream.on('error', () => undefined);
  const answer = (code: number, message: string): void => {
    if (!stream.destroyed && !stream.closed) {
      if (!stream.headersSent) {
        // Trailers-only; then RST_STREAM(NO_ERROR) if the request is still arriving (RFC 9113
        // §8.1): the client must stop sending what we will not read.
        stream.respond(
          {
            ':status': 200,
            'content-type': 'application/grpc+proto',
            'grpc-status': String(code),
            'grpc-message': encodeMessage(clip(message)),
          },
          { endStream: true },
        );
        if (!stream.readableEnded) stream.close(h2.NGHTTP2_NO_ERROR);
      } else {
        stream.close(h2.NGHTTP2_INTERNAL_ERROR);
      }
    }
    // Discard what arrived unread: Node destroys a closed stream (and releases its buffers and
    // our reservation, on 'close') only once its readable side is drained.
    stream.resume();
  };
  try {
    if (headers[':method'] !== 'POST') throw new RpcError(Status.UNIMPLEMENTED, 'gRPC needs POST');
    const ct = String(headers['content-type'] ?? '');
    if (!ct.startsWith('application/grpc')) {
      if (!stream.destroyed && !stream.closed) stream.respond({ ':status': 415 }, { endStream: true });
      return { method, code: Status.INVALID_ARGUMENT, message: 'not a gRPC content type', refusal: 'frame' };
    }
    if (!spec) throw new RpcError(Status.UNIMPLEMENTED, `unknown method ${clip(path, 200)}`);
    const body = new BodyReader(stream, spec.limits, opts);
    const reserved: (() => void)[] = [];
    const releaseReserved = (): void => {
      for (const r of reserved.splice(0)) r();
    };
    stream.once('close', releaseReserved);
    const call: UnaryCall = {
      path,
      method,
      headers,
      stream,
      read: () => body.read(),
      reserve: async (bytes) => {
        const release = await opts.budget.acquire(Math.min(bytes, opts.budget.capacity), opts.budgetWaitMs);
        reserved.push(release);
        if (stream.destroyed || stream.closed) releaseReserved();
      },
    };
    const response = await spec.handle(call);
    if (stream.destroyed || stream.closed) return { method, code: Status.CANCELLED, message: 'the client went away' };
    if (!body.done) throw new Error(`the ${method} handler answered without reading its request`);
    const parts: readonly Uint8Array[] = response instanceof Uint8Array ? [response] : response;
    const length = parts.reduce((n, p) => n + p.length, 0);
    if (length > 0xffffffff) throw new Error(`the ${method} response of ${length} bytes does not fit a gRPC message`);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    // The response is in memory until the client took it: count it (instead of the handler's
    // estimate), and bound how long it may take.
    stream.once('close', opts.budget.force(length + 5));
    releaseReserved();
    const timer = setTimeout(() => {
      opts.onResponseTimeout?.(method);
      stream.close(h2.NGHTTP2_CANCEL);
    }, opts.responseTimeoutMs);
    stream.once('close', () => clearTimeout(timer));
    const head = Buffer.alloc(5);
    head.writeUInt32BE(length, 1);
    stream.write(head);
    for (const p of parts) stream.write(p);
    stream.end();
    return { method, code: Status.OK, message: '' };
  } catch (err) {
    if (err instanceof RequestError) {
      answer(err.code, err.message);
      return { method, code: err.code, message: err.message, refusal: err.reason };
    }
    if (err instanceof ProtoError) {
      const message = clip(`malformed request: ${err.message}`, 200);
      answer(Status.INVALID_ARGUMENT, message);
      return { method, code: Status.INVALID_ARGUMENT, message, refusal: 'protobuf' };
    }
    if (err instanceof RpcError) {
      answer(err.code, err.message);
      return {
        method,
        code: err.code,
        message: err.message,
        ...(err.code === Status.INVALID_ARGUMENT ? { invalid: true } : {}),
      };
    }
    // Details of unexpected errors (library and OpenSSL messages) stay in the log.
    answer(Status.INTERNAL, 'internal error');
    return { method, code: Status.INTERNAL, message: 'internal error', internal: (err as Error)?.stack ?? String(err) };
  }
}

// --- the client side ------------------------------------------------------------------------

/** One unary call on an established session. Rejects with RpcError for non-OK statuses. */
export function callUnary(
  session: ClientHttp2Session,
  path: string,
  request: Uint8Array,
  metadata: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc+proto',
      te: 'trailers',
      ...metadata,
    });
    const chunks: Buffer[] = [];
    let received = 0;
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    let settled = false;
    const done = (err: Error | undefined, value?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value!);
    };
    const timer = setTimeout(() => {
      req.close(h2.NGHTTP2_CANCEL);
      done(new RpcError(Status.DEADLINE_EXCEEDED, `no answer to ${path} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const statusOf = (code: string | string[] | undefined, message: unknown): RpcError | undefined =>
      Number(code) === Status.OK ? undefined : new RpcError(Number(code), decodeMessage(String(message ?? '')));
    req.on('response', (h) => {
      headers = h;
      // Trailers-only: the server refused the call, possibly before reading the request. Stop
      // sending the rest (the server reset the stream) and report its status.
      if (h['grpc-status'] !== undefined) {
        const err = statusOf(h['grpc-status'], h['grpc-message']);
        if (err) {
          done(err);
          if (!req.closed) req.close(h2.NGHTTP2_CANCEL);
        }
      }
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('data', (c: Buffer) => {
      received += c.length;
      if (received > MAX_RESPONSE_MESSAGE + 5) {
        req.close(h2.NGHTTP2_CANCEL);
        done(
          new RpcError(
            Status.RESOURCE_EXHAUSTED,
            `${path}: the response is larger than ${formatBytes(MAX_RESPONSE_MESSAGE)}`,
          ),
        );
        return;
      }
      chunks.push(c);
    });
    req.on('error', (err) => done(new RpcError(Status.UNAVAILABLE, `${path}: ${err.message}`)));
    req.on('close', () => {
      const httpStatus = Number(headers[':status'] ?? 0);
      const statusText = trailers['grpc-status'] ?? headers['grpc-status'];
      if (statusText === undefined) {
        done(
          new RpcError(
            Status.UNAVAILABLE,
            httpStatus
              ? `${path}: HTTP status ${httpStatus} without a gRPC status`
              : `${path}: the connection closed before an answer`,
          ),
        );
        return;
      }
      const err = statusOf(statusText, trailers['grpc-message'] ?? headers['grpc-message']);
      if (err) {
        done(err);
        return;
      }
      try {
        done(undefined, unframe(Buffer.concat(chunks)));
      } catch (e) {
        done(e as Error);
      }
    });
    // Write the body as the stream takes it: a whole large body queued at once would fill the
    // session's memory, and an early refusal would then not even be read.
    const body = frame(request);
    let offset = 0;
    const pump = (): void => {
      while (offset < body.length) {
        if (settled || req.closed || req.destroyed) return;
        const piece = body.subarray(offset, offset + 64 * 1024);
        offset += piece.length;
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

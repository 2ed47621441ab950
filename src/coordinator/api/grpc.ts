/**
 * gRPC unary calls over HTTP/2 (node:http2), just enough of the wire protocol for the
 * Coordinator: length-prefixed messages (1-byte compression flag, 4-byte big-endian length),
 * `application/grpc` content type, status and message in trailers (or trailers-only responses).
 */
import type { ClientHttp2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';

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

export class RpcError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = 'RpcError';
  }

  get codeName(): string {
    return STATUS_NAMES[this.code] ?? `code ${this.code}`;
  }
}

/** Largest request or response message we accept (policies can be large). */
export const MAX_MESSAGE = 64 * 1024 * 1024;

export function frame(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Exactly one uncompressed message, as unary calls carry. */
export function unframe(data: Buffer): Buffer {
  if (data.length < 5) throw new RpcError(Status.INTERNAL, 'gRPC message is truncated');
  if (data[0] !== 0) throw new RpcError(Status.UNIMPLEMENTED, 'compressed gRPC messages are not supported');
  const len = data.readUInt32BE(1);
  if (data.length !== 5 + len) throw new RpcError(Status.INTERNAL, `gRPC frame length ${len} does not match ${data.length - 5} bytes received`);
  return data.subarray(5);
}

function encodeMessage(msg: string): string {
  return msg.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}

function decodeMessage(msg: string): string {
  try {
    return decodeURIComponent(msg);
  } catch {
    return msg;
  }
}

async function readAll(stream: NodeJS.ReadableStream, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream) {
    const b = c as Buffer;
    size += b.length;
    if (size > limit + 5) throw new RpcError(Status.RESOURCE_EXHAUSTED, `message larger than ${limit} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

export type UnaryHandler = (request: Buffer, headers: IncomingHttpHeaders, stream: ServerHttp2Stream) => Promise<Uint8Array>;

/** Serve one HTTP/2 stream as a gRPC unary call. */
export async function serveUnary(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, handlers: ReadonlyMap<string, UnaryHandler>): Promise<{ path: string; code: number }> {
  const path = String(headers[':path'] ?? '');
  const fail = (code: number, message: string): { path: string; code: number } => {
    if (!stream.destroyed && !stream.headersSent) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto', 'grpc-status': String(code), 'grpc-message': encodeMessage(message) }, { endStream: true });
    } else if (!stream.destroyed) {
      stream.close();
    }
    return { path, code };
  };
  try {
    if (headers[':method'] !== 'POST') return fail(Status.UNIMPLEMENTED, 'gRPC needs POST');
    const ct = String(headers['content-type'] ?? '');
    if (!ct.startsWith('application/grpc')) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return { path, code: Status.INVALID_ARGUMENT };
    }
    const handler = handlers.get(path);
    if (!handler) {
      stream.resume();
      return fail(Status.UNIMPLEMENTED, `unknown method ${path}`);
    }
    const request = unframe(await readAll(stream, MAX_MESSAGE));
    const response = await handler(request, headers, stream);
    if (stream.destroyed) return { path, code: Status.CANCELLED };
    stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame(response));
    return { path, code: Status.OK };
  } catch (err) {
    if (err instanceof RpcError) return fail(err.code, err.message);
    return fail(Status.INTERNAL, `internal error: ${(err as Error).message}`);
  }
}

/** One unary call on an established session. Rejects with RpcError for non-OK statuses. */
export function callUnary(session: ClientHttp2Session, path: string, request: Uint8Array, metadata: Record<string, string> = {}, timeoutMs = 60_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc+proto', te: 'trailers', ...metadata });
    const chunks: Buffer[] = [];
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
      req.close();
      done(new RpcError(Status.DEADLINE_EXCEEDED, `no answer to ${path} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    req.on('response', (h) => { headers = h; });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', (err) => done(new RpcError(Status.UNAVAILABLE, `${path}: ${err.message}`)));
    req.on('close', () => {
      const httpStatus = Number(headers[':status'] ?? 0);
      const statusText = trailers['grpc-status'] ?? headers['grpc-status'];
      if (statusText === undefined) {
        done(new RpcError(Status.UNAVAILABLE, httpStatus ? `${path}: HTTP status ${httpStatus} without a gRPC status` : `${path}: the connection closed before an answer`));
        return;
      }
      const code = Number(statusText);
      if (code !== Status.OK) {
        done(new RpcError(code, decodeMessage(String(trailers['grpc-message'] ?? headers['grpc-message'] ?? ''))));
        return;
      }
      try {
        done(undefined, unframe(Buffer.concat(chunks)));
      } catch (err) {
        done(err as Error);
      }
    });
    req.end(frame(request));
  });
}

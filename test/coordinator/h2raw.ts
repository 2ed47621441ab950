/**
 * Hostile clients for the Coordinator's limits: raw TCP/TLS connections, a hand-written HTTP/2
 * framer that ignores the server's SETTINGS (Node's own client would queue streams beyond
 * SETTINGS_MAX_CONCURRENT_STREAMS instead of sending them), and gRPC calls whose body is sent
 * in paced chunks so a test can see how much of it the server let through before it answered.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { connect as http2Connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { randomBytes, type KeyObject } from 'node:crypto';
import { createAtlsCertDer } from '../../src/atls/cert.js';
import { derToPem } from '../../src/attestation/certificate.js';
import { nonceToServerName } from '../../src/atls/binding.js';

export const MiB = 1024 * 1024;

export interface TlsOptions {
  port: number;
  /** The client's TLS key; its self-signed aTLS certificate (no evidence) is sent. */
  key?: KeyObject;
  /** Source address (any 127.x address works on Linux loopback). */
  localAddress?: string;
  alpn?: string[];
}

export function connectTls(opts: TlsOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect(
      {
        host: '127.0.0.1',
        port: opts.port,
        servername: nonceToServerName(randomBytes(32)),
        ALPNProtocols: opts.alpn ?? ['h2'],
        minVersion: 'TLSv1.3',
        rejectUnauthorized: false,
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        ...(opts.key
          ? {
              key: opts.key.export({ type: 'pkcs8', format: 'pem' }) as string,
              cert: derToPem(createAtlsCertDer(opts.key)),
            }
          : {}),
      },
      () => resolve(s),
    );
    s.once('error', reject);
  });
}

export function connectTcp(port: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) }, () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * Resolves when the server closed the socket; the attacker never closes it. The socket is read
 * (and what arrives discarded), or its end would go unnoticed.
 */
export function closed(s: Socket | TLSSocket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) {
      resolve();
      return;
    }
    s.once('close', () => resolve());
    s.on('error', () => undefined);
    if (s.listenerCount('data') === 0) s.resume();
  });
}

export interface H2 {
  session: ClientHttp2Session;
  socket: TLSSocket;
  /** Resolves when the server (or the test) closed the session. */
  closed: Promise<void>;
  close(): void;
}

/** A Node HTTP/2 session over an aTLS connection (the server is not verified: these are attackers). */
export async function connectH2(opts: TlsOptions): Promise<H2> {
  const socket = await connectTls(opts);
  const session = http2Connect(`https://127.0.0.1:${opts.port}`, { createConnection: () => socket });
  session.on('error', () => undefined);
  const done = new Promise<void>((resolve) => session.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('close', () => reject(new Error('the session closed before it was established')));
  });
  return {
    session,
    socket,
    closed: done,
    close: () => {
      session.destroy();
      socket.destroy();
    },
  };
}

export interface CallResult {
  /** grpc-status, undefined when the stream ended without one. */
  code?: number;
  message: string;
  httpStatus?: number;
  /** RST_STREAM code the stream was closed with (0 = NO_ERROR). */
  rstCode: number;
  /** Body bytes (including the 5-byte prefix) that Node's client had passed on when the answer came. */
  written: number;
  response: Buffer;
}

export interface UploadOptions {
  metadata?: Record<string, string>;
  /** The whole request body as sent: prefix and message (see prefix()). */
  body?: Buffer;
  /** Instead of `body`: send `prefix` then `fill` bytes of zeros in chunks. */
  prefix?: Buffer;
  fill?: number;
  chunk?: number;
  /** Pause between chunks (ms): a trickling client. */
  intervalMs?: number;
  /** Leave the stream open after the body (default: end it). */
  keepOpen?: boolean;
}

/** A gRPC length prefix claiming `length` bytes. */
export function prefix(length: number, compressed = 0): Buffer {
  const b = Buffer.alloc(5);
  b[0] = compressed;
  b.writeUInt32BE(length, 1);
  return b;
}

/**
 * One call whose body is written chunk by chunk, each after Node accepted the previous one; it
 * stops writing once the server answers. `written` then tells how much the server consumed
 * (HTTP/2 flow control keeps the rest on the client when the server does not read).
 */
export function upload(session: ClientHttp2Session, path: string, opts: UploadOptions): Promise<CallResult> {
  return new Promise((resolve) => {
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc+proto',
      te: 'trailers',
      ...(opts.metadata ?? {}),
    });
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    let answered = false;
    let written = 0;
    const data: Buffer[] = [];
    req.on('response', (h) => {
      headers = h;
      answered = true;
      // Trailers-only (an early refusal): the server reset the stream; Node's client would wait
      // for the unsent rest of the body, so end the stream here.
      if (h['grpc-status'] !== undefined)
        setImmediate(() => {
          if (!req.closed) req.close();
        });
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('data', (c: Buffer) => data.push(c));
    req.on('error', () => undefined);
    req.on('close', () => {
      const status = trailers['grpc-status'] ?? headers['grpc-status'];
      const message = String(trailers['grpc-message'] ?? headers['grpc-message'] ?? '');
      resolve({
        ...(status !== undefined ? { code: Number(status) } : {}),
        ...(headers[':status'] !== undefined ? { httpStatus: Number(headers[':status']) } : {}),
        message: safeDecode(message),
        rstCode: req.rstCode ?? 0,
        written,
        response: Buffer.concat(data),
      });
    });
    const source = opts.body ?? opts.prefix ?? Buffer.alloc(0);
    const total = opts.body ? opts.body.length : source.length + (opts.fill ?? 0);
    const chunkSize = opts.chunk ?? 64 * 1024;
    const zeros = Buffer.alloc(chunkSize);
    let offset = 0;
    const next = (): void => {
      if (answered || req.destroyed || req.closed) return;
      if (offset >= total) {
        if (!opts.keepOpen) req.end();
        return;
      }
      const n = Math.min(chunkSize, total - offset);
      const piece =
        offset < source.length ? source.subarray(offset, Math.min(offset + n, source.length)) : zeros.subarray(0, n);
      offset += piece.length;
      req.write(piece, (err) => {
        if (err) return;
        written += piece.length;
        if (opts.intervalMs) setTimeout(next, opts.intervalMs);
        else setImmediate(next);
      });
    };
    next();
  });
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// --- a raw HTTP/2 framer -------------------------------------------------------------------

const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;

export function h2frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

function hpackInt(value: number, prefixBits: number, first = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A header block of literal fields without indexing (no Huffman): no HPACK state needed. */
export function headerBlock(fields: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    parts.push(Buffer.from([0]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v);
  }
  return Buffer.concat(parts);
}

export function grpcHeaders(path: string, extra: [string, string][] = []): [string, string][] {
  return [
    [':method', 'POST'],
    [':scheme', 'https'],
    [':path', path],
    [':authority', 'coordinator'],
    ['content-type', 'application/grpc+proto'],
    ['te', 'trailers'],
    ...extra,
  ];
}

export interface RawFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** HTTP/2 over a TLS socket, written frame by frame; the client acknowledges SETTINGS only when told to. */
export class RawH2 {
  readonly frames: RawFrame[] = [];
  readonly closed: Promise<void>;
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];

  constructor(
    readonly socket: TLSSocket,
    private readonly ackSettings = true,
  ) {
    this.closed = closed(socket);
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('close', () => this.wake());
  }

  static async open(opts: TlsOptions & { ackSettings?: boolean }): Promise<RawH2> {
    const h = new RawH2(await connectTls(opts), opts.ackSettings ?? true);
    h.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2frame(FRAME.SETTINGS, 0, 0)]));
    return h;
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  headers(stream: number, fields: [string, string][], flags = FLAG.END_HEADERS): Buffer {
    return h2frame(FRAME.HEADERS, flags, stream, headerBlock(fields));
  }

  continuation(stream: number, block: Buffer, endHeaders: boolean): Buffer {
    return h2frame(FRAME.CONTINUATION, endHeaders ? FLAG.END_HEADERS : 0, stream, block);
  }

  data(stream: number, payload: Buffer, endStream: boolean): Buffer {
    return h2frame(FRAME.DATA, endStream ? FLAG.END_STREAM : 0, stream, payload);
  }

  /** RST_STREAM codes the server sent, by stream. */
  resets(): Map<number, number> {
    const m = new Map<number, number>();
    for (const f of this.frames) if (f.type === FRAME.RST_STREAM) m.set(f.stream, f.payload.readUInt32BE(0));
    return m;
  }

  /** Streams on which the server sent HEADERS (an answer). */
  answered(): Set<number> {
    return new Set(this.frames.filter((f) => f.type === FRAME.HEADERS).map((f) => f.stream));
  }

  goaway(): { lastStream: number; code: number } | undefined {
    const f = this.frames.find((x) => x.type === FRAME.GOAWAY);
    return f ? { lastStream: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) } : undefined;
  }

  /** Wait until `pred` holds or the connection closed. */
  async until(pred: () => boolean): Promise<void> {
    while (!pred() && !this.socket.destroyed) await new Promise<void>((r) => this.waiters.push(r));
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  private onData(c: Buffer): void {
    this.buf = Buffer.concat([this.buf, c]);
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const f: RawFrame = {
        type: this.buf[3]!,
        flags: this.buf[4]!,
        stream: this.buf.readUInt32BE(5) & 0x7fffffff,
        payload: this.buf.subarray(9, 9 + len),
      };
      this.buf = this.buf.subarray(9 + len);
      this.frames.push(f);
      if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK) && this.ackSettings)
        this.write(h2frame(FRAME.SETTINGS, FLAG.ACK, 0));
      if (f.type === FRAME.PING && !(f.flags & FLAG.ACK)) this.write(h2frame(FRAME.PING, FLAG.ACK, 0, f.payload));
    }
    this.wake();
  }
}

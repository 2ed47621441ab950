/**
 * The Coordinator process: UserAPI (1313) and MeshAPI (7777) as gRPC over aTLS/HTTP/2, plus
 * probes and Prometheus metrics over plain HTTP (9102).
 *
 * Every client is a stranger until a handler has checked it, so everything a client can make
 * the process hold is bounded (docs/protocol.md, "Limits and deadlines"): connections in total
 * and per source address, streams per session, header size, request bodies (per method, per
 * field, and all buffered bodies together), and the time a connection may spend in the TLS
 * handshake, before its first request, idle, unattested (MeshAPI), sending a body or taking a
 * response.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { atlsServerOptions } from '../atls/server.js';
import type { Issuer } from '../issuers/issuer.js';
import { Authority } from './authority.js';
import { Metrics } from './metrics.js';
import { userApiHandlers } from './userapi.js';
import { meshApiHandlers } from './meshapi.js';
import { PeerRecovery, type PeerSource } from './peers.js';
import {
  ByteBudget,
  serveUnary,
  Status,
  statusName,
  type CallOutcome,
  type ServeOptions,
  type UnaryMethods,
} from './api/grpc.js';
import type { Store } from './store/interface.js';
import type { DispatchOptions } from '../attestation/dispatch.js';
import { admissionDispatch } from './collateral.js';

export const USERAPI_PORT = 1313;
export const MESHAPI_PORT = 7777;
export const METRICS_PORT = 9102;

type Api = 'userapi' | 'meshapi';

export interface CoordinatorLimits {
  /** TCP accept to the end of the TLS handshake (absolute: a trickled ClientHello does not extend it). */
  handshakeTimeoutMs: number;
  /** End of the handshake to the first complete request HEADERS (also: ALPN other than h2). */
  headersTimeoutMs: number;
  /** A session without an open stream is closed after this. */
  idleTimeoutMs: number;
  /** MeshAPI: end of the handshake to the first call whose evidence was admitted. */
  attestationTimeoutMs: number;
  /** MeshAPI: a session is closed after this many refused attestations. */
  maxFailedAttestations: number;
  /** Receiving a small request body, from the moment the handler asks for it. */
  bodyTimeoutMs: number;
  /** Receiving a SetManifest body (up to 64 MiB, possibly through a port-forward). */
  setManifestBodyTimeoutMs: number;
  /** The client taking a whole response. */
  responseTimeoutMs: number;
  /** Request bodies (and responses in flight) held at once, both APIs together. */
  bodyBudgetBytes: number;
  /** How long a body that does not fit the budget waits before RESOURCE_EXHAUSTED. */
  budgetWaitMs: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxStreamsPerSession: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE (the MeshAPI evidence header is the largest, about 10 KiB). */
  maxHeaderListBytes: number;
  maxConnections: Record<Api, number>;
  maxConnectionsPerAddress: Record<Api, number>;
}

const MiB = 1024 * 1024;

const DEFAULT_LIMITS: Readonly<CoordinatorLimits> = Object.freeze({
  handshakeTimeoutMs: 20_000,
  headersTimeoutMs: 20_000,
  idleTimeoutMs: 30_000,
  attestationTimeoutMs: 30_000,
  maxFailedAttestations: 3,
  bodyTimeoutMs: 10_000,
  setManifestBodyTimeoutMs: 300_000,
  responseTimeoutMs: 120_000,
  bodyBudgetBytes: 80 * MiB,
  budgetWaitMs: 5_000,
  maxStreamsPerSession: 8,
  maxHeaderListBytes: 64 * 1024,
  maxConnections: { userapi: 64, meshapi: 512 },
  // Initializers behind one SNAT address (and the benchmark, 500 from one host) share an address.
  maxConnectionsPerAddress: { userapi: 16, meshapi: 512 },
});

export type CoordinatorLimitOptions = Partial<
  Omit<CoordinatorLimits, 'maxConnections' | 'maxConnectionsPerAddress'>
> & {
  maxConnections?: Partial<Record<Api, number>>;
  maxConnectionsPerAddress?: Partial<Record<Api, number>>;
};

export interface CoordinatorOptions {
  store: Store;
  issuer: Issuer;
  host?: string;
  userPort?: number;
  meshPort?: number;
  metricsPort?: number;
  log?: (msg: string) => void;
  /** Verifier options for workload evidence. Unset: admissionDispatch() (AMD KDS, Intel PCS, CRLs required). */
  dispatch?: DispatchOptions;
  /** Limits and deadlines; unset ones are DEFAULT_LIMITS (production values). */
  limits?: CoordinatorLimitOptions;
  /** Other replicas of this Coordinator (src/coordinator/peers.ts). Unset: none, a restart waits for `recover`. */
  peers?: PeerSource;
  /** How often the store is polled and peers are asked again (ms, default 2000). */
  peerIntervalMs?: number;
  /** How long `recover` waits for a peer that claimed the same recovery (tests; default 10 s). */
  claimWaitMs?: number;
}

export interface RunningCoordinator {
  authority: Authority;
  metrics: Metrics;
  limits: Readonly<CoordinatorLimits>;
  ports: { userapi: number; meshapi: number; metrics: number };
  close(): Promise<void>;
}

function resolveLimits(o: CoordinatorLimitOptions = {}): CoordinatorLimits {
  const { maxConnections, maxConnectionsPerAddress, ...rest } = o;
  const defined = <T extends object>(x: T | undefined): Partial<T> =>
    Object.fromEntries(Object.entries(x ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  const l: CoordinatorLimits = {
    ...DEFAULT_LIMITS,
    ...defined(rest),
    maxConnections: { ...DEFAULT_LIMITS.maxConnections, ...defined(maxConnections) },
    maxConnectionsPerAddress: { ...DEFAULT_LIMITS.maxConnectionsPerAddress, ...defined(maxConnectionsPerAddress) },
  };
  for (const [k, v] of Object.entries(l)) {
    const values = typeof v === 'number' ? [v] : Object.values(v as Record<string, number>);
    if (!values.every((n) => Number.isFinite(n) && n > 0))
      throw new Error(`coordinator limit ${k} must be a positive number`);
  }
  return l;
}

/** At most `burst` lines per 10 s; the rest are counted and reported once. */
function rateLimited(log: (m: string) => void, burst = 20): (m: string) => void {
  let windowStart = 0;
  let lines = 0;
  let dropped = 0;
  return (m) => {
    const now = Date.now();
    if (now - windowStart > 10_000) {
      if (dropped > 0) log(`(${dropped} similar messages suppressed)`);
      windowStart = now;
      lines = 0;
      dropped = 0;
    }
    if (++lines > burst) {
      dropped++;
      return;
    }
    log(m);
  };
}

function sourceAddress(s: { remoteAddress?: string | undefined }): string {
  const a = s.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

function peerOf(s: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  return `${s.remoteAddress ?? '?'}|${s.remotePort ?? '?'}`;
}

interface ServerParts {
  api: Api;
  key: KeyObject;
  issuer: Issuer;
  methods: UnaryMethods;
  metrics: Metrics;
  log: (m: string) => void;
  limits: CoordinatorLimits;
  serve: ServeOptions;
}

interface GrpcServer {
  server: Http2SecureServer;
  /** End every connection now (shutdown). */
  destroyAll(): void;
}

function grpcServer(p: ServerParts): GrpcServer {
  const { api, metrics, limits } = p;
  const refusalLog = rateLimited(p.log);
  const server = createSecureServer({
    ...atlsServerOptions({
      key: p.key,
      issuer: p.issuer,
      requestCert: true,
      onError: (err) => p.log(`${api}: cannot issue evidence: ${err.message}`),
    }),
    allowHTTP1: false,
    // Node's own timer restarts with every byte; ours below is absolute. This one is a backstop.
    handshakeTimeout: limits.handshakeTimeoutMs,
    unknownProtocolTimeout: limits.headersTimeoutMs,
    maxHeaderListPairs: 64,
    settings: { maxConcurrentStreams: limits.maxStreamsPerSession, maxHeaderListSize: limits.maxHeaderListBytes },
  });

  // Connections: caps and the absolute handshake deadline, from the TCP accept on.
  const sockets = new Map<string, Socket>();
  const perAddress = new Map<string, number>();
  const handshaking = new Map<string, NodeJS.Timeout>();
  const ours = new Set<string>(); // connections we closed: their TLS errors are not handshake failures
  const drop = (socket: Socket, key: string): void => {
    ours.add(key);
    socket.destroy();
  };
  server.on('connection', (socket: Socket) => {
    const key = peerOf(socket);
    const addr = sourceAddress(socket);
    const cap =
      sockets.size >= limits.maxConnections[api]
        ? 'total'
        : (perAddress.get(addr) ?? 0) >= limits.maxConnectionsPerAddress[api]
          ? 'per_address'
          : undefined;
    if (cap) {
      metrics.inc('contrast_connections_refused_total', { api, reason: cap });
      refusalLog(
        `${api}: refused a connection from ${addr}: ${cap === 'total' ? `${limits.maxConnections[api]} connections are open` : `${limits.maxConnectionsPerAddress[api]} connections from this address are open`}`,
      );
      socket.once('close', () => ours.delete(key));
      drop(socket, key);
      return;
    }
    sockets.set(key, socket);
    perAddress.set(addr, (perAddress.get(addr) ?? 0) + 1);
    const timer = setTimeout(() => {
      metrics.inc('contrast_deadline_closes_total', { api, deadline: 'handshake' });
      drop(socket, key);
    }, limits.handshakeTimeoutMs);
    timer.unref();
    handshaking.set(key, timer);
    socket.once('close', () => {
      sockets.delete(key);
      const n = (perAddress.get(addr) ?? 1) - 1;
      if (n > 0) perAddress.set(addr, n);
      else perAddress.delete(addr);
      clearTimeout(handshaking.get(key));
      handshaking.delete(key);
      ours.delete(key);
    });
  });
  server.on('secureConnection', (tls: TLSSocket) => {
    const key = peerOf(tls);
    clearTimeout(handshaking.get(key));
    handshaking.delete(key);
  });
  server.on('tlsClientError', (_err, tls: TLSSocket) => {
    if (!ours.has(peerOf(tls))) metrics.inc('contrast_atls_handshake_failures_total');
  });

  // Sessions: the header, idle and attestation deadlines, and failed attestations.
  const sessions = new Set<ServerHttp2Session>();
  const failures = new WeakMap<ServerHttp2Session, { failed: number; attested: boolean; shut: () => void }>();
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    const state = { failed: 0, attested: api !== 'meshapi', shut: (): void => undefined };
    failures.set(session, state);
    let open = 0;
    const socket = sockets.get(peerOf(session.socket));
    // GOAWAY, then the connection itself: Node only half-closes it, and a client that neither
    // reads nor closes would keep it.
    const shut = (): void => {
      if (!session.destroyed) session.close();
      setTimeout(() => socket?.destroy(), 1000).unref();
    };
    const end = (deadline: string): void => {
      if (session.destroyed) return;
      metrics.inc('contrast_deadline_closes_total', { api, deadline });
      shut();
    };
    state.shut = shut;
    let idle: NodeJS.Timeout | undefined = setTimeout(() => end('headers'), limits.headersTimeoutMs);
    idle.unref();
    const attestation =
      api === 'meshapi'
        ? setTimeout(() => {
            if (!state.attested) end('attestation');
          }, limits.attestationTimeoutMs)
        : undefined;
    attestation?.unref();
    session.on('stream', (stream) => {
      open++;
      clearTimeout(idle);
      idle = undefined;
      stream.once('close', () => {
        if (--open > 0 || session.destroyed || session.closed) return;
        idle = setTimeout(() => end('idle'), limits.idleTimeoutMs);
        idle.unref();
      });
    });
    session.on('error', () => {
      /* counted below (sessionError) */
    });
    session.once('close', () => {
      sessions.delete(session);
      clearTimeout(idle);
      clearTimeout(attestation);
    });
  });
  server.on('sessionError', () => metrics.inc('contrast_http2_session_errors_total', { api }));

  const record = (o: CallOutcome, session: ServerHttp2Session | undefined, peer: string): void => {
    metrics.inc(`contrast_${api}_requests_total`, { method: o.method, code: o.code });
    const line = `${api}: ${o.method} from ${peer}: ${statusName(o.code)}: ${o.message}`;
    if (o.refusal) {
      if (o.refusal === 'frame' || o.refusal === 'protobuf')
        metrics.inc('contrast_rpc_invalid_requests_total', { api, method: o.method, reason: o.refusal });
      else if (o.refusal === 'body_deadline') metrics.inc('contrast_deadline_closes_total', { api, deadline: 'body' });
      else metrics.inc('contrast_rpc_limit_rejections_total', { api, method: o.method, limit: o.refusal });
      refusalLog(line);
    } else if (o.invalid) {
      metrics.inc('contrast_rpc_invalid_requests_total', { api, method: o.method, reason: 'request' });
      refusalLog(line);
    } else if (o.internal) {
      refusalLog(`${line}: ${o.internal}`);
    }
    const state = session && failures.get(session);
    if (api !== 'meshapi' || !state || (o.method !== 'NewMeshCert' && o.method !== 'Recover')) return;
    if (o.code === Status.OK) state.attested = true;
    if (o.code === Status.PERMISSION_DENIED || o.code === Status.UNAUTHENTICATED) {
      if (++state.failed >= limits.maxFailedAttestations && !session.destroyed) {
        metrics.inc('contrast_meshapi_sessions_closed_after_failures_total');
        state.shut();
      }
    }
  };
  server.on('stream', (stream, headers) => {
    const session = stream.session as ServerHttp2Session | undefined;
    const peer = session?.socket ? sourceAddress(session.socket) : '?';
    void serveUnary(stream, headers, p.methods, p.serve).then((o) => record(o, session, peer));
  });

  return {
    server,
    destroyAll: () => {
      for (const s of sessions) s.destroy();
      for (const s of sockets.values()) s.destroy();
    },
  };
}

function listen(server: Http2SecureServer | HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export async function startCoordinator(opts: CoordinatorOptions): Promise<RunningCoordinator> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`coordinator: ${m}\n`));
  const host = opts.host ?? '0.0.0.0';
  const limits = resolveLimits(opts.limits);
  const authority = await Authority.open(opts.store, {
    log,
    peerRecovery: opts.peers !== undefined,
    ...(opts.claimWaitMs !== undefined ? { claimWaitMs: opts.claimWaitMs } : {}),
  });
  const metrics = new Metrics();
  metrics.gauge(
    'contrast_coordinator_ready',
    '1 when the Coordinator issues certificates, 0 when uninitialised or waiting for recovery',
    () => (authority.mode === 'ready' ? 1 : 0),
  );
  metrics.gauge('contrast_coordinator_recovery_mode', '1 while the Coordinator waits for recovery', () =>
    authority.mode === 'recovery' ? 1 : 0,
  );
  metrics.gauge(
    'contrast_coordinator_recovering_from_peer',
    '1 while this replica lacks the state and a ready peer may hand it over (MeshAPI Recover)',
    () => (authority.replicaState === 'recovering-from-peer' ? 1 : 0),
  );
  metrics.gauge(
    'contrast_coordinator_waiting_for_recover',
    '1 while this replica lacks the state and no peer holds it: only `kubectl contrast recover` helps',
    () => (authority.replicaState === 'waiting-for-recover' ? 1 : 0),
  );
  const budget = new ByteBudget(limits.bodyBudgetBytes);
  metrics.gauge(
    'contrast_rpc_buffered_bytes',
    'Bytes of request bodies and responses held now (the body budget in use)',
    () => budget.inUse,
  );
  if (authority.mode === 'recovery')
    log(
      opts.peers
        ? 'found a stored manifest history: asking the peers for the state (or waiting for `kubectl contrast recover`); GetManifests is served, certificates are not'
        : 'found a stored manifest history: waiting for `kubectl contrast recover`; GetManifests is served, certificates are not',
    );
  // The aTLS key lives as long as the process; P-256 as upstream (its certificate is signed per connection).
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const serveFor = (api: Api): ServeOptions => ({
    budget,
    budgetWaitMs: limits.budgetWaitMs,
    bodyTimeoutMs: limits.bodyTimeoutMs,
    responseTimeoutMs: limits.responseTimeoutMs,
    onResponseTimeout: () => metrics.inc('contrast_deadline_closes_total', { api, deadline: 'response' }),
  });
  const user = grpcServer({
    api: 'userapi',
    key,
    issuer: opts.issuer,
    metrics,
    log,
    limits,
    serve: serveFor('userapi'),
    methods: userApiHandlers(authority, log, { setManifestBodyTimeoutMs: limits.setManifestBodyTimeoutMs }),
  });
  const mesh = grpcServer({
    api: 'meshapi',
    key,
    issuer: opts.issuer,
    metrics,
    log,
    limits,
    serve: serveFor('meshapi'),
    methods: meshApiHandlers(authority, metrics, opts.dispatch ?? admissionDispatch()),
  });
  const http = createHttpServer(
    { requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000, maxHeaderSize: 8 * 1024 },
    (req, res) => {
      const url = (req.url ?? '').split('?')[0];
      const reply = (code: number, body: string, type = 'text/plain; charset=utf-8'): void => {
        res.writeHead(code, { 'content-type': type });
        res.end(body);
      };
      switch (url) {
        case '/probe/startup':
        case '/probe/liveness':
          return reply(200, 'ok\n');
        case '/probe/readiness':
          // The body names the replica's state (ready, uninitialised, recovering-from-peer, waiting-for-recover).
          return authority.mode === 'ready' ? reply(200, 'ready\n') : reply(503, `${authority.replicaState}\n`);
        case '/metrics':
          return reply(200, metrics.render(), 'text/plain; version=0.0.4; charset=utf-8');
        default:
          return reply(404, 'not found\n');
      }
    },
  );
  http.maxConnections = 64;
  const ports = {
    userapi: await listen(user.server, opts.userPort ?? USERAPI_PORT, host),
    meshapi: await listen(mesh.server, opts.meshPort ?? MESHAPI_PORT, host),
    metrics: await listen(http, opts.metricsPort ?? METRICS_PORT, host),
  };
  log(
    `listening: UserAPI ${host}:${ports.userapi}, MeshAPI ${host}:${ports.meshapi}, probes and metrics ${host}:${ports.metrics}; attestation by ${opts.issuer.name}; state ${authority.mode}`,
  );
  const peerRecovery = opts.peers
    ? new PeerRecovery({
        authority,
        issuer: opts.issuer,
        peers: opts.peers,
        metrics,
        log,
        dispatch: opts.dispatch ?? admissionDispatch(),
        ...(opts.peerIntervalMs !== undefined ? { intervalMs: opts.peerIntervalMs } : {}),
      })
    : undefined;
  peerRecovery?.start();
  const closeServer = (s: Http2SecureServer | HttpServer): Promise<void> => new Promise((r) => s.close(() => r()));
  return {
    authority,
    metrics,
    limits,
    ports,
    close: async () => {
      await peerRecovery?.stop();
      http.closeAllConnections();
      const closing = Promise.all([closeServer(user.server), closeServer(mesh.server), closeServer(http)]);
      user.destroyAll();
      mesh.destroyAll();
      await closing;
    },
  };
}

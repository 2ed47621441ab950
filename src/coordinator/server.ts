/**
 * The Coordinator process: UserAPI (1313) and MeshAPI (7777) as gRPC over aTLS/HTTP/2, plus
 * probes and Prometheus metrics over plain HTTP (9102).
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { atlsServerOptions } from '../atls/server.js';
import type { Issuer } from '../issuers/issuer.js';
import { Authority } from './authority.js';
import { Metrics } from './metrics.js';
import { userApiHandlers } from './userapi.js';
import { meshApiHandlers } from './meshapi.js';
import { serveUnary, type UnaryHandler } from './api/grpc.js';
import type { Store } from './store/interface.js';
import type { DispatchOptions } from '../attestation/dispatch.js';
import { snpCollateral } from './client.js';

export const USERAPI_PORT = 1313;
export const MESHAPI_PORT = 7777;
export const METRICS_PORT = 9102;

export interface CoordinatorOptions {
  store: Store;
  issuer: Issuer;
  host?: string;
  userPort?: number;
  meshPort?: number;
  metricsPort?: number;
  log?: (msg: string) => void;
  /** Verifier options for workload evidence (e.g. the SEV-SNP certificate source). */
  dispatch?: DispatchOptions;
}

export interface RunningCoordinator {
  authority: Authority;
  metrics: Metrics;
  ports: { userapi: number; meshapi: number; metrics: number };
  close(): Promise<void>;
}

function grpcServer(key: KeyObject, issuer: Issuer, requestCert: boolean, handlers: Map<string, UnaryHandler>, metrics: Metrics, api: string, log: (m: string) => void): Http2SecureServer {
  const server = createSecureServer({
    ...atlsServerOptions({ key, issuer, requestCert, onError: (err) => log(`${api}: cannot issue evidence: ${err.message}`) }),
    allowHTTP1: false,
    settings: { maxConcurrentStreams: 1000 },
  });
  server.on('stream', (stream, headers) => {
    void serveUnary(stream, headers, handlers).then(({ path, code }) => {
      metrics.inc(`contrast_${api}_requests_total`, { method: path.split('/').pop() ?? path, code });
    });
  });
  server.on('tlsClientError', () => metrics.inc('contrast_atls_handshake_failures_total'));
  server.on('sessionError', () => { /* the peer went away */ });
  return server;
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
  const authority = await Authority.open(opts.store);
  const metrics = new Metrics();
  metrics.gauge('contrast_coordinator_ready', '1 when the Coordinator issues certificates, 0 when uninitialised or waiting for recovery', () => (authority.mode === 'ready' ? 1 : 0));
  metrics.gauge('contrast_coordinator_recovery_mode', '1 while the Coordinator waits for recovery', () => (authority.mode === 'recovery' ? 1 : 0));
  if (authority.mode === 'recovery') log('found a stored manifest history: waiting for `kubectl contrast recover`; GetManifests is served, certificates are not');
  // The aTLS key lives as long as the process; P-256 as upstream (its certificate is signed per connection).
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const user = grpcServer(key, opts.issuer, true, userApiHandlers(authority, log), metrics, 'userapi', log);
  const mesh = grpcServer(key, opts.issuer, true, meshApiHandlers(authority, metrics, opts.dispatch ?? { snp: { collateral: snpCollateral() } }), metrics, 'meshapi', log);
  const http = createHttpServer((req, res) => {
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
        return authority.mode === 'ready' ? reply(200, 'ready\n') : reply(503, `${authority.mode}\n`);
      case '/metrics':
        return reply(200, metrics.render(), 'text/plain; version=0.0.4; charset=utf-8');
      default:
        return reply(404, 'not found\n');
    }
  });
  const ports = {
    userapi: await listen(user, opts.userPort ?? USERAPI_PORT, host),
    meshapi: await listen(mesh, opts.meshPort ?? MESHAPI_PORT, host),
    metrics: await listen(http, opts.metricsPort ?? METRICS_PORT, host),
  };
  log(`listening: UserAPI ${host}:${ports.userapi}, MeshAPI ${host}:${ports.meshapi}, probes and metrics ${host}:${ports.metrics}; attestation by ${opts.issuer.platform}; state ${authority.mode}`);
  const closeServer = (s: Http2SecureServer | HttpServer): Promise<void> => new Promise((r) => s.close(() => r()));
  return {
    authority, metrics, ports,
    close: async () => {
      http.closeAllConnections();
      await Promise.all([closeServer(user), closeServer(mesh), closeServer(http)]);
    },
  };
}

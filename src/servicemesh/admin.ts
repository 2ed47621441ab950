/**
 * The admin interface on the annotated port (plain HTTP, read-only, reachable from outside the
 * pod like upstream's Envoy admin port, but with nothing to change):
 *
 *   GET /ready         200 "ready" once listeners and redirection are in place, else 503
 *   GET /stats         JSON: per listener active/accepted/proxied connections, refusals, bytes
 *   GET /certificates  JSON: mesh CA and mesh certificate (subject, fingerprint, expiry,
 *                      seconds left), reloads, why files on disk are not in use
 *
 * Small and bounded: GET and HEAD only, no request bodies, short header and request deadlines,
 * few connections.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenAnywhere } from './ingress.js';

export interface AdminState {
  ready: () => boolean;
  stats: () => unknown;
  certificates: () => unknown;
}

export class AdminServer {
  private readonly server: Server;

  constructor(private readonly state: AdminState) {
    this.server = createServer(
      { maxHeaderSize: 8192, requestTimeout: 5000, headersTimeout: 5000, keepAliveTimeout: 2000 },
      (req, res) => this.handle(req, res),
    );
    this.server.maxConnections = 64;
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  start(port: number): Promise<number> {
    return listenAnywhere(this.server, port).catch((err: Error) => {
      throw new Error(`cannot listen on the admin interface port ${port}: ${err.message}`);
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, {
        'content-type': type,
        'cache-control': 'no-store',
        'content-length': Buffer.byteLength(body),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'only GET\n');
    if (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')
      return send(413, 'no request bodies\n');
    const path = (req.url ?? '/').split('?')[0];
    const json = (v: unknown) => send(200, `${JSON.stringify(v, null, 2)}\n`, 'application/json');
    switch (path) {
      case '/ready':
        return this.state.ready() ? send(200, 'ready\n') : send(503, 'not ready\n');
      case '/stats':
        return json(this.state.stats());
      case '/certificates':
        return json(this.state.certificates());
      case '/':
        return send(200, 'GET /ready, /stats, /certificates\n');
      default:
        return send(404, 'not found: GET /ready, /stats, /certificates\n');
    }
  }
}

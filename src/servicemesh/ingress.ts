/**
 * One ingress listener per protected application port. Connections arrive here through the
 * REDIRECT rule of that port; the listener terminates TLS (with a mesh client certificate
 * required, or for `#false` ports without), then opens a plain connection to the application
 * on the same port over loopback and relays. Nothing is sent to the application before the
 * handshake has succeeded.
 */
import { createServer as createTcpServer, connect, type Server as TcpServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { MeshCredentials } from './credentials.js';
import { newCounters, type ConnectionTracker, type ListenerCounters, type TrackedConnection } from './connections.js';
import { relay, type RelayLimits } from './relay.js';
import { contextOptions } from './tls-options.js';

export type IngressMode = 'mtls' | 'tls';

export interface IngressLimits extends RelayLimits {
  handshakeTimeoutMs: number;
}

export interface IngressListenerOptions {
  appPort: number;
  mode: IngressMode;
  name: string;
  credentials: MeshCredentials;
  tracker: ConnectionTracker;
  limits: IngressLimits;
  /** Where the application accepts connections for this port now, or undefined if it does not. */
  appHost: (port: number) => string | undefined;
  log: (msg: string) => void;
}

/** Bind to the dual-stack wildcard, or to IPv4 only where the kernel has no IPv6. */
export function listenAnywhere(server: TcpServer, port: number): Promise<number> {
  const attempt = (host: string) =>
    new Promise<number>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen({ host, port, ipv6Only: false }, () => {
        server.off('error', onError);
        resolve((server.address() as { port: number }).port);
      });
    });
  return attempt('::').catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EAFNOSUPPORT' && err.code !== 'EADDRNOTAVAIL') throw err;
    return attempt('0.0.0.0');
  });
}

function peerKey(s: Socket): string {
  return `${s.remoteAddress ?? ''}|${s.remotePort ?? ''}`;
}

export class IngressListener {
  readonly counters: ListenerCounters;
  listenPort = 0;
  private credentials: MeshCredentials;
  private readonly tcp: TcpServer;
  private readonly tls: TlsServer;
  /** Admitted connections by peer address and port (the TLS socket has the plain one's). */
  private readonly admitted = new Map<string, TrackedConnection>();

  constructor(private readonly opts: IngressListenerOptions) {
    this.credentials = opts.credentials;
    this.counters = newCounters(opts.mode === 'mtls' ? 'ingress-mtls' : 'ingress-tls', opts.name, String(opts.appPort));
    const mtls = opts.mode === 'mtls';
    this.tls = createTlsServer({
      ...contextOptions(this.credentials),
      requestCert: mtls,
      rejectUnauthorized: mtls,
      handshakeTimeout: opts.limits.handshakeTimeoutMs,
      allowHalfOpen: true,
    });
    this.tls.on('secureConnection', (s: TLSSocket) => this.onSecure(s));
    this.tls.on('tlsClientError', (err: Error & { reason?: unknown }, socket: TLSSocket) => {
      // Gone once Node has closed the socket itself (a chain that does not verify).
      const from = socket.remoteAddress !== undefined ? ` from ${socket.remoteAddress}` : '';
      socket.destroy();
      this.counters.refusedHandshake++;
      // Node checks the client's chain after the handshake and then only closes ("socket hang
      // up"); the check's own verdict is on the socket. OpenSSL's short reason, not its dump.
      const verdict = socket.authorizationError;
      const why =
        verdict !== undefined && verdict !== null
          ? `the client certificate does not verify against the mesh CA (${String(verdict)})`
          : typeof err.reason === 'string'
            ? err.reason
            : err.message.split('\n')[0]!;
      opts.log(`port ${opts.appPort}: refused a TLS handshake${from}: ${why}`);
    });
    // Admission (connection caps) happens on the plain socket, before any TLS work.
    this.tls.on('error', (err: Error) => opts.log(`port ${opts.appPort}: ${err.message}`));
    // No Nagle on either leg: a proxy must not hold back small writes the application sent.
    this.tcp = createTcpServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      const entry = opts.tracker.admit(socket, this.counters, {
        perSourceCap: true,
        caFingerprint: this.credentials.ca.fingerprint,
      });
      if (!entry) return;
      const key = peerKey(socket);
      this.admitted.set(key, entry);
      socket.once('close', () => this.admitted.delete(key));
      this.tls.emit('connection', socket);
    });
    // Accept errors (EMFILE, …) are logged; the listener goes on.
    this.tcp.on('error', (err: Error) => opts.log(`port ${opts.appPort}: listener: ${err.message}`));
  }

  async start(): Promise<number> {
    this.listenPort = await listenAnywhere(this.tcp, 0);
    this.counters.listenPort = this.listenPort;
    return this.listenPort;
  }

  /** New handshakes use the new set; established connections are the caller's business. */
  setCredentials(creds: MeshCredentials): void {
    this.credentials = creds;
    this.tls.setSecureContext(contextOptions(creds));
  }

  /** Stop accepting; open connections go on (the caller decides how long). */
  close(): void {
    this.tcp.close();
  }

  private onSecure(peer: TLSSocket): void {
    if (this.opts.mode === 'mtls' && !peer.authorized) {
      // rejectUnauthorized already aborted such handshakes; never relay one that slipped through.
      this.counters.refusedHandshake++;
      peer.destroy();
      return;
    }
    peer.pause();
    const host = this.opts.appHost(this.opts.appPort);
    if (host === undefined) {
      this.counters.upstreamFailed++;
      peer.destroy();
      return;
    }
    const app: Socket = connect({ host, port: this.opts.appPort, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => app.destroy(new Error('timed out')), this.opts.limits.handshakeTimeoutMs);
    let failed = false;
    const fail = (err?: Error): void => {
      clearTimeout(timer);
      app.destroy();
      peer.destroy();
      if (failed || err === undefined) return;
      failed = true;
      this.counters.upstreamFailed++;
      this.opts.log(`port ${this.opts.appPort}: cannot reach the application at ${host}: ${err.message}`);
    };
    const onPeerGone = () => fail();
    const onAppError = (err: Error) => fail(err);
    peer.on('error', onPeerGone);
    peer.on('close', onPeerGone);
    app.on('error', onAppError);
    app.once('connect', () => {
      clearTimeout(timer);
      // The relay takes over error and close handling of both sockets.
      peer.off('error', onPeerGone);
      peer.off('close', onPeerGone);
      app.off('error', onAppError);
      const entry = this.admitted.get(peerKey(peer));
      const r = relay(peer, app, this.opts.limits);
      if (entry) this.opts.tracker.attach(entry, r, 'a');
      else r.close();
    });
  }
}

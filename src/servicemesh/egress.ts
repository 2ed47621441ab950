/**
 * One egress listener per `name#127.x.y.z:port#remote:port` entry: the application connects
 * in plain text to the loopback address, the proxy dials the remote over TLS with the
 * workload's mesh certificate and accepts the remote only with a certificate issued by the
 * mesh CA. As upstream, any workload of the current manifest is an acceptable remote: the
 * remote's name is sent as SNI but not matched against its certificate. The remote is
 * resolved on every connection, IPv4 only (upstream: LOGICAL_DNS, IPv4).
 */
import { connect, createServer, isIP, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureContext } from 'node:tls';
import type { EgressEntry } from '../transforms/service-mesh.js';
import type { MeshCredentials } from './credentials.js';
import { newCounters, type ConnectionTracker, type ListenerCounters } from './connections.js';
import type { IngressLimits } from './ingress.js';
import { relay } from './relay.js';
import { clientContext } from './tls-options.js';

export interface EgressListenerOptions {
  entry: EgressEntry;
  credentials: MeshCredentials;
  tracker: ConnectionTracker;
  limits: IngressLimits;
  log: (msg: string) => void;
}

export class EgressListener {
  readonly counters: ListenerCounters;
  private credentials: MeshCredentials;
  private context: SecureContext;
  private readonly server: Server;

  constructor(private readonly opts: EgressListenerOptions) {
    const e = opts.entry;
    this.credentials = opts.credentials;
    this.context = clientContext(opts.credentials);
    this.counters = newCounters('egress', e.name, `${e.listenHost}:${e.listenPort} -> ${e.remoteHost}:${e.remotePort}`);
    this.counters.listenPort = e.listenPort;
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (local) => this.onConnection(local));
    this.server.on('error', (err: Error) => opts.log(`egress "${e.name}": listener: ${err.message}`));
  }

  start(): Promise<void> {
    const { listenHost, listenPort, name } = this.opts.entry;
    return new Promise((resolve, reject) => {
      this.server.once('error', (err) =>
        reject(new Error(`egress entry "${name}": cannot listen on ${listenHost}:${listenPort}: ${err.message}`)),
      );
      this.server.listen({ host: listenHost, port: listenPort }, () => resolve());
    });
  }

  setCredentials(creds: MeshCredentials): void {
    this.credentials = creds;
    this.context = clientContext(creds);
  }

  /** Stop accepting; open connections go on (the caller decides how long). */
  close(): void {
    this.server.close();
  }

  private onConnection(local: Socket): void {
    const entry = this.opts.tracker.admit(local, this.counters, {
      perSourceCap: false,
      caFingerprint: this.credentials.ca.fingerprint,
    });
    if (!entry) return;
    local.pause();
    const { remoteHost, remotePort } = this.opts.entry;
    // The plain socket carries allowHalfOpen into the TLS socket that wraps it.
    const raw = connect({ host: remoteHost, port: remotePort, family: 4, allowHalfOpen: true, noDelay: true });
    const remote = tlsConnect({
      socket: raw,
      secureContext: this.context,
      rejectUnauthorized: true,
      checkServerIdentity: () => undefined,
      ...(isIP(remoteHost) === 0 ? { servername: remoteHost } : {}),
    });
    // Errors of the plain socket end the TLS one; this listener stays for the socket's life.
    raw.on('error', (err) => remote.destroy(err));
    const timer = setTimeout(
      () => remote.destroy(new Error(`no TLS session within ${this.opts.limits.handshakeTimeoutMs} ms`)),
      this.opts.limits.handshakeTimeoutMs,
    );
    let failed = false;
    const fail = (err?: Error): void => {
      clearTimeout(timer);
      remote.destroy();
      local.destroy();
      if (failed || err === undefined) return;
      failed = true;
      this.counters.upstreamFailed++;
      this.opts.log(`egress "${this.opts.entry.name}": ${remoteHost}:${remotePort}: ${err.message}`);
    };
    const onLocalGone = () => fail();
    const onRemoteError = (err: Error) => fail(err);
    local.on('error', onLocalGone);
    local.on('close', onLocalGone);
    remote.on('error', onRemoteError);
    remote.once('secureConnect', () => {
      clearTimeout(timer);
      if (!remote.authorized) {
        // rejectUnauthorized already refuses such peers; never relay to one that slipped through.
        fail(new Error(`not authorized: ${String(remote.authorizationError)}`));
        return;
      }
      // The relay takes over error and close handling of both sockets.
      local.off('error', onLocalGone);
      local.off('close', onLocalGone);
      remote.off('error', onRemoteError);
      this.opts.tracker.attach(entry, relay(local, remote, this.opts.limits), 'a');
    });
  }
}

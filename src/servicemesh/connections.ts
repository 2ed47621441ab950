/**
 * Every connection the proxy holds, from the moment it is accepted: caps on the total and per
 * source address (checked before any TLS work is done), the counters the admin interface
 * shows, and the handle to close connections that were authenticated under a mesh CA that is
 * no longer trusted.
 */
import type { Socket } from 'node:net';
import type { CloseReason, Relay } from './relay.js';

export interface ListenerCounters {
  /** `ingress-mtls`, `ingress-tls` or `egress`. */
  kind: string;
  name: string;
  /** The application port (ingress) or the listen address (egress). */
  target: string;
  listenPort?: number;
  active: number;
  accepted: number;
  /** Connections that reached the other side and carried bytes. */
  proxied: number;
  refusedByLimit: number;
  /** TLS handshakes that failed: no or a wrong certificate, plain text, garbage, timeout. */
  refusedHandshake: number;
  /** The application (ingress) or the remote (egress) could not be reached. */
  upstreamFailed: number;
  closed: Record<CloseReason, number>;
  bytesIn: number;
  bytesOut: number;
}

export function newCounters(kind: string, name: string, target: string): ListenerCounters {
  return {
    kind,
    name,
    target,
    active: 0,
    accepted: 0,
    proxied: 0,
    refusedByLimit: 0,
    refusedHandshake: 0,
    upstreamFailed: 0,
    closed: { done: 0, idle: 0, 'half-close-timeout': 0, error: 0, 'closed-by-proxy': 0 },
    bytesIn: 0,
    bytesOut: 0,
  };
}

export interface TrackerLimits {
  maxConnections: number;
  maxConnectionsPerSource: number;
}

interface Entry {
  socket: Socket;
  source: string;
  counters: ListenerCounters;
  relay?: Relay;
  /** Fingerprint of the mesh CA in force when the connection was accepted (TLS legs only). */
  caFingerprint?: string;
}

export class ConnectionTracker {
  private readonly entries = new Set<Entry>();
  private readonly perSource = new Map<string, number>();

  constructor(private readonly limits: TrackerLimits) {}

  get active(): number {
    return this.entries.size;
  }

  /**
   * Count a freshly accepted socket, or destroy it when a cap is reached. The entry leaves the
   * tracker when the socket closes.
   */
  admit(
    socket: Socket,
    counters: ListenerCounters,
    opts: { perSourceCap: boolean; caFingerprint?: string },
  ): Entry | undefined {
    const source = socket.remoteAddress ?? 'unknown';
    const fromSource = this.perSource.get(source) ?? 0;
    if (
      this.entries.size >= this.limits.maxConnections ||
      (opts.perSourceCap && fromSource >= this.limits.maxConnectionsPerSource)
    ) {
      counters.refusedByLimit++;
      socket.destroy();
      return undefined;
    }
    const entry: Entry = {
      socket,
      source,
      counters,
      ...(opts.caFingerprint !== undefined ? { caFingerprint: opts.caFingerprint } : {}),
    };
    this.entries.add(entry);
    this.perSource.set(source, fromSource + 1);
    counters.accepted++;
    counters.active++;
    socket.once('close', () => {
      this.entries.delete(entry);
      const n = (this.perSource.get(source) ?? 1) - 1;
      if (n <= 0) this.perSource.delete(source);
      else this.perSource.set(source, n);
      counters.active--;
    });
    return entry;
  }

  /** Attach the running relay and account for its end; `inbound` is the side facing the peer. */
  attach(entry: Entry, relay: Relay, inbound: 'a' | 'b'): void {
    entry.relay = relay;
    entry.counters.proxied++;
    void relay.done.then((r) => {
      entry.counters.closed[r.reason]++;
      entry.counters.bytesIn += inbound === 'a' ? r.aToB : r.bToA;
      entry.counters.bytesOut += inbound === 'a' ? r.bToA : r.aToB;
    });
  }

  /** Close every connection whose peer was checked against another mesh CA than `fingerprint`. */
  closeNotTrustedBy(fingerprint: string): number {
    let n = 0;
    for (const e of this.entries) {
      if (e.caFingerprint !== undefined && e.caFingerprint !== fingerprint) {
        n++;
        if (e.relay) e.relay.close('closed-by-proxy');
        else e.socket.destroy();
      }
    }
    return n;
  }

  /** Destroy everything (shutdown). */
  closeAll(): void {
    for (const e of this.entries) {
      if (e.relay) e.relay.close('closed-by-proxy');
      else e.socket.destroy();
    }
  }
}

export type TrackedConnection = Entry;

/**
 * Which application ports are protected, and their listeners. `#false` ports get a listener at
 * start; every other port the pod listens on (outside loopback) gets an mTLS listener when a
 * scan finds it. `#true` ports and the admin port are never taken over. A listener, once made,
 * stays (an application that restarts finds its port protected as before).
 */
import type { MeshProxyConfig } from './config.js';
import type { MeshCredentials } from './credentials.js';
import type { ConnectionTracker } from './connections.js';
import { IngressListener, type IngressLimits } from './ingress.js';
import type { RedirectPlan } from './iptables.js';
import { appTargets, listeningSockets } from './listening-ports.js';
import type { Log } from './log.js';

/** More listeners than this are not made; further ports stay refused by the default-deny rule. */
export const MAX_PROTECTED_PORTS = 1024;

export interface IngressSetOptions {
  config: MeshProxyConfig;
  credentials: MeshCredentials;
  tracker: ConnectionTracker;
  limits: IngressLimits;
  log: Log;
  connectionLog: Log;
  /** Directory with tcp and tcp6 (tests point it elsewhere); default /proc/net. */
  procNet?: string;
}

export class IngressSet {
  readonly listeners = new Map<number, IngressListener>();
  private targets = new Map<number, string>();
  private lastScan = 0;
  private credentials: MeshCredentials;
  private readonly untouched: Set<number>;
  private warnedFull = false;

  constructor(private readonly opts: IngressSetOptions) {
    this.credentials = opts.credentials;
    this.untouched = new Set([
      ...opts.config.passthroughPorts,
      ...(opts.config.adminPort !== undefined ? [opts.config.adminPort] : []),
    ]);
  }

  /** The ports left alone by the redirection: `#true` entries and the admin interface. */
  get openPorts(): number[] {
    return [...this.untouched];
  }

  plan(): RedirectPlan {
    return {
      redirects: new Map([...this.listeners].map(([app, l]) => [app, l.listenPort])),
      openPorts: this.openPorts,
    };
  }

  private scan(): void {
    this.targets = appTargets(listeningSockets(this.opts.procNet));
    this.lastScan = Date.now();
  }

  /** Where the application takes connections for `port`; rescans (at most every 100 ms) when unknown. */
  appHost(port: number): string | undefined {
    const known = this.targets.get(port);
    if (known !== undefined) return known;
    if (Date.now() - this.lastScan >= 100) this.scan();
    return this.targets.get(port);
  }

  /** Scan and make listeners for new ports; true when the redirection must be rewritten. */
  async sync(): Promise<boolean> {
    this.scan();
    const own = new Set([...this.listeners.values()].map((l) => l.listenPort));
    const wanted = [
      ...this.opts.config.serverOnlyTlsPorts,
      ...[...this.targets.keys()].filter((p) => !own.has(p)),
    ].filter((p) => !this.untouched.has(p) && !this.listeners.has(p));
    let changed = false;
    for (const port of new Set(wanted)) {
      if (this.listeners.size >= MAX_PROTECTED_PORTS) {
        if (!this.warnedFull) this.opts.log(`${MAX_PROTECTED_PORTS} ports are protected; further ports stay refused`);
        this.warnedFull = true;
        break;
      }
      const tls = this.opts.config.serverOnlyTlsPorts.includes(port);
      const name = this.opts.config.ingress.find((e) => e.port === port)?.name ?? `port-${port}`;
      const listener = new IngressListener({
        appPort: port,
        mode: tls ? 'tls' : 'mtls',
        name,
        credentials: this.credentials,
        tracker: this.opts.tracker,
        limits: this.opts.limits,
        appHost: (p) => this.appHost(p),
        log: this.opts.connectionLog,
      });
      await listener.start();
      this.listeners.set(port, listener);
      this.opts.log(
        `port ${port} (${name}): ${tls ? 'TLS without client certificate' : 'mTLS'} on proxy port ${listener.listenPort}`,
      );
      changed = true;
    }
    return changed;
  }

  setCredentials(creds: MeshCredentials): void {
    this.credentials = creds;
    for (const l of this.listeners.values()) l.setCredentials(creds);
  }

  /** Stop accepting on every listener. */
  close(): void {
    for (const l of this.listeners.values()) l.close();
  }
}

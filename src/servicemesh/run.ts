/**
 * The sidecar's life, in the order that keeps it closed until it is complete:
 *
 *   1. load the mesh credentials, or fail with a message that names the missing file;
 *   2. listen: egress on their 127.x addresses, ingress for `#false` ports and for every port
 *      the pod already listens on, the admin interface;
 *   3. install the redirection and the default-deny rule (iptables.ts);
 *   4. write the ready file (the startup probe tests it) and answer /ready with 200;
 *   5. rescan for new ports; reload the credentials when the files change;
 *   6. on SIGTERM/SIGINT stop accepting, let open connections finish for a short while, exit.
 *      The rules stay: without the proxy the protected ports refuse connections.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { AdminServer } from './admin.js';
import type { MeshProxyConfig } from './config.js';
import { ConnectionTracker } from './connections.js';
import { CredentialWatcher } from './credential-watcher.js';
import { loadCredentials, type MeshCredentials } from './credentials.js';
import { EgressListener } from './egress.js';
import { IngressSet } from './ingress-set.js';
import { Redirection } from './iptables.js';
import { rateLimited, stderrLog, type Log } from './log.js';

export interface ConnectionLimits {
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  halfCloseTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerSource: number;
}

export interface ServiceMeshOptions {
  config: MeshProxyConfig;
  tlsDir: string;
  readyFile: string;
  limits: ConnectionLimits;
  discoveryIntervalMs: number;
  /** Resolves when the sidecar should stop; default: SIGTERM or SIGINT. */
  stop?: Promise<void>;
  log?: Log;
  /** How long open connections may continue after a stop (default 5 s). */
  drainMs?: number;
}

function certificateView(creds: MeshCredentials) {
  const left = (d: Date) => Math.floor((d.getTime() - Date.now()) / 1000);
  return {
    meshCA: { ...creds.ca, secondsLeft: left(creds.ca.notAfter) },
    meshCertificate: { ...creds.leaf, secondsLeft: left(creds.leaf.notAfter) },
  };
}

function signalled(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => resolve();
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
  });
}

export async function runServiceMesh(opts: ServiceMeshOptions): Promise<void> {
  const log = opts.log ?? stderrLog();
  const connectionLog = rateLimited(log);
  const stop = opts.stop ?? signalled();
  rmSync(opts.readyFile, { force: true });

  // 1. Nothing listens before the credentials are loaded.
  let creds = loadCredentials(opts.tlsDir);
  log(
    `mesh certificate ${creds.leaf.subject} (valid until ${creds.leaf.notAfter.toISOString()}), mesh CA ${creds.ca.fingerprint.slice(0, 16)}…`,
  );

  const tracker = new ConnectionTracker(opts.limits);
  const limits = {
    handshakeTimeoutMs: opts.limits.handshakeTimeoutMs,
    idleTimeoutMs: opts.limits.idleTimeoutMs,
    halfCloseTimeoutMs: opts.limits.halfCloseTimeoutMs,
  };
  const ingress = new IngressSet({ config: opts.config, credentials: creds, tracker, limits, log, connectionLog });
  const egress = opts.config.egress.map(
    (entry) => new EgressListener({ entry, credentials: creds, tracker, limits, log: connectionLog }),
  );
  let ready = false;
  let watcher: CredentialWatcher | undefined;
  const admin =
    opts.config.adminPort !== undefined
      ? new AdminServer({
          ready: () => ready,
          stats: () => ({
            activeConnections: tracker.active,
            ingress: [...ingress.listeners.values()].map((l) => l.counters),
            egress: egress.map((l) => l.counters),
          }),
          certificates: () => ({
            ...certificateView(creds),
            loadedFrom: opts.tlsDir,
            reloads: watcher?.state.reloads ?? 0,
            lastReloadAt: watcher?.state.lastReloadAt,
            filesNotInUse: watcher?.state.pendingError,
          }),
        })
      : undefined;

  let discovery: NodeJS.Timeout | undefined;
  try {
    // 2. Listeners.
    for (const l of egress) {
      await l.start();
      log(`egress "${l.counters.name}": ${l.counters.target}`);
    }
    await ingress.sync();
    if (admin && opts.config.adminPort !== undefined) {
      await admin.start(opts.config.adminPort);
      log(`admin interface on port ${opts.config.adminPort}`);
    }

    // 3. Redirection.
    const redirection = new Redirection(log);
    await redirection.apply(ingress.plan());
    for (const p of ingress.openPorts) log(`port ${p}: untouched (plain TCP)`);

    // 4. Ready.
    try {
      writeFileSync(opts.readyFile, `${new Date().toISOString()}\n`);
    } catch (err) {
      throw new Error(`cannot write the ready file ${opts.readyFile}: ${(err as Error).message}`, { cause: err });
    }
    ready = true;
    log('ready');

    // 5. New ports, new credentials.
    let syncing = false;
    discovery = setInterval(() => {
      if (syncing) return;
      syncing = true;
      ingress
        .sync()
        .then((changed) => (changed ? redirection.apply(ingress.plan()) : undefined))
        .catch((err: Error) => connectionLog(`port discovery: ${err.message}; new ports stay refused`))
        .finally(() => {
          syncing = false;
        });
    }, opts.discoveryIntervalMs);
    watcher = new CredentialWatcher({
      dir: opts.tlsDir,
      current: creds,
      onError: log,
      onChange: (next, previous) => {
        creds = next;
        ingress.setCredentials(next);
        for (const l of egress) l.setCredentials(next);
        let closed = 0;
        if (next.ca.fingerprint !== previous.ca.fingerprint) closed = tracker.closeNotTrustedBy(next.ca.fingerprint);
        log(
          `reloaded the mesh credentials: certificate ${next.leaf.subject} valid until ${next.leaf.notAfter.toISOString()}${next.ca.fingerprint !== previous.ca.fingerprint ? `; new mesh CA ${next.ca.fingerprint.slice(0, 16)}…, closed ${closed} connection(s) authenticated under the old one` : ''}`,
        );
      },
    });
    watcher.start();

    await stop;
    log('stopping');
  } finally {
    // 6. Stop accepting; give open connections a moment; leave the rules in place.
    ready = false;
    clearInterval(discovery);
    watcher?.stop();
    rmSync(opts.readyFile, { force: true });
    ingress.close();
    for (const l of egress) l.close();
    const deadline = Date.now() + (opts.drainMs ?? 5000);
    while (tracker.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    tracker.closeAll();
    await admin?.close();
  }
}

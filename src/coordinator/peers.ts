/**
 * Peer recovery between Coordinator replicas. A replica that starts with a stored history, or
 * learns that another replica moved `transitions/latest` on (a new manifest, or the first one),
 * holds no secrets for the stored state. It asks its peers' MeshAPI `Recover`, one after the
 * other, until a ready one hands the state over:
 *
 *   - it checks the peer like `set` checks a Coordinator: the peer's aTLS evidence must match the
 *     reference values and a Role "coordinator" policy of the stored (not yet verified) manifest;
 *   - it attests itself with its own evidence (the peer serves only the Coordinator policy of its
 *     current manifest, src/coordinator/meshapi.ts);
 *   - it takes the state only if it holds up against the store (Authority.adoptPeerState: the seed
 *     signs the stored latest transition, the manifest is its last one, the mesh CA is the seed's).
 *
 * Peers come from a list (`--peers host:port,…`, for tests and static setups) or from DNS
 * (`dns:NAME[:PORT]`: every address of NAME, e.g. the headless Service of the StatefulSet, which
 * lists ready pods only). The loop also polls the store, so a ready replica notices a manifest set
 * through another one even when no workload asks it for a certificate.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { networkInterfaces } from 'node:os';
import { dialAtls } from '../atls/client.js';
import { admitPeer } from '../atls/validate.js';
import type { DispatchOptions } from '../attestation/dispatch.js';
import type { Issuer } from '../issuers/issuer.js';
import { decode } from '../util/protobuf.js';
import { callUnary, RpcError, Status } from './api/grpc.js';
import { MESHAPI_SERVICE, MeshRecoverResponseSchema, type MeshRecoverResponse } from './api/messages.js';
import { PeerStateError, type Authority } from './authority.js';
import { coordinatorPolicyHashes, type Address } from './client.js';
import type { Metrics } from './metrics.js';

/** The headless Service of the rendered StatefulSet (src/kube/coordinator-resources.ts): ready replicas only. */
export const PEERS_SERVICE = 'coordinator-peers';
/** Where a replica in the cluster (ConfigMap store) finds its peers when --peers is not given. */
export const IN_CLUSTER_PEERS = `dns:${PEERS_SERVICE}:7777`;
const MESHAPI_DEFAULT_PORT = 7777;

/** The peers to ask now (the list may change: DNS follows the ready pods). */
export type PeerSource = () => Promise<Address[]>;

function parseHostPort(text: string, what: string): Address {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(text);
  const port = m?.[2] === undefined ? MESHAPI_DEFAULT_PORT : Number(m[2]);
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`${what}: ${JSON.stringify(text)} is not HOST[:PORT] (port 1-65535)`);
  return { host: m[1]!, port };
}

/** This machine's addresses, to leave the replica itself out of a DNS answer. */
function ownAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) out.add(i.address);
  return out;
}

/**
 * `--peers` / CONTRAST_PEERS: `host:port,host:port,…` or `dns:NAME[:PORT]`. Entries that are this
 * replica's own MeshAPI (`self`: its port; any of its addresses) are left out. Throws naming the flag.
 */
export function parsePeers(spec: string, self: { meshPort: number }, what = '--peers'): PeerSource {
  const text = spec.trim();
  if (text === '') throw new Error(`${what} is empty: give host:port,… or dns:NAME[:PORT]`);
  const notSelf = (a: Address, own: Set<string>): boolean => !(a.port === self.meshPort && own.has(a.host));
  if (text.startsWith('dns:')) {
    const target = parseHostPort(text.slice(4), what);
    return async () => {
      let found: { address: string }[];
      try {
        found = await lookup(target.host, { all: true });
      } catch {
        return []; // no ready peer published (NXDOMAIN while none is ready)
      }
      const own = ownAddresses();
      return [...new Set(found.map((f) => f.address))]
        .map((host) => ({ host, port: target.port }))
        .filter((a) => notSelf(a, own));
    };
  }
  const list = text.split(',').map((p, i) => parseHostPort(p.trim(), `${what} entry ${i + 1}`));
  return () => Promise.resolve(list.filter((a) => notSelf(a, ownAddresses())));
}

export interface PeerRecoveryOptions {
  authority: Authority;
  issuer: Issuer;
  peers: PeerSource;
  metrics: Metrics;
  log: (msg: string) => void;
  /** Verifier options for the peers' evidence (as for workloads). */
  dispatch?: DispatchOptions;
  /** How often the store is polled and, in recovery, the peers asked again (ms). Default 2000. */
  intervalMs?: number;
  /** Deadline of one Recover call, handshake included (ms). Default 10000. */
  callTimeoutMs?: number;
}

type Outcome = 'adopted' | 'not-ready' | 'failed';

/** One Recover call: the peer attested against the stored manifest, the answer decoded. */
async function askPeer(
  address: Address,
  o: PeerRecoveryOptions,
): Promise<{ response: MeshRecoverResponse; meshKey: KeyObject }> {
  const stored = o.authority.manifest;
  if (!stored) throw new Error('no stored manifest to attest the peer against');
  const policyHashes = coordinatorPolicyHashes(stored.manifest);
  const timeoutMs = o.callTimeoutMs ?? 10_000;
  const conn = await dialAtls({
    ...address,
    issuer: o.issuer,
    timeoutMs,
    verifyServer: (peer, rd) =>
      admitPeer(peer, rd, {
        refs: stored.manifest.ReferenceValues,
        policyHashes,
        what: 'Coordinator policy (Role "coordinator")',
        ...(o.dispatch ?? {}),
      }),
  });
  try {
    const bytes = await callUnary(
      conn.session,
      `/${MESHAPI_SERVICE}/Recover`,
      Buffer.alloc(0),
      conn.metadata,
      timeoutMs,
    );
    const response = decode<MeshRecoverResponse>(MeshRecoverResponseSchema, bytes);
    let meshKey: KeyObject;
    try {
      meshKey = createPrivateKey({ key: response.MeshCAKey.toString('utf8'), format: 'pem' });
    } catch {
      throw new PeerStateError("the peer's MeshCAKey is not a PEM private key");
    }
    return { response, meshKey };
  } finally {
    conn.close();
  }
}

export class PeerRecovery {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** When this replica last lost (or never had) the state: the start of a recovery, for the metric. */
  private behindSince = Date.now();

  constructor(private readonly o: PeerRecoveryOptions) {
    o.authority.onBehind = () => {
      this.behindSince = Date.now();
      this.kick();
    };
    o.authority.askPeers = async () => {
      this.kick();
      await this.running;
      return o.authority.mode === 'ready' ? 'ready' : this.peersAsked === 0 ? 'no-peers' : 'not-yet';
    };
    o.metrics.describe(
      'contrast_coordinator_peer_recoveries_total',
      'Peer recovery attempts of this replica, by result (adopted: a peer handed the state over; not_ready: the peer held none or was itself behind; refused: the peer refused our evidence; failed: unreachable, failed attestation, or a state that did not hold up)',
      'counter',
    );
    o.metrics.gauge(
      'contrast_coordinator_peer_recovery_seconds',
      'How long the last peer recovery of this replica took, from the start (or from falling behind) to ready',
      () => this.lastSeconds,
    );
  }

  private lastSeconds = 0;
  /** How many peers the last round found (none: nobody could hand a state over). */
  private peersAsked = -1;

  start(): void {
    this.kick();
  }

  /** Look now (and then every interval). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.round()
      .catch((err: unknown) => this.o.log(`peer recovery: ${(err as Error).message}`))
      .finally(() => {
        this.running = undefined;
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          this.kick();
          return;
        }
        this.timer = setTimeout(() => this.kick(), this.o.intervalMs ?? 2000);
        this.timer.unref();
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private async round(): Promise<void> {
    const a = this.o.authority;
    // Ready or uninitialised: has the store moved on? (checkStore switches to recovery if so.)
    if (a.mode !== 'recovery' && (await a.checkStore())) return;
    if ((a.mode as string) !== 'recovery') return;
    const peers = await this.o.peers();
    this.peersAsked = peers.length;
    let mayHold = false;
    for (const peer of peers) {
      if (this.stopped || a.mode !== 'recovery') return;
      const outcome = await this.tryPeer(peer);
      if (outcome === 'adopted') return;
      if (outcome === 'failed') mayHold = true; // it may hold the state, but could not hand it over now
    }
    if (a.mode === 'recovery') {
      const phase = mayHold ? 'recovering-from-peer' : 'waiting-for-recover';
      if (a.recoveryPhase !== phase)
        this.o.log(
          phase === 'waiting-for-recover'
            ? `no peer holds the state (${peers.length} asked): waiting for \`kubectl contrast recover\`, and asking the peers again every ${((this.o.intervalMs ?? 2000) / 1000).toFixed(1)} s`
            : 'a peer answered but could not hand the state over yet; asking again',
        );
      a.recoveryPhase = phase;
    }
  }

  private async tryPeer(peer: Address): Promise<Outcome> {
    const where = `${peer.host}:${peer.port}`;
    const count = (result: string) => this.o.metrics.inc('contrast_coordinator_peer_recoveries_total', { result });
    try {
      const { response, meshKey } = await askPeer(peer, this.o);
      const adopted = await this.o.authority.adoptPeerState({
        seed: response.Seed,
        salt: response.Salt,
        meshKey,
        meshCAPem: response.MeshCACert.toString('utf8'),
        intermediatePem: response.IntermediateCert.toString('utf8'),
        manifest: response.LatestManifest,
      });
      if (adopted) {
        count('adopted');
        this.lastSeconds = (Date.now() - this.behindSince) / 1000;
        this.o.log(`recovered the state from peer ${where} in ${this.lastSeconds.toFixed(2)} s; ready`);
      }
      return 'adopted';
    } catch (err) {
      if (err instanceof RpcError && (err.code === Status.FAILED_PRECONDITION || err.code === Status.UNAVAILABLE)) {
        count('not_ready');
        return err.code === Status.UNAVAILABLE ? 'failed' : 'not-ready';
      }
      if (err instanceof RpcError && (err.code === Status.PERMISSION_DENIED || err.code === Status.UNAUTHENTICATED)) {
        count('refused');
        this.o.log(`peer ${where} refused to hand over the state: ${err.message}`);
        return 'failed';
      }
      count('failed');
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET')
        this.o.log(`peer ${where}: ${err instanceof RpcError ? `${err.codeName}: ` : ''}${(err as Error).message}`);
      return code === 'ECONNREFUSED' ? 'not-ready' : 'failed';
    }
  }
}

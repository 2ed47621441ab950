/**
 * The Coordinator's state machine: the manifest history, the seed engine and the CAs.
 *
 *   uninitialised ──SetManifest──▶ ready ◀──Recover── recovery (after a restart with history)
 *                                     ▲ ╲ (another replica moved transitions/latest on)
 *                                     │  ╲
 *                          adoptPeerState ◀── recovery (MeshAPI Recover from a ready peer)
 *
 * In recovery the stored history can be read (verify), but nothing is issued or changed until
 * a seed-share owner sends the seed, or a ready replica of the same deployment hands its state
 * over (src/coordinator/peers.ts); the seed itself is never written to the store.
 *
 * The store is not trusted (whoever administers the cluster can write it). What the Coordinator
 * takes from it is checked: history objects against their hashes, `transitions/latest` against
 * the key derived from the seed (at recovery), `ca/root.pem` strictly parsed and against the
 * seed's root key (and only its canonical encoding is ever served), the seed-share document
 * parsed strictly and served only as what it is, an unverified copy for `recover`.
 *
 * The first SetManifest writes, in this order: the seed-share document, the root certificate,
 * the policies, the manifest, the transition, and last the signed `transitions/latest`. A crash
 * before the last write leaves an uninitialised Coordinator; after it, a history whose seed
 * shares are in the store, so a client that never received the response can still recover.
 */
import { createPublicKey, randomBytes, type KeyObject, type X509Certificate } from 'node:crypto';
import { checkManifestReady, ManifestError, validateManifest, type Manifest, type PolicyEntry } from './manifest.js';
import { derToPem, parsePemCertificates } from '../attestation/certificate.js';
import { createMeshCA, createRootCert, issueMeshCert, ROOT_CN, type CertExtension, type MeshCA } from './ca.js';
import { sha256 } from './crypto.js';
import { spkiDer } from '../atls/binding.js';
import {
  History,
  HistoryError,
  ZERO_HASH,
  transitionHash,
  verifyTransitionSignature,
  type LatestTransition,
} from './history.js';
import { SeedEngine } from './seedengine.js';
import {
  encryptSeedShares,
  seedShareDocumentFromJson,
  seedShareDocumentToJson,
  seedSharesCover,
  type SeedShareDocument,
} from './seedshares.js';
import { RpcError, Status } from './api/grpc.js';
import type { Store } from './store/interface.js';

export type Mode = 'uninitialised' | 'recovery' | 'ready';

/**
 * What a replica reports (readiness probe, metrics, `status`): `recovery` split by whether a
 * ready peer may still hand the state over or only a person's `recover` helps.
 */
export type ReplicaState = 'uninitialised' | 'ready' | 'recovering-from-peer' | 'waiting-for-recover';
export const REPLICA_STATES: readonly ReplicaState[] = [
  'uninitialised',
  'ready',
  'recovering-from-peer',
  'waiting-for-recover',
];

/** What a ready replica hands to a peer that attested with the Coordinator policy (MeshAPI Recover). */
export interface PeerState {
  seed: Buffer;
  salt: Buffer;
  /** The mesh CA key of the current manifest. */
  meshKey: KeyObject;
  meshCAPem: string;
  intermediatePem: string;
  /** The current manifest, the bytes that were set. */
  manifest: Buffer;
}

export const ROOT_CERT_KEY = 'ca/root.pem';
/**
 * Which replica (process) recovered, or is recovering, which latest transition: JSON
 * `{"transition": hex, "instance": hex}`. Two `recover` calls to two waiting replicas would
 * otherwise make two mesh CAs for one manifest; the second replica finds the first one's claim
 * and takes the state over from it instead.
 */
export const RECOVERY_CLAIM_KEY = 'recovery/claim';
const CLAIM_WAIT_MS = 10_000;
/** The seed-share document of the first SetManifest (JSON as seed-shares.json), encrypted to the owners. */
export const SEED_SHARES_KEY = 'seedshares/document';

export interface CurrentManifest {
  raw: Buffer;
  manifest: Manifest;
}

export interface SetManifestResult {
  rootCA: string;
  meshCA: string;
  seedShares?: SeedShareDocument;
}

export interface MeshCertResult {
  meshCA: string;
  certChain: string;
  rootCA: string;
  workloadSecret: Buffer;
}

export interface ManifestsResult {
  manifests: Buffer[];
  policies: Buffer[];
  rootCA: string;
  meshCA: string;
  latest: LatestTransition;
  /**
   * Ready: the document for the Coordinator's own seed. Recovery: the stored document, unverified
   * (only its shape and owner keys are checked); `recover` checks it against the history.
   */
  seedShares?: SeedShareDocument;
}

/**
 * Everything a mesh certificate is issued from, fixed at one moment: a workload's evidence is
 * checked against `manifest` and its certificate issued from the same snapshot, or not at all.
 * A new manifest or a recovery replaces the Authority's snapshot; an old one is then refused.
 */
export class IssuingSnapshot {
  constructor(
    readonly raw: Buffer,
    readonly manifest: Readonly<Manifest>,
    readonly mesh: MeshCA,
    readonly rootPem: string,
    readonly engine: SeedEngine,
  ) {
    Object.freeze(this);
  }
}

interface ReadyState {
  engine: SeedEngine;
  rootPem: string;
  latest: LatestTransition;
  seedShares: SeedShareDocument;
  snapshot: IssuingSnapshot;
}

export interface AuthorityOptions {
  log?: (msg: string) => void;
  /**
   * Replicas that may hand their state over exist (src/coordinator/peers.ts): a replica in
   * recovery reports recovering-from-peer until a round of peers failed. Unset: false, a
   * replica in recovery waits for a person's `recover`.
   */
  peerRecovery?: boolean;
  /** How long `recover` waits for a peer that claimed the recovery of the same state (ms). */
  claimWaitMs?: number;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

function jsonOf(raw: Buffer, what: string): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new RpcError(Status.INVALID_ARGUMENT, `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** A manifest sent with SetManifest: every check `set` makes, as INVALID_ARGUMENT naming the field. */
function parseNewManifest(raw: Buffer): Manifest {
  const json = jsonOf(raw, 'the manifest');
  try {
    const m = validateManifest(json, 'manifest');
    checkManifestReady(m, 'manifest');
    return deepFreeze(m);
  } catch (err) {
    if (err instanceof ManifestError) throw new RpcError(Status.INVALID_ARGUMENT, err.fieldMessage);
    throw new RpcError(Status.INVALID_ARGUMENT, (err as Error).message);
  }
}

/** A manifest from the stored history (it passed parseNewManifest when it was set). */
function parseStoredManifest(raw: Buffer): Manifest {
  try {
    return deepFreeze(validateManifest(JSON.parse(raw.toString('utf8')), 'manifest'));
  } catch (err) {
    const msg = err instanceof ManifestError ? err.fieldMessage : (err as Error).message;
    throw new RpcError(Status.INTERNAL, `the stored manifest ${sha256(raw).toString('hex')} is invalid: ${msg}`);
  }
}

/** A simple async mutex: SetManifest and Recover run one at a time. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => {
      release = r;
    });
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

const RECOVERY_HINT =
  'the Coordinator restarted and waits for recovery: run `kubectl contrast recover` with a seed share';

export class Authority {
  readonly history: History;
  private readonly log: (msg: string) => void;
  private state?: ReadyState;
  /** The latest manifest of the stored history (recovery) or the active one (ready). */
  private current?: CurrentManifest;
  private readonly lock = new Mutex();
  mode: Mode = 'uninitialised';
  /** In recovery: whether peers are still being asked (set by the peer recovery loop). */
  recoveryPhase: 'recovering-from-peer' | 'waiting-for-recover';
  /** Called when this replica learns that the store moved on without it (it then needs its peers). */
  onBehind: (() => void) | undefined;
  /** A stored latest pointer that is not a successor of ours, already logged: not checked again. */
  private ignoredLatest: Buffer | undefined;
  private readonly peerRecovery: boolean;
  /** The read of transitions/latest in flight for checkStore, and the one waiting for it (readLatest). */
  private latestRead: Promise<LatestTransition | undefined> | undefined;
  private nextRead: Promise<LatestTransition | undefined> | undefined;
  /** This process, in recovery claims. */
  private readonly instance = randomBytes(16).toString('hex');
  private readonly claimWaitMs: number;
  /** Ask the peers for the state now (set by src/coordinator/peers.ts); 'no-peers': there are none to ask. */
  askPeers: (() => Promise<'ready' | 'no-peers' | 'not-yet'>) | undefined;

  private constructor(
    readonly store: Store,
    opts: AuthorityOptions,
  ) {
    this.history = new History(store);
    this.log = opts.log ?? ((m) => process.stderr.write(`coordinator: ${m}\n`));
    this.peerRecovery = opts.peerRecovery ?? false;
    this.claimWaitMs = opts.claimWaitMs ?? CLAIM_WAIT_MS;
    this.recoveryPhase = this.peerRecovery ? 'recovering-from-peer' : 'waiting-for-recover';
  }

  get replicaState(): ReplicaState {
    return this.mode === 'recovery' ? this.recoveryPhase : this.mode;
  }

  /** Open the store: an existing history means recovery mode. */
  static async open(store: Store, opts: AuthorityOptions = {}): Promise<Authority> {
    const a = new Authority(store, opts);
    const latest = await a.history.getLatest();
    if (latest) await a.enterRecovery(latest);
    return a;
  }

  /** Forget the secrets (if any) and wait for them, showing the stored history meanwhile. */
  private async enterRecovery(latest: LatestTransition): Promise<void> {
    const entries = await this.history.walk(latest);
    const last = entries.at(-1);
    if (!last) throw new HistoryError('transitions/latest points at an empty chain');
    this.current = { raw: last.manifest, manifest: parseStoredManifest(last.manifest) };
    this.state = undefined;
    this.mode = 'recovery';
  }

  /**
   * Is this replica's state the store's? Uninitialised: the store has no history yet. Ready: the
   * stored latest pointer is the one this replica wrote or verified, or one it ignores (not signed
   * with this deployment's key, or not a successor of its own: a rollback or a fork is neither
   * served nor extended). A validly signed successor means another replica set a manifest: this
   * one drops its state, goes into recovery and calls onBehind (its peers hand the new state over).
   * Returns false in recovery and when this replica just fell behind.
   */
  async checkStore(): Promise<boolean> {
    if (this.mode === 'recovery') return false;
    const state = this.state;
    let stored: LatestTransition | undefined;
    try {
      stored = await this.readLatest();
    } catch (err) {
      if (!(err instanceof HistoryError)) throw err;
      if (!state) throw err;
      stored = undefined;
    }
    if (!state) {
      if (!stored) return true;
      // Another replica set the first manifest.
      const moved = await this.lock.run(async () => {
        if (this.mode !== 'uninitialised') return this.mode !== 'ready';
        await this.enterRecovery(stored);
        return true;
      });
      if (moved) this.behind('another replica set the first manifest');
      return !moved;
    }
    if (!stored || stored.raw.equals(state.latest.raw)) return true;
    if (this.ignoredLatest?.equals(stored.raw)) return true;
    if (!(await this.isSuccessor(state, stored))) {
      this.ignoredLatest = Buffer.from(stored.raw);
      this.log(
        'transitions/latest in the store is not a validly signed successor of the history this replica holds (a rollback, or another deployment): ignored, the chain this replica wrote or verified is served and extended',
      );
      return true;
    }
    const dropped = await this.lock.run(async () => {
      if (this.state !== state) return false;
      await this.enterRecovery(stored);
      return true;
    });
    if (dropped) this.behind('another replica set a new manifest');
    return false;
  }

  /**
   * transitions/latest as the store holds it at some moment after this call. Calls while a read
   * is in flight share the next read, which starts when that one ends: hundreds of concurrent
   * certificate requests cost two reads at a time, not hundreds (the ConfigMap store makes each
   * read an API request), and none is answered from a read that began before it.
   */
  private readLatest(): Promise<LatestTransition | undefined> {
    if (!this.latestRead) return this.startRead();
    this.nextRead ??= this.latestRead.then(
      () => this.startRead(),
      () => this.startRead(),
    );
    return this.nextRead;
  }

  private startRead(): Promise<LatestTransition | undefined> {
    this.nextRead = undefined;
    const p = this.history.getLatest();
    this.latestRead = p;
    const clear = (): void => {
      if (this.latestRead === p) this.latestRead = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  private behind(why: string): void {
    this.recoveryPhase = this.peerRecovery ? 'recovering-from-peer' : 'waiting-for-recover';
    this.log(
      `${why}: not issuing certificates until ${this.peerRecovery ? 'a ready peer hands the state over' : 'a seed-share owner runs `kubectl contrast recover` (no peers configured)'}`,
    );
    this.onBehind?.();
  }

  /** Does `stored` carry this deployment's signature and have our latest transition in its chain? */
  private async isSuccessor(state: ReadyState, stored: LatestTransition): Promise<boolean> {
    if (!verifyTransitionSignature(stored.transitionHash, stored.signature, state.engine.transactionSigningKey))
      return false;
    const ours = state.latest.transitionHash;
    const seen = new Set<string>();
    let hash: Buffer = stored.transitionHash;
    try {
      while (!hash.equals(ZERO_HASH)) {
        if (hash.equals(ours)) return true;
        const hex = hash.toString('hex');
        if (seen.has(hex)) return false;
        seen.add(hex);
        const t = await this.history.getTransition(hash);
        if (!t) return false;
        hash = t.previousTransitionHash;
      }
    } catch (err) {
      if (err instanceof HistoryError) return false;
      throw err;
    }
    return false;
  }

  /** The active manifest (ready) or the stored one waiting for recovery. */
  get manifest(): CurrentManifest | undefined {
    return this.current;
  }

  /** What mesh certificates are issued from now; undefined unless ready. Capture it once per request. */
  snapshot(): IssuingSnapshot | undefined {
    return this.mode === 'ready' ? this.state?.snapshot : undefined;
  }

  /**
   * Read-only: throws what setManifest would throw for this caller before it looks at the
   * request (recovery mode, updates disabled, not a workload owner). The UserAPI calls it
   * before it reads a SetManifest body; setManifest checks again under its lock.
   */
  checkManifestUpdater(caller: KeyObject | undefined): void {
    if (this.mode === 'recovery')
      throw new RpcError(
        Status.FAILED_PRECONDITION,
        'the Coordinator restarted and waits for recovery: run `kubectl contrast recover` before setting a manifest',
      );
    const owners = this.state ? this.current?.manifest.WorkloadOwnerPubKeys : undefined;
    if (!owners) return;
    if (owners.length === 0)
      throw new RpcError(
        Status.PERMISSION_DENIED,
        'the current manifest was generated with --disable-updates: it lists no workload owner keys, so it can never be replaced',
      );
    const callerHex = caller?.asymmetricKeyType === 'ec' ? spkiDer(caller).toString('hex') : undefined;
    if (!callerHex || !owners.includes(callerHex)) {
      throw new RpcError(
        Status.PERMISSION_DENIED,
        `the client key is not a workload owner key of the current manifest; expected one of: ${owners.map(keyDigest).join(', ')} (sha256 of the PKIX public key), got ${callerHex ? keyDigest(callerHex) : 'no ECDSA key'}`,
      );
    }
  }

  /** The stored root certificate, strictly parsed: exactly one PEM block, self-signed, the root's name. */
  private async storedRoot(): Promise<{ pem: string; cert: X509Certificate; bytes: Buffer } | undefined> {
    const bytes = await this.store.get(ROOT_CERT_KEY);
    if (!bytes) return undefined;
    try {
      const cert = parsePemCertificates(bytes, `${ROOT_CERT_KEY} in the store`, { count: 1 })[0]!;
      if (cert.subject !== `CN=${ROOT_CN}` || cert.issuer !== `CN=${ROOT_CN}`)
        throw new Error(`its subject is ${JSON.stringify(cert.subject)}, not CN=${ROOT_CN}`);
      if (!cert.ca) throw new Error('it is not a CA certificate');
      if (!cert.verify(cert.publicKey)) throw new Error('it is not self-signed by its key');
      return { pem: derToPem(cert.raw), cert, bytes };
    } catch (err) {
      this.log(`ignoring ${ROOT_CERT_KEY} from the store: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** The stored seed-share document if it is well-formed and has one share per owner of `m`. */
  private async storedSeedShares(m: Manifest): Promise<SeedShareDocument | undefined> {
    const bytes = await this.store.get(SEED_SHARES_KEY);
    if (!bytes) return undefined;
    try {
      const doc = seedShareDocumentFromJson(bytes.toString('utf8'));
      if (!seedSharesCover(doc, m.SeedshareOwnerPubKeys))
        throw new Error('its shares are not for the SeedshareOwnerPubKeys of the latest manifest');
      return doc;
    } catch (err) {
      this.log(`ignoring ${SEED_SHARES_KEY} from the store: ${(err as Error).message}`);
      return undefined;
    }
  }

  async setManifest(
    raw: Buffer,
    policies: readonly Buffer[],
    caller: KeyObject | undefined,
  ): Promise<SetManifestResult> {
    return this.lock.run(async () => {
      // Everything that can refuse the request runs before the first write; the caller first.
      this.checkManifestUpdater(caller);
      const manifest = parseNewManifest(raw);
      const prior = this.state;
      if (prior) {
        const old = this.current!.manifest;
        if (
          JSON.stringify(old.SeedshareOwnerPubKeys) !== JSON.stringify(manifest.SeedshareOwnerPubKeys) ||
          Boolean(old.DisableRecovery) !== Boolean(manifest.DisableRecovery)
        ) {
          throw new RpcError(
            Status.INVALID_ARGUMENT,
            'manifest.SeedshareOwnerPubKeys: cannot change after the first manifest (nor can DisableRecovery)',
          );
        }
      }
      const byHash = new Map(policies.map((p) => [sha256(p).toString('hex'), p]));
      const hashes = Object.keys(manifest.Policies);
      for (const hash of hashes) {
        if (!byHash.has(hash))
          throw new RpcError(Status.INVALID_ARGUMENT, `the policy ${hash} of the manifest was not sent with it`);
      }
      if (!prior && (await this.history.getLatest())) {
        this.learnLater();
        throw new RpcError(
          Status.ABORTED,
          'the store already holds a manifest history (another replica set one): this replica takes it over from a ready peer, or waits for `kubectl contrast recover`; nothing was changed',
        );
      }
      const engine = prior?.engine ?? SeedEngine.generate();
      const seedShares =
        prior?.seedShares ?? encryptSeedShares(engine.seed, engine.salt, manifest.SeedshareOwnerPubKeys);
      const rootPem = prior?.rootPem ?? canonicalPem(await createRootCert(engine.rootCAKey));
      const mesh = await createMeshCA(engine.rootCAKey, rootPem);

      if (!prior) {
        // Before anything that makes the history exist: a crash after the latest pointer must
        // leave shares that a client that never saw the response can fetch.
        await this.store.set(SEED_SHARES_KEY, Buffer.from(seedShareDocumentToJson(seedShares)));
        await this.store.set(ROOT_CERT_KEY, Buffer.from(rootPem));
      }
      await this.history.setPolicies(hashes.map((h) => byHash.get(h)!));
      const manifestHash = await this.history.setManifest(raw);
      const previous = prior?.latest;
      const tHash = await this.history.setTransition({
        manifestHash,
        previousTransitionHash: previous?.transitionHash ?? ZERO_HASH,
      });
      const latest = await this.history.advanceLatest(previous, tHash, engine.transactionSigningKey);
      if (!latest) {
        this.learnLater();
        throw new RpcError(
          Status.ABORTED,
          prior
            ? 'transitions/latest in the store is not what this Coordinator wrote last (another writer, or a restored backup): nothing was changed; restart the Coordinator and recover it'
            : 'another Coordinator set a manifest concurrently; nothing was changed',
        );
      }
      const snapshot = new IssuingSnapshot(raw, manifest, mesh, rootPem, engine);
      this.state = { engine, rootPem, latest, seedShares, snapshot };
      this.current = { raw, manifest };
      this.mode = 'ready';
      return { rootCA: rootPem, meshCA: mesh.meshCAPem, ...(prior ? {} : { seedShares }) };
    });
  }

  /** After a lost race for transitions/latest: look at the store once the lock is free. */
  private learnLater(): void {
    setImmediate(() => {
      this.checkStore().catch((err: unknown) => this.log(`cannot read the store: ${(err as Error).message}`));
    });
  }

  /**
   * The state a ready peer asks for (MeshAPI Recover), from `snapshot`, the one the peer's
   * evidence was checked against. Only while that snapshot is current and the store has not moved
   * on (a replica that fell behind hands nothing over); UNAVAILABLE otherwise, so the peer retries.
   */
  async peerState(snapshot: IssuingSnapshot): Promise<PeerState> {
    if (snapshot !== this.snapshot() || !(await this.checkStore()) || snapshot !== this.snapshot())
      throw new RpcError(
        Status.UNAVAILABLE,
        'this replica no longer holds the current state (the manifest changed); ask another peer',
      );
    const { engine, mesh, raw } = snapshot;
    return {
      seed: engine.seed,
      salt: engine.salt,
      meshKey: mesh.key,
      meshCAPem: mesh.meshCAPem,
      intermediatePem: mesh.intermediatePem,
      manifest: raw,
    };
  }

  /**
   * Take over the state a ready peer handed over. Nothing of it is taken on trust beyond the
   * attestation of the peer: the seed must sign the stored latest transition, the manifest must be
   * the last one of that chain (the state the peer holds is the one the store records), and the
   * mesh CA certificates must carry the mesh key, the intermediate signed by the seed's root key.
   * Returns false when this replica is ready already (a person's `recover` came first).
   */
  async adoptPeerState(peer: PeerState): Promise<boolean> {
    return this.lock.run(async () => {
      if (this.mode === 'ready') return false;
      let engine: SeedEngine;
      try {
        engine = new SeedEngine(peer.seed, peer.salt);
      } catch (err) {
        throw new PeerStateError(`the peer's seed: ${(err as Error).message}`);
      }
      const latest = await this.history.getLatest();
      if (!latest) throw new PeerStateError('the store holds no history (transitions/latest is gone)');
      if (!verifyTransitionSignature(latest.transitionHash, latest.signature, engine.transactionSigningKey))
        throw new PeerStateError(
          "the peer's seed does not sign the stored latest transition: it belongs to another deployment",
        );
      const entries = await this.history.walk(latest);
      const raw = entries.at(-1)!.manifest;
      if (!raw.equals(peer.manifest))
        throw new PeerStateError(
          "the peer's manifest is not the last one of the stored history (one of the two moved on meanwhile); try again",
        );
      const manifest = parseStoredManifest(raw);
      const stored = await this.storedRoot();
      const rootPem =
        stored && spkiDer(stored.cert.publicKey).equals(spkiDer(engine.rootCAKey))
          ? stored.pem
          : canonicalPem(await createRootCert(engine.rootCAKey));
      const mesh = checkPeerMeshCA(peer, engine.rootCAKey);
      const seedShares = encryptSeedShares(engine.seed, engine.salt, manifest.SeedshareOwnerPubKeys);
      const snapshot = new IssuingSnapshot(raw, manifest, mesh, rootPem, engine);
      this.state = { engine, rootPem, latest, seedShares, snapshot };
      this.current = { raw, manifest };
      this.ignoredLatest = undefined;
      this.mode = 'ready';
      return true;
    });
  }

  async getManifests(): Promise<ManifestsResult> {
    if (this.mode === 'uninitialised')
      throw new RpcError(Status.FAILED_PRECONDITION, 'no manifest has been set yet: run `kubectl contrast set`');
    const state = this.mode === 'ready' ? this.state : undefined;
    // Ready: the chain this Coordinator verified or wrote, whatever the store says now.
    // Recovery: the stored chain, unverified until a seed arrives.
    const latest = state?.latest ?? (await this.history.getLatest());
    if (!latest) throw new RpcError(Status.INTERNAL, 'the history has no latest transition');
    const entries = await this.history.walk(latest);
    const wanted = new Set<string>();
    let last: Manifest | undefined;
    for (const e of entries) {
      last = state && e === entries.at(-1) ? state.snapshot.manifest : parseStoredManifest(e.manifest);
      for (const hash of Object.keys(last.Policies)) wanted.add(hash);
    }
    const hashes = [...wanted];
    const policies = await this.history.getPolicies(hashes);
    policies.forEach((p, i) => {
      if (!p) throw new RpcError(Status.INTERNAL, `policy ${hashes[i]} is missing from the store`);
    });
    const rootCA = state?.rootPem ?? (await this.storedRoot())?.pem ?? '';
    const seedShares = state?.seedShares ?? (last ? await this.storedSeedShares(last) : undefined);
    return {
      manifests: entries.map((e) => e.manifest),
      policies: policies as Buffer[],
      rootCA,
      meshCA: state?.snapshot.mesh.meshCAPem ?? '',
      latest,
      ...(seedShares ? { seedShares } : {}),
    };
  }

  /**
   * A person's recovery with the seed. When another replica claimed the recovery of the same
   * latest transition (RECOVERY_CLAIM_KEY), this one first asks its peers for the state, for up
   * to claimWaitMs, and takes it over from them: one mesh CA per manifest. A claim that no ready
   * peer backs by then (its replica is gone) is replaced, and this replica recovers itself.
   */
  async recover(seed: Buffer, salt: Buffer, caller: KeyObject | undefined): Promise<void> {
    let claimWaited = false;
    for (let round = 0; ; round++) {
      const outcome = await this.recoverOnce(seed, salt, caller, claimWaited);
      if (outcome === 'recovered') return;
      if (round >= 3)
        throw new RpcError(
          Status.ABORTED,
          'other replicas keep claiming the recovery of this state; run `kubectl contrast recover` once, against one replica',
        );
      this.log(
        `recover: another replica claimed the recovery of this state; asking the peers for it (up to ${this.claimWaitMs / 1000} s) instead of making a second mesh CA`,
      );
      if (await this.stateFromPeers()) {
        this.log('recover: took the state over from the peer that recovered it; one mesh CA');
        return;
      }
      claimWaited = true;
    }
  }

  /** Until ready (a peer handed the state over), no peer is left to ask, or claimWaitMs have passed. */
  private async stateFromPeers(): Promise<boolean> {
    const deadline = Date.now() + this.claimWaitMs;
    const ready = (): boolean => this.mode === 'ready'; // read afresh: the peer loop may change it
    for (;;) {
      const asked = ready() ? 'ready' : ((await this.askPeers?.()) ?? 'no-peers');
      if (asked === 'ready' || ready()) return true;
      if (asked === 'no-peers' || Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, Math.min(200, Math.max(1, deadline - Date.now()))));
    }
  }

  /** One attempt: 'claimed-by-another' when another replica's claim for this state stands. */
  private async recoverOnce(
    seed: Buffer,
    salt: Buffer,
    caller: KeyObject | undefined,
    claimWaited: boolean,
  ): Promise<'recovered' | 'claimed-by-another'> {
    return this.lock.run(async () => {
      if (this.mode === 'uninitialised')
        throw new RpcError(
          Status.FAILED_PRECONDITION,
          'the Coordinator has no history to recover: run `kubectl contrast set`',
        );
      if (this.mode === 'ready') {
        if (claimWaited) return 'recovered'; // from a peer, while this call waited for it
        throw new RpcError(
          Status.FAILED_PRECONDITION,
          'the Coordinator is already recovered (or was never restarted); nothing to do',
        );
      }
      // The store as it is now, not as it was at start-up.
      const latest = await this.history.getLatest();
      if (!latest)
        throw new RpcError(
          Status.FAILED_PRECONDITION,
          'the stored history is gone (transitions/latest was deleted); nothing to recover',
        );
      const entries = await this.history.walk(latest);
      const raw = entries.at(-1)!.manifest;
      const manifest = parseStoredManifest(raw);
      const owners = manifest.SeedshareOwnerPubKeys;
      const callerHex =
        caller?.asymmetricKeyType === 'rsa'
          ? publicOf(caller).export({ type: 'pkcs1', format: 'der' }).toString('hex')
          : undefined;
      if (!callerHex || !owners.includes(callerHex)) {
        throw new RpcError(
          Status.PERMISSION_DENIED,
          `the client key is not a seed-share owner key of the manifest; expected one of: ${owners.map(keyDigest).join(', ') || '(none: the manifest disabled recovery)'} (sha256 of the PKCS#1 public key), got ${callerHex ? keyDigest(callerHex) : 'no RSA key'}`,
        );
      }
      let engine: SeedEngine;
      try {
        engine = new SeedEngine(seed, salt);
      } catch (err) {
        throw new RpcError(Status.INVALID_ARGUMENT, (err as Error).message);
      }
      if (!verifyTransitionSignature(latest.transitionHash, latest.signature, engine.transactionSigningKey)) {
        throw new RpcError(
          Status.PERMISSION_DENIED,
          'the seed does not belong to this history (the signature on the latest transition does not verify with the key derived from it): use the seed share of this deployment',
        );
      }
      // Claimed before the mesh CA is made: a replica that loses this race takes the state over.
      const claim = await this.store.get(RECOVERY_CLAIM_KEY);
      const transition = latest.transitionHash.toString('hex');
      if (claim && !claimWaited && this.askPeers && claimedByAnother(claim, transition, this.instance))
        return 'claimed-by-another';
      const mine = Buffer.from(JSON.stringify({ transition, instance: this.instance }));
      if (!(await this.store.compareAndSwap(RECOVERY_CLAIM_KEY, claim, mine))) return 'claimed-by-another';
      const stored = await this.storedRoot();
      let rootPem: string;
      if (stored && spkiDer(stored.cert.publicKey).equals(spkiDer(engine.rootCAKey))) {
        rootPem = stored.pem;
      } else {
        if (stored)
          this.log(`${ROOT_CERT_KEY} in the store is not the root certificate of this seed; issuing it again`);
        rootPem = canonicalPem(await createRootCert(engine.rootCAKey));
      }
      // Shares for this seed, written again: whatever the store held may have been replaced.
      const seedShares = encryptSeedShares(engine.seed, engine.salt, owners);
      const mesh = await createMeshCA(engine.rootCAKey, rootPem);
      if (!stored?.bytes.equals(Buffer.from(rootPem))) await this.store.set(ROOT_CERT_KEY, Buffer.from(rootPem));
      await this.store.set(SEED_SHARES_KEY, Buffer.from(seedShareDocumentToJson(seedShares)));
      const snapshot = new IssuingSnapshot(raw, manifest, mesh, rootPem, engine);
      this.state = { engine, rootPem, latest, seedShares, snapshot };
      this.current = { raw, manifest };
      this.ignoredLatest = undefined;
      this.mode = 'ready';
      return 'recovered';
    });
  }

  /**
   * Issue a mesh certificate for a workload whose evidence reported `policyHash`, from the
   * snapshot that evidence was checked against. If the manifest changed (or the Coordinator
   * recovered) since, the snapshot is stale: the old manifest may have been replaced to revoke
   * exactly this policy, and its mesh CA is no longer the one workloads trust, so nothing is
   * issued and the caller retries against the current manifest (UNAVAILABLE).
   */
  async newMeshCert(
    snapshot: IssuingSnapshot,
    peerKey: KeyObject,
    policyHash: string,
    extensions: CertExtension[] = [],
  ): Promise<MeshCertResult> {
    if (this.mode === 'recovery') throw new RpcError(Status.FAILED_PRECONDITION, RECOVERY_HINT);
    if (snapshot !== this.snapshot()) {
      throw new RpcError(
        Status.UNAVAILABLE,
        'the manifest changed while the workload was being attested; retry, its evidence will be checked against the new manifest',
      );
    }
    // Another replica may have set a manifest (perhaps to revoke this very policy) since.
    if (!(await this.checkStore()) || snapshot !== this.snapshot()) {
      throw new RpcError(
        Status.UNAVAILABLE,
        'another replica set a new manifest; this replica takes it over from its peers; retry',
      );
    }
    const { manifest, mesh, rootPem, engine } = snapshot;
    const entry: PolicyEntry | undefined = Object.hasOwn(manifest.Policies, policyHash)
      ? manifest.Policies[policyHash]
      : undefined;
    if (!entry) {
      throw new RpcError(
        Status.PERMISSION_DENIED,
        `policy hash ${policyHash} not found in manifest: the pod runs a policy the current manifest does not list; run \`kubectl contrast generate\` and \`set\` again`,
      );
    }
    const leaf = await issueMeshCert(mesh, {
      publicKey: peerKey,
      sans: entry.SANs,
      ...(entry.WorkloadSecretID !== undefined ? { workloadSecretId: entry.WorkloadSecretID } : {}),
      extensions,
    });
    return {
      meshCA: mesh.meshCAPem,
      certChain: leaf + mesh.intermediatePem,
      rootCA: rootPem,
      workloadSecret: entry.WorkloadSecretID ? engine.workloadSecret(entry.WorkloadSecretID) : Buffer.alloc(0),
    };
  }

  /** The transition hash a client can recompute from the returned manifests. */
  static transitionOf(manifestBytes: Buffer, previous: Buffer): Buffer {
    return transitionHash({ manifestHash: sha256(manifestBytes), previousTransitionHash: previous });
  }
}

/** A peer's state that does not hold up (its message names what); the peer is not asked again this round. */
/** A recovery claim of another process for `transition` (anything unreadable claims nothing). */
function claimedByAnother(claim: Buffer, transition: string, instance: string): boolean {
  try {
    const c = JSON.parse(claim.toString('utf8')) as { transition?: unknown; instance?: unknown };
    return c.transition === transition && typeof c.instance === 'string' && c.instance !== instance;
  } catch {
    return false;
  }
}

export class PeerStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeerStateError';
  }
}

/** The peer's mesh CA: a P-384 key, its self-signed CA certificate, and the intermediate signed by the root key. */
function checkPeerMeshCA(peer: PeerState, rootKey: KeyObject): MeshCA {
  const key = peer.meshKey;
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1')
    throw new PeerStateError("the peer's mesh CA key is not a P-384 private key");
  const pub = spkiDer(key);
  const one = (pemText: string, what: string): X509Certificate => {
    try {
      return parsePemCertificates(Buffer.from(pemText), `the peer's ${what}`, { count: 1 })[0]!;
    } catch (err) {
      throw new PeerStateError((err as Error).message);
    }
  };
  const meshCA = one(peer.meshCAPem, 'mesh CA certificate');
  const intermediate = one(peer.intermediatePem, 'intermediate certificate');
  if (!spkiDer(meshCA.publicKey).equals(pub) || !meshCA.ca || !meshCA.verify(meshCA.publicKey))
    throw new PeerStateError("the peer's mesh CA certificate is not a CA self-signed by its mesh key");
  if (!spkiDer(intermediate.publicKey).equals(pub) || !intermediate.ca || !intermediate.verify(publicOf(rootKey)))
    throw new PeerStateError(
      "the peer's intermediate certificate is not a CA for its mesh key signed by the seed's root key",
    );
  return { key, meshCAPem: derToPem(meshCA.raw), intermediatePem: derToPem(intermediate.raw) };
}

function publicOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

/** One certificate, re-encoded from its DER: the only form in which a root is served. */
function canonicalPem(pemText: string): string {
  return derToPem(parsePemCertificates(Buffer.from(pemText), 'the root certificate', { count: 1 })[0]!.raw);
}

function keyDigest(hex: string): string {
  return sha256(Buffer.from(hex, 'hex')).toString('hex').slice(0, 16);
}

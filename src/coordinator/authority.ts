/**
 * The Coordinator's state machine: the manifest history, the seed engine and the CAs.
 *
 *   uninitialised ──SetManifest──▶ ready ◀──Recover── recovery (after a restart with history)
 *
 * In recovery the stored history can be read (verify), but nothing is issued or changed until
 * a seed-share owner sends the seed; the seed itself is never written to the store.
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
import { createPublicKey, type KeyObject, type X509Certificate } from 'node:crypto';
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

export const ROOT_CERT_KEY = 'ca/root.pem';
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

  private constructor(
    readonly store: Store,
    opts: AuthorityOptions,
  ) {
    this.history = new History(store);
    this.log = opts.log ?? ((m) => process.stderr.write(`coordinator: ${m}\n`));
  }

  /** Open the store: an existing history means recovery mode. */
  static async open(store: Store, opts: AuthorityOptions = {}): Promise<Authority> {
    const a = new Authority(store, opts);
    const latest = await a.history.getLatest();
    if (latest) {
      a.mode = 'recovery';
      const entries = await a.history.walk(latest);
      const last = entries.at(-1);
      if (!last) throw new HistoryError('transitions/latest points at an empty chain');
      a.current = { raw: last.manifest, manifest: parseStoredManifest(last.manifest) };
    }
    return a;
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
        throw new RpcError(
          Status.ABORTED,
          'the store already holds a manifest history (another Coordinator set one): restart this Coordinator, then `kubectl contrast recover`',
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

  async recover(seed: Buffer, salt: Buffer, caller: KeyObject | undefined): Promise<void> {
    return this.lock.run(async () => {
      if (this.mode === 'uninitialised')
        throw new RpcError(
          Status.FAILED_PRECONDITION,
          'the Coordinator has no history to recover: run `kubectl contrast set`',
        );
      if (this.mode === 'ready')
        throw new RpcError(
          Status.FAILED_PRECONDITION,
          'the Coordinator is already recovered (or was never restarted); nothing to do',
        );
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
      this.mode = 'ready';
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

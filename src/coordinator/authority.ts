/**
 * The Coordinator's state machine: the manifest history, the seed engine and the CAs.
 *
 *   uninitialised ──SetManifest──▶ ready ◀──Recover── recovery (after a restart with history)
 *
 * In recovery the stored history can be read (verify), but nothing is issued or changed until
 * a seed-share owner sends the seed; the seed itself is never written to the store.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { validateManifest, checkNoInsecureMix, type Manifest, type PolicyEntry } from '../workspace/manifest.js';
import { createMeshCA, createRootCert, issueMeshCert, type CertExtension, type MeshCA } from './ca.js';
import { sha256, x509 } from './crypto.js';
import { History, HistoryError, ZERO_HASH, transitionHash, type LatestTransition } from './history.js';
import { SeedEngine } from './seedengine.js';
import { encryptSeedShares, type SeedShareDocument } from './seedshares.js';
import { RpcError, Status } from './api/grpc.js';
import type { Store } from './store/interface.js';

export type Mode = 'uninitialised' | 'recovery' | 'ready';

const ROOT_CERT_KEY = 'ca/root.pem';

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

function parseManifest(raw: Buffer): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new RpcError(Status.INVALID_ARGUMENT, `the manifest is not valid JSON: ${(err as Error).message}`);
  }
  try {
    const m = validateManifest(json, 'manifest');
    checkNoInsecureMix(m, 'manifest');
    return m;
  } catch (err) {
    throw new RpcError(Status.INVALID_ARGUMENT, (err as Error).message);
  }
}

/** A simple async mutex: SetManifest and Recover run one at a time. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => { release = r; });
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

export class Authority {
  readonly history: History;
  private engine?: SeedEngine;
  private rootPem?: string;
  private mesh?: MeshCA;
  private current?: CurrentManifest;
  private readonly lock = new Mutex();
  mode: Mode = 'uninitialised';

  private constructor(readonly store: Store) {
    this.history = new History(store);
  }

  /** Open the store: an existing history means recovery mode. */
  static async open(store: Store): Promise<Authority> {
    const a = new Authority(store);
    const latest = await a.history.getLatest();
    if (latest) {
      a.mode = 'recovery';
      const entries = await a.history.walk(latest);
      const last = entries.at(-1)!;
      a.current = { raw: last.manifest, manifest: parseManifest(last.manifest) };
      a.rootPem = (await store.get(ROOT_CERT_KEY))?.toString('utf8');
    }
    return a;
  }

  get manifest(): CurrentManifest | undefined {
    return this.current;
  }

  private requireReady(): { engine: SeedEngine; mesh: MeshCA; rootPem: string; current: CurrentManifest } {
    if (this.mode === 'recovery') throw new RpcError(Status.FAILED_PRECONDITION, 'the Coordinator restarted and waits for recovery: run `kubectl contrast recover` with a seed share');
    if (!this.engine || !this.mesh || !this.rootPem || !this.current) throw new RpcError(Status.FAILED_PRECONDITION, 'no manifest has been set yet: run `kubectl contrast set`');
    return { engine: this.engine, mesh: this.mesh, rootPem: this.rootPem, current: this.current };
  }

  async setManifest(raw: Buffer, policies: readonly Buffer[], caller: KeyObject | undefined): Promise<SetManifestResult> {
    return this.lock.run(async () => {
      if (this.mode === 'recovery') throw new RpcError(Status.FAILED_PRECONDITION, 'the Coordinator restarted and waits for recovery: run `kubectl contrast recover` before setting a manifest');
      const manifest = parseManifest(raw);
      const first = this.mode === 'uninitialised';
      if (!first) {
        const old = this.current!.manifest;
        if (old.WorkloadOwnerPubKeys.length === 0) {
          throw new RpcError(Status.PERMISSION_DENIED, 'the current manifest was generated with --disable-updates: it lists no workload owner keys, so it can never be replaced');
        }
        const callerHex = caller?.asymmetricKeyType === 'ec' ? publicOf(caller).export({ type: 'spki', format: 'der' }).toString('hex') : undefined;
        if (!callerHex || !old.WorkloadOwnerPubKeys.includes(callerHex)) {
          throw new RpcError(Status.PERMISSION_DENIED, `the client key is not a workload owner key of the current manifest; expected one of: ${old.WorkloadOwnerPubKeys.map(keyDigest).join(', ')} (sha256 of the PKIX public key), got ${callerHex ? keyDigest(callerHex) : 'no ECDSA key'}`);
        }
        if (JSON.stringify(old.SeedshareOwnerPubKeys) !== JSON.stringify(manifest.SeedshareOwnerPubKeys)) {
          throw new RpcError(Status.INVALID_ARGUMENT, 'SeedshareOwnerPubKeys cannot change after the first manifest');
        }
      }
      const byHash = new Map(policies.map((p) => [sha256(p).toString('hex'), p]));
      for (const hash of Object.keys(manifest.Policies)) {
        if (!byHash.has(hash)) throw new RpcError(Status.INVALID_ARGUMENT, `the policy ${hash} of the manifest was not sent with it`);
      }
      const engine = first ? SeedEngine.generate() : this.engine!;
      let rootPem = this.rootPem;
      if (first) {
        rootPem = await createRootCert(engine.rootCAKey);
        await this.store.set(ROOT_CERT_KEY, Buffer.from(rootPem));
      }
      for (const hash of Object.keys(manifest.Policies)) await this.history.setPolicy(byHash.get(hash)!);
      const manifestHash = await this.history.setManifest(raw);
      const latest = await this.history.getLatest(engine.transactionSigningKey);
      const prev = latest?.transitionHash ?? ZERO_HASH;
      if (first && latest) throw new RpcError(Status.ABORTED, 'another Coordinator set a manifest concurrently');
      const tHash = await this.history.setTransition({ manifestHash, previousTransitionHash: prev });
      if (!await this.history.setLatest(latest, tHash, engine.transactionSigningKey)) {
        throw new RpcError(Status.ABORTED, 'the history changed concurrently; retry');
      }
      const mesh = await createMeshCA(engine.rootCAKey, rootPem!);
      this.engine = engine;
      this.rootPem = rootPem;
      this.mesh = mesh;
      this.current = { raw, manifest };
      this.mode = 'ready';
      return {
        rootCA: rootPem!,
        meshCA: mesh.meshCAPem,
        ...(first ? { seedShares: encryptSeedShares(engine.seed, engine.salt, manifest.SeedshareOwnerPubKeys) } : {}),
      };
    });
  }

  async getManifests(): Promise<{ manifests: Buffer[]; policies: Buffer[]; rootCA: string; meshCA: string; latest: LatestTransition }> {
    if (this.mode === 'uninitialised') throw new RpcError(Status.FAILED_PRECONDITION, 'no manifest has been set yet: run `kubectl contrast set`');
    const latest = await this.history.getLatest(this.engine?.transactionSigningKey);
    if (!latest) throw new RpcError(Status.INTERNAL, 'the history has no latest transition');
    const entries = await this.history.walk(latest);
    const policies = new Map<string, Buffer>();
    for (const e of entries) {
      const m = parseManifest(e.manifest);
      for (const hash of Object.keys(m.Policies)) {
        if (policies.has(hash)) continue;
        const p = await this.history.getPolicy(hash);
        if (!p) throw new RpcError(Status.INTERNAL, `policy ${hash} is missing from the store`);
        policies.set(hash, p);
      }
    }
    return { manifests: entries.map((e) => e.manifest), policies: [...policies.values()], rootCA: this.rootPem ?? '', meshCA: this.mesh?.meshCAPem ?? '', latest };
  }

  async recover(seed: Buffer, salt: Buffer, caller: KeyObject | undefined): Promise<void> {
    return this.lock.run(async () => {
      if (this.mode === 'uninitialised') throw new RpcError(Status.FAILED_PRECONDITION, 'the Coordinator has no history to recover: run `kubectl contrast set`');
      if (this.mode === 'ready') throw new RpcError(Status.FAILED_PRECONDITION, 'the Coordinator is already recovered (or was never restarted); nothing to do');
      const owners = this.current!.manifest.SeedshareOwnerPubKeys;
      const callerHex = caller?.asymmetricKeyType === 'rsa' ? publicOf(caller).export({ type: 'pkcs1', format: 'der' }).toString('hex') : undefined;
      if (!callerHex || !owners.includes(callerHex)) {
        throw new RpcError(Status.PERMISSION_DENIED, `the client key is not a seed-share owner key of the manifest; expected one of: ${owners.map(keyDigest).join(', ')} (sha256 of the PKCS#1 public key), got ${callerHex ? keyDigest(callerHex) : 'no RSA key'}`);
      }
      let engine: SeedEngine;
      try {
        engine = new SeedEngine(seed, salt);
      } catch (err) {
        throw new RpcError(Status.INVALID_ARGUMENT, (err as Error).message);
      }
      try {
        await this.history.getLatest(engine.transactionSigningKey);
      } catch (err) {
        if (err instanceof HistoryError) throw new RpcError(Status.PERMISSION_DENIED, 'the seed does not belong to this history (the signature on the latest transition does not verify with the key derived from it): use the seed share of this deployment');
        throw err;
      }
      let rootPem = this.rootPem;
      if (!rootPem || !(await rootMatches(rootPem, engine.rootCAKey))) {
        rootPem = await createRootCert(engine.rootCAKey);
        await this.store.set(ROOT_CERT_KEY, Buffer.from(rootPem));
      }
      this.mesh = await createMeshCA(engine.rootCAKey, rootPem);
      this.engine = engine;
      this.rootPem = rootPem;
      this.mode = 'ready';
    });
  }

  /** Issue a mesh certificate for a workload whose evidence reported `policyHash`. */
  async newMeshCert(peerKey: KeyObject, policyHash: string, extensions: CertExtension[] = []): Promise<MeshCertResult> {
    const { engine, mesh, rootPem, current } = this.requireReady();
    const entry: PolicyEntry | undefined = current.manifest.Policies[policyHash];
    if (!entry) {
      throw new RpcError(Status.PERMISSION_DENIED, `policy hash ${policyHash} not found in manifest: the pod runs a policy the current manifest does not list; run \`kubectl contrast generate\` and \`set\` again`);
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

function keyDigest(hex: string): string {
  return sha256(Buffer.from(hex, 'hex')).toString('hex').slice(0, 16);
}

async function rootMatches(pem: string, key: KeyObject): Promise<boolean> {
  try {
    const cert = new x509.X509Certificate(pem);
    const der = Buffer.from(cert.publicKey.rawData);
    if (!der.equals(publicOf(key).export({ type: 'spki', format: 'der' }))) return false;
    return await cert.verify({ signatureOnly: true });
  } catch {
    return false;
  }
}

/**
 * Talking to the Coordinator's UserAPI from the CLI: dial with aTLS, attest the Coordinator
 * against the manifest (reference values + a policy hash with Role "coordinator"), call one
 * method, and retry while the Coordinator is still starting.
 *
 * `UserApiClient` owns the wire protocol (protobuf messages, the history's chain check); the
 * commands `set`, `verify` and `recover` get typed results from it. `callUserApi` is the raw
 * call below it (bytes in, bytes out), kept for tests and benchmarks that craft requests.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { AttestationError } from '../attestation/errors.js';
import { dialAtls } from '../atls/client.js';
import { admitPeer, type Admission } from '../atls/validate.js';
import { admissionDispatch } from './collateral.js';
import type { Manifest } from './manifest.js';
import { UserError, UsageError } from '../util/errors.js';
import { decode, encode } from '../util/protobuf.js';
import { callUnary, RpcError, Status } from './api/grpc.js';
import {
  GetManifestsResponseSchema,
  RecoverRequestSchema,
  SetManifestRequestSchema,
  SetManifestResponseSchema,
  USERAPI_SERVICE,
  type GetManifestsResponse,
  type LatestTransitionMsg,
  type SeedShareDocumentMsg,
  type SetManifestResponse,
} from './api/messages.js';
import { chainHash } from './history.js';

export interface Address {
  host: string;
  port: number;
}

export function parseAddress(text: string, defaultPort = 1313): Address {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new UsageError(`--coordinator must be HOST:PORT, got ${JSON.stringify(text)}`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new UsageError(`--coordinator: invalid port in ${JSON.stringify(text)}`);
  return { host: m[1]!, port };
}

export function coordinatorPolicyHashes(m: Manifest): string[] {
  return Object.entries(m.Policies)
    .filter(([, e]) => e.Role === 'coordinator')
    .map(([h]) => h);
}

export interface CallOptions {
  address: Address;
  manifest: Manifest;
  clientKey: KeyObject;
  /** The Coordinator policy hashes to accept. Unset: every entry with Role "coordinator" in `manifest`. */
  coordinatorPolicyHashes?: readonly string[];
  /** Keep retrying while the Coordinator is unreachable or starting (ms, default 0 = once). */
  retryForMs?: number;
  retryIntervalMs?: number;
  onRetry?: (err: Error) => void;
}

function retryable(err: unknown): boolean {
  if (err instanceof RpcError) return err.code === Status.UNAVAILABLE || err.code === Status.DEADLINE_EXCEEDED;
  const code = (err as NodeJS.ErrnoException).code;
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(
      code ?? '',
    ) || /socket hang up|timed out|disconnected before secure/.test((err as Error).message ?? '')
  );
}

/** Turn transport and gRPC errors into messages that say what to do. */
export function explain(err: unknown, method: string, address: Address): Error {
  const where = `${address.host}:${address.port}`;
  if (err instanceof AttestationError) {
    const hint =
      err.check === 'policy.hash'
        ? ''
        : '. Check ReferenceValues in manifest.json (a mismatched field is named above with the value the hardware reported)';
    return new UserError(`the Coordinator at ${where} failed attestation: ${err.message}${hint}`);
  }
  if (err instanceof RpcError) {
    // The RpcError stays the cause, so callers can tell e.g. an uninitialised Coordinator apart.
    const cause = { cause: err };
    if (err.code === Status.PERMISSION_DENIED) {
      const hint = /workload owner key/.test(err.message)
        ? '; use --workload-owner-key with a key listed in WorkloadOwnerPubKeys of the manifest that is active now (see `kubectl contrast verify`)'
        : /seed-share owner key/.test(err.message)
          ? '; use --seedshare-owner-key with a key listed in SeedshareOwnerPubKeys'
          : '';
      return new UserError(`${method} was refused by the Coordinator: ${err.message}${hint}`, {}, cause);
    }
    if (err.code === Status.FAILED_PRECONDITION) return new UserError(`${method}: ${err.message}`, {}, cause);
    if (err.code === Status.UNIMPLEMENTED && /unknown (method|service)/.test(err.message)) {
      // An attested Coordinator whose service there is not the UserAPI: its MeshAPI.
      return new UserError(
        `${where} is a Coordinator (it passed attestation), but not its UserAPI: this is probably the MeshAPI (port 7777), where the Initializers ask for certificates; set, verify and recover talk to the UserAPI, port 1313`,
        {},
        cause,
      );
    }
    return new UserError(`${method} failed (${err.codeName}): ${err.message}`, {}, cause);
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED')
    return new UserError(
      `cannot reach the Coordinator at ${where} (connection refused); is it running and is the address (e.g. a port-forward) right?`,
    );
  if (code === 'EPROTO' || /wrong version number|packet length too long/i.test((err as Error).message ?? '')) {
    return new UserError(
      `${where} does not speak TLS (${(err as Error).message.split('\n')[0]!.replace(/^.*:(wrong version number|packet length too long).*$/, '$1')}): it is probably the Coordinator's probes and metrics port (9102, plain HTTP) or another HTTP service; set, verify and recover talk to the UserAPI, port 1313`,
    );
  }
  return new UserError(`${method} at ${where} failed: ${(err as Error).message}`);
}

export interface UserCallResult {
  response: Buffer;
  coordinator: Admission;
}

export async function callUserApi(
  method: 'SetManifest' | 'GetManifests' | 'Recover',
  request: Uint8Array,
  opts: CallOptions,
): Promise<UserCallResult> {
  const policyHashes = opts.coordinatorPolicyHashes ?? coordinatorPolicyHashes(opts.manifest);
  if (policyHashes.length === 0) {
    throw new UserError(
      'the manifest has no Coordinator policy (an entry with "Role": "coordinator"), so the Coordinator cannot be attested; include the Coordinator\'s resources when running `kubectl contrast generate`',
    );
  }
  const deadline = Date.now() + (opts.retryForMs ?? 0);
  const dispatch = admissionDispatch();
  for (;;) {
    try {
      const conn = await dialAtls<Admission>({
        ...opts.address,
        clientKey: opts.clientKey,
        verifyServer: (peer, rd) =>
          admitPeer(peer, rd, {
            refs: opts.manifest.ReferenceValues,
            policyHashes,
            what: 'Coordinator policy (Role "coordinator")',
            ...dispatch,
          }),
      });
      try {
        const response = await callUnary(conn.session, `/${USERAPI_SERVICE}/${method}`, request, conn.metadata);
        return { response, coordinator: conn.serverResult! };
      } finally {
        conn.close();
      }
    } catch (err) {
      if (retryable(err) && Date.now() < deadline) {
        opts.onRetry?.(err as Error);
        await new Promise((r) => setTimeout(r, opts.retryIntervalMs ?? 1000));
        continue;
      }
      throw explain(err, method, opts.address);
    }
  }
}

/** The manifest history a Coordinator serves (GetManifests), its chain checked. */
export interface ManifestHistory {
  /** Every manifest set so far, oldest first, as the bytes that were sent. */
  manifests: Buffer[];
  /** The policies (initdata TOML) of the manifests. */
  policies: Buffer[];
  rootCA: Buffer;
  /** Empty while the Coordinator waits for recovery. */
  meshCA: Buffer;
  latestTransition: LatestTransitionMsg;
  /** The seed-share document the Coordinator's store holds (our extension, field 100). */
  seedSharesDoc?: SeedShareDocumentMsg;
  /** False while the Coordinator waits for recovery: the history is then as stored, unverified. */
  ready: boolean;
  /** Who answered: the attested Coordinator (platform, policy hash). */
  coordinator: Admission;
}

export interface SetManifestResult {
  rootCA: Buffer;
  meshCA: Buffer;
  /** Sent on the first set only (when recovery is enabled). */
  seedSharesDoc?: SeedShareDocumentMsg;
  coordinator: Admission;
}

/** Where and how to reach one Coordinator, and what to attest it against. */
export interface UserApiClientOptions {
  address: Address;
  /** The manifest whose reference values and Coordinator policies the Coordinator must match. */
  manifest: Manifest;
  /** Accept only these Coordinator policy hashes. Unset: every Role "coordinator" entry of `manifest`. */
  coordinatorPolicyHashes?: readonly string[];
  /** Default of every call: keep retrying while the Coordinator is unreachable (ms). Unset: try once. */
  retryForMs?: number;
  /** Told about every retry. Unset: retries are silent. */
  onRetry?: (err: Error) => void;
}

/** The UserAPI (SetManifest, GetManifests, Recover) of one attested Coordinator. */
export class UserApiClient {
  constructor(private readonly opts: UserApiClientOptions) {}

  get address(): Address {
    return this.opts.address;
  }

  private call(
    method: 'SetManifest' | 'GetManifests' | 'Recover',
    request: Uint8Array,
    clientKey: KeyObject,
    retryForMs: number | undefined,
  ): Promise<UserCallResult> {
    const { address, manifest, coordinatorPolicyHashes: hashes, onRetry } = this.opts;
    return callUserApi(method, request, {
      address,
      manifest,
      clientKey,
      retryForMs: retryForMs ?? this.opts.retryForMs ?? 0,
      ...(hashes !== undefined ? { coordinatorPolicyHashes: hashes } : {}),
      ...(onRetry !== undefined ? { onRetry } : {}),
    });
  }

  /**
   * The history, with its chain checked against the latest transition the Coordinator reports;
   * undefined when no manifest has been set yet. Anyone may ask (a throw-away client key).
   */
  async getManifests(opts: { retryForMs?: number } = {}): Promise<ManifestHistory | undefined> {
    let call: UserCallResult;
    try {
      call = await this.call('GetManifests', Buffer.alloc(0), ephemeralClientKey(), opts.retryForMs);
    } catch (err) {
      if (err instanceof UserError && err.cause instanceof RpcError && err.cause.code === Status.FAILED_PRECONDITION)
        return undefined;
      throw err;
    }
    const res = decode<GetManifestsResponse>(GetManifestsResponseSchema, call.response);
    if (res.Manifests.length === 0) throw new UserError('the Coordinator returned an empty history');
    const chain = chainHash(res.Manifests);
    if (!res.LatestTransition || !chain.equals(res.LatestTransition.TransitionHash)) {
      throw new UserError(
        `the manifests the Coordinator returned do not form its latest transition (recomputed ${chain.toString('hex')}, Coordinator says ${res.LatestTransition?.TransitionHash.toString('hex') ?? 'nothing'})`,
      );
    }
    return {
      manifests: res.Manifests,
      policies: res.Policies,
      rootCA: res.RootCA,
      meshCA: res.MeshCA,
      latestTransition: res.LatestTransition,
      ...(res.SeedSharesDoc ? { seedSharesDoc: res.SeedSharesDoc } : {}),
      ready: res.MeshCA.length > 0,
      coordinator: call.coordinator,
    };
  }

  /** Set `manifest` (the exact bytes) with its policies; `clientKey` must be a workload owner key of the active manifest (any key for a first set). */
  async setManifest(
    manifest: Uint8Array,
    policies: readonly Uint8Array[],
    clientKey: KeyObject,
    opts: { retryForMs?: number } = {},
  ): Promise<SetManifestResult> {
    const request = encode(SetManifestRequestSchema, {
      Manifest: Buffer.from(manifest),
      Policies: policies.map((p) => Buffer.from(p)),
    });
    const call = await this.call('SetManifest', request, clientKey, opts.retryForMs);
    const res = decode<SetManifestResponse>(SetManifestResponseSchema, call.response);
    return {
      rootCA: res.RootCA,
      meshCA: res.MeshCA,
      ...(res.SeedSharesDoc && res.SeedSharesDoc.SeedShares.length > 0 ? { seedSharesDoc: res.SeedSharesDoc } : {}),
      coordinator: call.coordinator,
    };
  }

  /** Hand the seed (decrypted from a seed share) to a Coordinator that waits for recovery; `clientKey` is the seed-share owner key. */
  async recover(
    seed: Uint8Array,
    salt: Uint8Array,
    force: boolean,
    clientKey: KeyObject,
    opts: { retryForMs?: number } = {},
  ): Promise<{ coordinator: Admission }> {
    const call = await this.call(
      'Recover',
      encode(RecoverRequestSchema, { Seed: Buffer.from(seed), Salt: Buffer.from(salt), Force: force }),
      clientKey,
      opts.retryForMs,
    );
    return { coordinator: call.coordinator };
  }
}

/** A client key for calls that need no identity (GetManifests). */
export function ephemeralClientKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
}

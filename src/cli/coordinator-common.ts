/** Pieces shared by `set`, `verify` and `recover`. */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { callUserApi, type Address } from '../coordinator/client.js';
import { RpcError, Status } from '../coordinator/api/grpc.js';
import { decode } from '../util/protobuf.js';
import { GetManifestsResponseSchema, type GetManifestsResponse } from '../coordinator/api/messages.js';
import { chainHash } from '../coordinator/history.js';
import type { Admission } from '../atls/validate.js';
import { LATEST_TRANSITION_FILE } from './latest-transition.js';
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Argv } from 'yargs';
import { readManifest } from '../workspace/manifest.js';
import type { Manifest } from '../coordinator/manifest.js';
import { UserError, type InputLocation } from '../util/errors.js';
import { readUserText } from '../util/files.js';
import { readInputs } from '../resources/inputs.js';
import { carriedPolicies, decodeCarried } from '../generate/carried-policies.js';
import { allResources, parseInput } from '../generate/read-step.js';
import { parseAddress } from '../coordinator/client.js';
import { manifestPath, type WorkspaceArgs } from './workspace-options.js';
import { connectFromArgs, kubeOptions, type KubeArgs } from './kube-options.js';

export interface CoordinatorArgs extends WorkspaceArgs, KubeArgs {
  coordinator?: string;
}

/** -c HOST:PORT, or the kubectl flags to find the Coordinator in the cluster (src/kube/discovery.ts). */
export function coordinatorOption<T>(y: Argv<T>): Argv<T & { coordinator?: string } & KubeArgs> {
  return kubeOptions(y.option('coordinator', { alias: 'c', type: 'string', describe: 'Address of the Coordinator\'s UserAPI, HOST:PORT (port 1313); default: find Service "coordinator" in the namespace (-n) through the cluster' })) as Argv<T & { coordinator?: string } & KubeArgs>;
}

export interface HistoryArgs {
  'accept-history': boolean;
}

/** --accept-history: the way out of the rollback check (see src/cli/latest-transition.ts). */
export function acceptHistoryOption<T>(y: Argv<T>): Argv<T & HistoryArgs> {
  return y.option('accept-history', {
    type: 'boolean', default: false,
    describe: `Trust the history the Coordinator serves even when it lacks the transition remembered in <workspace>/${LATEST_TRANSITION_FILE} (after restoring or replacing the Coordinator's state on purpose)`,
  }) as Argv<T & HistoryArgs>;
}

export function latestTransitionPath(argv: WorkspaceArgs): string {
  return workspacePath(argv, LATEST_TRANSITION_FILE);
}

export interface ServedHistory {
  res: GetManifestsResponse;
  coordinator: Admission;
  /** false while the Coordinator waits for recovery: the history is then as stored, unverified. */
  ready: boolean;
}

/**
 * GetManifests from an attested Coordinator, with the chain checked against the latest
 * transition it reports; undefined when no manifest has been set yet.
 */
export async function fetchHistory(addr: Address, manifest: Manifest, opts: { retryForMs?: number; onRetry?: (err: Error) => void } = {}): Promise<ServedHistory | undefined> {
  let call;
  try {
    call = await callUserApi('GetManifests', Buffer.alloc(0), { address: addr, manifest, clientKey: ephemeralKey(), ...opts });
  } catch (err) {
    if (err instanceof UserError && err.cause instanceof RpcError && err.cause.code === Status.FAILED_PRECONDITION) return undefined;
    throw err;
  }
  const res = decode<GetManifestsResponse>(GetManifestsResponseSchema, call.response);
  if (res.Manifests.length === 0) throw new UserError('the Coordinator returned an empty history');
  const chain = chainHash(res.Manifests);
  if (!res.LatestTransition || !chain.equals(res.LatestTransition.TransitionHash)) {
    throw new UserError(`the manifests the Coordinator returned do not form its latest transition (recomputed ${chain.toString('hex')}, Coordinator says ${res.LatestTransition?.TransitionHash.toString('hex') ?? 'nothing'})`);
  }
  return { res, coordinator: call.coordinator, ready: res.MeshCA.length > 0 };
}

export function workspacePath(argv: WorkspaceArgs, file: string): string {
  return isAbsolute(file) ? file : join(argv['workspace-dir'], file);
}

export interface LocalManifest {
  path: string;
  raw: Buffer;
  manifest: Manifest;
}

export function loadLocalManifest(argv: WorkspaceArgs): LocalManifest {
  const path = manifestPath(argv);
  const manifest = readManifest(path);
  if (!manifest) throw new UserError('no manifest.json: run `kubectl contrast generate` first (or pass -m/--manifest)', { file: path });
  return { path, raw: readFileSync(path), manifest };
}

export async function address(argv: { coordinator?: string } & KubeArgs): Promise<Address> {
  if (argv.coordinator !== undefined) return parseAddress(argv.coordinator);
  const [{ findCoordinator }, cluster] = await Promise.all([import('../kube/discovery.js'), connectFromArgs(argv)]);
  const endpoint = await findCoordinator(cluster);
  process.stderr.write(`Coordinator: ${endpoint.host}:${endpoint.port} (${endpoint.via === 'port-forward' ? 'port-forward through the port-forwarder pod' : 'load balancer of Service coordinator'})\n`);
  return { host: endpoint.host, port: endpoint.port };
}

/** A private key file (PEM), checked for its type. */
export function loadPrivateKey(path: string, kind: 'ec' | 'rsa', what: string): KeyObject {
  const text = readUserText(path, `the ${what}`);
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    throw new UserError(`the ${what} is not a PEM private key`, { file: path });
  }
  if (key.asymmetricKeyType !== kind) throw new UserError(`the ${what} must be an ${kind === 'ec' ? 'ECDSA' : 'RSA'} key, found ${key.asymmetricKeyType}`, { file: path });
  return key;
}

export function ephemeralKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
}

export interface ResourcePolicy {
  hash: string;
  toml: Buffer;
  /** The resource that carries it. */
  location: InputLocation;
}

/** Every initdata policy carried by the resources, keyed by policy hash. */
export async function readResourcePolicies(paths: string[]): Promise<Map<string, ResourcePolicy>> {
  const policies = new Map<string, ResourcePolicy>();
  for (const p of carriedPolicies(allResources((await readInputs(paths)).map(parseInput)))) {
    const decoded = decodeCarried(p);
    policies.set(decoded.hash, { hash: decoded.hash, toml: Buffer.from(decoded.toml, 'utf8'), location: p.resource.location });
  }
  return policies;
}

/** The resources' policies must be exactly the manifest's (upstream's checkPoliciesMatchManifest). */
export function checkPoliciesMatchManifest(policies: Map<string, ResourcePolicy>, manifest: Manifest, manifestFile: string): void {
  for (const p of policies.values()) {
    if (!manifest.Policies[p.hash]) throw new UserError(`its policy ${p.hash} is not in ${manifestFile}`, p.location, { nextStep: 'run `kubectl contrast generate` on these resources again' });
  }
  for (const hash of Object.keys(manifest.Policies)) {
    if (!policies.has(hash)) throw new UserError(`lists policy ${hash} but none of the given resources carries it`, { file: manifestFile }, { nextStep: 'pass all resources that `generate` wrote (or regenerate)' });
  }
}

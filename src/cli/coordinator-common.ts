/** Pieces shared by `set`, `verify` and `recover`: flags, the workspace, reaching the Coordinator. */
import { INJECTED_IMAGES, loadImageReplacements, replaceImage } from '../platforms/images.js';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Argv } from 'yargs';
import { stringify } from 'yaml';
import type { Admission } from '../atls/validate.js';
import {
  coordinatorPolicyHashes,
  parseAddress,
  UserApiClient,
  type Address,
  type ManifestHistory,
} from '../coordinator/client.js';
import { readManifest } from '../workspace/manifest.js';
import type { Manifest } from '../coordinator/manifest.js';
import { UsageError, UserError, type InputLocation } from '../util/errors.js';
import { debug } from '../util/log.js';
import { readUserText } from '../util/files.js';
import { readInputs } from '../resources/inputs.js';
import { carriedPolicies, decodeCarried } from '../generate/carried-policies.js';
import { allResources, parseInput } from '../generate/read-step.js';
import { LATEST_TRANSITION_FILE } from './latest-transition.js';
import { manifestPath, type WorkspaceArgs } from './workspace-options.js';
import { connectFromArgs, kubeOptions, parseDuration, type KubeArgs } from './kube-options.js';

export interface CoordinatorArgs extends WorkspaceArgs, KubeArgs {
  coordinator?: string;
  'pod-running-timeout': string;
  'image-replacements'?: string;
  'retry-for': number;
  /** Upstream v1.2's flag: the Coordinator policy hash to pin (must be a Role "coordinator" entry of the manifest). */
  'coordinator-policy-hash'?: string;
  output?: string;
}

/** kubectl's default for --pod-running-timeout (port-forward, attach, exec, logs). */
const POD_RUNNING_TIMEOUT = '1m';

/** -c HOST:PORT, or the kubectl flags to find the Coordinator in the cluster (src/kube/discovery.ts). */
export function coordinatorOption<T>(y: Argv<T>): Argv<T & Omit<CoordinatorArgs, keyof WorkspaceArgs | 'retry-for'>> {
  return kubeOptions(
    y
      .option('coordinator', {
        alias: 'c',
        type: 'string',
        requiresArg: true,
        describe:
          'Address of the Coordinator\'s UserAPI, HOST:PORT (port 1313); default: find Service "coordinator" in the namespace (-n) through the cluster',
      })
      .option('pod-running-timeout', {
        type: 'string',
        default: POD_RUNNING_TIMEOUT,
        requiresArg: true,
        describe:
          'Without -c and a load balancer: how long to wait for the port-forwarder pod to run (as kubectl port-forward; also bounded by --retry-for and --request-timeout)',
      })
      .option('image-replacements', {
        type: 'string',
        requiresArg: true,
        describe: 'File of "source=target" lines that replace the port-forwarder image (a mirror, as for generate)',
      }),
  ) as Argv<T & Omit<CoordinatorArgs, keyof WorkspaceArgs | 'retry-for'>>;
}

/**
 * Flags every Coordinator command shares besides the address: `-o json|yaml` (a summary on
 * standard output) and upstream v1.2's `--coordinator-policy-hash`.
 */
export function resultOptions<T>(y: Argv<T>): Argv<T & Pick<CoordinatorArgs, 'output' | 'coordinator-policy-hash'>> {
  return y
    .option('output', {
      alias: 'o',
      type: 'string',
      choices: ['json', 'yaml'],
      describe: 'Print a summary of what was done and written as JSON or YAML on standard output',
    })
    .option('coordinator-policy-hash', {
      type: 'string',
      requiresArg: true,
      describe:
        'Accept only this Coordinator policy hash; it must be a "Role": "coordinator" entry of the manifest, where the hash comes from anyway (upstream v1.2 flag)',
    }) as Argv<T & Pick<CoordinatorArgs, 'output' | 'coordinator-policy-hash'>>;
}

/** The client options that --coordinator-policy-hash asks for. */
export function pinnedCoordinator(
  argv: Pick<CoordinatorArgs, 'coordinator-policy-hash'>,
  local: LocalManifest,
): { coordinatorPolicyHashes?: readonly string[] } {
  const pinned = argv['coordinator-policy-hash'];
  if (pinned === undefined) return {};
  const known = coordinatorPolicyHashes(local.manifest);
  if (pinned.trim() === '') {
    throw new UsageError(
      'an empty --coordinator-policy-hash does not turn the check off here: kubectl-contrast always attests the Coordinator against the "Role": "coordinator" entries of manifest.json; leave the flag out',
    );
  }
  const hash = pinned.trim().toLowerCase();
  if (!known.includes(hash)) {
    throw new UserError(
      `--coordinator-policy-hash ${pinned} is not a Coordinator policy of the manifest (${known.length > 0 ? known.join(', ') : 'it has none'})`,
      { file: local.path },
      {
        hint: 'kubectl-contrast takes the Coordinator\'s policy hash from the manifest ("Role": "coordinator", written by generate), as newer upstream releases do: leave the flag out, or regenerate with the Coordinator\'s resources',
      },
    );
  }
  return { coordinatorPolicyHashes: [hash] };
}

/** The -o summary on standard output (nothing without -o). */
export function printResult(argv: Pick<CoordinatorArgs, 'output'>, value: Record<string, unknown>): void {
  if (argv.output === 'json') process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else if (argv.output === 'yaml') process.stdout.write(stringify(value, { lineWidth: 0 }));
}

/** Who answered, for -o. */
export function coordinatorSummary(a: Admission): Record<string, string> {
  return { tee: a.tee, policyHash: a.policyHash, measurement: a.measurement };
}

export interface HistoryArgs {
  'accept-history': boolean;
}

/** --accept-history: the way out of the rollback check (see src/cli/latest-transition.ts). */
export function acceptHistoryOption<T>(y: Argv<T>): Argv<T & HistoryArgs> {
  return y.option('accept-history', {
    type: 'boolean',
    default: false,
    describe: `Trust the history the Coordinator serves even when it lacks the transition remembered in <workspace>/${LATEST_TRANSITION_FILE} (after restoring or replacing the Coordinator's state on purpose)`,
  }) as Argv<T & HistoryArgs>;
}

export function latestTransitionPath(argv: WorkspaceArgs): string {
  return workspacePath(argv, LATEST_TRANSITION_FILE);
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
  if (!manifest)
    throw new UserError('no manifest.json: run `kubectl contrast generate` first (or pass -m/--manifest)', {
      file: path,
    });
  return { path, raw: readFileSync(path), manifest };
}

/**
 * The longest wait for the port-forwarder pod: --pod-running-timeout, shortened by --retry-for
 * (the time the command keeps trying to reach the Coordinator at all) and --request-timeout.
 */
export function podWaitMs(
  argv: Pick<CoordinatorArgs, 'pod-running-timeout' | 'retry-for' | 'request-timeout'>,
): number {
  let podMs: number;
  try {
    podMs = parseDuration(argv['pod-running-timeout']);
  } catch {
    throw new UsageError(
      `invalid --pod-running-timeout "${argv['pod-running-timeout']}": use a duration such as 30s, 1m, 2m30s`,
    );
  }
  if (podMs <= 0) throw new UsageError('--pod-running-timeout must be more than zero');
  const bounds = [podMs, argv['retry-for'] * 1000, parseDuration(argv['request-timeout'] ?? '0')].filter(
    (ms) => ms > 0,
  );
  return Math.min(...bounds);
}

/** Progress lines for the user: standard error. */
const note = (line: string) => process.stderr.write(`${line}\n`);

/**
 * Run `use` with a UserAPI client of the Coordinator the flags name: -c, else found through the
 * cluster. A port-forwarder pod this run started is removed at the end, also after a failure
 * and on Ctrl-C.
 */
export async function withCoordinator<T>(
  argv: CoordinatorArgs,
  manifest: Manifest,
  use: (client: UserApiClient) => Promise<T>,
  clientOptions: { coordinatorPolicyHashes?: readonly string[] } = {},
): Promise<T> {
  const onRetry = (err: Error) => note(`Waiting for the Coordinator: ${err.message}`);
  const make = (address: Address) => {
    const hashes = clientOptions.coordinatorPolicyHashes ?? coordinatorPolicyHashes(manifest);
    debug(
      `UserAPI at ${address.host}:${address.port}: aTLS, the Coordinator must report one of ${hashes.length} Coordinator policy hash(es) (${hashes.map((h) => h.slice(0, 16)).join(', ')}) and match ReferenceValues of the manifest; retrying for ${argv['retry-for']} s`,
    );
    return new UserApiClient({ address, manifest, retryForMs: argv['retry-for'] * 1000, onRetry, ...clientOptions });
  };
  if (argv.coordinator !== undefined) return use(make(parseAddress(argv.coordinator)));

  const readyTimeoutMs = podWaitMs(argv);
  const image = replaceImage(INJECTED_IMAGES.portForwarder, loadImageReplacements(argv['image-replacements']));
  const [{ findCoordinator }, cluster] = await Promise.all([import('../kube/discovery.js'), connectFromArgs(argv)]);
  const abort = new AbortController();
  let close: (() => Promise<void>) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (!close) {
      abort.abort(); // the wait ends, removes the pod, and the command fails
      return;
    }
    void close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const endpoint = await findCoordinator(cluster, { readyTimeoutMs, onProgress: note, signal: abort.signal, image });
    close = () => endpoint.close();
    note(
      `Coordinator: ${endpoint.host}:${endpoint.port} (${endpoint.via === 'port-forward' ? 'port-forward through the port-forwarder pod' : 'load balancer of Service coordinator'})`,
    );
    return await use(make({ host: endpoint.host, port: endpoint.port }));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await close?.();
  }
}

/** The history the Coordinator serves; a UserError when none has been set yet. */
export async function requireHistory(
  client: UserApiClient,
  what: string,
  retryForMs?: number,
): Promise<ManifestHistory> {
  const history = await client.getManifests(retryForMs === undefined ? {} : { retryForMs });
  if (!history)
    throw new UserError(`${what}: no manifest has been set yet`, {}, { nextStep: 'run `kubectl contrast set`' });
  return history;
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
  if (key.asymmetricKeyType !== kind)
    throw new UserError(
      `the ${what} must be an ${kind === 'ec' ? 'ECDSA' : 'RSA'} key, found ${key.asymmetricKeyType}`,
      { file: path },
    );
  return key;
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
    policies.set(decoded.hash, {
      hash: decoded.hash,
      toml: Buffer.from(decoded.toml, 'utf8'),
      location: p.resource.location,
    });
  }
  return policies;
}

/** The resources' policies must be exactly the manifest's (upstream's checkPoliciesMatchManifest). */
export function checkPoliciesMatchManifest(
  policies: Map<string, ResourcePolicy>,
  manifest: Manifest,
  manifestFile: string,
): void {
  for (const p of policies.values()) {
    if (!manifest.Policies[p.hash])
      throw new UserError(`its policy ${p.hash} is not in ${manifestFile}`, p.location, {
        nextStep: 'run `kubectl contrast generate` on these resources again',
      });
  }
  for (const hash of Object.keys(manifest.Policies)) {
    if (!policies.has(hash))
      throw new UserError(
        `lists policy ${hash} but none of the given resources carries it`,
        { file: manifestFile },
        { nextStep: 'pass all resources that `generate` wrote (or regenerate)' },
      );
  }
}

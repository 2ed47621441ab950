/**
 * The simulated runtime's stand-in for the Kata agent, run by the handler's runc wrapper before
 * `runc create` and `runc delete` (src/runtime/install-node.ts writes the wrapper).
 *
 * On the pod sandbox's create it decodes the pod's initdata (the annotation the CRI plugin copies
 * into every OCI spec of the pod), checks CreateSandboxRequest against its policy, and registers
 * the pod with the node's simulated attestation device, whose host data is the initdata digest.
 * On each container's create it builds the requests Kata's runtime would send the agent for
 * that OCI spec, evaluates them in order on the pod's policy with the agent state the earlier
 * requests left, and only when all are allowed lets runc create the container, with the pod's
 * device directory bind-mounted read-only (after the check: like the TEE's device in a Kata VM,
 * it is not part of the agent request). A denial fails `runc create` with the policy's reason in
 * runc's log, which the shim turns into the pod's event.
 *
 * Kubelet creates the containers of one pod one after another, so a pod's record is read and
 * written by one hook at a time.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { INITDATA_ANNOTATION, decodeInitDataAnnotation, POLICY_KEY } from '../policy/initdata.js';
import { PolicyEngine } from '../policy/engine.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { SIM_DEVICE_MOUNT } from '../attestation/simulated.js';
import {
  CONTAINER_ID,
  containerKind,
  containerRequests,
  parseOciSpec,
  sandboxIdOf,
  sandboxInfo,
  sandboxRequest,
  type OciSpec,
} from './agent-requests.js';
import { registerSandbox, unregisterSandbox } from './sim-device.js';
import { parseRuncArgs, type RuncInvocation } from './runc-args.js';

/** What the hook keeps per pod between invocations, under `<state-dir>/<sandbox id>/`. */
interface PodRecord {
  initdata: string;
  policy: string;
  state: Record<string, unknown>;
  deviceDir: string;
  /** The sandbox's /dev/shm size, which its containers' requests name. */
  shmSize: number;
}

export interface SimAgentOptions {
  /** The hook's own state (one directory per pod). */
  stateDir: string;
  /** The simulated device daemon's state directory (its control socket). */
  deviceStateDir: string;
}

/** A denial or a broken input: the message is what the pod's event shows. */
export class SimAgentDenied extends Error {
  override name = 'SimAgentDenied';
}

/** The id runc is given; a pod's records are kept under it, so it is checked before any path. */
function requireId(value: string | undefined): string {
  if (value === undefined || !CONTAINER_ID.test(value))
    throw new SimAgentDenied(
      `container id ${JSON.stringify(value ?? '')} is not a containerd id (64 lower-case hex digits)`,
    );
  return value;
}

const recordDir = (opts: SimAgentOptions, sandboxId: string) => join(opts.stateDir, sandboxId);
const recordPath = (opts: SimAgentOptions, sandboxId: string) => join(recordDir(opts, sandboxId), 'pod.json');

function readRecord(opts: SimAgentOptions, sandboxId: string): PodRecord | undefined {
  const path = recordPath(opts, sandboxId);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as PodRecord;
}

function writeRecord(opts: SimAgentOptions, sandboxId: string, record: PodRecord): void {
  mkdirSync(recordDir(opts, sandboxId), { recursive: true, mode: 0o700 });
  writeFileAtomic(recordPath(opts, sandboxId), `${JSON.stringify(record)}\n`, { mode: 0o600 });
}

/** Evaluate requests in order; the first denial ends it. Returns the agent state afterwards. */
function enforce(
  policy: string,
  state: Record<string, unknown>,
  requests: readonly { name: string; body: unknown }[],
  what: string,
): Record<string, unknown> {
  const engine = PolicyEngine.forPolicyText(policy, state);
  try {
    for (const r of requests) {
      const result = engine.evaluate(r.name, r.body);
      if (!result.allowed)
        throw new SimAgentDenied(
          `${what}: ${r.name} is blocked by the pod's policy: ${result.reason ?? result.failures.join('; ')}`,
        );
    }
    return engine.pstate;
  } finally {
    engine.dispose();
  }
}

function readSpec(bundle: string): { spec: OciSpec; path: string } {
  const path = join(bundle, 'config.json');
  return { spec: parseOciSpec(readFileSync(path), path), path };
}

async function createSandbox(opts: SimAgentOptions, id: string, spec: OciSpec): Promise<void> {
  const annotation = spec.annotations?.[INITDATA_ANNOTATION];
  if (annotation === undefined)
    throw new SimAgentDenied(
      `the pod has no ${INITDATA_ANNOTATION} annotation: a confidential pod needs the policy that \`kubectl contrast generate\` writes`,
    );
  let decoded;
  try {
    decoded = decodeInitDataAnnotation(annotation);
  } catch (err) {
    throw new SimAgentDenied(`the pod's ${INITDATA_ANNOTATION} annotation: ${(err as Error).message}`);
  }
  const policy = decoded.init.data[POLICY_KEY];
  if (policy === undefined) throw new SimAgentDenied(`the pod's initdata has no ${POLICY_KEY}`);
  const hostData = Buffer.from(decoded.hash, 'hex');
  if (hostData.length !== 32)
    throw new SimAgentDenied(
      `the pod's initdata uses ${decoded.init.algorithm}; the simulated device's host data is a SHA-256 digest`,
    );
  const { shmSize } = sandboxInfo(spec);
  // The runtime creates the sandbox, then its pause container like any other.
  const requests = [sandboxRequest(spec), ...containerRequests(spec, { sandboxId: id, containerId: id, shmSize })];
  const state = enforce(policy, {}, requests, 'pod sandbox');
  const deviceDir = await registerSandbox(opts.deviceStateDir, id, hostData);
  writeRecord(opts, id, { initdata: annotation, policy, state, deviceDir, shmSize });
}

function createContainer(opts: SimAgentOptions, id: string, spec: OciSpec, specPath: string): void {
  const annotations = spec.annotations ?? {};
  const sandboxId = sandboxIdOf(spec);
  const record = readRecord(opts, sandboxId);
  if (!record)
    throw new SimAgentDenied(`container ${id}: its pod sandbox ${sandboxId} was not created by this runtime`);
  if (annotations[INITDATA_ANNOTATION] !== record.initdata)
    throw new SimAgentDenied(`container ${id}: its ${INITDATA_ANNOTATION} differs from the pod sandbox's`);
  const requests = containerRequests(spec, { sandboxId, containerId: id, shmSize: record.shmSize });
  // The name the pod spec gives the container, as the user knows it.
  const name = annotations['io.kubernetes.cri.container-name'] ?? id;
  record.state = enforce(record.policy, record.state, requests, `container ${name}`);
  writeRecord(opts, sandboxId, record);
  spec.mounts = [
    ...(spec.mounts ?? []),
    {
      destination: SIM_DEVICE_MOUNT,
      type: 'bind',
      source: record.deviceDir,
      options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'],
    },
  ];
  writeFileAtomic(specPath, JSON.stringify(spec));
}

async function deleteSandbox(opts: SimAgentOptions, id: string): Promise<void> {
  if (!CONTAINER_ID.test(id) || !existsSync(recordPath(opts, id))) return;
  await unregisterSandbox(opts.deviceStateDir, id);
  rmSync(recordDir(opts, id), { recursive: true, force: true });
}

async function handle(inv: RuncInvocation, opts: SimAgentOptions): Promise<void> {
  if (inv.subcommand === 'delete') return deleteSandbox(opts, inv.id ?? '');
  if (inv.subcommand !== 'create') return;
  const id = requireId(inv.id);
  // The requests name the bundle where a node with containerd's default state directory has it
  // (what the policy expects), not where this node keeps it.
  const { spec, path } = readSpec(resolve(inv.bundle ?? '.'));
  return containerKind(spec) === 'sandbox' ? createSandbox(opts, id, spec) : createContainer(opts, id, spec, path);
}

/** runc's log line (logrus JSON, as runc writes it): the shim shows the last error's `msg`. */
function logError(inv: RuncInvocation, message: string): void {
  if (inv.logFile === undefined) return;
  const line =
    inv.logFormat === 'json'
      ? JSON.stringify({ level: 'error', msg: message, time: new Date().toISOString() })
      : `time="${new Date().toISOString()}" level=error msg=${JSON.stringify(message)}`;
  try {
    appendFileSync(inv.logFile, `${line}\n`);
  } catch {
    // The log is where the reason would go; stderr (below) still has it.
  }
}

/**
 * Run the hook for one runc command line. Returns the exit code: 0 lets the wrapper run runc,
 * anything else fails the runc command with the reason logged. Deleting never fails: a pod
 * must always be removable.
 */
export async function runSimAgent(argv: readonly string[], opts: SimAgentOptions): Promise<number> {
  let inv: RuncInvocation;
  try {
    inv = parseRuncArgs(argv);
  } catch (err) {
    process.stderr.write(`kubectl-contrast sim-agent: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    await handle(inv, opts);
    return 0;
  } catch (err) {
    // A file of the node that is not there or not readable is the node's problem, not a bug.
    const known =
      err instanceof SimAgentDenied ||
      err instanceof UserError ||
      typeof (err as NodeJS.ErrnoException).code === 'string';
    const message = `kubectl-contrast insecure-sim: ${known ? (err as Error).message : `internal error: ${(err as Error).stack ?? String(err)}`}`;
    process.stderr.write(`${message}\n`);
    if (inv.subcommand === 'delete') return 0;
    logError(inv, message);
    return 1;
  }
}

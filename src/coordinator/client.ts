/**
 * Talking to the Coordinator's UserAPI from the CLI: dial with aTLS, attest the Coordinator
 * against the manifest (reference values + a policy hash with Role "coordinator"), call one
 * method, and retry while the Coordinator is still starting.
 */
import type { KeyObject } from 'node:crypto';
import { AttestationError } from '../attestation/errors.js';
import { dialAtls } from '../atls/client.js';
import { admitPeer, type Admission } from '../atls/validate.js';
import { snpCollateral } from './collateral.js';
import type { Manifest } from './manifest.js';
import { UserError, UsageError } from '../util/errors.js';
import { callUnary, RpcError, Status } from './api/grpc.js';
import { USERAPI_SERVICE } from './api/messages.js';

export interface Address {
  host: string;
  port: number;
}

export function parseAddress(text: string, defaultPort = 1313): Address {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new UsageError(`--coordinator must be HOST:PORT, got ${JSON.stringify(text)}`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--coordinator: invalid port in ${JSON.stringify(text)}`);
  return { host: m[1]!, port };
}

export function coordinatorPolicyHashes(m: Manifest): string[] {
  return Object.entries(m.Policies).filter(([, e]) => e.Role === 'coordinator').map(([h]) => h);
}

export interface CallOptions {
  address: Address;
  manifest: Manifest;
  clientKey: KeyObject;
  /** Keep retrying while the Coordinator is unreachable or starting (ms, default 0 = once). */
  retryForMs?: number;
  retryIntervalMs?: number;
  onRetry?: (err: Error) => void;
}

function retryable(err: unknown): boolean {
  if (err instanceof RpcError) return err.code === Status.UNAVAILABLE || err.code === Status.DEADLINE_EXCEEDED;
  const code = (err as NodeJS.ErrnoException).code;
  return ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code ?? '')
    || /socket hang up|timed out|disconnected before secure/.test((err as Error).message ?? '');
}

/** Turn transport and gRPC errors into messages that say what to do. */
export function explain(err: unknown, method: string, address: Address): Error {
  const where = `${address.host}:${address.port}`;
  if (err instanceof AttestationError) {
    const hint = err.check === 'policy.hash' ? ''
      : '. Check ReferenceValues in manifest.json (a mismatched field is named above with the value the hardware reported)';
    return new UserError(`the Coordinator at ${where} failed attestation: ${err.message}${hint}`);
  }
  if (err instanceof RpcError) {
    // The RpcError stays the cause, so callers can tell e.g. an uninitialised Coordinator apart.
    const cause = { cause: err };
    if (err.code === Status.PERMISSION_DENIED) {
      const hint = /workload owner key/.test(err.message) ? '; use --workload-owner-key with a key listed in WorkloadOwnerPubKeys of the manifest that is active now (see `kubectl contrast verify`)'
        : /seed-share owner key/.test(err.message) ? '; use --seedshare-owner-key with a key listed in SeedshareOwnerPubKeys' : '';
      return new UserError(`${method} was refused by the Coordinator: ${err.message}${hint}`, {}, cause);
    }
    if (err.code === Status.FAILED_PRECONDITION) return new UserError(`${method}: ${err.message}`, {}, cause);
    return new UserError(`${method} failed (${err.codeName}): ${err.message}`, {}, cause);
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return new UserError(`cannot reach the Coordinator at ${where} (connection refused); is it running and is the address (e.g. a port-forward) right?`);
  return new UserError(`${method} at ${where} failed: ${(err as Error).message}`);
}

export interface UserCallResult {
  response: Buffer;
  coordinator: Admission;
}

export async function callUserApi(method: 'SetManifest' | 'GetManifests' | 'Recover', request: Uint8Array, opts: CallOptions): Promise<UserCallResult> {
  const policyHashes = coordinatorPolicyHashes(opts.manifest);
  if (policyHashes.length === 0) {
    throw new UserError('the manifest has no Coordinator policy (an entry with "Role": "coordinator"), so the Coordinator cannot be attested; include the Coordinator\'s resources when running `kubectl contrast generate`');
  }
  const deadline = Date.now() + (opts.retryForMs ?? 0);
  const collateral = snpCollateral();
  for (;;) {
    try {
      const conn = await dialAtls<Admission>({
        ...opts.address,
        clientKey: opts.clientKey,
        verifyServer: (peer, rd) => admitPeer(peer, rd, { refs: opts.manifest.ReferenceValues, policyHashes, what: 'Coordinator policy (Role "coordinator")', snp: { collateral } }),
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

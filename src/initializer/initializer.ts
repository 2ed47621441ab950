/**
 * The Initializer: runs as the first init container of a confidential pod. It generates a
 * key, attests itself to the Coordinator's MeshAPI over aTLS, receives its mesh certificate
 * and workload secret, and writes them where the workload and the service mesh read them:
 *
 *   <out>/tls-config/mesh-ca.pem, certChain.pem, coordinator-root-ca.pem   (0444)
 *   <out>/tls-config/key.pem  (PKCS#8)                                     (0400)
 *   <out>/secrets/workload-secret-seed  (hex, only when non-empty)         (0400)
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { dialAtls } from '../atls/client.js';
import type { Issuer } from '../issuers/issuer.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { callUnary, RpcError } from '../coordinator/api/grpc.js';
import { decode } from '../util/protobuf.js';
import { MESHAPI_SERVICE, NewMeshCertResponseSchema, type NewMeshCertResponse } from '../coordinator/api/messages.js';

export interface InitializerOptions {
  host: string;
  port: number;
  issuer: Issuer;
  outDir: string;
  /** Give up after this long (ms); default: never. */
  timeoutMs?: number;
  /** First retry delay; doubles up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  log?: (msg: string) => void;
}

export interface InitializerResult {
  attempts: number;
  files: string[];
}

export async function requestMeshCert(
  opts: Pick<InitializerOptions, 'host' | 'port' | 'issuer'>,
  key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
): Promise<NewMeshCertResponse & { key: typeof key }> {
  const conn = await dialAtls({
    host: opts.host,
    port: opts.port,
    clientKey: key,
    verifyServer: null,
    issuer: opts.issuer,
    timeoutMs: 120_000,
  });
  try {
    const res = await callUnary(
      conn.session,
      `/${MESHAPI_SERVICE}/NewMeshCert`,
      Buffer.alloc(0),
      conn.metadata,
      120_000,
    );
    return { ...decode<NewMeshCertResponse>(NewMeshCertResponseSchema, res), key };
  } finally {
    conn.close();
  }
}

export async function runInitializer(opts: InitializerOptions): Promise<InitializerResult> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`initializer: ${m}\n`));
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  let delay = opts.retryMs ?? 1000;
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await requestMeshCert(opts, key);
      const tls = join(opts.outDir, 'tls-config');
      const secrets = join(opts.outDir, 'secrets');
      mkdirSync(tls, { recursive: true });
      const files: string[] = [];
      const put = (path: string, data: string | Buffer, mode: number): void => {
        writeFileAtomic(path, data, { mode });
        files.push(path);
      };
      put(join(tls, 'mesh-ca.pem'), res.MeshCACert, 0o444);
      put(join(tls, 'certChain.pem'), res.CertChain, 0o444);
      put(join(tls, 'coordinator-root-ca.pem'), res.RootCACert, 0o444);
      put(join(tls, 'key.pem'), key.export({ type: 'pkcs8', format: 'pem' }) as string, 0o400);
      if (res.WorkloadSecret.length > 0) {
        mkdirSync(secrets, { recursive: true });
        put(join(secrets, 'workload-secret-seed'), res.WorkloadSecret.toString('hex'), 0o400);
      }
      log(
        `received the mesh certificate after ${attempt} attempt(s); wrote ${files.length} files under ${opts.outDir}`,
      );
      return { attempts: attempt, files };
    } catch (err) {
      const msg = err instanceof RpcError ? `${err.codeName}: ${err.message}` : (err as Error).message;
      if (Date.now() + delay > deadline)
        throw new Error(`giving up after ${attempt} attempt(s): ${msg}`, { cause: err });
      log(`attempt ${attempt} failed (${msg}); retrying in ${(delay / 1000).toFixed(1)} s`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, opts.maxRetryMs ?? 10_000);
    }
  }
}

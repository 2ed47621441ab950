/**
 * Mesh credentials for the tests, made by the Coordinator's own CA code (the hierarchy the
 * Initializer receives): a root, a mesh CA with its intermediate, workload certificates, and
 * the four files of `/contrast/tls-config`.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/util/atomic-write.js';
import { createMeshCA, createRootCert, issueMeshCert, type MeshCA } from '../../src/coordinator/ca.js';

export interface MeshPki {
  rootPem: string;
  mesh: MeshCA;
}

export interface WorkloadCredentials {
  caPem: string;
  chainPem: string;
  keyPem: string;
  rootPem: string;
}

export async function newMeshPki(): Promise<MeshPki> {
  const rootKey = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const rootPem = await createRootCert(rootKey);
  return { rootPem, mesh: await createMeshCA(rootKey, rootPem) };
}

/** A workload's files as the Initializer writes them; `issuedAt` two years back makes an expired one. */
export async function workloadCredentials(
  pki: MeshPki,
  opts: { sans?: string[]; issuedAt?: Date } = {},
): Promise<WorkloadCredentials> {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const leaf = await issueMeshCert(pki.mesh, { publicKey: key, sans: opts.sans ?? ['workload'] }, opts.issuedAt);
  return {
    caPem: pki.mesh.meshCAPem,
    chainPem: leaf + pki.mesh.intermediatePem,
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string,
    rootPem: pki.rootPem,
  };
}

/** Write the set into `dir` (the tls-config directory), file by file and atomically, like the Initializer. */
export function writeTlsDir(dir: string, c: WorkloadCredentials): void {
  mkdirSync(dir, { recursive: true });
  const put = (name: string, text: string, mode: number) => writeFileAtomic(join(dir, name), text, { mode });
  put('mesh-ca.pem', c.caPem, 0o444);
  put('certChain.pem', c.chainPem, 0o444);
  put('coordinator-root-ca.pem', c.rootPem, 0o444);
  put('key.pem', c.keyPem, 0o400);
}

/** Client-side files for openssl/curl: the chain, the key and the CA, each in its own file. */
export function writeClientFiles(dir: string, c: WorkloadCredentials): { cert: string; key: string; ca: string } {
  mkdirSync(dir, { recursive: true });
  const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), ca: join(dir, 'ca.pem') };
  writeFileSync(files.cert, c.chainPem);
  writeFileSync(files.key, c.keyPem, { mode: 0o600 });
  writeFileSync(files.ca, c.caPem);
  return files;
}

/**
 * The mesh credentials the Initializer wrote to `<tls-dir>`: `mesh-ca.pem` (the trust anchor
 * for peers), `certChain.pem` (this workload's mesh certificate and the intermediate) and
 * `key.pem`. Loaded as one set and checked for consistency, so a set that is missing, broken,
 * expired or written halfway (a new chain next to an old CA) is refused as a whole.
 */
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPemBlocks } from '../util/encoding.js';
import { describeFsError } from '../util/files.js';
import { UserError } from '../util/errors.js';

export const TLS_FILES = { ca: 'mesh-ca.pem', chain: 'certChain.pem', key: 'key.pem' } as const;

/** Larger files are not credentials; refused before parsing. */
const MAX_FILE_BYTES = 256 * 1024;

export interface CertificateSummary {
  subject: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 of the DER, lower-case hex. */
  fingerprint: string;
}

export interface MeshCredentials {
  /** PEM texts as read (what the TLS contexts are made from). */
  caPem: string;
  chainPem: string;
  keyPem: string;
  ca: CertificateSummary;
  leaf: CertificateSummary;
  /** SHA-256 over the three files: tells a changed set from a touched one. */
  contentHash: string;
}

function readBounded(dir: string, name: string): string {
  const path = join(dir, name);
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UserError(
      `cannot read the mesh credentials: ${describeFsError(err)}`,
      { file: path },
      missing
        ? {
            hint: 'the Initializer writes them before the sidecar starts; is the contrast-secrets volume mounted at /contrast, and did the Initializer run?',
          }
        : {},
    );
  }
  if (data.length > MAX_FILE_BYTES)
    throw new UserError(`${data.length} bytes is too large for a credentials file (at most ${MAX_FILE_BYTES})`, {
      file: path,
    });
  return data.toString('utf8');
}

function certificates(pem: string, path: string): X509Certificate[] {
  let blocks;
  try {
    blocks = readPemBlocks(pem);
  } catch (err) {
    throw new UserError(`not a PEM file: ${(err as Error).message}`, { file: path });
  }
  if (blocks.length === 0) throw new UserError('contains no certificate', { file: path });
  return blocks.map((b, i) => {
    if (b.label !== 'CERTIFICATE')
      throw new UserError(`block ${i + 1} is a ${b.label}, not a CERTIFICATE`, { file: path });
    try {
      return new X509Certificate(b.der);
    } catch (err) {
      throw new UserError(`certificate ${i + 1} does not parse: ${(err as Error).message}`, { file: path });
    }
  });
}

function privateKey(pem: string, path: string): KeyObject {
  let blocks;
  try {
    blocks = readPemBlocks(pem);
  } catch (err) {
    throw new UserError(`not a PEM file: ${(err as Error).message}`, { file: path });
  }
  if (blocks.length !== 1 || blocks[0]!.label !== 'PRIVATE KEY')
    throw new UserError('must hold exactly one PKCS#8 PRIVATE KEY block', { file: path });
  try {
    return createPrivateKey({ key: blocks[0]!.der, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new UserError(`the private key does not parse: ${(err as Error).message}`, { file: path });
  }
}

export function summarise(cert: X509Certificate): CertificateSummary {
  return {
    subject: cert.subject.replace(/\n/g, ', '),
    serialNumber: cert.serialNumber,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    fingerprint: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
  };
}

/** Load and check the set in `dir`; throws a UserError that names the file and the problem. */
export function loadCredentials(dir: string, now = new Date()): MeshCredentials {
  const caPath = join(dir, TLS_FILES.ca);
  const chainPath = join(dir, TLS_FILES.chain);
  const keyPath = join(dir, TLS_FILES.key);
  const caPem = readBounded(dir, TLS_FILES.ca);
  const chainPem = readBounded(dir, TLS_FILES.chain);
  const keyPem = readBounded(dir, TLS_FILES.key);

  const cas = certificates(caPem, caPath);
  if (cas.length !== 1) throw new UserError(`holds ${cas.length} certificates; the mesh CA is one`, { file: caPath });
  const ca = cas[0]!;
  if (!ca.ca) throw new UserError('is not a CA certificate (basicConstraints CA:TRUE missing)', { file: caPath });
  const chain = certificates(chainPem, chainPath);
  const leaf = chain[0]!;
  const key = privateKey(keyPem, keyPath);
  if (!leaf.checkPrivateKey(key)) {
    throw new UserError(
      `${TLS_FILES.key} is not the key of the first certificate of ${TLS_FILES.chain}`,
      { file: keyPath },
      { hint: 'the files come from different Initializer runs' },
    );
  }
  if (!leaf.verify(ca.publicKey)) {
    throw new UserError(
      `the mesh certificate is not signed by ${TLS_FILES.ca}`,
      { file: chainPath },
      {
        hint: 'the files come from different Initializer runs, or the mesh CA changed (Coordinator recovery or a new manifest)',
      },
    );
  }
  const leafSummary = summarise(leaf);
  if (leafSummary.notAfter.getTime() <= now.getTime()) {
    throw new UserError(
      `the mesh certificate expired at ${leafSummary.notAfter.toISOString()}`,
      { file: chainPath },
      { hint: 'restart the pod so that the Initializer requests a new one' },
    );
  }
  if (leafSummary.notBefore.getTime() > now.getTime()) {
    throw new UserError(
      `the mesh certificate is not valid before ${leafSummary.notBefore.toISOString()}`,
      { file: chainPath },
      { hint: 'check the clock of the pod' },
    );
  }
  const contentHash = createHash('sha256')
    .update(caPem)
    .update('\0')
    .update(chainPem)
    .update('\0')
    .update(keyPem)
    .digest('hex');
  return { caPem, chainPem, keyPem, ca: summarise(ca), leaf: leafSummary, contentHash };
}

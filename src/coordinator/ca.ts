/**
 * The Coordinator's certificate hierarchy (as upstream Contrast):
 *
 *   root CA  (CN system:coordinator:root, key derived from the seed, 10 years)
 *     └─ intermediate (CN system:coordinator:intermediate, mesh key, signed by the root)
 *   mesh CA  (same subject and mesh key as the intermediate, self-signed)
 *     └─ mesh certificates of workloads (signed by the mesh key, 1 year)
 *
 * The mesh key is random and replaced on every manifest change and on recovery, so
 * `mesh-ca.pem` only trusts workloads of the current manifest, while `coordinator-root-ca.pem`
 * (through the intermediate in each chain) trusts workloads of every manifest.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { signingAlgorithm, toCryptoPrivateKey, toCryptoPublicKey, x509 } from './crypto.js';

type CryptoKeyLike = Awaited<ReturnType<typeof toCryptoPrivateKey>>;

export const ROOT_CN = 'system:coordinator:root';
export const INTERMEDIATE_CN = 'system:coordinator:intermediate';
/** Extension carrying the WorkloadSecretID in mesh certificates (upstream OID). */
export const OID_WORKLOAD_SECRET_ID = '1.3.9901.3.1';

const YEAR_MS = 365 * 24 * 3600 * 1000;
const SKEW_MS = 60 * 60 * 1000;

/** PEM with '\n' line ends and a final newline, so certificates can be concatenated. */
export function pem(cert: x509.X509Certificate): string {
  const text = cert.toString('pem').replace(/\r\n/g, '\n');
  return text.endsWith('\n') ? text : `${text}\n`;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

async function caExtensions(publicKey: KeyObject): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
    await x509.SubjectKeyIdentifierExtension.create(await toCryptoPublicKey(publicKey)),
  ];
}

export async function createRootCert(rootKey: KeyObject, now = new Date()): Promise<string> {
  const pub = await toCryptoPublicKey(rootKey);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${ROOT_CN}`,
    issuer: `CN=${ROOT_CN}`,
    notBefore: new Date(now.getTime() - SKEW_MS),
    notAfter: new Date(now.getTime() + 10 * YEAR_MS),
    publicKey: pub,
    signingKey: await toCryptoPrivateKey(rootKey),
    signingAlgorithm: signingAlgorithm(rootKey),
    extensions: await caExtensions(rootKey),
  });
  return pem(cert);
}

export interface MeshCA {
  key: KeyObject;
  /** WebCrypto handles of the key and the authority key identifier, made once per mesh CA. */
  cached?: Promise<{ signingKey: CryptoKeyLike; aki: x509.Extension }>;
  /** Signed by the root: goes into every certificate chain. */
  intermediatePem: string;
  /** Self-signed: the trust anchor of `mesh-ca.pem`. */
  meshCAPem: string;
}

export async function createMeshCA(rootKey: KeyObject, rootPem: string, now = new Date()): Promise<MeshCA> {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const pub = await toCryptoPublicKey(key);
  const root = new x509.X509Certificate(rootPem);
  const common = {
    subject: `CN=${INTERMEDIATE_CN}`,
    notBefore: new Date(now.getTime() - SKEW_MS),
    notAfter: new Date(now.getTime() + 10 * YEAR_MS),
    publicKey: pub,
  };
  const intermediate = await x509.X509CertificateGenerator.create({
    ...common,
    serialNumber: serial(),
    issuer: root.subject,
    signingKey: await toCryptoPrivateKey(rootKey),
    signingAlgorithm: signingAlgorithm(rootKey),
    extensions: [...await caExtensions(key), await x509.AuthorityKeyIdentifierExtension.create(await toCryptoPublicKey(rootKey))],
  });
  const meshCA = await x509.X509CertificateGenerator.create({
    ...common,
    serialNumber: serial(),
    issuer: `CN=${INTERMEDIATE_CN}`,
    signingKey: await toCryptoPrivateKey(key),
    signingAlgorithm: signingAlgorithm(key),
    extensions: await caExtensions(key),
  });
  return { key, intermediatePem: pem(intermediate), meshCAPem: pem(meshCA) };
}

/** Split SANs as upstream: IP addresses, URIs (anything with a scheme) and DNS names. */
export function splitSans(sans: readonly string[]): x509.JsonGeneralName[] {
  return sans.map((s) => {
    if (isIP(s)) return { type: 'ip', value: s } as x509.JsonGeneralName;
    if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(s) || /^[a-zA-Z][a-zA-Z0-9+.-]*:[^0-9]/.test(s)) return { type: 'url', value: s } as x509.JsonGeneralName;
    return { type: 'dns', value: s } as x509.JsonGeneralName;
  });
}

export interface MeshCertRequest {
  publicKey: KeyObject;
  sans: readonly string[];
  workloadSecretId?: string;
  /** Further extensions (attestation claims). */
  extensions?: x509.Extension[];
}

/** Issue a workload's mesh certificate, signed by the mesh key; returns PEM. */
export async function issueMeshCert(ca: MeshCA, req: MeshCertRequest, now = new Date()): Promise<string> {
  const names = splitSans(req.sans);
  const firstDns = names.find((n) => n.type === 'dns')?.value;
  ca.cached ??= (async () => ({
    signingKey: await toCryptoPrivateKey(ca.key),
    aki: await x509.AuthorityKeyIdentifierExtension.create(await toCryptoPublicKey(ca.key)),
  }))();
  const { signingKey, aki } = await ca.cached;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth]),
    aki,
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  if (req.workloadSecretId !== undefined) {
    extensions.push(new x509.Extension(OID_WORKLOAD_SECRET_ID, false, derUtf8(req.workloadSecretId)));
  }
  extensions.push(...(req.extensions ?? []));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: firstDns ? `CN=${escapeDn(firstDns)}` : 'CN=contrast-workload',
    issuer: `CN=${INTERMEDIATE_CN}`,
    notBefore: new Date(now.getTime() - SKEW_MS),
    notAfter: new Date(now.getTime() + YEAR_MS),
    publicKey: await toCryptoPublicKey(req.publicKey),
    signingKey,
    signingAlgorithm: signingAlgorithm(ca.key),
    extensions,
  });
  return pem(cert);
}

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}

/** DER UTF8String. */
export function derUtf8(s: string): Buffer {
  const body = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([0x0c]), derLength(body.length), body]);
}

/** DER OCTET STRING. */
export function derOctets(body: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([0x04]), derLength(body.length), body]);
}

export function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Read a DER OCTET STRING or UTF8String body (tag is checked). */
export function derBody(der: Uint8Array, tag: number): Buffer {
  const b = Buffer.from(der);
  if (b[0] !== tag) throw new Error(`expected DER tag 0x${tag.toString(16)}, got 0x${(b[0] ?? 0).toString(16)}`);
  let len = b[1] ?? 0;
  let off = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (b[2 + i] ?? 0);
    off = 2 + n;
  }
  if (off + len !== b.length) throw new Error('DER length does not match the data');
  return b.subarray(off, off + len);
}

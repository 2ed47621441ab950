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
import { spkiDer } from '../atls/binding.js';
import { octetString, oid, seq, tlv, utf8String, x509Time } from '../atls/der.js';
import { children, readOid, readSingle } from '../attestation/der.js';
import { derToPem } from '../attestation/certificate.js';
import { signOnPool } from '../util/sign-on-pool.js';

export const ROOT_CN = 'system:coordinator:root';
const INTERMEDIATE_CN = 'system:coordinator:intermediate';
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
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
      true,
    ),
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
  /** Issuer name and key identifier for mesh certificates, read once from meshCAPem. */
  issuer?: { name: Buffer; keyId: Buffer };
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
    extensions: [
      ...(await caExtensions(key)),
      await x509.AuthorityKeyIdentifierExtension.create(await toCryptoPublicKey(rootKey)),
    ],
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
function splitSans(sans: readonly string[]): x509.JsonGeneralName[] {
  return sans.map((s) => {
    if (isIP(s)) return { type: 'ip', value: s } as x509.JsonGeneralName;
    if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(s) || /^[a-zA-Z][a-zA-Z0-9+.-]*:[^0-9]/.test(s))
      return { type: 'url', value: s } as x509.JsonGeneralName;
    return { type: 'dns', value: s } as x509.JsonGeneralName;
  });
}

export interface CertExtension {
  oid: string;
  critical?: boolean;
  /** extnValue contents (DER of the extension's own value). */
  value: Buffer;
}

export interface MeshCertRequest {
  publicKey: KeyObject;
  sans: readonly string[];
  workloadSecretId?: string;
  /** Further extensions (attestation claims). */
  extensions?: CertExtension[];
}

/** Issuer name and key identifier of a mesh CA, read once from its certificate. */
function meshIssuer(ca: MeshCA): { name: Buffer; keyId: Buffer } {
  ca.issuer ??= (() => {
    const der = Buffer.from(new x509.X509Certificate(ca.meshCAPem).rawData);
    const tbs = children(readSingle(der))[0]!;
    const fields = children(tbs);
    const name = fields[5]!.raw; // version, serial, signature, issuer, validity, subject
    let keyId: Buffer | undefined;
    const exts = fields.find((f) => f.tag === 0xa3);
    for (const e of exts ? children(children(exts)[0]!) : []) {
      const parts = children(e);
      if (readOid(parts[0]!) === '2.5.29.14') keyId = readSingle(parts.at(-1)!.content).content;
    }
    if (!keyId) throw new Error('the mesh CA certificate has no subject key identifier');
    return { name: Buffer.from(name), keyId: Buffer.from(keyId) };
  })();
  return ca.issuer;
}

function generalName(n: x509.JsonGeneralName): Buffer {
  if (n.type === 'ip') {
    const v = n.value;
    const bytes = v.includes(':') ? ipv6Bytes(v) : Buffer.from(v.split('.').map(Number));
    return tlv(0x87, bytes);
  }
  return tlv(n.type === 'url' ? 0x86 : 0x82, Buffer.from(n.value, 'ascii'));
}

function ipv6Bytes(v: string): Buffer {
  const [head, tail] = v.includes('::') ? (v.split('::') as [string, string]) : [v, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.from(
    groups.flatMap((g: string) => {
      const n = parseInt(g || '0', 16);
      return [n >> 8, n & 0xff];
    }),
  );
}

function extension(e: CertExtension): Buffer {
  return seq(oid(e.oid), ...(e.critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), octetString(e.value));
}

/**
 * Issue a workload's mesh certificate, signed by the mesh key; returns PEM. Built directly in
 * DER with node:crypto: this is the Coordinator's hot path (one per attested pod).
 */
export async function issueMeshCert(ca: MeshCA, req: MeshCertRequest, now = new Date()): Promise<string> {
  const names = splitSans(req.sans);
  const firstDns = names.find((n) => n.type === 'dns')?.value;
  const issuer = meshIssuer(ca);
  const sigAlg = seq(oid('1.2.840.10045.4.3.3')); // ecdsa-with-SHA384 (the mesh key is P-384)
  const eku = seq(oid('1.3.6.1.5.5.7.3.2'), oid('1.3.6.1.5.5.7.3.1'));
  const exts: CertExtension[] = [
    { oid: '2.5.29.19', critical: true, value: seq() },
    // digitalSignature | keyEncipherment | keyAgreement = bits 0, 2, 4 → 0b10101000, 3 unused bits
    { oid: '2.5.29.15', critical: true, value: tlv(0x03, Buffer.from([0x03, 0xa8])) },
    { oid: '2.5.29.37', value: eku },
    { oid: '2.5.29.35', value: seq(tlv(0x80, issuer.keyId)) },
  ];
  if (names.length > 0) exts.push({ oid: '2.5.29.17', value: seq(...names.map(generalName)) });
  if (req.workloadSecretId !== undefined)
    exts.push({ oid: OID_WORKLOAD_SECRET_ID, value: utf8String(req.workloadSecretId) });
  exts.push(...(req.extensions ?? []));
  const serialBytes = randomBytes(16);
  serialBytes[0] = (serialBytes[0]! & 0x7f) | 0x01;
  const subject = seq(tlv(0x31, seq(oid('2.5.4.3'), utf8String(firstDns ?? 'contrast-workload'))));
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serialBytes),
    sigAlg,
    issuer.name,
    seq(x509Time(new Date(now.getTime() - SKEW_MS)), x509Time(new Date(now.getTime() + YEAR_MS))),
    subject,
    spkiDer(req.publicKey),
    tlv(0xa3, seq(...exts.map(extension))),
  );
  const cert = seq(tbs, sigAlg, tlv(0x03, Buffer.from([0]), await signOnPool('sha384', tbs, ca.key)));
  return derToPem(cert);
}

import { X509Certificate, constants, createHash, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AttestationError, ensure } from './errors.js';
import { TAG, children, expectTag, readElement, readOid, readSingle, readTime, type DerNode } from './der.js';

export { parseCertificateFile, parseDerCertificate, parsePemCertificates } from './certificate.js';

/**
 * Certificate and CRL helpers on top of node:crypto. Node verifies signatures over the original
 * TBS bytes (AMD's RSA-PSS parameters would not survive re-encoding), but it neither checks
 * validity periods nor exposes extensions or CRLs; those parts live here.
 */

export interface Extension {
  readonly critical: boolean;
  /** The extension value: the content of the extnValue OCTET STRING. */
  readonly value: Buffer;
}

interface TbsParts {
  issuer: Buffer;
  subject: Buffer;
  extensions: Map<string, Extension>;
}

const tbsCache = new WeakMap<X509Certificate, TbsParts>();

function tbsParts(cert: X509Certificate): TbsParts {
  let parts = tbsCache.get(cert);
  if (parts) return parts;
  const tbs = children(expectTag(children(readSingle(cert.raw))[0]!, TAG.SEQUENCE, 'tbsCertificate'));
  // An explicit version [0] shifts the fixed fields by one.
  const base = tbs[0]?.tag === 0xa0 ? 1 : 0;
  const issuer = tbs[base + 2];
  const subject = tbs[base + 4];
  if (!issuer || !subject) throw new AttestationError('x509.parse', 'certificate TBS is missing fields');
  const extensions = new Map<string, Extension>();
  const extsWrapper = tbs.slice(base + 6).find((n) => n.tag === 0xa3);
  if (extsWrapper) {
    for (const ext of children(readElement(extsWrapper.content))) {
      const f = children(ext);
      const oid = readOid(f[0]!);
      const critical = f.length === 3 && f[1]!.tag === TAG.BOOLEAN && f[1]!.content[0] !== 0;
      const value = expectTag(f[f.length - 1]!, TAG.OCTET_STRING, `extension ${oid}`).content;
      if (extensions.has(oid)) throw new AttestationError('x509.parse', `duplicate extension ${oid}`);
      extensions.set(oid, { critical, value });
    }
  }
  parts = { issuer: issuer.raw, subject: subject.raw, extensions };
  tbsCache.set(cert, parts);
  return parts;
}

export function extensions(cert: X509Certificate): ReadonlyMap<string, Extension> {
  return tbsParts(cert).extensions;
}

export function subjectDer(cert: X509Certificate): Buffer {
  return tbsParts(cert).subject;
}

export function fingerprint256(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}

/** Common name of a subject as Node prints it (`CN=...` lines). */
export function commonName(distinguishedName: string): string | undefined {
  for (const line of distinguishedName.split('\n')) if (line.startsWith('CN=')) return line.slice(3);
  return undefined;
}

/**
 * The certificate's public key. Node parses it lazily and throws a plain Error for a malformed
 * key; certificates here come from untrusted evidence, so that becomes an attestation failure.
 */
export function publicKeyOf(cert: X509Certificate, check: string, what: string): KeyObject {
  try {
    return cert.publicKey;
  } catch (err) {
    throw new AttestationError(
      check,
      `${what} has an unreadable public key (${(err as Error).message})`,
      undefined,
      undefined,
      { cause: err },
    );
  }
}

export function checkValidity(cert: X509Certificate, now: Date, check: string, what: string): void {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  ensure(
    now >= from && now <= to,
    check,
    `${what} is not valid at ${now.toISOString()}`,
    `${from.toISOString()} .. ${to.toISOString()}`,
    now.toISOString(),
  );
}

const UNDERSTOOD_CRITICAL = new Set(['2.5.29.19', '2.5.29.15']);

/** Child certificates whose signature by a parent already verified (time-independent facts only). */
const verifiedIssuers = new WeakMap<X509Certificate, WeakSet<X509Certificate>>();

/**
 * Checks that `parent` issued `child`: names chain, the parent is a CA, and the signature over
 * the child's TBS verifies with the parent's key. Validity dates are the caller's to check.
 */
export function checkIssuedBy(child: X509Certificate, parent: X509Certificate, check: string, what: string): void {
  if (verifiedIssuers.get(child)?.has(parent)) return;
  // A critical extension we do not understand must not be ignored (RFC 5280 §4.2). AMD and
  // Intel certificates mark only basicConstraints and keyUsage critical.
  for (const [oid, ext] of extensions(child)) {
    ensure(
      !ext.critical || UNDERSTOOD_CRITICAL.has(oid),
      check,
      `${what}: the certificate has an unknown critical extension`,
      'only basicConstraints and keyUsage critical',
      oid,
    );
  }
  ensure(parent.ca, check, `${what}: issuer certificate is not a CA`, 'CA:TRUE', 'CA:FALSE');
  ensure(
    child.checkIssued(parent),
    check,
    `${what}: issuer name does not match`,
    oneLine(parent.subject),
    oneLine(child.issuer),
  );
  let ok: boolean;
  try {
    ok = child.verify(publicKeyOf(parent, check, 'the issuer certificate'));
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    ok = false;
  }
  ensure(
    ok,
    check,
    `${what}: signature does not verify with the issuer key`,
    `signed by ${oneLine(parent.subject)}`,
    'bad signature',
  );
  let parents = verifiedIssuers.get(child);
  if (!parents) verifiedIssuers.set(child, (parents = new WeakSet()));
  parents.add(parent);
}

export function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}

/** A certificate revocation list, with its signature not yet checked. */
export interface Crl {
  readonly issuer: Buffer;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  /** Revoked serial numbers, lowercase hex without leading zeros. */
  readonly revoked: ReadonlySet<string>;
  readonly tbs: Buffer;
  readonly signatureAlgorithm: DerNode;
  readonly signature: Buffer;
}

export function normalizeSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '');
}

export function parseCrl(der: Uint8Array): Crl {
  const top = children(readSingle(Buffer.from(der)));
  if (top.length !== 3) throw new AttestationError('crl.parse', 'CertificateList must have three fields');
  const [tbsNode, sigAlg, sigBits] = top as [DerNode, DerNode, DerNode];
  const tbs = children(expectTag(tbsNode, TAG.SEQUENCE, 'tbsCertList'));
  const base = tbs[0]?.tag === TAG.INTEGER ? 1 : 0; // optional version
  const issuer = tbs[base + 1];
  const thisUpdate = tbs[base + 2];
  if (!issuer || !thisUpdate) throw new AttestationError('crl.parse', 'tbsCertList is missing fields');
  let idx = base + 3;
  let nextUpdate: Date | undefined;
  if (tbs[idx] && (tbs[idx]!.tag === TAG.UTC_TIME || tbs[idx]!.tag === TAG.GENERALIZED_TIME))
    nextUpdate = readTime(tbs[idx++]!);
  const revoked = new Set<string>();
  if (tbs[idx]?.tag === TAG.SEQUENCE) {
    for (const entry of children(tbs[idx]!)) {
      const serial = expectTag(children(entry)[0]!, TAG.INTEGER, 'revoked serial');
      revoked.add(normalizeSerial(serial.content.toString('hex')));
    }
  }
  expectTag(sigBits, TAG.BIT_STRING, 'CRL signature');
  if (sigBits.content[0] !== 0) throw new AttestationError('crl.parse', 'CRL signature has unused bits');
  return {
    issuer: issuer.raw,
    thisUpdate: readTime(thisUpdate),
    ...(nextUpdate ? { nextUpdate } : {}),
    revoked,
    tbs: tbsNode.raw,
    signatureAlgorithm: sigAlg,
    signature: sigBits.content.subarray(1),
  };
}

/** parseCrl, with a parse failure reported under the caller's check name. */
export function parseCrlFor(check: string, der: Uint8Array): Crl {
  try {
    return parseCrl(der);
  } catch (err) {
    throw new AttestationError(check, `the CRL cannot be parsed (${(err as Error).message})`, undefined, undefined, {
      cause: err,
    });
  }
}

const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_ECDSA_SHA384 = '1.2.840.10045.4.3.3';
const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';
const HASH_OIDS: Record<string, string> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** Verifies a signature over `data` for the algorithms AMD and Intel use (RSA-PSS, ECDSA). */
function verifyWithAlgorithm(alg: DerNode, data: Buffer, signature: Buffer, key: KeyObject): boolean {
  const fields = children(alg);
  const oid = readOid(fields[0]!);
  if (oid === OID_ECDSA_SHA256) return cryptoVerify('sha256', data, key, signature);
  if (oid === OID_ECDSA_SHA384) return cryptoVerify('sha384', data, key, signature);
  if (oid === OID_RSASSA_PSS) {
    // RSASSA-PSS-params: [0] hash, [1] MGF, [2] salt length; AMD uses SHA-384 / 48 throughout.
    let hash = 'sha1';
    let saltLength = 20;
    for (const p of fields[1] ? children(fields[1]) : []) {
      const inner = readElement(p.content);
      if (p.tag === 0xa0) hash = HASH_OIDS[readOid(children(inner)[0]!)] ?? 'unknown';
      if (p.tag === 0xa2)
        saltLength = inner.content.length <= 2 ? inner.content.readUIntBE(0, inner.content.length) : -1;
    }
    if (hash === 'unknown' || saltLength < 0) return false;
    return cryptoVerify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, signature);
  }
  return false;
}

/**
 * Checks a CRL: issued and signed by `issuer`, current at `now`, and `serials` not on it.
 * `serials` pairs a description with the certificate to look for.
 */
export function checkCrl(crl: Crl, issuer: X509Certificate, now: Date, certs: X509Certificate[], check: string): void {
  ensure(
    crl.issuer.equals(subjectDer(issuer)),
    check,
    'CRL issuer does not match the certificate that should sign it',
    oneLine(issuer.subject),
    'a different issuer name',
  );
  let ok: boolean;
  try {
    ok = verifyWithAlgorithm(
      crl.signatureAlgorithm,
      crl.tbs,
      crl.signature,
      publicKeyOf(issuer, check, 'the CRL issuer'),
    );
  } catch {
    ok = false;
  }
  ensure(ok, check, 'CRL signature does not verify', `signed by ${oneLine(issuer.subject)}`, 'bad signature');
  ensure(
    now >= crl.thisUpdate,
    check,
    'CRL is not yet valid',
    `thisUpdate <= ${now.toISOString()}`,
    crl.thisUpdate.toISOString(),
  );
  if (crl.nextUpdate) {
    ensure(
      now <= crl.nextUpdate,
      check,
      'CRL is out of date (past nextUpdate)',
      `nextUpdate >= ${now.toISOString()}`,
      crl.nextUpdate.toISOString(),
    );
  }
  for (const cert of certs) {
    const serial = normalizeSerial(cert.serialNumber);
    ensure(
      !crl.revoked.has(serial),
      check,
      `certificate ${oneLine(cert.subject)} is revoked`,
      'not revoked',
      `serial ${serial} revoked`,
    );
  }
}

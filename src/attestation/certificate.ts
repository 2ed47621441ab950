/**
 * Strict certificate parsing. Every certificate from a peer, from evidence or from a file
 * enters through here, never through `new X509Certificate(bytes)` directly: Node's constructor
 * looks for a PEM block anywhere in its input before it tries DER, so bytes that carry a PEM
 * certificate inside a field (an extension, a subject name, a TDX quote) would be read as that
 * other certificate. Here:
 *
 *  - DER input must be exactly one X.509 certificate in distinguished encoding, with the shape
 *    RFC 5280 §4.1 gives it (extension values stay opaque: AMD's are raw bytes), no duplicate extensions and no trailing bytes; Node then only ever
 *    sees a PEM block that we wrote around those bytes, and the certificate it parses must
 *    encode back to exactly the input;
 *  - PEM input is accepted only where the format is PEM, and must consist of exactly the
 *    expected number of CERTIFICATE blocks in canonical base64 and nothing but whitespace;
 *  - a TLS peer's certificate, which OpenSSL decoded as DER during the handshake, gets the same
 *    checks of its encoding (tlsPeerCertificate) and is not parsed a second time.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { AttestationError } from './errors.js';
import { BoundedCache } from './bounded-cache.js';
import { readPemBlocks, type PemBlock } from '../util/encoding.js';
import { TAG, checkDistinguished, children, readOid, readSingle, type DerNode } from './der.js';

/** Larger than any certificate we expect (aTLS certificates carrying a TDX quote are about 8 KiB). */
export const MAX_CERTIFICATE_BYTES = 64 * 1024;

const PEM_BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_END = '-----END CERTIFICATE-----';

function refuse(what: string, reason: string, cause?: unknown): never {
  throw new AttestationError(
    'x509.parse',
    `${what} is not a well-formed certificate: ${reason}`,
    undefined,
    undefined,
    cause === undefined ? undefined : { cause },
  );
}

/** Checks the fields of TBSCertificate in order (RFC 5280 §4.1) and returns the extension OIDs. */
function checkTbsShape(tbs: DerNode[], outerAlg: DerNode, what: string): void {
  let i = 0;
  let version = 0;
  if (tbs[i]?.tag === 0xa0) {
    const v = children(tbs[i]!);
    if (v.length !== 1 || v[0]!.tag !== TAG.INTEGER || v[0]!.content.length !== 1) refuse(what, 'malformed version');
    version = v[0]!.content[0]!;
    if (version !== 1 && version !== 2)
      refuse(what, `version ${version} (an explicit v1 is not DER, later versions do not exist)`);
    i++;
  }
  const want: [number, string][] = [
    [TAG.INTEGER, 'serialNumber'],
    [TAG.SEQUENCE, 'signature'],
    [TAG.SEQUENCE, 'issuer'],
    [TAG.SEQUENCE, 'validity'],
    [TAG.SEQUENCE, 'subject'],
    [TAG.SEQUENCE, 'subjectPublicKeyInfo'],
  ];
  for (const [tag, field] of want) {
    if (tbs[i]?.tag !== tag) refuse(what, `tbsCertificate.${field} is missing or has the wrong type`);
    i++;
  }
  if (!tbs[1 + (version ? 1 : 0)]!.raw.equals(outerAlg.raw))
    refuse(what, 'the inner and outer signature algorithms differ');
  const validity = children(tbs[(version ? 1 : 0) + 3]!);
  if (validity.length !== 2 || !validity.every((t) => t.tag === TAG.UTC_TIME || t.tag === TAG.GENERALIZED_TIME))
    refuse(what, 'malformed validity');
  for (const [tag, field, minVersion] of [
    [0x81, 'issuerUniqueID', 1],
    [0x82, 'subjectUniqueID', 1],
    [0xa3, 'extensions', 2],
  ] as const) {
    if (tbs[i]?.tag !== tag) continue;
    if (version < minVersion) refuse(what, `${field} in a version ${version + 1} certificate`);
    if (tag === 0xa3) checkExtensions(tbs[i]!, what);
    i++;
  }
  if (i !== tbs.length) refuse(what, `unexpected field with tag 0x${tbs[i]!.tag.toString(16)} in tbsCertificate`);
}

function checkExtensions(wrapper: DerNode, what: string): void {
  const inner = children(wrapper);
  if (inner.length !== 1 || inner[0]!.tag !== TAG.SEQUENCE) refuse(what, 'malformed extensions');
  const list = children(inner[0]!);
  if (list.length === 0) refuse(what, 'an empty extensions list');
  const seen = new Set<string>();
  for (const ext of list) {
    const f = ext.tag === TAG.SEQUENCE ? children(ext) : [];
    const hasCritical = f.length === 3;
    if (
      (f.length !== 2 && !hasCritical) ||
      f[0]!.tag !== TAG.OID ||
      f.at(-1)!.tag !== TAG.OCTET_STRING ||
      (hasCritical && f[1]!.tag !== TAG.BOOLEAN)
    )
      refuse(what, 'malformed extension');
    const oid = readOid(f[0]!);
    // DER omits a DEFAULT value: an explicit critical FALSE is a second encoding of the same extension.
    if (hasCritical && f[1]!.content[0] !== 0xff) refuse(what, `extension ${oid} encodes the default critical=FALSE`);
    if (seen.has(oid)) refuse(what, `duplicate extension ${oid}`);
    seen.add(oid);
  }
}

function checkCertificateShape(root: DerNode, what: string): void {
  const top = root.tag === TAG.SEQUENCE ? children(root) : [];
  if (
    top.length !== 3 ||
    top[0]!.tag !== TAG.SEQUENCE ||
    top[1]!.tag !== TAG.SEQUENCE ||
    top[2]!.tag !== TAG.BIT_STRING
  ) {
    refuse(what, 'a certificate is SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }');
  }
  if (top[2]!.content[0] !== 0) refuse(what, 'the signature has unused bits');
  checkTbsShape(children(top[0]!), top[1]!, what);
}

/** PEM text of DER bytes: the only form in which bytes are ever handed to Node's parser. */
export function derToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `${PEM_BEGIN}\n${b64}${b64.endsWith('\n') ? '' : '\n'}${PEM_END}\n`;
}

/**
 * Certificates that passed every check, by SHA-256 of their encoding: the same VCEK, ASK and
 * PCK chains arrive with every report. Only "these exact bytes are this certificate" is kept.
 */
const parsed = new BoundedCache<string, X509Certificate>(512);

/** Exactly one DER certificate: see the module comment for what is checked. */
export function parseDerCertificate(bytes: Uint8Array, what: string): X509Certificate {
  const der = Buffer.from(bytes);
  const key = der.length <= MAX_CERTIFICATE_BYTES ? createHash('sha256').update(der).digest('hex') : '';
  const hit = key ? parsed.get(key) : undefined;
  if (hit) return hit;
  const cert = parseUncached(der, what);
  parsed.set(key, cert);
  return cert;
}

/**
 * The certificate a TLS peer presented, as OpenSSL decoded it from the handshake (DER, never
 * through the PEM-searching constructor): its encoding gets the same strict checks as
 * parseDerCertificate's input, but the bytes are not handed to Node's parser a second time.
 * undefined when the peer sent no certificate.
 */
export function tlsPeerCertificate(
  socket: { getPeerX509Certificate(): X509Certificate | undefined },
  what: string,
): X509Certificate | undefined {
  const cert = socket.getPeerX509Certificate();
  if (cert) checkEncoding(cert.raw, what);
  return cert;
}

/** Everything parseDerCertificate checks before Node reads the bytes. */
function checkEncoding(der: Buffer, what: string): void {
  if (der.length > MAX_CERTIFICATE_BYTES)
    refuse(what, `${der.length} bytes, more than the ${MAX_CERTIFICATE_BYTES} accepted`);
  if (der[0] !== TAG.SEQUENCE)
    refuse(
      what,
      der.subarray(0, PEM_BEGIN.length).toString('latin1').startsWith('-----')
        ? 'PEM where DER is expected'
        : 'it does not start with a DER SEQUENCE',
    );
  try {
    const root = readSingle(der);
    checkDistinguished(root);
    checkCertificateShape(root, what);
  } catch (err) {
    if (err instanceof AttestationError && err.check === 'x509.parse') throw err;
    refuse(what, err instanceof AttestationError ? err.detail : (err as Error).message, err);
  }
}

function parseUncached(der: Buffer, what: string): X509Certificate {
  checkEncoding(der, what);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(derToPem(der));
  } catch (err) {
    refuse(what, (err as Error).message, err);
  }
  // Node's own re-encoding must be the input: a second, independent reading of the same bytes.
  if (!cert.raw.equals(der)) refuse(what, 'Node reads it as a different certificate');
  return cert;
}

export interface PemOptions {
  /** How many certificates the format holds: an exact number or a range. */
  count: number | { min: number; max: number };
  /** Allow NUL padding after the last block (Intel's quoting enclave terminates the PCK chain with NUL). */
  trailingNul?: boolean;
  /**
   * Only the one layout Intel's quoting enclave writes: 64-character base64 lines, every line
   * and every block ending in one LF, nothing between blocks. Evidence then has one spelling:
   * no byte of the chain can change (a LF into another whitespace) without a refusal.
   */
  exactLayout?: boolean;
}

const EXACT_PEM =
  /^(?:-----BEGIN CERTIFICATE-----\n(?:[A-Za-z0-9+/]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE-----\n)*$/;

/**
 * Certificates from PEM text: only CERTIFICATE blocks in canonical base64 separated by
 * whitespace, each one a strict DER certificate, and exactly as many as the format holds.
 */
export function parsePemCertificates(bytes: Uint8Array, what: string, opts: PemOptions): X509Certificate[] {
  let text = Buffer.from(bytes).toString('latin1');
  if (opts.trailingNul) text = text.replace(/\0+$/, '');
  if (text.length > 16 * MAX_CERTIFICATE_BYTES) refuse(what, `${text.length} bytes of PEM, more than accepted`);
  if (opts.exactLayout && !EXACT_PEM.test(text))
    refuse(
      what,
      'not laid out as the quoting enclave writes PEM (64-character lines, each ending in one LF, nothing between blocks)',
    );
  let blocks: PemBlock[];
  try {
    blocks = readPemBlocks(text);
  } catch (err) {
    refuse(what, (err as Error).message);
  }
  const other = blocks.find((b) => b.label !== 'CERTIFICATE');
  if (other) refuse(what, `a ${other.label} block where only CERTIFICATE blocks belong`);
  const { min, max } = typeof opts.count === 'number' ? { min: opts.count, max: opts.count } : opts.count;
  if (blocks.length < min || blocks.length > max) {
    refuse(
      what,
      `${blocks.length} certificate${blocks.length === 1 ? '' : 's'}, expected ${min === max ? min : `${min} to ${max}`}`,
    );
  }
  return blocks.map((b, i) =>
    parseDerCertificate(b.der, blocks.length === 1 ? what : `${what} (certificate ${i + 1})`),
  );
}

/**
 * A certificate file that may be DER or PEM (like a VCEK downloaded from KDS or converted by a
 * user): PEM only when the file starts with the PEM boundary, and then exactly one block.
 */
export function parseCertificateFile(bytes: Uint8Array, what: string): X509Certificate {
  const head = Buffer.from(bytes.subarray(0, 64)).toString('latin1').trimStart();
  return head.startsWith(PEM_BEGIN)
    ? parsePemCertificates(bytes, what, { count: 1 })[0]!
    : parseDerCertificate(bytes, what);
}

/**
 * aTLS certificates: self-signed, CN "Contrast", valid now ± 2 h, for the peer's TLS key,
 * carrying attestation evidence in a non-critical extension named by the evidence OID
 * (extension value = DER OCTET STRING wrapping the evidence bytes).
 */
import { sign, type KeyObject, type X509Certificate as NodeX509 } from 'node:crypto';
import { EVIDENCE_OIDS } from '../attestation/tees.js';
import { AttestationError } from '../attestation/errors.js';
import type { Evidence } from '../issuers/issuer.js';
import { octetString, oid, seq, tlv, utcTime, utf8String } from './der.js';
import { spkiDer } from './binding.js';
import { derToPem, parseDerCertificate, tlsPeerCertificate } from '../attestation/certificate.js';
import { extensions } from '../attestation/x509.js';
import { TAG, readSingle } from '../attestation/der.js';
import { signOnPool } from '../util/sign-on-pool.js';

const TWO_HOURS = 2 * 3600 * 1000;

function signatureAlgorithm(key: KeyObject): { alg: Buffer; hash: string } {
  if (key.asymmetricKeyType === 'rsa')
    return { alg: seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])), hash: 'sha256' };
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve === 'secp384r1') return { alg: seq(oid('1.2.840.10045.4.3.3')), hash: 'sha384' };
  if (curve === 'prime256v1') return { alg: seq(oid('1.2.840.10045.4.3.2')), hash: 'sha256' };
  throw new Error(`aTLS keys must be ECDSA P-256/P-384 or RSA, not ${key.asymmetricKeyType} ${curve ?? ''}`);
}

/** The to-be-signed part of an aTLS certificate, its algorithm and the signature's hash. */
function atlsTbs(
  key: KeyObject,
  evidence: Evidence | undefined,
  now: Date,
): { tbs: Buffer; alg: Buffer; hash: string } {
  const { alg, hash } = signatureAlgorithm(key);
  const name = seq(tlv(0x31, seq(oid('2.5.4.3'), utf8String('Contrast'))));
  const parts = [
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, Buffer.from([1])),
    alg,
    name,
    seq(utcTime(new Date(now.getTime() - TWO_HOURS)), utcTime(new Date(now.getTime() + TWO_HOURS))),
    name,
    spkiDer(key),
  ];
  if (evidence) parts.push(tlv(0xa3, seq(seq(oid(evidence.oid), octetString(octetString(evidence.value))))));
  return { tbs: seq(...parts), alg, hash };
}

/** DER of an aTLS certificate. */
export function createAtlsCertDer(key: KeyObject, evidence?: Evidence, now = new Date()): Buffer {
  const { tbs, alg, hash } = atlsTbs(key, evidence, now);
  return seq(tbs, alg, tlv(0x03, Buffer.from([0]), sign(hash, tbs, key)));
}

/** PEM of an aTLS certificate, signed on libuv's pool: a server makes one per handshake. */
export async function createAtlsCert(key: KeyObject, evidence?: Evidence, now = new Date()): Promise<string> {
  const { tbs, alg, hash } = atlsTbs(key, evidence, now);
  return derToPem(seq(tbs, alg, tlv(0x03, Buffer.from([0]), await signOnPool(hash, tbs, key))));
}

export interface AtlsPeer {
  publicKey: KeyObject;
  /** SPKI DER of publicKey (exported on first use, once per key). */
  readonly spki: Buffer;
  /** Evidence extensions found (may be empty). */
  evidence: Evidence[];
}

/**
 * Evidence extensions of a strictly parsed certificate: extnValue must be one OCTET STRING
 * wrapping the evidence (checked by parseDerCertificate to be a single DER element).
 */
function evidenceExtensions(cert: NodeX509): Evidence[] {
  const out: Evidence[] = [];
  for (const [oid, ext] of extensions(cert)) {
    if (!EVIDENCE_OIDS.includes(oid)) continue;
    const inner = readSingle(ext.value);
    if (inner.tag !== TAG.OCTET_STRING)
      throw new AttestationError('atls.certificate', `the evidence extension ${oid} is not an OCTET STRING`);
    out.push({ oid, value: Buffer.from(inner.content) });
  }
  return out;
}

/** A certificate refusal of the strict parser, as an aTLS certificate refusal. */
function asAtlsRefusal(err: unknown): AttestationError {
  return new AttestationError(
    'atls.certificate',
    (err as Error).message.replace(/^attestation check x509.parse failed: /, ''),
    undefined,
    undefined,
    { cause: err },
  );
}

/**
 * The checks of a strictly parsed certificate: self-signed by its own key; evidence extensions
 * are extracted. The key and the evidence are read from the same certificate object.
 */
function atlsPeerOf(cert: NodeX509): AtlsPeer {
  const evidence = evidenceExtensions(cert);
  let publicKey: KeyObject;
  let selfSigned: boolean;
  try {
    publicKey = cert.publicKey;
    selfSigned = cert.verify(publicKey);
  } catch (err) {
    // The cause keeps OpenSSL's words for logs; the message that reaches the peer does not.
    throw new AttestationError(
      'atls.certificate',
      'the peer certificate has an unusable public key or signature',
      undefined,
      undefined,
      { cause: err },
    );
  }
  if (!selfSigned)
    throw new AttestationError('atls.certificate', 'the peer certificate is not self-signed by its own key');
  return {
    publicKey,
    evidence,
    get spki() {
      return spkiDer(publicKey);
    },
  };
}

/**
 * Parse a peer's aTLS certificate (DER exactly as it came off the wire): strictly one
 * certificate, self-signed by its own key; evidence extensions are extracted. The key and the
 * evidence are read from the same bytes, so they cannot come from two different certificates.
 */
export function parseAtlsCert(der: Uint8Array): AtlsPeer {
  let cert: NodeX509;
  try {
    cert = parseDerCertificate(der, 'the peer certificate');
  } catch (err) {
    throw asAtlsRefusal(err);
  }
  return atlsPeerOf(cert);
}

/**
 * The aTLS certificate a TLS peer presented in the handshake, with the checks of parseAtlsCert;
 * the certificate OpenSSL decoded is used as it is (its encoding is checked, it is not parsed
 * again). undefined when the peer sent none.
 */
export function tlsPeerAtlsCert(socket: { getPeerX509Certificate(): NodeX509 | undefined }): AtlsPeer | undefined {
  let cert: NodeX509 | undefined;
  try {
    cert = tlsPeerCertificate(socket, 'the peer certificate');
  } catch (err) {
    throw asAtlsRefusal(err);
  }
  return cert && atlsPeerOf(cert);
}

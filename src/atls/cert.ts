/**
 * aTLS certificates: self-signed, CN "Contrast", valid now ± 2 h, for the peer's TLS key,
 * carrying attestation evidence in a non-critical extension named by the evidence OID
 * (extension value = DER OCTET STRING wrapping the evidence bytes).
 */
import { X509Certificate as NodeX509, sign, type KeyObject } from 'node:crypto';
import { spkiDer } from '../coordinator/crypto.js';
import { EVIDENCE_OIDS } from '../attestation/dispatch.js';
import { AttestationError } from '../attestation/errors.js';
import type { Evidence } from '../issuers/issuer.js';
import { children, oid, oidToString, read, seq, tlv, utcTime } from './der.js';

const TWO_HOURS = 2 * 3600 * 1000;

function signatureAlgorithm(key: KeyObject): { alg: Buffer; hash: string } {
  if (key.asymmetricKeyType === 'rsa') return { alg: seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])), hash: 'sha256' };
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve === 'secp384r1') return { alg: seq(oid('1.2.840.10045.4.3.3')), hash: 'sha384' };
  if (curve === 'prime256v1') return { alg: seq(oid('1.2.840.10045.4.3.2')), hash: 'sha256' };
  throw new Error(`aTLS keys must be ECDSA P-256/P-384 or RSA, not ${key.asymmetricKeyType} ${curve ?? ''}`);
}

/** DER of an aTLS certificate. */
export function createAtlsCertDer(key: KeyObject, evidence?: Evidence, now = new Date()): Buffer {
  const { alg, hash } = signatureAlgorithm(key);
  const name = seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from('Contrast')))));
  const parts = [
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, Buffer.from([1])),
    alg,
    name,
    seq(utcTime(new Date(now.getTime() - TWO_HOURS)), utcTime(new Date(now.getTime() + TWO_HOURS))),
    name,
    spkiDer(key),
  ];
  if (evidence) parts.push(tlv(0xa3, seq(seq(oid(evidence.oid), tlv(0x04, tlv(0x04, evidence.value))))));
  const tbs = seq(...parts);
  return seq(tbs, alg, tlv(0x03, Buffer.from([0]), sign(hash, tbs, key)));
}

export function createAtlsCert(key: KeyObject, evidence?: Evidence, now = new Date()): Promise<string> {
  const b64 = createAtlsCertDer(key, evidence, now).toString('base64').replace(/.{64}/g, '$&\n');
  return Promise.resolve(`-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`);
}

export interface AtlsPeer {
  publicKey: KeyObject;
  spki: Buffer;
  /** Evidence extensions found (may be empty). */
  evidence: Evidence[];
}

function evidenceExtensions(der: Buffer): Evidence[] {
  const tbs = children(read(der))[0];
  if (!tbs) return [];
  const ext = children(tbs).find((n) => n.tag === 0xa3);
  if (!ext) return [];
  const out: Evidence[] = [];
  for (const e of children(children(ext)[0]!)) {
    const fields = children(e);
    const id = fields[0];
    const value = fields.at(-1);
    if (!id || id.tag !== 0x06 || !value || value.tag !== 0x04) continue;
    const type = oidToString(id.body);
    if (!(EVIDENCE_OIDS as readonly string[]).includes(type)) continue;
    const inner = read(value.body);
    if (inner.tag !== 0x04 || inner.end !== value.body.length) throw new AttestationError('atls.certificate', `the evidence extension ${type} is not an OCTET STRING`);
    out.push({ oid: type, value: Buffer.from(inner.body) });
  }
  return out;
}

/** Parse a peer certificate: its self-signature must verify; evidence extensions are extracted. */
export function parseAtlsCert(der: Uint8Array): AtlsPeer {
  const raw = Buffer.from(der);
  let cert: NodeX509;
  let evidence: Evidence[];
  try {
    cert = new NodeX509(raw);
    evidence = evidenceExtensions(raw);
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw new AttestationError('atls.certificate', `the peer certificate cannot be parsed (${(err as Error).message})`);
  }
  if (!cert.verify(cert.publicKey)) throw new AttestationError('atls.certificate', 'the peer certificate is not self-signed by its own key');
  const publicKey = cert.publicKey;
  return { publicKey, spki: spkiDer(publicKey), evidence };
}

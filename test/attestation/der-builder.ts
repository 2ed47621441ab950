/**
 * A tiny DER writer and certificate/CRL forger for negative tests: certificates that copy
 * AMD's or Intel's names and extensions exactly but are signed by keys we control.
 */
import { X509Certificate, constants, sign, type KeyObject } from 'node:crypto';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};
export const seq = (...c: Buffer[]) => tlv(0x30, ...c);
export const set = (...c: Buffer[]) => tlv(0x31, ...c);
export const octet = (b: Buffer) => tlv(0x04, b);
export const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
export const explicit = (n: number, ...c: Buffer[]) => tlv(0xa0 | n, ...c);
export const ia5 = (s: string) => tlv(0x16, Buffer.from(s, 'latin1'));
export const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));

export function int(v: number | bigint | Buffer): Buffer {
  let b: Buffer;
  if (Buffer.isBuffer(v)) b = v;
  else {
    let hex = BigInt(v).toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    b = Buffer.from(hex, 'hex');
  }
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const parts: number[] = [];
    let v = arc;
    do {
      parts.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let i = 0; i < parts.length - 1; i++) parts[i]! |= 0x80;
    out.push(...parts);
  }
  return tlv(0x06, Buffer.from(out));
}

export function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

export const name = (cn: string) => seq(set(seq(oid('2.5.4.3'), utf8(cn))));

export type SigAlg = 'ecdsa-sha256' | 'ecdsa-sha384' | 'rsa-pss-sha384';
const SHA384 = seq(oid('2.16.840.1.101.3.4.2.2'));
// RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt, as AMD signs.
const PSS_SHA384 = seq(
  oid('1.2.840.113549.1.1.10'),
  seq(explicit(0, SHA384), explicit(1, seq(oid('1.2.840.113549.1.1.8'), SHA384)), explicit(2, int(48))),
);
const ALG: Record<SigAlg, [string, Buffer]> = {
  'ecdsa-sha256': ['sha256', seq(oid('1.2.840.10045.4.3.2'))],
  'ecdsa-sha384': ['sha384', seq(oid('1.2.840.10045.4.3.3'))],
  'rsa-pss-sha384': ['sha384', PSS_SHA384],
};

function signWith(alg: SigAlg, data: Buffer, key: KeyObject): Buffer {
  const hash = ALG[alg][0];
  return alg === 'rsa-pss-sha384'
    ? sign(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 })
    : sign(hash, data, key);
}

export interface ForgeExtension {
  oid: string;
  critical?: boolean;
  value: Buffer;
}

export interface ForgeCert {
  subject: Buffer;
  issuer: Buffer;
  publicKey: KeyObject;
  signingKey: KeyObject;
  alg: SigAlg;
  serial?: bigint | Buffer;
  notBefore?: Date;
  notAfter?: Date;
  ca?: boolean;
  extensions?: ForgeExtension[];
}

export function forgeCertificate(o: ForgeCert): X509Certificate {
  const algId = ALG[o.alg][1];
  const exts = [...(o.extensions ?? [])];
  if (o.ca) exts.unshift({ oid: '2.5.29.19', critical: true, value: seq(bool(true)) });
  const tbs = seq(
    explicit(0, int(2)),
    int(o.serial ?? 1n),
    algId,
    o.issuer,
    seq(time(o.notBefore ?? new Date('2020-01-01T00:00:00Z')), time(o.notAfter ?? new Date('2049-01-01T00:00:00Z'))),
    o.subject,
    o.publicKey.export({ type: 'spki', format: 'der' }),
    ...(exts.length
      ? [explicit(3, seq(...exts.map((e) => seq(oid(e.oid), ...(e.critical ? [bool(true)] : []), octet(e.value)))))]
      : []),
  );
  const sig = signWith(o.alg, tbs, o.signingKey);
  return new X509Certificate(seq(tbs, algId, tlv(0x03, Buffer.from([0]), sig)));
}

/**
 * An aTLS-shaped certificate for `key` (self-signed, named Contrast) built with the forger, so a
 * test can break one property: another signing key, extensions of its choosing.
 */
export function forgeAtlsCertificate(
  key: { publicKey: KeyObject; privateKey: KeyObject },
  over: { signingKey?: KeyObject; extensions?: ForgeExtension[] } = {},
): Buffer {
  return forgeCertificate({
    subject: name('Contrast'),
    issuer: name('Contrast'),
    publicKey: key.publicKey,
    signingKey: over.signingKey ?? key.privateKey,
    alg: 'ecdsa-sha256',
    ...(over.extensions ? { extensions: over.extensions } : {}),
  }).raw;
}

export interface ForgeCrl {
  issuer: Buffer;
  signingKey: KeyObject;
  alg: SigAlg;
  thisUpdate: Date;
  nextUpdate: Date;
  revoked: (bigint | Buffer)[];
}

export function forgeCrl(o: ForgeCrl): Buffer {
  const algId = ALG[o.alg][1];
  const entries = o.revoked.map((s) => seq(int(s), time(o.thisUpdate)));
  const tbs = seq(
    int(1),
    algId,
    o.issuer,
    time(o.thisUpdate),
    time(o.nextUpdate),
    ...(entries.length ? [seq(...entries)] : []),
  );
  return seq(tbs, algId, tlv(0x03, Buffer.from([0]), signWith(o.alg, tbs, o.signingKey)));
}

/** Assertions and forgeries shared by the attestation tests. */
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { AttestationError } from '../../src/attestation/index.js';
import { extensions, subjectDer } from '../../src/attestation/x509.js';
import { forgeCertificate } from './der-builder.js';
import { pemBlocks, type SnpVector } from './vectors.js';

/** Runs `fn` and returns the AttestationError it must throw. */
export async function rejects(fn: () => Promise<unknown> | unknown, check?: string): Promise<AttestationError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof AttestationError, `expected an AttestationError, got ${String(err)}`);
    if (check) assert.equal(err.check, check, err.message);
    return err;
  }
  assert.fail(`expected verification to fail${check ? ` with ${check}` : ''}`);
}

/** An assert.throws matcher for an AttestationError with the given check. */
export function checkIs(check: string) {
  return (err: unknown) => err instanceof AttestationError && err.check === check;
}

export function buildCertTable(entries: [string, Buffer][]): Buffer {
  const header = Buffer.alloc(24 * (entries.length + 1));
  let offset = header.length;
  entries.forEach(([guid, der], i) => {
    Buffer.from(guid.replace(/-/g, ''), 'hex').copy(header, i * 24);
    header.writeUInt32LE(offset, i * 24 + 16);
    header.writeUInt32LE(der.length, i * 24 + 20);
    offset += der.length;
  });
  return Buffer.concat([header, ...entries.map(([, der]) => der)]);
}

/** A complete AMD-shaped hierarchy under our own keys, copying AMD's names and VCEK extensions. */
export function forgeAmdHierarchy(v: SnpVector) {
  const genuineArk = new X509Certificate(pemBlocks('amd/go-sev-guest/ask_ark_milan.pem')[1]!);
  const genuineAsk = new X509Certificate(pemBlocks('amd/go-sev-guest/ask_ark_milan.pem')[0]!);
  const genuineVcek = new X509Certificate(v.vcek);
  const arkKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const askKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const vcekKeys = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const ark = forgeCertificate({
    subject: subjectDer(genuineArk),
    issuer: subjectDer(genuineArk),
    publicKey: arkKeys.publicKey,
    signingKey: arkKeys.privateKey,
    alg: 'rsa-pss-sha384',
    ca: true,
  });
  const ask = forgeCertificate({
    subject: subjectDer(genuineAsk),
    issuer: subjectDer(genuineArk),
    publicKey: askKeys.publicKey,
    signingKey: arkKeys.privateKey,
    alg: 'rsa-pss-sha384',
    ca: true,
    serial: 0x1234n,
  });
  const vcekExts = [...extensions(genuineVcek)].map(([oid, e]) => ({ oid, critical: e.critical, value: e.value }));
  const vcek = forgeCertificate({
    subject: subjectDer(genuineVcek),
    issuer: subjectDer(genuineAsk),
    publicKey: vcekKeys.publicKey,
    signingKey: askKeys.privateKey,
    alg: 'rsa-pss-sha384',
    extensions: vcekExts,
    serial: 0n,
  });
  return { ark, ask, vcek, arkKey: arkKeys.privateKey, vcekKey: vcekKeys.privateKey };
}

/** Signs a report with `key` the way the AMD secure processor does (little-endian r and s). */
export function resign(report: Buffer, key: KeyObject): Buffer {
  const out = Buffer.from(report);
  const sig = sign('sha384', out.subarray(0, 0x2a0), { key, dsaEncoding: 'ieee-p1363' });
  out.fill(0, 0x2a0, 0x330);
  Buffer.from(sig.subarray(0, 48)).reverse().copy(out, 0x2a0);
  Buffer.from(sig.subarray(48)).reverse().copy(out, 0x2e8);
  return out;
}

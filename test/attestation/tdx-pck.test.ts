/**
 * Intel PCK certificates: the SGX extension (FMSPC, PCE id, TCB components) is read strictly
 * (every refusal is tdx.pck.extension), and the PCK chain of a quote must be leaf, PCK CA and the
 * pinned root, P-256, each signed by the next and valid now.
 */
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import {
  readPckExtension,
  parsePemChain,
  requirePinnedIntelRoot,
  verifyPckChain,
} from '../../src/attestation/tdx/pck.js';
import { classifyIntelCrls } from '../../src/attestation/tdx/crls.js';
import { parseTdxQuote } from '../../src/attestation/tdx/quote.js';
import { verifyTdx } from '../../src/attestation/tdx/verify.js';
import { INTEL_SGX_ROOT_CA } from '../../src/attestation/roots/intel.js';
import { pinnedCertificate } from '../../src/attestation/roots/pinned.js';
import { subjectDer } from '../../src/attestation/x509.js';
import { forgeCertificate, int, name, octet, oid, seq, tlv } from './der-builder.js';
import { checkIs, rejects } from './assertions.js';
import { TDX, TDX_COLLATERAL_TIME } from './vectors.js';

const SGX = '1.2.840.113741.1.13.1';
const NOW = new Date('2026-11-23T00:00:00Z');
const inspect = { allowMissingCollateral: true, now: NOW };

const pems = (quote: Buffer): string[] =>
  parseTdxQuote(quote)
    .pckChainPem.toString('latin1')
    .match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)!;
const certs = (quote: Buffer) => pems(quote).map((p) => new X509Certificate(p));

/** The quote with its PCK chain replaced, every enclosing length adjusted. */
function withPckChain(quoteBytes: Buffer, pem: Buffer): Buffer {
  const q = parseTdxQuote(quoteBytes);
  const start = q.pckChainPem.byteOffset - q.raw.byteOffset;
  const delta = pem.length - q.pckChainPem.length;
  const out = Buffer.concat([q.raw.subarray(0, start), pem, q.raw.subarray(start + q.pckChainPem.length)]);
  out.writeUInt32LE(pem.length, start - 4);
  const sigLenAt = q.signedBytes.length;
  out.writeUInt32LE(q.raw.readUInt32LE(sigLenAt) + delta, sigLenAt);
  const certLenAt = sigLenAt + 4 + 128 + 2;
  out.writeUInt32LE(q.raw.readUInt32LE(certLenAt) + delta, certLenAt);
  return out;
}
const chainOf = (...c: X509Certificate[]) => Buffer.from(c.map((x) => x.toString()).join(''));

// --- A synthetic SGX extension with known values -----------------------------------------

const PPID = Buffer.alloc(16, 0xa1);
const CPUSVN = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex');
const PCEID = Buffer.from('0102', 'hex');
const FMSPC = Buffer.from('50806f000000', 'hex');
const PIID = Buffer.alloc(16, 0x77);

type Entries = Map<string, Buffer>;
const entry = (id: string, value: Buffer) => seq(oid(id), value);

function tcbEntries(): Entries {
  const m: Entries = new Map();
  for (let i = 1; i <= 16; i++) m.set(`${SGX}.2.${i}`, int(i * 3));
  m.set(`${SGX}.2.17`, int(13));
  m.set(`${SGX}.2.18`, octet(CPUSVN));
  return m;
}

function topEntries(tcb: Entries = tcbEntries()): Entries {
  return new Map([
    [`${SGX}.1`, octet(PPID)],
    [`${SGX}.2`, seq(...[...tcb].map(([k, v]) => entry(k, v)))],
    [`${SGX}.3`, octet(PCEID)],
    [`${SGX}.4`, octet(FMSPC)],
    [`${SGX}.5`, tlv(0x0a, Buffer.from([1]))],
  ]);
}

const extValue = (top: Entries) => seq(...[...top].map(([k, v]) => entry(k, v)));

const forgeKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
function pckWith(value: Buffer | undefined): X509Certificate {
  return forgeCertificate({
    subject: name('Intel SGX PCK Certificate'),
    issuer: name('Intel SGX PCK Platform CA'),
    publicKey: forgeKey.publicKey,
    signingKey: forgeKey.privateKey,
    alg: 'ecdsa-sha256',
    extensions: value ? [{ oid: SGX, value }] : [],
  });
}
const refusal = (reason: RegExp) => (err: unknown) =>
  checkIs('tdx.pck.extension')(err) && reason.test((err as Error).message);

describe('TDX PCK certificates: the SGX extension', () => {
  it('reads PPID, the 16 TCB components, PCESVN, CPUSVN, PCE id and FMSPC', () => {
    const ext = readPckExtension(pckWith(extValue(topEntries())));
    assert.deepEqual(ext.ppid, PPID);
    assert.deepEqual(
      ext.sgxTcbComponents,
      Array.from({ length: 16 }, (_, i) => (i + 1) * 3),
    );
    assert.equal(ext.pceSvn, 13);
    assert.deepEqual(ext.cpuSvn, CPUSVN);
    assert.deepEqual(ext.pceId, PCEID);
    assert.deepEqual(ext.fmspc, FMSPC);
    assert.equal(ext.platformInstanceId, undefined);
    assert.ok(!('platformInstanceId' in ext));
  });

  it('reads the platform instance id where present (multi-package platforms)', () => {
    const top = topEntries();
    top.set(`${SGX}.6`, octet(PIID));
    assert.deepEqual(readPckExtension(pckWith(extValue(top))).platformInstanceId, PIID);
    top.set(`${SGX}.6`, int(1));
    assert.throws(
      () => readPckExtension(pckWith(extValue(top))),
      (e: unknown) => checkIs('asn1.decode')(e) && /platform instance id: tag 0x2/.test((e as Error).message),
    );
  });

  it('reads the genuine PCK certificates of the quotes', () => {
    const spr = readPckExtension(certs(TDX.sprQuote())[0]!);
    assert.equal(spr.fmspc.toString('hex'), '50806f000000');
    assert.equal(spr.pceId.toString('hex'), '0000');
    assert.equal(spr.sgxTcbComponents.length, 16);
    assert.equal(spr.ppid.length, 16);
    assert.equal(readPckExtension(certs(TDX.v5Quote())[0]!).fmspc.toString('hex'), '90c06f000000');
  });

  it('refuses a certificate without the SGX extension', () => {
    assert.throws(
      () => readPckExtension(pckWith(undefined)),
      refusal(/lacks the SGX extension \(1\.2\.840\.113741\.1\.13\.1\)/),
    );
  });

  it('refuses malformed entries and a missing TCB entry', () => {
    assert.throws(() => readPckExtension(pckWith(seq(seq(oid(`${SGX}.1`))))), refusal(/malformed SGX extension entry/));
    assert.throws(() => readPckExtension(pckWith(seq())), refusal(/lacks the TCB entry/));
    const tcb = tcbEntries();
    tcb.set(`${SGX}.2.7`, Buffer.alloc(0));
    const top = topEntries(tcb);
    top.set(`${SGX}.2`, seq(...[...tcb].map(([k, v]) => (v.length ? entry(k, v) : seq(oid(k))))));
    assert.throws(() => readPckExtension(pckWith(extValue(top))), refusal(/malformed SGX extension entry/));
  });

  it('refuses a TCB entry that is not a SEQUENCE', () => {
    const top = topEntries();
    top.set(`${SGX}.2`, octet(Buffer.alloc(4)));
    assert.throws(
      () => readPckExtension(pckWith(extValue(top))),
      (e: unknown) => checkIs('asn1.decode')(e) && /SGX TCB: tag 0x4, want 0x30/.test((e as Error).message),
    );
  });

  it('refuses a TCB without one of its components, or without PCESVN', () => {
    for (const i of [1, 8, 16]) {
      const tcb = tcbEntries();
      tcb.delete(`${SGX}.2.${i}`);
      assert.throws(
        () => readPckExtension(pckWith(extValue(topEntries(tcb)))),
        refusal(new RegExp(`the SGX TCB lacks component ${i}$`)),
      );
    }
    const tcb = tcbEntries();
    tcb.delete(`${SGX}.2.17`);
    assert.throws(() => readPckExtension(pckWith(extValue(topEntries(tcb)))), refusal(/lacks PCESVN/));
  });

  it('refuses missing or wrongly sized PPID, CPUSVN, PCE id and FMSPC', () => {
    const cases: [string, boolean, RegExp][] = [
      [`${SGX}.1`, false, /lacks PPID \(1\.2\.840\.113741\.1\.13\.1\.1\)/],
      [`${SGX}.3`, false, /lacks PCEID/],
      [`${SGX}.4`, false, /lacks FMSPC/],
      [`${SGX}.2.18`, true, /lacks CPUSVN/],
    ];
    for (const [id, inTcb, reason] of cases) {
      const tcb = tcbEntries();
      const top = topEntries();
      if (inTcb) {
        tcb.delete(id);
        assert.throws(() => readPckExtension(pckWith(extValue(topEntries(tcb)))), refusal(reason));
      } else {
        top.delete(id);
        assert.throws(() => readPckExtension(pckWith(extValue(top))), refusal(reason));
      }
    }
    for (const [id, size, what] of [
      [`${SGX}.1`, 15, 'PPID'],
      [`${SGX}.3`, 3, 'PCEID'],
      [`${SGX}.4`, 5, 'FMSPC'],
    ] as const) {
      const top = topEntries();
      top.set(id, octet(Buffer.alloc(size)));
      const err = (() => {
        try {
          readPckExtension(pckWith(extValue(top)));
        } catch (e) {
          return e as { check: string; detail: string; expected: string; actual: string };
        }
        return undefined;
      })();
      assert.equal(err?.check, 'tdx.pck.extension');
      assert.equal(err?.detail, `${what} has the wrong size`);
      assert.equal(err?.actual, `${size} bytes`);
    }
    const tcb = tcbEntries();
    tcb.set(`${SGX}.2.18`, octet(Buffer.alloc(17)));
    assert.throws(
      () => readPckExtension(pckWith(extValue(topEntries(tcb)))),
      refusal(/CPUSVN has the wrong size; expected 16 bytes; actual 17 bytes/),
    );
  });

  it('refuses components that are not small non-negative integers', () => {
    const tcb = tcbEntries();
    tcb.set(`${SGX}.2.3`, octet(Buffer.from([1])));
    assert.throws(
      () => readPckExtension(pckWith(extValue(topEntries(tcb)))),
      (e: unknown) => checkIs('asn1.decode')(e) && /SGX TCB component 3/.test((e as Error).message),
    );
    const pce = tcbEntries();
    pce.set(`${SGX}.2.17`, tlv(0x02, Buffer.from([0xff])));
    assert.throws(
      () => readPckExtension(pckWith(extValue(topEntries(pce)))),
      (e: unknown) => checkIs('asn1.decode')(e) && /PCESVN/.test((e as Error).message),
    );
  });
});

describe('TDX PCK chains', () => {
  const [leaf, intermediate, root] = certs(TDX.cosQuote()) as [X509Certificate, X509Certificate, X509Certificate];
  const pem = parseTdxQuote(TDX.cosQuote()).pckChainPem;

  it('verifies the genuine chain and names the CA kind', () => {
    const chain = verifyPckChain(pem, NOW);
    assert.equal(chain.ca, 'platform');
    assert.ok(chain.root === pinnedCertificate(INTEL_SGX_ROOT_CA), 'the pinned root object, not the copy in the quote');
    assert.ok(chain.leaf.raw.equals(leaf.raw));
    assert.ok(chain.intermediate.raw.equals(intermediate.raw));
    assert.equal(chain.extension.fmspc.toString('hex'), '00806f050000');
  });

  it('requires exactly three certificates', async () => {
    const err = await rejects(() => verifyPckChain(chainOf(leaf, intermediate, root, root), NOW), 'tdx.pck.chain');
    assert.deepEqual([err.expected, err.actual], ['3 certificates', '4']);
    await rejects(() => verifyPckChain(chainOf(leaf), NOW), 'tdx.pck.chain');
    const nine = await rejects(
      () => verifyPckChain(Buffer.from(Array(9).fill(leaf.toString()).join('')), NOW),
      'x509.parse',
    );
    assert.equal(
      nine.detail,
      'the certificate chain is not a well-formed certificate: 9 certificates, expected 0 to 8',
    );
    const two = await rejects(() => verifyPckChain(chainOf(leaf, intermediate), NOW), 'tdx.pck.chain');
    assert.deepEqual(
      [two.detail, two.expected, two.actual],
      ['the PCK chain must hold leaf, intermediate CA and root', '3 certificates', '2'],
    );
    assert.equal(parsePemChain(chainOf(leaf, root), 2, 'c', 'w').length, 2);
  });

  it('requires the pinned root by bytes', async () => {
    const none = await rejects(() => requirePinnedIntelRoot(undefined, 'tdx.pck.root'), 'tdx.pck.root');
    assert.equal(none.detail, 'the certificate chain does not include the Intel SGX Root CA');
    const k = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const nameless = forgeCertificate({
      subject: seq(tlv(0x31, seq(oid('2.5.4.10'), tlv(0x0c, Buffer.from('Intel'))))),
      issuer: name('x'),
      publicKey: k.publicKey,
      signingKey: k.privateKey,
      alg: 'ecdsa-sha256',
    });
    const e0 = await rejects(() => requirePinnedIntelRoot(nameless, 'tdx.pck.root'), 'tdx.pck.root');
    assert.match(e0.actual!, /^sha256 [0-9a-f]{64} \(no CN\)$/);
    assert.equal(requirePinnedIntelRoot(root, 'x'), pinnedCertificate(INTEL_SGX_ROOT_CA));
    const err = await rejects(() => requirePinnedIntelRoot(intermediate, 'tdx.pck.root'), 'tdx.pck.root');
    assert.match(err.message, /Intel SGX PCK Platform CA/);
  });

  it('requires a PCK certificate under a PCK Platform or Processor CA, both P-256', async () => {
    const keys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const forge = (cn: string, issuer: X509Certificate, publicKey = keys.publicKey, ca = false) =>
      forgeCertificate({
        subject: name(cn),
        issuer: subjectDer(issuer),
        publicKey,
        signingKey: keys.privateKey,
        alg: 'ecdsa-sha256',
        ca,
      });
    let err = await rejects(
      () => verifyPckChain(chainOf(forge('Intel SGX PCK Cert', intermediate), intermediate, root), NOW),
      'tdx.pck.chain',
    );
    assert.equal(err.detail, 'the first certificate is not a PCK certificate');
    assert.deepEqual([err.expected, err.actual], ['CN=Intel SGX PCK Certificate', 'CN=Intel SGX PCK Cert']);
    const noCn = (issuer: X509Certificate, ca = false) =>
      forgeCertificate({
        subject: seq(tlv(0x31, seq(oid('2.5.4.10'), tlv(0x0c, Buffer.from('Intel'))))),
        issuer: subjectDer(issuer),
        publicKey: keys.publicKey,
        signingKey: keys.privateKey,
        alg: 'ecdsa-sha256',
        ca,
      });
    err = await rejects(() => verifyPckChain(chainOf(noCn(intermediate), intermediate, root), NOW), 'tdx.pck.chain');
    assert.equal(err.actual, 'CN=<none>');
    err = await rejects(() => verifyPckChain(chainOf(leaf, noCn(root, true), root), NOW), 'tdx.pck.chain');
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['the intermediate is not an Intel PCK CA', 'CN=Intel SGX PCK Platform CA or Processor CA', 'CN=<none>'],
    );
    err = await rejects(
      () => verifyPckChain(chainOf(leaf, forge('Intel SGX TCB Signing', root, keys.publicKey, true), root), NOW),
      'tdx.pck.chain',
    );
    assert.equal(err.detail, 'the intermediate is not an Intel PCK CA');
    assert.equal(err.actual, 'CN=Intel SGX TCB Signing');
    err = await rejects(
      () =>
        verifyPckChain(
          chainOf(forge('Intel SGX PCK Certificate', intermediate, p384.publicKey), intermediate, root),
          NOW,
        ),
      'tdx.pck.chain',
    );
    assert.deepEqual(
      [err.detail, err.expected, err.actual],
      ['PCK certificate key is not ECDSA P-256', 'ec prime256v1', 'ec secp384r1'],
    );
    const rsaKey = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    err = await rejects(
      () => verifyPckChain(chainOf(forge('Intel SGX PCK Certificate', intermediate, rsaKey), intermediate, root), NOW),
      'tdx.pck.chain',
    );
    assert.equal(err.actual, 'rsa');
    err = await rejects(
      () => verifyPckChain(chainOf(leaf, forge('Intel SGX PCK Platform CA', root, p384.publicKey, true), root), NOW),
      'tdx.pck.chain',
    );
    assert.equal(err.detail, 'PCK CA key is not ECDSA P-256');
    // A Processor CA is a PCK CA: the chain gets as far as the signature check.
    err = await rejects(
      () => verifyPckChain(chainOf(leaf, forge('Intel SGX PCK Processor CA', root, keys.publicKey, true), root), NOW),
      'tdx.pck.chain',
    );
    assert.match(
      err.detail,
      /the PCK CA must be signed by the Intel SGX Root CA: (signature does not verify|issuer name does not match)/,
    );
    // The genuine CA, and a leaf it did not sign.
    err = await rejects(
      () => verifyPckChain(chainOf(forge('Intel SGX PCK Certificate', intermediate), intermediate, root), NOW),
      'tdx.pck.chain',
    );
    assert.match(err.detail, /^the PCK certificate must be signed by the PCK CA: signature does not verify/);
  });

  it('checks the validity of root, CA and PCK certificate at the given time', async () => {
    let err = await rejects(() => verifyPckChain(pem, new Date('2018-05-21T10:45:00Z')), 'tdx.pck.validity');
    assert.match(err.detail, /^the Intel SGX Root CA is not valid/);
    err = await rejects(() => verifyPckChain(pem, new Date('2018-05-21T10:48:00Z')), 'tdx.pck.validity');
    assert.match(err.detail, /^the Intel SGX PCK Platform CA is not valid/);
    err = await rejects(() => verifyPckChain(pem, new Date('2024-07-01T00:00:00Z')), 'tdx.pck.validity');
    assert.match(err.detail, /^the PCK certificate is not valid/);
    assert.doesNotThrow(() => verifyPckChain(pem, new Date('2024-07-02T12:07:37Z')));
  });

  it('fails the same way inside a quote', async () => {
    const quote = TDX.cosQuote();
    await rejects(
      () => verifyTdx({ quote: withPckChain(quote, chainOf(leaf, intermediate, root, root)) }, null, {}, inspect),
      'tdx.pck.chain',
    );
  });
});

describe('TDX CRL files', () => {
  it('sorts the root CA CRL and the PCK CA CRL by issuer, in any order', () => {
    const root = TDX.rootCrl();
    const pck = TDX.pckCrl();
    assert.deepEqual(
      classifyIntelCrls([
        { name: 'a', der: pck },
        { name: 'b', der: root },
      ]),
      { rootCrl: root, pckCrl: pck },
    );
    assert.deepEqual(classifyIntelCrls([{ name: 'b', der: root }]), { rootCrl: root });
    assert.deepEqual(classifyIntelCrls([]), {});
  });

  it('refuses a file that is no CRL and two CRLs of one issuer', async () => {
    let err = await rejects(
      () => classifyIntelCrls([{ name: 'pck.pem', der: Buffer.from('-----BEGIN X509 CRL-----') }]),
      'tdx.crl',
    );
    assert.match(err.detail, /^pck\.pem is not a DER CRL \(/);
    err = await rejects(
      () =>
        classifyIntelCrls([
          { name: 'one', der: TDX.pckCrl() },
          { name: 'two', der: TDX.pckCrl() },
        ]),
      'tdx.crl',
    );
    assert.equal(err.detail, 'two CRLs from the same issuer (two)');
    await rejects(
      () =>
        classifyIntelCrls([
          { name: 'one', der: TDX.rootCrl() },
          { name: 'two', der: TDX.rootCrl() },
        ]),
      'tdx.crl',
    );
  });

  it("checks the PCK CRL against the quote's CA during verification", async () => {
    // The root CA CRL given as the PCK CRL: its issuer is not the PCK CA.
    const err = await rejects(
      () =>
        verifyTdx(
          { quote: TDX.sprQuote() },
          null,
          {},
          { now: TDX_COLLATERAL_TIME, allowMissingCollateral: true, collateral: { pckCrl: TDX.rootCrl() } },
        ),
      'tdx.crl.pck',
    );
    assert.match(err.detail, /CRL issuer does not match/);
    await rejects(
      () =>
        verifyTdx(
          { quote: TDX.sprQuote() },
          null,
          {},
          { now: TDX_COLLATERAL_TIME, allowMissingCollateral: true, collateral: { rootCrl: TDX.pckCrl() } },
        ),
      'tdx.crl.root',
    );
    await rejects(
      () =>
        verifyTdx(
          { quote: TDX.sprQuote() },
          null,
          {},
          { now: TDX_COLLATERAL_TIME, allowMissingCollateral: true, collateral: { rootCrl: Buffer.from('junk') } },
        ),
      'tdx.crl.root',
    );
  });
});

/**
 * Verification caches (parsed certificates, verified chain links, verified collateral bodies,
 * imported attestation keys, pinned roots) keep only time-independent facts. A cold verifier
 * (a fresh instance of the module, with empty caches) must reach the same verdicts as a warm
 * one, and refusals must not depend on what was verified before.
 */
import assert from 'node:assert/strict';
import { X509Certificate, randomUUID } from 'node:crypto';
import { SNP_NOW, SNP_VECTORS, TDX, TDX_COLLATERAL_TIME, pemBlocks } from './vectors.js';

/** A fresh instance of a source module: same code, its own module-level caches. */
async function cold<T>(rel: string): Promise<T> {
  const url = new URL(`../../src/attestation/${rel}`, import.meta.url);
  url.search = `cold=${randomUUID()}`;
  return (await import(url.href)) as T;
}

/**
 * A refusal by a cold instance. Its modules are fresh down to errors.ts, so its AttestationError
 * is another class object than ours: match it by name and check.
 */
async function rejects(fn: () => unknown, check: string): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.equal((err as Error).name, 'AttestationError', String(err));
    assert.equal((err as { check?: string }).check, check, String(err));
    return;
  }
  assert.fail(`expected a refusal with ${check}`);
}

type Collateral = typeof import('../../src/attestation/tdx/collateral.js');
type TdxVerify = typeof import('../../src/attestation/tdx/verify.js');
type X509 = typeof import('../../src/attestation/x509.js');
type Certificate = typeof import('../../src/attestation/certificate.js');
type Pinned = typeof import('../../src/attestation/roots/pinned.js');

describe('verification caches: cold and warm verifiers agree', () => {
  it('TDX collateral bodies', async () => {
    const warm = await import('../../src/attestation/tdx/collateral.js');
    const fresh = await cold<Collateral>('tdx/collateral.ts');
    assert.notEqual(fresh.verifyQeIdentity, warm.verifyQeIdentity, 'a separate instance');
    const qe = fresh.verifyQeIdentity(TDX.qeIdentity(), TDX.qeChain(), TDX_COLLATERAL_TIME);
    assert.deepEqual(qe, warm.verifyQeIdentity(TDX.qeIdentity(), TDX.qeChain(), TDX_COLLATERAL_TIME));
    assert.deepEqual(Object.keys(qe), [
      'id',
      'version',
      'issueDate',
      'nextUpdate',
      'tcbEvaluationDataNumber',
      'miscselect',
      'miscselectMask',
      'attributes',
      'attributesMask',
      'mrsigner',
      'isvprodid',
      'tcbLevels',
    ]);
    assert.deepEqual(
      [qe.miscselect, qe.miscselectMask, qe.attributes, qe.attributesMask],
      ['00000000', 'ffffffff', '11000000000000000000000000000000', 'fbffffffffffffff0000000000000000'],
    );
    assert.deepEqual(qe.tcbLevels, [{ tcb: { isvsvn: 4 }, tcbDate: '2023-02-15T00:00:00Z', tcbStatus: 'UpToDate' }]);
    // The second call of the cold instance is answered by its cache, with the same body.
    assert.deepEqual(fresh.verifyQeIdentity(TDX.qeIdentity(), TDX.qeChain(), TDX_COLLATERAL_TIME), qe);
    const info = fresh.verifyTcbInfo(TDX.tcbInfo(), TDX.tcbChain(), TDX_COLLATERAL_TIME);
    assert.deepEqual(info, warm.verifyTcbInfo(TDX.tcbInfo(), TDX.tcbChain(), TDX_COLLATERAL_TIME));
    // A cached body is no answer for the other kind of body, in either order.
    await rejects(
      () => fresh.verifyQeIdentity(TDX.tcbInfo(), TDX.qeChain(), TDX_COLLATERAL_TIME),
      'tdx.qeidentity.parse',
    );
    const other = await cold<Collateral>('tdx/collateral.ts');
    other.verifyQeIdentity(TDX.qeIdentity(), TDX.qeChain(), TDX_COLLATERAL_TIME);
    await rejects(
      () => other.verifyTcbInfo(TDX.qeIdentity(), TDX.tcbChain(), TDX_COLLATERAL_TIME),
      'tdx.tcbinfo.parse',
    );
    // Dates are checked on every call, cached or not.
    await rejects(
      () => fresh.verifyQeIdentity(TDX.qeIdentity(), TDX.qeChain(), new Date('2023-07-09T00:00:00Z')),
      'tdx.qeidentity.validity',
    );
  });

  it('TDX attestation keys', async () => {
    const warm = await import('../../src/attestation/tdx/verify.js');
    const opts = { allowMissingCollateral: true, now: new Date('2026-11-23T00:00:00Z') };
    for (const quote of [TDX.v5Quote(), TDX.cosQuote()]) {
      const fresh = await cold<TdxVerify>('tdx/verify.ts');
      const a = fresh.verifyTdx({ quote }, null, {}, opts);
      const b = warm.verifyTdx({ quote }, null, {}, opts);
      assert.deepEqual(
        [a.quoteVersion, a.tcbStatus, a.quote.attestationKey],
        [b.quoteVersion, b.tcbStatus, b.quote.attestationKey],
      );
      // A tampered quote is refused by a cold verifier as by a warm one.
      const bad = Buffer.from(quote);
      bad[0x36 + 0x88]! ^= 1;
      await rejects(() => fresh.verifyTdx({ quote: bad }, null, {}, opts), 'tdx.quote.signature');
      await rejects(
        () => (async () => (await cold<TdxVerify>('tdx/verify.ts')).verifyTdx({ quote: bad }, null, {}, opts))(),
        'tdx.quote.signature',
      );
    }
  });

  it('certificate chain links and extensions', async () => {
    const fresh = await cold<X509>('x509.ts');
    const vcek = new X509Certificate(SNP_VECTORS[1]!.vcek);
    const [askPem, arkPem] = pemBlocks('amd/go-sev-guest/ask_ark_milan.pem');
    const ask = new X509Certificate(askPem!);
    const ark = new X509Certificate(arkPem!);
    fresh.checkIssuedBy(vcek, ask, 'c', 'VCEK');
    fresh.checkIssuedBy(ask, ark, 'c', 'ASK');
    fresh.checkIssuedBy(vcek, ask, 'c', 'VCEK'); // now from the cache
    await rejects(() => fresh.checkIssuedBy(vcek, ark, 'test.link', 'VCEK'), 'test.link');
    await rejects(
      () => (async () => (await cold<X509>('x509.ts')).checkIssuedBy(ask, vcek, 'test.link', 'ASK'))(),
      'test.link',
    );
    const warm = await import('../../src/attestation/x509.js');
    assert.deepEqual([...fresh.extensions(vcek)], [...warm.extensions(vcek)]);
    assert.deepEqual(fresh.subjectDer(ask), warm.subjectDer(ask));
    assert.equal(fresh.extensions(vcek).get('1.3.6.1.4.1.3704.1.4')?.value.length, 64);
  });

  it('parsed certificates', async () => {
    const fresh = await cold<Certificate>('certificate.ts');
    const der = new X509Certificate(SNP_VECTORS[2]!.vcek).raw;
    const c = fresh.parseDerCertificate(der, 'VCEK');
    assert.deepEqual(c.raw, der);
    assert.equal(fresh.parseDerCertificate(Buffer.from(der), 'VCEK'), c, 'the same bytes give the same object');
    const bad = Buffer.concat([der, Buffer.from([0])]);
    await rejects(() => fresh.parseDerCertificate(bad, 'VCEK'), 'x509.parse');
    await rejects(() => fresh.parseDerCertificate(bad, 'VCEK'), 'x509.parse');
    const chain = (await cold<Certificate>('certificate.ts')).parsePemCertificates(
      Buffer.from(`${pemBlocks('amd/go-sev-guest/ask_ark_milan.pem').join('\n')}\n`),
      'chain',
      { count: 2 },
    );
    assert.deepEqual(
      chain.map((x) => x.subject.split('\n').at(-1)),
      ['CN=SEV-Milan', 'CN=ARK-Milan'],
    );
  });

  it('pinned roots', async () => {
    const fresh = await cold<Pinned>('roots/pinned.ts');
    const { AMD_ARKS } = await import('../../src/attestation/roots/amd.js');
    const { INTEL_SGX_ROOT_CA } = await import('../../src/attestation/roots/intel.js');
    assert.equal(fresh.pinnedCertificate(AMD_ARKS.Turin).subject.split('\n').at(-1), 'CN=ARK-Turin');
    assert.equal(
      fresh
        .pinnedCertificate(INTEL_SGX_ROOT_CA)
        .subject.split('\n')
        .find((l) => l.startsWith('CN=')),
      'CN=Intel SGX Root CA',
    );
    assert.throws(
      () => fresh.pinnedCertificate({ pem: AMD_ARKS.Genoa.pem, sha256: AMD_ARKS.Turin.sha256 }),
      /does not match its fingerprint/,
    );
  });

  it('a whole SNP verification', async () => {
    const fresh = await cold<typeof import('../../src/attestation/snp/verify.js')>('snp/verify.ts');
    const v = SNP_VECTORS[2]!;
    const r = await fresh.verifySnp({ report: v.report }, null, {}, { vcek: v.vcek, certChain: v.chain, now: SNP_NOW });
    assert.equal(r.product, 'Milan');
  });
});

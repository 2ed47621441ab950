import assert from 'node:assert/strict';
import fc from 'fast-check';
import { X509Certificate } from 'node:crypto';
import { AttestationError, verifySnp } from '../../src/attestation/index.js';
import { parseSnpReport } from '../../src/attestation/snp/report.js';
import { parseCertTable } from '../../src/attestation/snp/cert-table.js';
import { parseTdxQuote } from '../../src/attestation/tdx/quote.js';
import { splitSignedJson } from '../../src/attestation/tdx/signed-json.js';
import { children, readElement } from '../../src/attestation/der.js';
import { parseCrl } from '../../src/attestation/x509.js';
import { verifyTdx } from '../../src/attestation/tdx/verify.js';
import { decodeEvidenceFile } from '../../src/attestation/evidence-file.js';
import { SNP_NOW, SNP_VECTORS, TDX } from './vectors.js';

/**
 * Parsers see attacker-controlled bytes. Property of parsers: whatever the input, they return
 * or throw an AttestationError; never another exception, never a hang. Property of verifiers:
 * mutated evidence is refused with an AttestationError unless the mutation left every byte that
 * verification reads unchanged. Iterations are bounded for CI.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** Runs a verification; true when it accepted, false when it refused with an AttestationError. */
async function accepted(fn: () => unknown): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
    return false;
  }
}

function onlyTyped(fn: () => unknown): boolean {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
  }
  return true;
}

/** Random edits of a genuine input: byte flips, truncation, extension. */
function mutations(seed: Buffer) {
  const flip = fc
    .array(fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 })
    .map((edits) => {
      const b = Buffer.from(seed);
      for (const [i, x] of edits) b[i]! ^= x;
      return b;
    });
  const cut = fc.nat(seed.length).map((n) => seed.subarray(0, n));
  const grow = fc.uint8Array({ maxLength: 64 }).map((extra) => Buffer.concat([seed, extra]));
  return fc.oneof(
    flip,
    cut,
    grow,
    fc.uint8Array({ maxLength: 2 * seed.length }).map((u) => Buffer.from(u)),
  );
}

describe('attestation parsers under fuzzing (fast-check)', () => {
  it('SNP report parser', () => {
    fc.assert(
      fc.property(mutations(SNP_VECTORS[2]!.report), (b) => onlyTyped(() => parseSnpReport(b))),
      { numRuns: RUNS },
    );
  });

  it('evidence file decoder (binary, hex, base64, JSON wrappers)', () => {
    const quote = TDX.sprQuote();
    const seeds = [
      quote,
      Buffer.from(quote.toString('base64')),
      Buffer.from(JSON.stringify({ quote: quote.toString('base64url') })),
      Buffer.from(quote.toString('hex')),
    ];
    for (const seed of seeds) {
      fc.assert(
        fc.property(mutations(seed.subarray(0, 600)), (b) => onlyTyped(() => decodeEvidenceFile(b, 'tdx'))),
        { numRuns: Math.ceil(RUNS / 4) },
      );
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (t) =>
        onlyTyped(() => decodeEvidenceFile(Buffer.from(`{"report":${JSON.stringify(t)}}`), 'snp')),
      ),
      { numRuns: RUNS },
    );
  });

  it('SNP certificate table parser', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => onlyTyped(() => parseCertTable(b))),
      { numRuns: RUNS },
    );
  });

  it('TDX quote parser', () => {
    for (const seed of [TDX.sprQuote(), TDX.v5Quote()]) {
      fc.assert(
        fc.property(mutations(seed), (b) => onlyTyped(() => parseTdxQuote(b))),
        { numRuns: RUNS },
      );
    }
  });

  it('TDX verification refuses every mutated quote whose verified bytes changed', async () => {
    const seed = TDX.cosQuote();
    // The COS quote is zero-padded to 8000 bytes; verification ignores bytes after the quote.
    const used = (b: Buffer) => b.subarray(0, b.length - parseTdxQuote(b).trailingBytes);
    const original = used(seed);
    const opts = { allowMissingCollateral: true, now: SNP_NOW };
    assert.equal(
      await accepted(() => verifyTdx({ quote: seed }, null, {}, opts)),
      true,
      'control: the genuine quote verifies',
    );
    let refusedCount = 0;
    await fc.assert(
      fc.asyncProperty(mutations(seed), async (b) => {
        const ok = await accepted(() => verifyTdx({ quote: b }, null, {}, opts));
        if (!ok) refusedCount++;
        return !ok || used(b).equals(original);
      }),
      { numRuns: Math.ceil(RUNS / 3) },
    );
    assert.ok(refusedCount > 0);
  });

  it('SNP verification refuses every mutated report and every mutated VCEK', async () => {
    const v = SNP_VECTORS[2]!;
    const der = new X509Certificate(v.vcek).raw;
    assert.equal(
      await accepted(() => verifySnp({ report: v.report }, null, {}, { vcek: der, certChain: v.chain, now: SNP_NOW })),
      true,
      'control: the genuine inputs verify',
    );
    await fc.assert(
      fc.asyncProperty(
        mutations(der),
        async (vcek) =>
          !(await accepted(() =>
            verifySnp({ report: v.report }, null, {}, { vcek, certChain: v.chain, now: SNP_NOW }),
          )) || vcek.equals(der),
      ),
      { numRuns: Math.ceil(RUNS / 3) },
    );
    // Every byte of a report is signed or is the signature.
    await fc.assert(
      fc.asyncProperty(
        mutations(v.report),
        async (report) =>
          !(await accepted(() => verifySnp({ report }, null, {}, { vcek: der, certChain: v.chain, now: SNP_NOW }))) ||
          report.equals(v.report),
      ),
      { numRuns: Math.ceil(RUNS / 3) },
    );
  });

  it('DER reader and CRL parser', () => {
    const der = fc.oneof(mutations(TDX.pckCrl()), mutations(TDX.rootCrl()));
    fc.assert(
      fc.property(der, (b) => onlyTyped(() => parseCrl(b))),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (u) =>
        onlyTyped(() => {
          const node = readElement(Buffer.from(u));
          if (node.tag & 0x20) children(node);
        }),
      ),
      { numRuns: RUNS },
    );
  });

  it('signed collateral JSON splitter', () => {
    const text = TDX.qeIdentity().toString('utf8');
    const edits = fc
      .tuple(fc.nat(text.length - 1), fc.constantFrom('{', '}', '"', '\\', ',', ':', ' ', 'x', '[', ']'))
      .map(([i, ch]) => Buffer.from(text.slice(0, i) + ch + text.slice(i + 1)));
    fc.assert(
      fc.property(edits, (b) => onlyTyped(() => splitSignedJson(b, 'enclaveIdentity', 'fuzz'))),
      { numRuns: RUNS },
    );
    fc.assert(
      fc.property(fc.json(), (j) => onlyTyped(() => splitSignedJson(Buffer.from(j), 'enclaveIdentity', 'fuzz'))),
      { numRuns: RUNS },
    );
  });

  it('still finds the signed span when the JSON has whitespace and key order changes', () => {
    const s = splitSignedJson(
      Buffer.from('{ "signature" : "' + 'ab'.repeat(64) + '" ,\n "enclaveIdentity" :  {"a": [1, "}"]} }'),
      'enclaveIdentity',
      't',
    );
    assert.equal(s.signed.toString(), '{"a": [1, "}"]}');
  });
});

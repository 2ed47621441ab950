/**
 * Cheap checks before collateral: under crlPolicy 'require' without CRLs, evidence that does
 * not parse or is not authentic is refused for that (parse, chain, signature errors), not as
 * tdx.crl.missing / snp.crl.missing, which would send the operator hunting for CRLs for
 * evidence that could never pass.
 */
import { verifySnp } from '../../src/attestation/snp/verify.js';
import { TdxCollateralDirectory } from '../../src/attestation/tdx/pcs.js';
import { verifyTdx, verifyTdxWithCollateral } from '../../src/attestation/tdx/verify.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { rejects } from './assertions.js';
import { SNP_NOW, SNP_VECTORS, TDX, TDX_COLLATERAL_TIME } from './vectors.js';

const flip = (b: Buffer, off: number) => {
  const out = Buffer.from(b);
  out[off]! ^= 1;
  return out;
};

describe('check order: parse and authenticity before collateral', () => {
  const quote = TDX.sprQuote();
  const opts = { now: TDX_COLLATERAL_TIME, crlPolicy: 'require' as const, allowMissingCollateral: true };
  const pemAt = quote.indexOf('-----BEGIN CERTIFICATE-----');

  it('TDX: a quote that does not parse, is not signed or carries a broken PCK chain is refused for that, without CRLs', async () => {
    const cases: [Buffer, string][] = [
      [quote.subarray(0, 100), 'tdx.quote.parse'],
      [flip(quote, 0x36 + 0x88), 'tdx.quote.signature'], // MR_TD
      [flip(quote, pemAt + 40), 'x509.parse'], // inside the PCK certificate's PEM
    ];
    const dir = tempDir('kc-order-');
    try {
      for (const [bad, check] of cases) {
        await rejects(async () => verifyTdx({ quote: bad }, null, {}, opts), check);
        // The same through the fetching entry point with an empty offline directory.
        await rejects(
          () => verifyTdxWithCollateral({ quote: bad }, null, {}, { ...opts, source: new TdxCollateralDirectory(dir) }),
          check,
        );
      }
      // The genuine quote gets as far as the missing CRL.
      await rejects(async () => verifyTdx({ quote }, null, {}, opts), 'tdx.crl.missing');
    } finally {
      removeDir(dir);
    }
  });

  it('SEV-SNP: a report whose signature does not verify is refused for that, without a CRL', async () => {
    const v = SNP_VECTORS[1]!;
    const base = { vcek: v.vcek, certChain: v.chain, now: SNP_NOW, crlPolicy: 'require' as const };
    await rejects(() => verifySnp({ report: flip(v.report, 0x2a0) }, null, {}, base), 'snp.report.signature');
    await rejects(() => verifySnp({ report: v.report }, null, {}, base), 'snp.crl.missing');
  });
});

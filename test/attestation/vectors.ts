/** Paths and loaders for the genuine evidence used by the attestation tests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The genuine evidence in ./vectors (a copy of the project's shared test vectors). */
export const VECTORS = process.env.CONTRAST_TESTVECTORS ?? fileURLToPath(new URL('./vectors', import.meta.url));

export const read = (rel: string): Buffer => readFileSync(join(VECTORS, rel));

export function pemBlocks(rel: string): string[] {
  return (
    read(rel)
      .toString('utf8')
      .match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []
  );
}

export interface SnpVector {
  name: string;
  report: Buffer;
  vcek: Buffer;
  chain: Buffer;
  product: 'Milan' | 'Genoa';
  version: number;
  reported: { bootloader: number; tee: number; snp: number; microcode: number };
  debug: boolean;
}

export const SNP_VECTORS: SnpVector[] = [
  {
    name: 'go-sev-guest attestation.bin (v2 Milan, DEBUG)',
    report: read('amd/go-sev-guest/attestation.bin'),
    vcek: read('amd/go-sev-guest/vcek.testcer'),
    chain: read('amd/go-sev-guest/ask_ark_milan.pem'),
    product: 'Milan',
    version: 2,
    reported: { bootloader: 2, tee: 0, snp: 5, microcode: 68 },
    debug: true,
  },
  {
    name: 'virtee report_milan.hex (v2 Milan)',
    report: Buffer.from(read('amd/virtee-sev/report_milan.hex').toString('latin1').trim(), 'hex'),
    vcek: read('amd/virtee-sev/vcek_milan.der'),
    chain: read('amd/virtee-sev/cert_chain_milan'),
    product: 'Milan',
    version: 2,
    reported: { bootloader: 3, tee: 0, snp: 8, microcode: 115 },
    debug: false,
  },
  {
    name: 'microsoft milan_attestation_report.bin (v3 Milan)',
    report: read('amd/ms-tee-attestation-verification/milan_attestation_report.bin'),
    vcek: read('amd/ms-tee-attestation-verification/milan_vcek.pem'),
    chain: Buffer.concat([
      read('amd/ms-tee-attestation-verification/milan_ask.pem'),
      read('amd/ms-tee-attestation-verification/pinned_milan_ark.pem'),
    ]),
    product: 'Milan',
    version: 3,
    reported: { bootloader: 4, tee: 0, snp: 24, microcode: 219 },
    debug: false,
  },
  {
    name: 'microsoft genoa_attestation_report.bin (v3 Genoa)',
    report: read('amd/ms-tee-attestation-verification/genoa_attestation_report.bin'),
    vcek: read('amd/ms-tee-attestation-verification/genoa_vcek.pem'),
    chain: Buffer.concat([
      read('amd/ms-tee-attestation-verification/genoa_ask.pem'),
      read('amd/ms-tee-attestation-verification/pinned_genoa_ark.pem'),
    ]),
    product: 'Genoa',
    version: 3,
    reported: { bootloader: 10, tee: 0, snp: 23, microcode: 84 },
    debug: false,
  },
];

/** A date at which every genuine SNP certificate above is valid (the MS VCEKs are from 2026-02). */
export const SNP_NOW = new Date('2026-11-23T00:00:00Z');

const tdx = (f: string) => read(`intel/go-tdx-guest/${f}`);
export const TDX = {
  sprQuote: () => tdx('tdx_prod_quote_SPR_E4.dat'),
  v5Quote: () => tdx('quote_v5_sample.dat'),
  cosQuote: () => tdx('cos-113-tdx-quote.dat'),
  tcbInfo: () => tdx('sample_tcbInfo_response'),
  tcbInfoV5: () => tdx('sample_tcbinfo_response_v5'),
  qeIdentity: () => tdx('sample_qeIdentity_response'),
  tcbChain: () => tdx('tcbInfoIssuerChain.pem'),
  qeChain: () => tdx('qeIdentityIssuerChain.pem'),
  pckCrl: () => tdx('pckcrl'),
  rootCrl: () => tdx('rootcrl.der'),
  root: () => tdx('trusted_root.pem'),
  read: tdx,
};

/** Inside the validity of the 2023 collateral (TCB info, QE identity, CRLs, signing cert). */
export const TDX_COLLATERAL_TIME = new Date('2023-06-20T00:00:00Z');

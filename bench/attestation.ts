/**
 * Benchmark (not a test): attestation verifications per second on one core, with the
 * certificate chain already at hand (what the Coordinator sees once the VCEK and chain are
 * cached). Each iteration is a full `verifySnp`/`verifyTdx` from evidence bytes, including
 * parsing and the report/quote signatures. JSON on stdout.
 *
 *   node --import=tsx bench/attestation.ts [--seconds S]
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifySnp, verifyTdx } from '../src/attestation/index.js';

const seconds = (() => {
  const i = process.argv.indexOf('--seconds');
  return i >= 0 ? Number(process.argv[i + 1]) : 3;
})();
const vectors =
  process.env.CONTRAST_TESTVECTORS ?? fileURLToPath(new URL('../test/attestation/vectors', import.meta.url));
const read = (rel: string) => readFileSync(join(vectors, rel));

async function measure(name: string, target: number, once: () => Promise<unknown> | unknown) {
  for (let i = 0; i < 20; i++) await once(); // warm up JIT and caches
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let n = 0;
  while (performance.now() < deadline) {
    await once();
    n++;
  }
  const wall = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  // Per CPU-second as well as per wall-second: on a shared machine the wall-clock rate measures
  // the neighbours; the CPU-time rate is what one dedicated core would do.
  const perCpuSecond = n / ((cpu.user + cpu.system) / 1e6);
  return {
    name,
    verifications: n,
    perSecond: Math.round(n / wall),
    perCpuSecond: Math.round(perCpuSecond),
    target,
    meetsTarget: perCpuSecond >= target,
  };
}

const now = new Date('2026-11-23T00:00:00Z');
const snpReport = read('amd/ms-tee-attestation-verification/genoa_attestation_report.bin');
const snpOptions = {
  vcek: read('amd/ms-tee-attestation-verification/genoa_vcek.pem'),
  certChain: read('amd/ms-tee-attestation-verification/genoa_ask.pem'),
  now,
};
const snpRef = [
  {
    ProductName: 'Genoa',
    TrustedMeasurement: snpReport.subarray(0x90, 0xc0).toString('hex'),
    MinimumTCB: { BootloaderVersion: 10, TEEVersion: 0, SNPVersion: 23, MicrocodeVersion: 84 },
    GuestPolicy: { SMT: true },
  },
];
const tdxQuote = read('intel/go-tdx-guest/tdx_prod_quote_SPR_E4.dat');
const tdxOptions = {
  now: new Date('2023-06-20T00:00:00Z'),
  collateral: {
    tcbInfo: read('intel/go-tdx-guest/sample_tcbInfo_response'),
    tcbInfoIssuerChain: read('intel/go-tdx-guest/tcbInfoIssuerChain.pem'),
    qeIdentity: read('intel/go-tdx-guest/sample_qeIdentity_response'),
    qeIdentityIssuerChain: read('intel/go-tdx-guest/qeIdentityIssuerChain.pem'),
  },
  acceptedTcbStatuses: ['UpToDate', 'NotSupported'] as const,
};

const results = [
  await measure('snp: Genoa v3 report, VCEK+ASK given, reference values', 500, () =>
    verifySnp({ report: snpReport }, snpRef, {}, snpOptions),
  ),
  await measure('tdx: v4 quote, PCK chain in quote, TCB info + QE identity', 300, () =>
    verifyTdx({ quote: tdxQuote }, null, {}, tdxOptions),
  ),
  await measure('tdx: v4 quote without collateral', 300, () =>
    verifyTdx({ quote: tdxQuote }, null, {}, { now: tdxOptions.now, allowMissingCollateral: true }),
  ),
];
process.stdout.write(
  `${JSON.stringify({ node: process.version, seconds, loadAverage: loadavg()[0], results }, null, 2)}\n`,
);

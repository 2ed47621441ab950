import type { Argv, CommandModule } from 'yargs';
import {
  AttestationError,
  DirectoryCache,
  KdsClient,
  TCB_STATUSES,
  parseReferenceValues,
  parseSnpReport,
  parseTdxQuote,
  verifySnp,
  type SnpCollateralSource,
  type SnpProduct,
  type SnpVerification,
  type TcbStatus,
  type TdxVerification,
} from '../attestation/index.js';
import { fromHex, toHex } from '../attestation/bytes.js';
import { decodeEvidenceFile, splitSnpEvidence } from '../attestation/evidence-file.js';
import { ADMISSION_CRL_POLICY, CRL_POLICIES, type CrlPolicy } from '../attestation/revocation.js';
import { validateSnpBaseline } from '../attestation/snp/validate.js';
import { classifyIntelCrls } from '../attestation/tdx/crls.js';
import { PcsClient, TdxCollateralDirectory, type TdxCollateralSource } from '../attestation/tdx/pcs.js';
import { validateTdxBaseline } from '../attestation/tdx/validate.js';
import { verifyTdxWithCollateral } from '../attestation/tdx/verify.js';
import { pcsEndpoints } from '../coordinator/collateral.js';
import { UsageError, UserError, errorMessage } from '../util/errors.js';
import { readUserFile as read } from '../util/files.js';

interface VerifyArgs {
  platform: 'snp' | 'tdx';
  evidence: string;
  vcek?: string;
  'cert-chain'?: string;
  'tcb-info'?: string;
  'qe-identity'?: string;
  crl: string[];
  'crl-policy': CrlPolicy;
  'reference-values'?: string;
  output?: 'json' | 'text';
  product?: SnpProduct;
  'report-data'?: string;
  'host-data'?: string;
  'cache-dir'?: string;
  fetch: boolean;
  now?: string;
  'accept-tcb-status': string[];
  'allow-missing-collateral': boolean;
}

function hexArg(value: string | undefined, flag: string, sizes: number[]): Buffer | undefined {
  if (value === undefined) return undefined;
  const b = fromHex(value);
  if (!b || !sizes.includes(b.length)) throw new UsageError(`--${flag} must be ${sizes.join(' or ')} bytes as hex`);
  return b;
}

function referenceValues(path: string | undefined) {
  if (!path) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(read(path, 'reference values').toString('utf8'));
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`not valid JSON: ${errorMessage(err)}`, { file: path });
  }
  return parseReferenceValues(json, path);
}

function snpSummary(r: SnpVerification) {
  const rep = r.report;
  return {
    product: r.product,
    reportVersion: r.reportVersion,
    signingKey: r.signingKey,
    measurement: toHex(rep.measurement),
    reportData: toHex(rep.reportData),
    hostData: toHex(rep.hostData),
    chipId: toHex(rep.chipId),
    vmpl: rep.vmpl,
    guestPolicy: rep.policy,
    platformInfo: `0x${rep.platformInfoRaw.toString(16)}`,
    tcb: r.tcb,
    certificate: {
      productName: r.certificate.productName,
      serialNumber: r.certificate.cert.serialNumber,
      validTo: new Date(r.certificate.cert.validTo).toISOString(),
    },
    crlChecked: r.crlChecked,
    crl: r.crl,
    ...(r.referenceValueIndex !== undefined ? { referenceValueIndex: r.referenceValueIndex } : {}),
  };
}

function tdxSummary(r: TdxVerification) {
  const b = r.quote.body;
  return {
    quoteVersion: r.quoteVersion,
    tcbStatus: r.tcbStatus,
    ...(r.tcb ? { tcb: r.tcb } : {}),
    fmspc: toHex(r.pck.extension.fmspc),
    mrTd: toHex(b.mrTd),
    rtmrs: b.rtmrs.map(toHex),
    mrSeam: toHex(b.mrSeam),
    mrConfigId: toHex(b.mrConfigId),
    tdAttributes: toHex(b.tdAttributes),
    xfam: toHex(b.xfam),
    teeTcbSvn: toHex(b.teeTcbSvn),
    measurement: toHex(b.mrTd),
    reportData: toHex(b.reportData),
    crlChecked: r.crlChecked,
    qeIdentityChecked: r.qeIdentityChecked,
    ...(r.referenceValueIndex !== undefined ? { referenceValueIndex: r.referenceValueIndex } : {}),
  };
}

/** What can still be said about evidence that failed: its parsed fields, if it parses. */
function bestEffortFields(platform: 'snp' | 'tdx', evidence: Buffer): Record<string, unknown> {
  try {
    if (platform === 'snp') {
      const rep = parseSnpReport(splitSnpEvidence(evidence).report);
      return {
        reportVersion: rep.version,
        measurement: toHex(rep.measurement),
        reportData: toHex(rep.reportData),
        hostData: toHex(rep.hostData),
      };
    }
    const q = parseTdxQuote(decodeEvidenceFile(evidence, 'tdx').bytes);
    return {
      quoteVersion: q.header.version,
      measurement: toHex(q.body.mrTd),
      reportData: toHex(q.body.reportData),
      mrConfigId: toHex(q.body.mrConfigId),
    };
  } catch {
    return {};
  }
}

function snpSource(argv: VerifyArgs): SnpCollateralSource | undefined {
  const cache = argv['cache-dir'] ? new DirectoryCache(argv['cache-dir']) : undefined;
  if (argv.fetch) return new KdsClient({ ...(cache ? { cache } : {}) });
  return cache;
}

function tdxSource(argv: VerifyArgs): TdxCollateralSource | undefined {
  const cache = argv['cache-dir'] ? new TdxCollateralDirectory(argv['cache-dir']) : undefined;
  if (argv.fetch) return new PcsClient({ ...(cache ? { cache } : {}), ...pcsEndpoints() });
  return cache;
}

/**
 * Without reference values nothing says which measurement is the right one, so the result
 * says so, and the baseline that no reference value could relax is still judged.
 */
const BASELINE: Record<'snp' | 'tdx', string> = {
  snp: 'not debug, VMPL 0, no migration agent',
  tdx: 'TD not in debug mode',
};

export function noReferenceValuesWarning(platform: 'snp' | 'tdx'): string {
  return (
    `Warning: no --reference-values: only the evidence's authenticity and the baseline (${BASELINE[platform]}) were checked; ` +
    'the measurement, the TCB minimums and the other reference values were NOT compared. Pass --reference-values (or a manifest.json) to judge it as the Coordinator would.'
  );
}

async function runVerify(argv: VerifyArgs, evidence: Buffer, now: Date): Promise<Record<string, unknown>> {
  const fields = await verifyAndSummarize(argv, evidence, now);
  return {
    judgement: argv['reference-values'] ? 'reference-values' : `baseline (${BASELINE[argv.platform]})`,
    ...fields,
  };
}

async function verifyAndSummarize(argv: VerifyArgs, evidence: Buffer, now: Date): Promise<Record<string, unknown>> {
  const refs = referenceValues(argv['reference-values']);
  const reportData = hexArg(argv['report-data'], 'report-data', [64]);
  if (argv.platform === 'snp') {
    const hostData = hexArg(argv['host-data'], 'host-data', [32]);
    const source = snpSource(argv);
    const crl = argv.crl.map((f) => read(f, 'CRL'));
    if (crl.length > 1) throw new UsageError('SNP takes one CRL (the ARK-signed CRL for the product)');
    const result = await verifySnp(
      splitSnpEvidence(evidence),
      refs ? (refs.snp ?? []) : null,
      { ...(reportData ? { reportData } : {}), ...(hostData ? { hostData } : {}) },
      {
        now,
        ...(argv.product ? { product: argv.product } : {}),
        ...(argv.vcek ? { vcek: read(argv.vcek, 'VCEK') } : {}),
        ...(argv['cert-chain'] ? { certChain: read(argv['cert-chain'], 'certificate chain') } : {}),
        ...(crl[0] ? { crl: crl[0] } : {}),
        ...(source ? { collateral: source } : {}),
        crlPolicy: argv['crl-policy'],
      },
    );
    if (!refs) validateSnpBaseline(result.report);
    return snpSummary(result);
  }
  const mrConfigId = hexArg(argv['host-data'], 'host-data', [32, 48]);
  const chain = argv['cert-chain'] ? read(argv['cert-chain'], 'collateral issuer chain') : undefined;
  const crls = classifyIntelCrls(argv.crl.map((f) => ({ name: f, der: read(f, 'CRL') })));
  const source = tdxSource(argv);
  const result = await verifyTdxWithCollateral(
    { quote: decodeEvidenceFile(evidence, 'tdx').bytes },
    refs ? (refs.tdx ?? []) : null,
    { ...(reportData ? { reportData } : {}), ...(mrConfigId ? { mrConfigId } : {}) },
    {
      now,
      collateral: {
        ...(argv['tcb-info'] ? { tcbInfo: read(argv['tcb-info'], 'TCB info') } : {}),
        ...(argv['qe-identity'] ? { qeIdentity: read(argv['qe-identity'], 'QE identity') } : {}),
        ...(chain ? { tcbInfoIssuerChain: chain, qeIdentityIssuerChain: chain } : {}),
        ...crls,
      },
      ...(argv['accept-tcb-status'].length > 0
        ? { acceptedTcbStatuses: argv['accept-tcb-status'] as TcbStatus[] }
        : {}),
      allowMissingCollateral: argv['allow-missing-collateral'],
      crlPolicy: argv['crl-policy'],
      ...(source ? { source } : {}),
    },
  );
  if (!refs) validateTdxBaseline(result.quote.body);
  return tdxSummary(result);
}

function printText(platform: string, fields: Record<string, unknown>): void {
  const lines = [`verified: ${platform} evidence`];
  for (const [k, v] of Object.entries(fields))
    lines.push(
      `${k}: ${typeof v === 'object' ? JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)) : String(v)}`,
    );
  process.stdout.write(`${lines.join('\n')}\n`);
}

function checkFlags(argv: VerifyArgs): void {
  if (argv.platform === 'snp') {
    for (const f of ['tcb-info', 'qe-identity'] as const)
      if (argv[f]) throw new UsageError(`--${f} applies to --platform tdx only`);
    if (argv['accept-tcb-status'].length > 0 || argv['allow-missing-collateral'])
      throw new UsageError('--accept-tcb-status and --allow-missing-collateral apply to --platform tdx only');
  } else {
    for (const f of ['vcek', 'product'] as const)
      if (argv[f]) throw new UsageError(`--${f} applies to --platform snp only`);
  }
  if (argv.now !== undefined && Number.isNaN(new Date(argv.now).getTime()))
    throw new UsageError('--now must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z');
}

const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify',
  describe:
    'Verify an SEV-SNP report or TDX quote: signatures, certificate chain to the pinned AMD/Intel root, revocation, TCB, and reference values (without them, a baseline: no debug, VMPL 0, no migration agent)',
  builder: (y: Argv) =>
    y
      .option('platform', {
        type: 'string',
        choices: ['snp', 'tdx'] as const,
        demandOption: true,
        describe: 'Evidence type',
      })
      .option('evidence', {
        type: 'string',
        demandOption: true,
        describe:
          'SNP report (optionally followed by its certificate table) or TDX quote: binary, hex, base64, or JSON with the field quote (TDX) or report / attestation_report (SNP)',
      })
      .option('vcek', { type: 'string', describe: 'SNP: VCEK or VLEK certificate (DER or PEM)' })
      .option('cert-chain', {
        type: 'string',
        describe: 'SNP: ASK (and ARK) PEM from KDS cert_chain; TDX: issuer chain of the TCB info and QE identity',
      })
      .option('tcb-info', { type: 'string', describe: "TDX: TCB info JSON from Intel PCS for the quote's FMSPC" })
      .option('qe-identity', { type: 'string', describe: 'TDX: QE identity JSON from Intel PCS' })
      .option('crl', {
        type: 'string',
        array: true,
        default: [],
        describe: 'DER CRLs (SNP: ARK-signed; TDX: root CA and/or PCK CA)',
      })
      .option('crl-policy', {
        type: 'string',
        choices: CRL_POLICIES,
        default: ADMISSION_CRL_POLICY,
        describe:
          'require a current CRL (supplied, cached or fetched), as admission does, or check one only when available (see docs/attestation.md)',
      })
      .option('reference-values', {
        type: 'string',
        describe: 'JSON with ReferenceValues (or a whole manifest.json) to validate against',
      })
      .option('output', {
        alias: 'o',
        type: 'string',
        choices: ['json', 'text'] as const,
        describe: 'Output format (default text)',
      })
      .option('product', {
        type: 'string',
        choices: ['Milan', 'Genoa', 'Turin'] as const,
        describe: 'SNP: product line, needed for version 2 reports without a VCEK',
      })
      .option('report-data', { type: 'string', describe: 'Expected REPORT_DATA (64 bytes hex)' })
      .option('host-data', {
        type: 'string',
        describe: 'Expected policy hash: SNP HOSTDATA (32 bytes) or TDX MRCONFIGID (32 or 48 bytes), hex',
      })
      .option('cache-dir', {
        type: 'string',
        describe:
          'Collateral directory: SNP, cached AMD certificates and CRLs; TDX, Intel PCS collateral (the layout in docs/attestation.md, also for offline use)',
      })
      .option('fetch', {
        type: 'boolean',
        default: false,
        describe:
          'Fetch missing collateral from AMD KDS (SNP) or Intel PCS (TDX; $CONTRAST_PCS_URL and $CONTRAST_INTEL_ROOT_CRL_URL as for the Coordinator), kept in --cache-dir if given (network)',
      })
      .option('now', {
        type: 'string',
        describe: 'Check certificate and collateral validity at this time instead of now (ISO 8601)',
      })
      .option('accept-tcb-status', {
        type: 'string',
        array: true,
        default: [],
        choices: [...TCB_STATUSES],
        describe: 'TDX: TCB statuses to accept (default UpToDate)',
      })
      .option('allow-missing-collateral', {
        type: 'boolean',
        default: false,
        describe:
          'TDX: verify without TCB info or QE identity, for inspection (the TCB status or the QE is then not evaluated)',
      })
      .check((argv) => {
        checkFlags(argv as VerifyArgs);
        return true;
      })
      .example(
        '$0 evidence verify --platform snp --evidence report.bin --vcek vcek.der --cert-chain cert_chain.pem -o json',
        'Check an SNP report with certificates fetched earlier',
      )
      .example(
        '$0 evidence verify --platform tdx --evidence quote.dat --tcb-info tcbinfo.json --qe-identity qe.json --cert-chain tcb-signing.pem',
        'Check a TDX quote and its TCB status',
      ) as Argv<VerifyArgs>,
  handler: async (argv) => {
    const evidence = read(argv.evidence, 'evidence');
    const now = argv.now ? new Date(argv.now) : new Date();
    const json = argv.output === 'json';
    if (!argv['reference-values']) process.stderr.write(`${noReferenceValuesWarning(argv.platform)}\n`);
    let fields: Record<string, unknown>;
    try {
      fields = await runVerify(argv, evidence, now);
    } catch (err) {
      if (!json || !(err instanceof AttestationError)) throw err;
      const error = {
        check: err.check,
        message: err.message,
        ...(err.expected !== undefined ? { expected: err.expected } : {}),
        ...(err.actual !== undefined ? { actual: err.actual } : {}),
      };
      process.stdout.write(
        `${JSON.stringify({ verified: false, platform: argv.platform, ...bestEffortFields(argv.platform, evidence), error }, null, 2)}\n`,
      );
      process.exitCode = 1;
      return;
    }
    if (json)
      process.stdout.write(
        `${JSON.stringify({ verified: true, platform: argv.platform, ...fields }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`,
      );
    else printText(argv.platform, fields);
  },
};

export const evidenceCommand: CommandModule = {
  command: 'evidence <command>',
  describe: 'Inspect and verify attestation evidence (SEV-SNP reports, TDX quotes)',
  builder: (y: Argv) => y.command(verifyCommand).demandCommand(1, 'Name a subcommand: verify'),
  handler: () => undefined,
};

import { verify as cryptoVerify, type X509Certificate } from 'node:crypto';
import { AttestationError, ensure } from '../errors.js';
import { bytesEqual, isAllZero, toHex } from '../bytes.js';
import { commonName, parseCertificateFile, parseDerCertificate, parsePemCertificates, publicKeyOf } from '../x509.js';
import { firstMatchingEntry } from '../matching.js';
import type { SnpReferenceValues } from '../reference-values.js';
import { CERT_TABLE_GUID, parseCertTable, type CertTable } from './cert-table.js';
import { checkSnpCrl, verifySnpChain } from './chain.js';
import type { SnpCollateralSource } from './collateral.js';
import {
  DEFAULT_CRL_GRACE_MS,
  describeCrlSource,
  resolveSnpCrl,
  type SnpCrlDecision,
  type SnpCrlPolicy,
  type SnpCrlStatus,
} from './crl.js';
import { productFromCpuid, productLine, isSnpProduct, type SnpProduct } from './product.js';
import { SIGNED_LENGTH, parseSnpReport, type SnpReport } from './report.js';
import { decodeTcb, firstDifferent, formatTcb, type SnpTcb } from './tcb.js';
import { validateSnpReference, validateSnpTcbConsistency, type SnpTcbs } from './validate.js';
import { readAmdKeyCertificate, type AmdKeyCertificate } from './vcek.js';

/** A report, optionally with the certificate table the host returned alongside it. */
export interface SnpEvidence {
  readonly report: Uint8Array;
  readonly certTable?: Uint8Array;
}

/** Values the verifier knows independently of the reference values (binding, policy hash). */
export interface SnpExpectations {
  /** 64 bytes; Contrast binds SHA-512(public key ‖ nonce) here. */
  readonly reportData?: Uint8Array;
  /** 32 bytes; the workload's policy hash. */
  readonly hostData?: Uint8Array;
  /** Required VMPL. Defaults to 0 when reference values are checked. */
  readonly vmpl?: number;
}

export interface SnpVerifyOptions {
  /** The time certificates and CRLs must be valid at (default: now). */
  readonly now?: Date;
  /** Product line for v2 reports, which do not carry CPUID. */
  readonly product?: SnpProduct;
  /** VCEK or VLEK (DER or PEM); takes precedence over the evidence's cert table. */
  readonly vcek?: Uint8Array;
  /** ASK/ASVK then optionally ARK (PEM). An ARK here must equal the pinned one. */
  readonly certChain?: Uint8Array;
  /**
   * DER CRL from AMD KDS, signed by the ARK. Used while current at `now`; when it is not, the
   * collateral source's CRL is tried. Unset: the cached CRL, else one from the network source.
   */
  readonly crl?: Uint8Array;
  /**
   * Consulted only for what the evidence and the explicit inputs lack, and only after the
   * checks that need no certificate passed (see docs/attestation.md). Unset: only the evidence
   * and the explicit inputs are used.
   */
  readonly collateral?: SnpCollateralSource;
  /** What to do without a current CRL (see crl.ts). Unset: 'if-available'. */
  readonly crlPolicy?: SnpCrlPolicy;
  /**
   * Under 'if-available', how long past its nextUpdate a CRL that cannot be refreshed still
   * counts as checked (the result says `stale`). Ignored under 'require'. Unset: 24 hours.
   */
  readonly crlGraceMs?: number;
}

export interface SnpVerification {
  readonly tee: 'snp';
  readonly product: SnpProduct;
  readonly reportVersion: number;
  readonly signingKey: 'vcek' | 'vlek';
  readonly report: SnpReport;
  readonly tcb: SnpTcbs;
  readonly certificate: AmdKeyCertificate;
  /** Index of the first reference-value entry that matched; undefined when none were given. */
  readonly referenceValueIndex?: number;
  /** Whether the ASK was checked against a current CRL (or one within the grace period). */
  readonly crlChecked: boolean;
  /** Which CRL was used (supplied, cache, fetched), its dates, and why it is missing or stale. */
  readonly crl: SnpCrlStatus;
}

interface Certificates {
  signer: X509Certificate;
  ask: X509Certificate;
  ark?: X509Certificate;
}

function detectProduct(
  report: SnpReport,
  hint: SnpProduct | undefined,
  signer: X509Certificate | undefined,
): SnpProduct {
  if (report.cpuid) {
    const { family, model } = report.cpuid;
    const p = productFromCpuid(family, model);
    if (!p) {
      throw new AttestationError(
        'snp.product',
        'the report names a CPU family/model with no pinned AMD root',
        'Milan, Genoa or Turin',
        `family 0x${family.toString(16)} model 0x${model.toString(16)}`,
      );
    }
    ensure(
      hint === undefined || hint === p,
      'snp.product',
      "the product given does not match the report's CPUID",
      hint ?? '',
      p,
    );
    return p;
  }
  if (hint) return hint;
  // v2 reports: Turin chip ids use only the first 8 bytes.
  if (!isAllZero(report.chipId.subarray(0, 8)) && isAllZero(report.chipId.subarray(8))) return 'Turin';
  if (signer) {
    const name = productLine(readAmdKeyCertificate(signer).productName);
    // Safe to take from the certificate: it must still chain to that product's pinned ARK.
    if (isSnpProduct(name)) return name;
  }
  throw new AttestationError(
    'snp.product',
    'cannot tell the product line of a version 2 report; pass the product (Milan or Genoa)',
  );
}

function certFromTable(table: CertTable | undefined, guid: string, what: string): X509Certificate | undefined {
  const der = table?.get(guid);
  return der && der.length > 0 ? parseDerCertificate(der, what) : undefined;
}

function splitChain(pem: Uint8Array | undefined, what: string): { ask?: X509Certificate; ark?: X509Certificate } {
  if (!pem) return {};
  // KDS's cert_chain: the ASK (or ASVK), optionally followed by the ARK.
  const certs = parsePemCertificates(pem, what, { count: { min: 1, max: 2 } });
  const ark = certs.find((c) => commonName(c.subject)?.startsWith('ARK-'));
  const ask = certs.find((c) => c !== ark);
  return { ...(ask ? { ask } : {}), ...(ark ? { ark } : {}) };
}

async function resolveCertificates(
  report: SnpReport,
  product: SnpProduct,
  kind: 'vcek' | 'vlek',
  table: CertTable | undefined,
  opts: SnpVerifyOptions,
  preSigner: X509Certificate | undefined,
  src: SnpCollateralSource | undefined,
): Promise<Certificates> {
  let signer = preSigner;
  if (!signer && kind === 'vcek' && src) {
    const der = await src.vcek(product, report);
    if (der) signer = parseCertificateFile(der, 'VCEK from the collateral source');
  }
  if (!signer) {
    throw new AttestationError(
      'snp.vcek.missing',
      kind === 'vlek'
        ? 'no VLEK certificate: the cloud provider must supply it with the evidence'
        : 'no VCEK certificate: pass one, use evidence with a certificate table, or allow a cache/KDS source',
    );
  }
  let { ask, ark } = splitChain(opts.certChain, 'certificate chain');
  ask ??= certFromTable(table, CERT_TABLE_GUID.ask, 'ASK from the certificate table');
  ark ??= certFromTable(table, CERT_TABLE_GUID.ark, 'ARK from the certificate table');
  if (!ask && src) {
    const fetched = splitChain(await src.certChain(product, kind), 'certificate chain from the collateral source');
    ask = fetched.ask;
    ark ??= fetched.ark;
  }
  if (!ask)
    throw new AttestationError('snp.ask.missing', `no ${kind === 'vcek' ? 'ASK' : 'ASVK'} certificate for ${product}`);
  return { signer, ask, ...(ark ? { ark } : {}) };
}

/** The chosen CRL must be AMD's and must not list the ASK; failures name where it came from. */
function checkChosenCrl(decision: SnpCrlDecision, ark: X509Certificate, ask: X509Certificate): void {
  if (!decision.crl) return;
  try {
    checkSnpCrl(decision.crl, ark, ask, decision.at!);
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
    const from = decision.status.source ? describeCrlSource(decision.status.source) : 'the CRL';
    throw new AttestationError(err.check, `${from}: ${err.detail}`, err.expected, err.actual, { cause: err });
  }
}

/**
 * The collateral source, but the first call to any of its methods runs `gate` first (and fails
 * with its error): checks that cost nothing come before anything is looked up or fetched.
 */
function afterGate(src: SnpCollateralSource, gate: () => void): SnpCollateralSource {
  const gated =
    <A extends unknown[], R>(f: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      gate();
      return f(...args);
    };
  return {
    vcek: gated(src.vcek.bind(src)),
    certChain: gated(src.certChain.bind(src)),
    crl: gated(src.crl.bind(src)),
    ...(src.fetchCrl ? { fetchCrl: gated(src.fetchCrl.bind(src)) } : {}),
  };
}

function verifyReportSignature(report: SnpReport, signer: X509Certificate): void {
  const ok = cryptoVerify(
    'sha384',
    report.raw.subarray(0, SIGNED_LENGTH),
    { key: publicKeyOf(signer, 'snp.report.signature', 'the VCEK/VLEK'), dsaEncoding: 'ieee-p1363' },
    Buffer.concat([report.signatureR, report.signatureS]),
  );
  ensure(
    ok,
    'snp.report.signature',
    'the report signature does not verify with the VCEK/VLEK key',
    `a signature by ${commonName(signer.subject)} serial ${signer.serialNumber}`,
    'bad signature',
  );
}

/** The key certificate must be for this product, this TCB and (for VCEKs) this chip. */
export function matchCertificateToReport(
  cert: AmdKeyCertificate,
  report: SnpReport,
  product: SnpProduct,
  reported: SnpTcb,
): void {
  ensure(
    productLine(cert.productName) === product,
    'snp.vcek.product',
    'the VCEK/VLEK is for another product line',
    product,
    cert.productName,
  );
  const spl: SnpTcb = product === 'Turin' ? { ...cert.spl, fmc: cert.spl.fmc ?? -1 } : { ...cert.spl };
  const diff = firstDifferent(spl, reported);
  ensure(
    diff === undefined,
    'snp.vcek.tcb',
    `the ${cert.kind.toUpperCase()} was issued for another TCB (${diff})`,
    `REPORTED_TCB ${formatTcb(reported)}`,
    `certificate ${formatTcb(spl)}`,
  );
  if (cert.kind === 'vcek' && !isAllZero(report.chipId)) {
    const id = product === 'Turin' ? report.chipId.subarray(0, 8) : report.chipId;
    ensure(
      cert.hwId !== undefined && bytesEqual(cert.hwId, id),
      'snp.vcek.chipid',
      'the VCEK belongs to another chip',
      `hwID ${toHex(id)}`,
      `hwID ${cert.hwId ? toHex(cert.hwId) : '<none>'}`,
    );
  }
}

function checkExpectations(report: SnpReport, exp: SnpExpectations, vmpl: number | undefined): void {
  if (exp.reportData) {
    ensure(
      bytesEqual(exp.reportData, report.reportData),
      'snp.reportdata',
      'REPORT_DATA does not match the expected binding',
      toHex(exp.reportData),
      toHex(report.reportData),
    );
  }
  if (exp.hostData) {
    ensure(
      bytesEqual(exp.hostData, report.hostData),
      'snp.hostdata',
      'HOST_DATA does not match the expected policy hash',
      toHex(exp.hostData),
      toHex(report.hostData),
    );
  }
  if (vmpl !== undefined)
    ensure(report.vmpl === vmpl, 'snp.vmpl', 'the report comes from another VMPL', String(vmpl), String(report.vmpl));
}

/**
 * Checks of what the report claims, which need no certificate: TCB consistency, the caller's
 * expectations, the reference values. They are judged on unauthenticated bytes, which is sound
 * because the report is accepted only if its signature verifies too. Returns the index of the
 * matching reference-value entry.
 */
function judgeClaims(
  report: SnpReport,
  product: SnpProduct,
  tcbs: SnpTcbs,
  expectations: SnpExpectations,
  referenceValues: readonly SnpReferenceValues[] | null,
): { index?: number } {
  validateSnpTcbConsistency(tcbs);
  checkExpectations(report, expectations, expectations.vmpl ?? (referenceValues ? 0 : undefined));
  if (!referenceValues) return {};
  return {
    index: firstMatchingEntry('snp', referenceValues, (ref) => validateSnpReference(report, product, tcbs, ref)),
  };
}

/**
 * Verifies an SEV-SNP report end to end: authenticity (signature, VCEK/VLEK, chain to the
 * pinned ARK, CRL), then the caller's expectations, then the reference values. `null`
 * reference values skip the last step explicitly (for inspection tools, not for admission).
 *
 * Order: when the collateral source has to be consulted (a VCEK, chain or CRL the evidence and
 * the explicit inputs lack), the checks that need no certificate (TCB consistency,
 * expectations, reference values) run before the first call to it, so a peer cannot make us
 * fetch anything with a report that fails them. Otherwise they run last, as they always did.
 */
export async function verifySnp(
  evidence: SnpEvidence,
  referenceValues: readonly SnpReferenceValues[] | null,
  expectations: SnpExpectations = {},
  opts: SnpVerifyOptions = {},
): Promise<SnpVerification> {
  const now = opts.now ?? new Date();
  const report = parseSnpReport(evidence.report);
  if (report.signingKey === 'none')
    throw new AttestationError('snp.report.signingkey', 'the report is unsigned', 'VCEK or VLEK', 'none');
  const kind = report.signingKey;
  const table = evidence.certTable && evidence.certTable.length > 0 ? parseCertTable(evidence.certTable) : undefined;
  const preSigner = opts.vcek
    ? parseCertificateFile(opts.vcek, `${kind.toUpperCase()} file`)
    : certFromTable(
        table,
        kind === 'vcek' ? CERT_TABLE_GUID.vcek : CERT_TABLE_GUID.vlek,
        `${kind.toUpperCase()} from the certificate table`,
      );
  const product = detectProduct(report, opts.product, preSigner);
  const tcbs: SnpTcbs = {
    current: decodeTcb(report.currentTcb, product),
    committed: decodeTcb(report.committedTcb, product),
    launch: decodeTcb(report.launchTcb, product),
    reported: decodeTcb(report.reportedTcb, product),
  };
  let claims: { index?: number } | undefined;
  const judge = () => (claims ??= judgeClaims(report, product, tcbs, expectations, referenceValues));
  const src = opts.collateral ? afterGate(opts.collateral, judge) : undefined;

  const certs = await resolveCertificates(report, product, kind, table, opts, preSigner, src);
  const keyCert = readAmdKeyCertificate(certs.signer);
  ensure(
    keyCert.kind === kind,
    'snp.vcek.kind',
    'the certificate is not the key type the report names',
    kind.toUpperCase(),
    keyCert.kind.toUpperCase(),
  );
  const ark = verifySnpChain({
    product,
    kind,
    signer: certs.signer,
    ask: certs.ask,
    ...(certs.ark ? { ark: certs.ark } : {}),
    now,
  });
  verifyReportSignature(report, certs.signer);
  matchCertificateToReport(keyCert, report, product, tcbs.reported);
  // The CRL after authenticity: a report that is not genuine is refused for that, and costs no CRL fetch.
  const crl = await resolveSnpCrl({
    product,
    kind,
    now,
    policy: opts.crlPolicy ?? 'if-available',
    graceMs: opts.crlGraceMs ?? DEFAULT_CRL_GRACE_MS,
    ...(opts.crl ? { supplied: opts.crl } : {}),
    ...(src ? { source: src } : {}),
  });
  checkChosenCrl(crl, ark, certs.ask);
  const { index } = judge();
  return {
    tee: 'snp',
    product,
    reportVersion: report.version,
    signingKey: kind,
    report,
    tcb: tcbs,
    certificate: keyCert,
    ...(index !== undefined ? { referenceValueIndex: index } : {}),
    crlChecked: crl.status.checked,
    crl: crl.status,
  };
}

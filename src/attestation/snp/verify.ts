import { verify as cryptoVerify, type X509Certificate } from 'node:crypto';
import { AttestationError, ensure } from '../errors.js';
import { bytesEqual, isAllZero, toHex } from '../bytes.js';
import { commonName, parseCertificateFile, parseDerCertificate, parsePemCertificates, parseCrlFor, publicKeyOf, type Crl } from '../x509.js';
import { firstMatchingEntry } from '../matching.js';
import type { SnpReferenceValues } from '../reference-values.js';
import { CERT_TABLE_GUID, parseCertTable, type CertTable } from './cert-table.js';
import { verifySnpChain } from './chain.js';
import type { SnpCollateralSource } from './collateral.js';
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
  /** DER CRL from AMD KDS, signed by the ARK. */
  readonly crl?: Uint8Array;
  /** Consulted only for what the evidence and the explicit inputs lack. */
  readonly collateral?: SnpCollateralSource;
  /** Fail if no CRL is available (by default a missing CRL is reported, not fatal). */
  readonly requireCrl?: boolean;
}

export interface SnpVerification {
  readonly platform: 'snp';
  readonly product: SnpProduct;
  readonly reportVersion: number;
  readonly signingKey: 'vcek' | 'vlek';
  readonly report: SnpReport;
  readonly tcb: SnpTcbs;
  readonly certificate: AmdKeyCertificate;
  /** Index of the first reference-value entry that matched; undefined when none were given. */
  readonly referenceValueIndex?: number;
  readonly crlChecked: boolean;
}

interface Certificates {
  signer: X509Certificate;
  ask: X509Certificate;
  ark?: X509Certificate;
  crl?: Crl;
}

function detectProduct(report: SnpReport, hint: SnpProduct | undefined, signer: X509Certificate | undefined): SnpProduct {
  if (report.cpuid) {
    const { family, model } = report.cpuid;
    const p = productFromCpuid(family, model);
    if (!p) {
      throw new AttestationError('snp.product', 'the report names a CPU family/model with no pinned AMD root',
        'Milan, Genoa or Turin', `family 0x${family.toString(16)} model 0x${model.toString(16)}`);
    }
    ensure(hint === undefined || hint === p, 'snp.product', 'the product given does not match the report\'s CPUID', hint ?? '', p);
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
  throw new AttestationError('snp.product', 'cannot tell the product line of a version 2 report; pass the product (Milan or Genoa)');
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

async function resolveCertificates(report: SnpReport, product: SnpProduct, kind: 'vcek' | 'vlek', table: CertTable | undefined,
  opts: SnpVerifyOptions, preSigner: X509Certificate | undefined): Promise<Certificates> {
  const src = opts.collateral;
  let signer = preSigner;
  if (!signer && kind === 'vcek' && src) {
    const der = await src.vcek(product, report);
    if (der) signer = parseCertificateFile(der, 'VCEK from the collateral source');
  }
  if (!signer) {
    throw new AttestationError('snp.vcek.missing', kind === 'vlek'
      ? 'no VLEK certificate: the cloud provider must supply it with the evidence'
      : 'no VCEK certificate: pass one, use evidence with a certificate table, or allow a cache/KDS source');
  }
  let { ask, ark } = splitChain(opts.certChain, 'certificate chain');
  ask ??= certFromTable(table, CERT_TABLE_GUID.ask, 'ASK from the certificate table');
  ark ??= certFromTable(table, CERT_TABLE_GUID.ark, 'ARK from the certificate table');
  if (!ask && src) {
    const fetched = splitChain(await src.certChain(product, kind), 'certificate chain from the collateral source');
    ask = fetched.ask;
    ark ??= fetched.ark;
  }
  if (!ask) throw new AttestationError('snp.ask.missing', `no ${kind === 'vcek' ? 'ASK' : 'ASVK'} certificate for ${product}`);
  let crlBytes = opts.crl;
  if (!crlBytes && src) crlBytes = await src.crl(product, kind);
  const crl = crlBytes ? parseCrlFor('snp.crl', crlBytes) : undefined;
  return { signer, ask, ...(ark ? { ark } : {}), ...(crl ? { crl } : {}) };
}

function verifyReportSignature(report: SnpReport, signer: X509Certificate): void {
  const ok = cryptoVerify('sha384', report.raw.subarray(0, SIGNED_LENGTH),
    { key: publicKeyOf(signer, 'snp.report.signature', 'the VCEK/VLEK'), dsaEncoding: 'ieee-p1363' }, Buffer.concat([report.signatureR, report.signatureS]));
  ensure(ok, 'snp.report.signature', 'the report signature does not verify with the VCEK/VLEK key',
    `a signature by ${commonName(signer.subject)} serial ${signer.serialNumber}`, 'bad signature');
}

/** The key certificate must be for this product, this TCB and (for VCEKs) this chip. */
export function matchCertificateToReport(cert: AmdKeyCertificate, report: SnpReport, product: SnpProduct, reported: SnpTcb): void {
  ensure(productLine(cert.productName) === product, 'snp.vcek.product', 'the VCEK/VLEK is for another product line', product, cert.productName);
  const spl: SnpTcb = product === 'Turin' ? { ...cert.spl, fmc: cert.spl.fmc ?? -1 } : { ...cert.spl };
  const diff = firstDifferent(spl, reported);
  ensure(diff === undefined, 'snp.vcek.tcb', `the ${cert.kind.toUpperCase()} was issued for another TCB (${diff})`,
    `REPORTED_TCB ${formatTcb(reported)}`, `certificate ${formatTcb(spl)}`);
  if (cert.kind === 'vcek' && !isAllZero(report.chipId)) {
    const id = product === 'Turin' ? report.chipId.subarray(0, 8) : report.chipId;
    ensure(cert.hwId !== undefined && bytesEqual(cert.hwId, id), 'snp.vcek.chipid', 'the VCEK belongs to another chip',
      `hwID ${toHex(id)}`, `hwID ${cert.hwId ? toHex(cert.hwId) : '<none>'}`);
  }
}

function checkExpectations(report: SnpReport, exp: SnpExpectations, vmpl: number | undefined): void {
  if (exp.reportData) {
    ensure(bytesEqual(exp.reportData, report.reportData), 'snp.reportdata', 'REPORT_DATA does not match the expected binding',
      toHex(exp.reportData), toHex(report.reportData));
  }
  if (exp.hostData) {
    ensure(bytesEqual(exp.hostData, report.hostData), 'snp.hostdata', 'HOST_DATA does not match the expected policy hash',
      toHex(exp.hostData), toHex(report.hostData));
  }
  if (vmpl !== undefined) ensure(report.vmpl === vmpl, 'snp.vmpl', 'the report comes from another VMPL', String(vmpl), String(report.vmpl));
}

/**
 * Verifies an SEV-SNP report end to end: authenticity (signature, VCEK/VLEK, chain to the
 * pinned ARK, CRL), then the caller's expectations, then the reference values. `null`
 * reference values skip the last step explicitly (for inspection tools, not for admission).
 */
export async function verifySnp(evidence: SnpEvidence, referenceValues: readonly SnpReferenceValues[] | null,
  expectations: SnpExpectations = {}, opts: SnpVerifyOptions = {}): Promise<SnpVerification> {
  const now = opts.now ?? new Date();
  const report = parseSnpReport(evidence.report);
  if (report.signingKey === 'none') throw new AttestationError('snp.report.signingkey', 'the report is unsigned', 'VCEK or VLEK', 'none');
  const kind = report.signingKey;
  const table = evidence.certTable && evidence.certTable.length > 0 ? parseCertTable(evidence.certTable) : undefined;
  const preSigner = opts.vcek ? parseCertificateFile(opts.vcek, `${kind.toUpperCase()} file`)
    : certFromTable(table, kind === 'vcek' ? CERT_TABLE_GUID.vcek : CERT_TABLE_GUID.vlek, `${kind.toUpperCase()} from the certificate table`);
  const product = detectProduct(report, opts.product, preSigner);
  const certs = await resolveCertificates(report, product, kind, table, opts, preSigner);
  if (opts.requireCrl && !certs.crl) throw new AttestationError('snp.crl', 'a CRL is required but none is available');

  const keyCert = readAmdKeyCertificate(certs.signer);
  ensure(keyCert.kind === kind, 'snp.vcek.kind', 'the certificate is not the key type the report names', kind.toUpperCase(), keyCert.kind.toUpperCase());
  verifySnpChain({ product, kind, signer: certs.signer, ask: certs.ask, ...(certs.ark ? { ark: certs.ark } : {}), ...(certs.crl ? { crl: certs.crl } : {}), now });
  verifyReportSignature(report, certs.signer);

  const tcbs: SnpTcbs = {
    current: decodeTcb(report.currentTcb, product),
    committed: decodeTcb(report.committedTcb, product),
    launch: decodeTcb(report.launchTcb, product),
    reported: decodeTcb(report.reportedTcb, product),
  };
  matchCertificateToReport(keyCert, report, product, tcbs.reported);
  validateSnpTcbConsistency(tcbs);
  checkExpectations(report, expectations, expectations.vmpl ?? (referenceValues ? 0 : undefined));
  const index = referenceValues ? firstMatchingEntry('snp', referenceValues, (ref) => validateSnpReference(report, product, tcbs, ref)) : undefined;
  return {
    platform: 'snp',
    product,
    reportVersion: report.version,
    signingKey: kind,
    report,
    tcb: tcbs,
    certificate: keyCert,
    ...(index !== undefined ? { referenceValueIndex: index } : {}),
    crlChecked: certs.crl !== undefined,
  };
}

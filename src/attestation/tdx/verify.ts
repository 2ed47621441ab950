import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { AttestationError, CollateralUnavailableError, ensure } from '../errors.js';
import type { CrlPolicy } from '../revocation.js';
import { BoundedCache } from '../bounded-cache.js';
import { bytesEqual, isAllZero, toHex } from '../bytes.js';
import { parseCrlFor, publicKeyOf } from '../x509.js';
import { firstMatchingEntry } from '../matching.js';
import type { TdxReferenceValues } from '../reference-values.js';
import { verifyQeIdentity, verifyTcbInfo, type QeIdentity, type TdxTcbInfo } from './collateral.js';
import { INTEL_ROOT_CRL_URL, type TdxCollateralSource } from './pcs.js';
import { verifyPckChain, type PckChain } from './pck.js';
import { INTEL_QE_VENDOR_ID, parseTdxQuote, type TdxQuote } from './quote.js';
import { evaluateTdxTcb, requireAcceptedStatus, type TcbStatus, type TdxTcbEvaluation } from './tcb-status.js';
import { validateTdxFixedBits, validateTdxReference } from './validate.js';

export interface TdxEvidence {
  readonly quote: Uint8Array;
}

export interface TdxExpectations {
  /** 64 bytes; Contrast binds SHA-512(public key ‖ nonce) here. */
  readonly reportData?: Uint8Array;
  /** 32 bytes (the policy hash, zero-padded to 48 as Kata does) or all 48 bytes. */
  readonly mrConfigId?: Uint8Array;
}

/** PCS collateral as files: JSON bodies, their issuer chains (PEM) and DER CRLs. */
export interface TdxCollateral {
  readonly tcbInfo?: Uint8Array;
  readonly tcbInfoIssuerChain?: Uint8Array;
  readonly qeIdentity?: Uint8Array;
  readonly qeIdentityIssuerChain?: Uint8Array;
  readonly pckCrl?: Uint8Array;
  readonly rootCrl?: Uint8Array;
}

export interface TdxVerifyOptions {
  readonly now?: Date;
  readonly collateral?: TdxCollateral;
  /** TCB statuses that pass (default: only UpToDate). */
  readonly acceptedTcbStatuses?: readonly TcbStatus[];
  /**
   * Verify without TCB info or without the QE identity: the quote is authentic but its
   * platform's patch level (or its quoting enclave's identity) is unknown. For inspection only;
   * admission always evaluates both.
   */
  readonly allowMissingCollateral?: boolean;
  /**
   * Without the root CA CRL and the PCK CA CRL: 'require' fails (`tdx.crl.missing`);
   * 'if-available' goes on and says so in `crlChecked`. A CRL that is given must be current
   * either way. Unset: 'if-available' (admission passes 'require', src/attestation/revocation.ts).
   */
  readonly crlPolicy?: CrlPolicy;
}

/** verifyTdxWithCollateral's options: verifyTdx's, and where missing collateral comes from. */
export interface TdxFetchingOptions extends TdxVerifyOptions {
  /**
   * Consulted for what `collateral` lacks (TCB info for the PCK's FMSPC, QE identity, CRLs),
   * only after the quote's PCK chain, signatures and the caller's expectations passed. Unset:
   * only `collateral`.
   */
  readonly source?: TdxCollateralSource;
}

export interface TdxVerification {
  readonly tee: 'tdx';
  readonly quoteVersion: number;
  readonly quote: TdxQuote;
  readonly pck: PckChain;
  /** undefined when verified without TCB info (allowMissingCollateral). */
  readonly tcb?: TdxTcbEvaluation;
  readonly tcbStatus: TcbStatus | 'NotEvaluated';
  readonly referenceValueIndex?: number;
  readonly crlChecked: { readonly root: boolean; readonly pck: boolean };
  /** Whether the QE was checked against Intel's QE identity (false only under allowMissingCollateral). */
  readonly qeIdentityChecked: boolean;
}

const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

// A platform's QE attestation key is stable across quotes; importing a key costs more than
// verifying with it.
const attestationKeys = new BoundedCache<string, KeyObject>(256);

function attestationKey(raw: Buffer): KeyObject {
  const id = raw.toString('hex');
  let key = attestationKeys.get(id);
  if (key) return key;
  try {
    key = createPublicKey({
      key: Buffer.concat([P256_SPKI_PREFIX, Buffer.from([4]), raw]),
      format: 'der',
      type: 'spki',
    });
  } catch (err) {
    throw new AttestationError(
      'tdx.quote.signature',
      'the attestation key is not a valid P-256 point',
      undefined,
      undefined,
      { cause: err },
    );
  }
  attestationKeys.set(id, key);
  return key;
}

function verifyQuoteSignatures(quote: TdxQuote, pck: PckChain): void {
  const qeOk = cryptoVerify(
    'sha256',
    quote.qeReport.raw,
    { key: publicKeyOf(pck.leaf, 'tdx.qe.signature', 'the PCK certificate'), dsaEncoding: 'ieee-p1363' },
    quote.qeReportSignature,
  );
  ensure(
    qeOk,
    'tdx.qe.signature',
    'the QE report signature does not verify with the PCK key',
    'signed by the PCK certificate',
    'bad signature',
  );
  // The QE vouches for the attestation key by hashing it (with its auth data) into its report.
  const digest = createHash('sha256').update(quote.attestationKey).update(quote.qeAuthData).digest();
  const rd = quote.qeReport.reportData;
  ensure(
    bytesEqual(digest, rd.subarray(0, 32)) && isAllZero(rd.subarray(32)),
    'tdx.qe.binding',
    'the QE report does not vouch for the attestation key',
    `${toHex(digest)}${'00'.repeat(32)}`,
    toHex(rd),
  );
  const ok = cryptoVerify(
    'sha256',
    quote.signedBytes,
    { key: attestationKey(quote.attestationKey), dsaEncoding: 'ieee-p1363' },
    quote.signature,
  );
  ensure(
    ok,
    'tdx.quote.signature',
    'the quote signature does not verify with the attestation key',
    'a signature over header and TD report',
    'bad signature',
  );
}

function checkExpectations(quote: TdxQuote, exp: TdxExpectations): void {
  const body = quote.body;
  if (exp.reportData) {
    ensure(
      bytesEqual(exp.reportData, body.reportData),
      'tdx.reportdata',
      'REPORT_DATA does not match the expected binding',
      toHex(exp.reportData),
      toHex(body.reportData),
    );
  }
  if (exp.mrConfigId) {
    const want =
      exp.mrConfigId.length === 32 ? Buffer.concat([exp.mrConfigId, Buffer.alloc(16)]) : Buffer.from(exp.mrConfigId);
    ensure(
      bytesEqual(want, body.mrConfigId),
      'tdx.mrconfigid',
      'MRCONFIGID does not match the expected policy hash',
      toHex(want),
      toHex(body.mrConfigId),
    );
  }
}

/**
 * Verifies a TDX quote end to end: PCK chain to the pinned Intel root (with CRLs), QE report
 * signature and its binding of the attestation key, the quote signature, TCB status from
 * signed collateral, the caller's expectations, then the reference values (`null` skips them
 * explicitly, for inspection tools only).
 */
export function verifyTdx(
  evidence: TdxEvidence,
  referenceValues: readonly TdxReferenceValues[] | null,
  expectations: TdxExpectations = {},
  opts: TdxVerifyOptions = {},
): TdxVerification {
  const now = opts.now ?? new Date();
  const col = opts.collateral ?? {};
  const quote = parseIntelQuote(evidence);
  const rootCrl = col.rootCrl ? parseCrlFor('tdx.crl.root', col.rootCrl) : undefined;
  const pckCrl = col.pckCrl ? parseCrlFor('tdx.crl.pck', col.pckCrl) : undefined;
  const pck = verifyPckChain(quote.pckChainPem, now, {
    ...(rootCrl ? { root: rootCrl } : {}),
    ...(pckCrl ? { pck: pckCrl } : {}),
  });
  verifyQuoteSignatures(quote, pck);
  validateTdxFixedBits(quote.body);
  // Only now: a quote that is not authentic is refused for that, not for a missing CRL.
  requireCrls(col, opts.crlPolicy ?? 'if-available');

  let tcbInfo: TdxTcbInfo | undefined;
  let qeIdentity: QeIdentity | undefined;
  if (col.tcbInfo) {
    if (!col.tcbInfoIssuerChain)
      throw new AttestationError('tdx.tcbinfo.signer', 'TCB info was given without its issuer chain');
    tcbInfo = verifyTcbInfo(col.tcbInfo, col.tcbInfoIssuerChain, now, rootCrl);
  }
  if (col.qeIdentity) {
    const chain = col.qeIdentityIssuerChain ?? col.tcbInfoIssuerChain;
    if (!chain)
      throw new AttestationError('tdx.qeidentity.signer', 'the QE identity was given without its issuer chain');
    qeIdentity = verifyQeIdentity(col.qeIdentity, chain, now, rootCrl);
  }
  const inspectOnly = "or --allow-missing-collateral (allowMissingCollateral) to check the quote's authenticity only";
  if (!tcbInfo && !opts.allowMissingCollateral) {
    throw new AttestationError(
      'tdx.tcbinfo.missing',
      `no TCB info for FMSPC ${toHex(pck.extension.fmspc)}: the platform's TCB status cannot be evaluated; ` +
        `pass Intel PCS's TCB info for this FMSPC with --tcb-info (and its issuer chain with --cert-chain), a collateral directory or --fetch, ${inspectOnly}`,
    );
  }
  if (!qeIdentity && !opts.allowMissingCollateral) {
    throw new AttestationError(
      'tdx.qeidentity.missing',
      "no QE identity: the quoting enclave's signer, product id and version cannot be checked; " +
        `pass Intel PCS's TD_QE identity with --qe-identity, a collateral directory or --fetch, ${inspectOnly}`,
    );
  }
  let tcb: TdxTcbEvaluation | undefined;
  if (tcbInfo) {
    tcb = evaluateTdxTcb(
      tcbInfo,
      pck.extension,
      quote.body,
      qeIdentity ? { identity: qeIdentity, report: quote.qeReport } : undefined,
    );
    requireAcceptedStatus(tcb, opts.acceptedTcbStatuses ?? ['UpToDate']);
  }

  checkExpectations(quote, expectations);
  const context = {
    body: quote.body,
    pck: pck.extension,
    qeReport: quote.qeReport,
    ...(tcb ? { tcbEvaluationDataNumber: tcb.tcbEvaluationDataNumber } : {}),
  };
  const index = referenceValues
    ? firstMatchingEntry('tdx', referenceValues, (ref) => validateTdxReference(context, ref))
    : undefined;
  return {
    tee: 'tdx',
    quoteVersion: quote.header.version,
    quote,
    pck,
    ...(tcb ? { tcb } : {}),
    tcbStatus: tcb?.status ?? 'NotEvaluated',
    ...(index !== undefined ? { referenceValueIndex: index } : {}),
    crlChecked: { root: rootCrl !== undefined, pck: pckCrl !== undefined },
    qeIdentityChecked: qeIdentity !== undefined,
  };
}

function parseIntelQuote(evidence: TdxEvidence): TdxQuote {
  const quote = parseTdxQuote(evidence.quote);
  ensure(
    toHex(quote.header.qeVendorId) === INTEL_QE_VENDOR_ID,
    'tdx.quote.vendor',
    "the quote was not made by Intel's QE",
    INTEL_QE_VENDOR_ID,
    toHex(quote.header.qeVendorId),
  );
  return quote;
}

function requireCrls(col: TdxCollateral, policy: CrlPolicy): void {
  if (policy !== 'require') return;
  if (!col.rootCrl) {
    throw new AttestationError(
      'tdx.crl.missing',
      `crlPolicy 'require' needs Intel's root CA CRL (${INTEL_ROOT_CRL_URL}): pass it with --crl, a collateral directory or --fetch`,
    );
  }
  if (!col.pckCrl) {
    throw new AttestationError(
      'tdx.crl.missing',
      "crlPolicy 'require' needs the CRL of the PCK CA that issued the quote's PCK certificate (PCS /sgx/certification/v4/pckcrl): pass it with --crl, a collateral directory or --fetch",
    );
  }
}

/** The checks that need no collateral: the quote's PCK chain (without CRLs), its signatures, fixed bits and the caller's expectations. */
function authenticate(
  evidence: TdxEvidence,
  expectations: TdxExpectations,
  now: Date,
): { quote: TdxQuote; pck: PckChain } {
  const quote = parseIntelQuote(evidence);
  const pck = verifyPckChain(quote.pckChainPem, now);
  verifyQuoteSignatures(quote, pck);
  validateTdxFixedBits(quote.body);
  checkExpectations(quote, expectations);
  return { quote, pck };
}

/**
 * verifyTdx with collateral from a source (Intel PCS, a cache or an offline directory) for
 * what `opts.collateral` lacks. The source is consulted only for a quote that is authentic
 * (PCK chain to the pinned root, QE and quote signatures) and meets the caller's expectations
 * (REPORT_DATA binding, MRCONFIGID), so an unauthenticated peer cannot choose what is fetched;
 * then verifyTdx judges the quote with all collateral, from the start.
 */
export async function verifyTdxWithCollateral(
  evidence: TdxEvidence,
  referenceValues: readonly TdxReferenceValues[] | null,
  expectations: TdxExpectations = {},
  opts: TdxFetchingOptions = {},
): Promise<TdxVerification> {
  const { source, ...verifyOpts } = opts;
  const col = opts.collateral ?? {};
  const lacks = !col.tcbInfo || !col.qeIdentity || !col.rootCrl || !col.pckCrl;
  if (!source || !lacks) return verifyTdx(evidence, referenceValues, expectations, verifyOpts);
  const now = opts.now ?? new Date();
  const { pck } = authenticate(evidence, expectations, now);
  const strict = (opts.crlPolicy ?? 'if-available') === 'require';
  // Under 'if-available' a CRL that cannot be had now is reported as unchecked, not a failure.
  const crl = async (get: () => Promise<Uint8Array | undefined>) => {
    try {
      return await get();
    } catch (err) {
      if (!strict && err instanceof CollateralUnavailableError) return undefined;
      throw err;
    }
  };
  const [tcbInfo, qeIdentity, rootCrl, pckCrl] = await Promise.all([
    col.tcbInfo ? undefined : source.tcbInfo(toHex(pck.extension.fmspc), now),
    col.qeIdentity ? undefined : source.qeIdentity(now),
    col.rootCrl ? undefined : crl(() => source.rootCrl(now)),
    col.pckCrl ? undefined : crl(() => source.pckCrl(pck.ca, now)),
  ]);
  const collateral: TdxCollateral = {
    ...col,
    ...(tcbInfo ? { tcbInfo: tcbInfo.body, tcbInfoIssuerChain: tcbInfo.issuerChain } : {}),
    ...(qeIdentity ? { qeIdentity: qeIdentity.body, qeIdentityIssuerChain: qeIdentity.issuerChain } : {}),
    ...(rootCrl ? { rootCrl } : {}),
    ...(pckCrl ? { pckCrl } : {}),
  };
  return verifyTdx(evidence, referenceValues, expectations, { ...verifyOpts, collateral });
}

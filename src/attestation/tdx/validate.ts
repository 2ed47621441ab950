import { AttestationError, ensure } from '../errors.js';
import { expectHexEqual } from '../matching.js';
import { fromHex, toHex } from '../bytes.js';
import type { TdxReferenceValues } from '../reference-values.js';
import type { PckExtension } from './pck.js';
import type { EnclaveReport, TdReportBody } from './quote.js';

const TD_ATTR_DEBUG = 1n << 0n;
// Bits a TD may have set at all (DEBUG, SEPT_VE_DISABLE, PKS, PERFMON); the rest are reserved.
const TD_ATTR_ALLOWED = TD_ATTR_DEBUG | (1n << 28n) | (1n << 30n) | (1n << 63n);
const XFAM_FIXED1 = 0x3n;
const XFAM_FIXED0 = 0x6dbe7n;
// CET user/supervisor state; upstream Contrast ignores these when comparing XFAM.
const XFAM_CET = (1n << 11n) | (1n << 12n);

function le64(b: Buffer): bigint {
  return b.readBigUInt64LE(0);
}

/**
 * The judgement of `evidence verify` without reference values: a debug TD exposes its state to
 * the host, so it is refused even when nothing else is compared.
 */
export function validateTdxBaseline(body: TdReportBody): void {
  ensure(
    (le64(body.tdAttributes) & TD_ATTR_DEBUG) === 0n,
    'tdx.tdattributes.debug',
    'the TD is in debug mode',
    'DEBUG=0',
    'DEBUG=1',
  );
}

/** Architectural constraints every TD report body satisfies, reference values or not. */
export function validateTdxFixedBits(body: TdReportBody): void {
  const attrs = le64(body.tdAttributes);
  ensure(
    (attrs & ~TD_ATTR_ALLOWED) === 0n,
    'tdx.tdattributes',
    'TD_ATTRIBUTES has reserved bits set',
    `only bits of 0x${TD_ATTR_ALLOWED.toString(16)}`,
    `0x${attrs.toString(16)}`,
  );
  const xfam = le64(body.xfam);
  ensure(
    (xfam & XFAM_FIXED1) === XFAM_FIXED1 && (xfam & ~XFAM_FIXED0) === 0n,
    'tdx.xfam',
    'XFAM violates its fixed bits',
    `bits 0x3 set, none outside 0x${XFAM_FIXED0.toString(16)}`,
    `0x${xfam.toString(16)}`,
  );
}

export interface TdxValidationContext {
  readonly body: TdReportBody;
  readonly pck: PckExtension;
  /** The quoting enclave's report (its ISVSVN is the QE SVN; signed by the PCK key). */
  readonly qeReport: EnclaveReport;
  /** From verified TCB info, when collateral was used. */
  readonly tcbEvaluationDataNumber?: number;
}

/** Validates one reference-value entry; throws the first failed check. */
export function validateTdxReference(ctx: TdxValidationContext, ref: TdxReferenceValues): void {
  const { body } = ctx;
  // A debug TD exposes its state to the host, so no reference value makes it trustworthy.
  validateTdxBaseline(body);
  if (!ref.MrTd) throw new AttestationError('tdx.mrtd', 'the reference values name no MrTd');
  expectHexEqual('tdx.mrtd', 'MRTD', ref.MrTd, body.mrTd);
  (ref.Rtmrs ?? []).forEach((rtmr, i) => {
    if (rtmr) expectHexEqual(`tdx.rtmr${i}`, `RTMR${i}`, rtmr, body.rtmrs[i]!);
  });
  if (ref.MrSeam) expectHexEqual('tdx.mrseam', 'MRSEAM', ref.MrSeam, body.mrSeam);
  if (ref.MrSignerSeam) expectHexEqual('tdx.mrsignerseam', 'MR_SIGNER_SEAM', ref.MrSignerSeam, body.mrSignerSeam);
  if (ref.MrOwner) expectHexEqual('tdx.mrowner', 'MR_OWNER', ref.MrOwner, body.mrOwner);
  if (ref.MrOwnerConfig) expectHexEqual('tdx.mrownerconfig', 'MR_OWNER_CONFIG', ref.MrOwnerConfig, body.mrOwnerConfig);
  // The QE's ISVSVN (its report, signed by the PCK key) and the PCK certificate's PCESVN, not the
  // quote header's QE/PCE SVN fields: the QE leaves those zero in genuine TDX quotes.
  if (ref.MinimumQeSvn != null) {
    ensure(
      ctx.qeReport.isvSvn >= ref.MinimumQeSvn,
      'tdx.qesvn',
      'the quoting enclave is older than the minimum QE SVN',
      `>= ${ref.MinimumQeSvn}`,
      String(ctx.qeReport.isvSvn),
    );
  }
  if (ref.MinimumPceSvn != null) {
    ensure(
      ctx.pck.pceSvn >= ref.MinimumPceSvn,
      'tdx.pcesvn',
      'the PCE SVN in the PCK certificate is below the minimum',
      `>= ${ref.MinimumPceSvn}`,
      String(ctx.pck.pceSvn),
    );
  }
  if (ref.TdAttributes) expectHexEqual('tdx.tdattributes', 'TD_ATTRIBUTES', ref.TdAttributes, body.tdAttributes);
  if (ref.Xfam) {
    const want = fromHex(ref.Xfam);
    const ok = want !== null && want.length === 8 && (le64(want) & ~XFAM_CET) === (le64(body.xfam) & ~XFAM_CET);
    ensure(ok, 'tdx.xfam', 'XFAM does not match (CET bits ignored)', ref.Xfam.toLowerCase(), toHex(body.xfam));
  }
  if (ref.MinimumTeeTcbSvn) {
    const min = fromHex(ref.MinimumTeeTcbSvn);
    const below = min ? [...min].findIndex((m, i) => body.teeTcbSvn[i]! < m) : 0;
    ensure(
      below < 0,
      'tdx.teetcbsvn',
      `TEE_TCB_SVN component ${below} is below the minimum`,
      ref.MinimumTeeTcbSvn.toLowerCase(),
      toHex(body.teeTcbSvn),
    );
  }
  if (ref.MinTCBEvaluationDataNumber) {
    ensure(
      ctx.tcbEvaluationDataNumber !== undefined,
      'tdx.tcbevaluationdatanumber',
      'a minimum TCB evaluation data number is set, but no TCB info was verified',
      `>= ${ref.MinTCBEvaluationDataNumber}`,
      'no collateral',
    );
    ensure(
      ctx.tcbEvaluationDataNumber >= ref.MinTCBEvaluationDataNumber,
      'tdx.tcbevaluationdatanumber',
      'the TCB info is older than the minimum evaluation data number',
      `>= ${ref.MinTCBEvaluationDataNumber}`,
      String(ctx.tcbEvaluationDataNumber),
    );
  }
  if (ref.AllowedPIIDs && ref.AllowedPIIDs.length > 0) {
    const piid = ctx.pck.platformInstanceId;
    ensure(
      piid !== undefined && ref.AllowedPIIDs.some((id) => fromHex(id)?.equals(piid) === true),
      'tdx.piid',
      'the platform instance id is not allowed',
      ref.AllowedPIIDs.join(' | '),
      piid ? toHex(piid) : 'none in the PCK certificate',
    );
  }
  // Platform-configuration requirements this verifier cannot evaluate yet: refuse rather than ignore.
  for (const key of ['MemoryIntegrity', 'SMTDisabled', 'StaticPlatform'] as const) {
    if (ref[key])
      throw new AttestationError(
        'tdx.unsupported',
        `the reference value ${key} is not supported by this verifier`,
        `${key}=false`,
        `${key}=true`,
      );
  }
}

import { AttestationError, ensure } from '../errors.js';
import { toHex } from '../bytes.js';
import type { QeIdentity, TdxTcbInfo } from './collateral.js';
import type { PckExtension } from './pck.js';
import type { EnclaveReport, TdReportBody } from './quote.js';

/**
 * TCB status of a TDX platform from Intel's TCB info and QE identity. Intel lists TCB levels
 * newest first; a platform is at the first level it meets in every component. `NotSupported`
 * (our name) means it meets none: it is older than anything Intel still describes.
 */
export const TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
  'NotSupported',
] as const;
export type TcbStatus = (typeof TCB_STATUSES)[number];

export function isTcbStatus(s: string): s is TcbStatus {
  return (TCB_STATUSES as readonly string[]).includes(s);
}

export interface TdxTcbEvaluation {
  /** The worst of the platform, TDX module and QE statuses. */
  readonly status: TcbStatus;
  readonly platform: {
    readonly status: TcbStatus;
    readonly tcbDate?: string;
    readonly advisoryIDs?: readonly string[];
  };
  readonly module?: { readonly id: string; readonly status: TcbStatus };
  readonly qe?: { readonly status: TcbStatus; readonly isvsvn: number };
  readonly tcbEvaluationDataNumber: number;
}

function asStatus(s: string): TcbStatus {
  // An unknown status string from Intel is treated as the most severe known one.
  return isTcbStatus(s) ? s : 'NotSupported';
}

function worst(statuses: TcbStatus[]): TcbStatus {
  return statuses.reduce((a, b) => (TCB_STATUSES.indexOf(b) > TCB_STATUSES.indexOf(a) ? b : a), 'UpToDate');
}

/** `(value & mask) == expected`, bytewise over hex strings of equal length. */
function maskedEqual(value: Buffer, maskHex: string, expectedHex: string): boolean {
  const mask = Buffer.from(maskHex, 'hex');
  const expected = Buffer.from(expectedHex, 'hex');
  if (mask.length !== value.length || expected.length !== value.length) return false;
  return value.every((b, i) => (b & mask[i]!) === expected[i]);
}

function platformLevel(info: TdxTcbInfo, pck: PckExtension, body: TdReportBody) {
  const svn = body.teeTcbSvn;
  // With a TDX module update (TEE_TCB_SVN[1] > 0) the first two bytes describe the module and
  // are judged against tdxModuleIdentities instead.
  const skip = svn[1]! > 0 ? 2 : 0;
  return info.tcbLevels.find(
    (level) =>
      level.tcb.sgxtcbcomponents.every((c, i) => pck.sgxTcbComponents[i]! >= c.svn) &&
      pck.pceSvn >= level.tcb.pcesvn &&
      level.tcb.tdxtcbcomponents.every((c, i) => i < skip || svn[i]! >= c.svn),
  );
}

function moduleStatus(info: TdxTcbInfo, body: TdReportBody): { id: string; status: TcbStatus } | undefined {
  const minor = body.teeTcbSvn[1]!;
  if (minor === 0) return undefined;
  const id = `TDX_${minor.toString(16).padStart(2, '0').toUpperCase()}`;
  const identity = info.tdxModuleIdentities?.find((m) => m.id.toUpperCase() === id);
  if (!identity) return { id, status: 'NotSupported' };
  ensure(
    identity.mrsigner === toHex(body.mrSignerSeam),
    'tdx.tcbinfo.module',
    `MR_SIGNER_SEAM does not match ${id}`,
    identity.mrsigner,
    toHex(body.mrSignerSeam),
  );
  ensure(
    maskedEqual(body.seamAttributes, identity.attributesMask, identity.attributes),
    'tdx.tcbinfo.module',
    `SEAM_ATTRIBUTES do not match ${id}`,
    identity.attributes,
    toHex(body.seamAttributes),
  );
  const level = identity.tcbLevels.find((l) => l.tcb.isvsvn <= body.teeTcbSvn[0]!);
  return { id, status: level ? asStatus(level.tcbStatus) : 'NotSupported' };
}

function qeStatus(qe: QeIdentity, report: EnclaveReport): { status: TcbStatus; isvsvn: number } {
  // A QE that does not match the identity is a different enclave, not an outdated one.
  ensure(
    qe.mrsigner === toHex(report.mrSigner),
    'tdx.qeidentity.mismatch',
    "the QE was not signed by Intel's QE signer",
    qe.mrsigner,
    toHex(report.mrSigner),
  );
  ensure(
    qe.isvprodid === report.isvProdId,
    'tdx.qeidentity.mismatch',
    'the QE product id does not match',
    String(qe.isvprodid),
    String(report.isvProdId),
  );
  const misc = Buffer.alloc(4);
  misc.writeUInt32BE(report.miscSelect);
  ensure(
    maskedEqual(misc, qe.miscselectMask, qe.miscselect),
    'tdx.qeidentity.mismatch',
    'the QE MISCSELECT does not match',
    qe.miscselect,
    misc.toString('hex'),
  );
  ensure(
    maskedEqual(report.attributes, qe.attributesMask, qe.attributes),
    'tdx.qeidentity.mismatch',
    'the QE attributes do not match',
    qe.attributes,
    toHex(report.attributes),
  );
  const level = qe.tcbLevels.find((l) => l.tcb.isvsvn <= report.isvSvn);
  return { status: level ? asStatus(level.tcbStatus) : 'NotSupported', isvsvn: report.isvSvn };
}

export function evaluateTdxTcb(
  info: TdxTcbInfo,
  pck: PckExtension,
  body: TdReportBody,
  qe?: { identity: QeIdentity; report: EnclaveReport },
): TdxTcbEvaluation {
  ensure(
    info.fmspc === toHex(pck.fmspc),
    'tdx.tcbinfo.fmspc',
    'the TCB info is for another platform model (FMSPC)',
    toHex(pck.fmspc),
    info.fmspc,
  );
  ensure(
    info.pceId === toHex(pck.pceId),
    'tdx.tcbinfo.fmspc',
    'the TCB info is for another PCE',
    toHex(pck.pceId),
    info.pceId,
  );
  ensure(
    info.tdxModule.mrsigner === toHex(body.mrSignerSeam),
    'tdx.tcbinfo.module',
    'MR_SIGNER_SEAM is not the TDX module signer Intel lists',
    info.tdxModule.mrsigner,
    toHex(body.mrSignerSeam),
  );
  ensure(
    maskedEqual(body.seamAttributes, info.tdxModule.attributesMask, info.tdxModule.attributes),
    'tdx.tcbinfo.module',
    'SEAM_ATTRIBUTES do not match the TCB info',
    info.tdxModule.attributes,
    toHex(body.seamAttributes),
  );
  const level = platformLevel(info, pck, body);
  const platform = level
    ? {
        status: asStatus(level.tcbStatus),
        tcbDate: level.tcbDate,
        ...(level.advisoryIDs ? { advisoryIDs: level.advisoryIDs } : {}),
      }
    : { status: 'NotSupported' as const };
  const module = moduleStatus(info, body);
  const qeResult = qe ? qeStatus(qe.identity, qe.report) : undefined;
  const status = worst([platform.status, ...(module ? [module.status] : []), ...(qeResult ? [qeResult.status] : [])]);
  return {
    status,
    platform,
    ...(module ? { module } : {}),
    ...(qeResult ? { qe: qeResult } : {}),
    tcbEvaluationDataNumber: info.tcbEvaluationDataNumber,
  };
}

export function requireAcceptedStatus(evaluation: TdxTcbEvaluation, accepted: readonly TcbStatus[]): void {
  if (accepted.includes(evaluation.status)) return;
  const parts = [`platform ${evaluation.platform.status}`];
  if (evaluation.module) parts.push(`module ${evaluation.module.id} ${evaluation.module.status}`);
  if (evaluation.qe) parts.push(`QE ${evaluation.qe.status}`);
  throw new AttestationError(
    'tdx.tcb.status',
    `the TCB status is not accepted (${parts.join(', ')})`,
    accepted.join(' | '),
    evaluation.status,
  );
}

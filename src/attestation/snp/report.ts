import { AttestationError } from '../errors.js';
import { isAllZero } from '../bytes.js';

/**
 * SEV-SNP ATTESTATION_REPORT (1184 bytes, little-endian). Offsets follow the SNP firmware ABI;
 * every reserved range is required to be zero so that a layout we do not understand (a new
 * version, a misplaced field) is rejected instead of half-read.
 */
export const REPORT_SIZE = 0x4a0;
export const SIGNED_LENGTH = 0x2a0;
const SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1;
const SUPPORTED_VERSIONS: readonly number[] = [2, 3, 4, 5];

export interface SnpGuestPolicy {
  readonly abiMinor: number;
  readonly abiMajor: number;
  readonly smt: boolean;
  readonly migrateMa: boolean;
  readonly debug: boolean;
  readonly singleSocket: boolean;
  readonly cxlAllowed: boolean;
  readonly memAes256Xts: boolean;
  readonly raplDis: boolean;
  readonly ciphertextHidingDram: boolean;
  readonly pageSwapDisable: boolean;
}

export interface SnpPlatformInfo {
  readonly smtEnabled: boolean;
  readonly tsmeEnabled: boolean;
  readonly eccEnabled: boolean;
  readonly raplDisabled: boolean;
  readonly ciphertextHidingDramEnabled: boolean;
  readonly aliasCheckComplete: boolean;
  readonly tioEnabled: boolean;
}

export type SigningKey = 'vcek' | 'vlek' | 'none';

export interface FirmwareVersion {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
}

export interface SnpReport {
  /** The whole report; `raw.subarray(0, SIGNED_LENGTH)` is what the signature covers. */
  readonly raw: Buffer;
  readonly version: number;
  readonly guestSvn: number;
  readonly policyRaw: bigint;
  readonly policy: SnpGuestPolicy;
  readonly familyId: Buffer;
  readonly imageId: Buffer;
  readonly vmpl: number;
  readonly signatureAlgo: number;
  /** TCB_VERSION fields stay raw here: their layout depends on the product line. */
  readonly currentTcb: Buffer;
  readonly platformInfoRaw: bigint;
  readonly platformInfo: SnpPlatformInfo;
  readonly authorKeyEn: boolean;
  readonly maskChipKey: boolean;
  readonly signingKey: SigningKey;
  readonly reportData: Buffer;
  readonly measurement: Buffer;
  readonly hostData: Buffer;
  readonly idKeyDigest: Buffer;
  readonly authorKeyDigest: Buffer;
  readonly reportId: Buffer;
  readonly reportIdMa: Buffer;
  readonly reportedTcb: Buffer;
  /** CPUID family/model/stepping; v3 and later only. */
  readonly cpuid?: { readonly family: number; readonly model: number; readonly stepping: number };
  readonly chipId: Buffer;
  readonly committedTcb: Buffer;
  readonly currentVersion: FirmwareVersion;
  readonly committedVersion: FirmwareVersion;
  readonly launchTcb: Buffer;
  /** v5 and later only. */
  readonly launchMitVector?: bigint;
  readonly currentMitVector?: bigint;
  /** r and s, big-endian, 48 bytes each (converted from the report's 72-byte little-endian form). */
  readonly signatureR: Buffer;
  readonly signatureS: Buffer;
}

function parseError(detail: string, expected?: string, actual?: string): never {
  throw new AttestationError('snp.report.parse', detail, expected, actual);
}

function requireZero(buf: Buffer, from: number, to: number, what: string): void {
  if (!isAllZero(buf.subarray(from, to))) {
    parseError(
      `${what} (bytes 0x${from.toString(16)}..0x${(to - 1).toString(16)}) must be zero`,
      'zero',
      buf.subarray(from, to).toString('hex'),
    );
  }
}

function decodePolicy(p: bigint): SnpGuestPolicy {
  if (((p >> 17n) & 1n) !== 1n) parseError('guest policy bit 17 (reserved, must be one) is zero', '1', '0');
  if (p >> 26n !== 0n)
    parseError('guest policy bits 63:26 are reserved and must be zero', '0', `0x${(p >> 26n).toString(16)}`);
  const bit = (n: bigint) => ((p >> n) & 1n) === 1n;
  return {
    abiMinor: Number(p & 0xffn),
    abiMajor: Number((p >> 8n) & 0xffn),
    smt: bit(16n),
    migrateMa: bit(18n),
    debug: bit(19n),
    singleSocket: bit(20n),
    cxlAllowed: bit(21n),
    memAes256Xts: bit(22n),
    raplDis: bit(23n),
    ciphertextHidingDram: bit(24n),
    pageSwapDisable: bit(25n),
  };
}

// Unknown PLATFORM_INFO bits are kept in platformInfoRaw and not rejected: genuine Turin reports
// set bit 6, which no public parser names.
function decodePlatformInfo(p: bigint): SnpPlatformInfo {
  const bit = (n: bigint) => ((p >> n) & 1n) === 1n;
  return {
    smtEnabled: bit(0n),
    tsmeEnabled: bit(1n),
    eccEnabled: bit(2n),
    raplDisabled: bit(3n),
    ciphertextHidingDramEnabled: bit(4n),
    aliasCheckComplete: bit(5n),
    tioEnabled: bit(7n),
  };
}

function signingKey(info: number): SigningKey {
  if (info >>> 5 !== 0)
    parseError('signer info bits 31:5 are reserved and must be zero', '0', `0x${(info >>> 5).toString(16)}`);
  const key = (info >>> 2) & 7;
  if (key === 0) return 'vcek';
  if (key === 1) return 'vlek';
  if (key === 7) return 'none';
  return parseError('signer info names a reserved signing key', '0 (VCEK), 1 (VLEK) or 7 (none)', String(key));
}

function bigEndianSignatureHalf(le72: Buffer, what: string): Buffer {
  const be = Buffer.from(le72).reverse();
  // P-384 values are 48 bytes; the upper 24 bytes of the 72-byte field are padding.
  if (!isAllZero(be.subarray(0, 24))) parseError(`signature ${what} does not fit P-384 (padding is not zero)`);
  return be.subarray(24);
}

function version(b: Buffer, at: number): FirmwareVersion {
  return { build: b[at]!, minor: b[at + 1]!, major: b[at + 2]! };
}

/** Parses a report. The input must be exactly one report; use the cert table parser for extras. */
export function parseSnpReport(data: Uint8Array): SnpReport {
  if (data.length !== REPORT_SIZE)
    parseError('report has the wrong size', `${REPORT_SIZE} bytes`, `${data.length} bytes`);
  const b = Buffer.from(data); // a private copy: later mutation by the caller cannot change a verified report
  const ver = b.readUInt32LE(0x00);
  if (!SUPPORTED_VERSIONS.includes(ver))
    parseError('unsupported report version', SUPPORTED_VERSIONS.join(', '), String(ver));
  const signatureAlgo = b.readUInt32LE(0x34);
  if (signatureAlgo !== SIGNATURE_ALGO_ECDSA_P384_SHA384) {
    parseError('unsupported signature algorithm', '1 (ECDSA P-384 with SHA-384)', String(signatureAlgo));
  }
  const vmpl = b.readUInt32LE(0x30);
  if (vmpl > 3) parseError('VMPL out of range', '0..3', String(vmpl));
  const info = b.readUInt32LE(0x48);
  const key = signingKey(info);
  requireZero(b, 0x4c, 0x50, 'reserved field after signer info');
  const hasCpuid = ver >= 3;
  requireZero(b, hasCpuid ? 0x18b : 0x188, 0x1a0, 'reserved field after REPORTED_TCB');
  requireZero(b, 0x1eb, 0x1ec, 'reserved byte after CURRENT_MAJOR');
  requireZero(b, 0x1ef, 0x1f0, 'reserved byte after COMMITTED_MAJOR');
  const hasMitigations = ver >= 5;
  requireZero(b, hasMitigations ? 0x208 : 0x1f8, SIGNED_LENGTH, 'reserved field before the signature');
  requireZero(b, 0x330, REPORT_SIZE, 'reserved field after the signature');
  const policyRaw = b.readBigUInt64LE(0x08);
  const platformInfoRaw = b.readBigUInt64LE(0x40);
  const fixed = (at: number, len: number) => b.subarray(at, at + len);
  return {
    raw: b,
    version: ver,
    guestSvn: b.readUInt32LE(0x04),
    policyRaw,
    policy: decodePolicy(policyRaw),
    familyId: fixed(0x10, 16),
    imageId: fixed(0x20, 16),
    vmpl,
    signatureAlgo,
    currentTcb: fixed(0x38, 8),
    platformInfoRaw,
    platformInfo: decodePlatformInfo(platformInfoRaw),
    authorKeyEn: (info & 1) === 1,
    maskChipKey: (info & 2) === 2,
    signingKey: key,
    reportData: fixed(0x50, 64),
    measurement: fixed(0x90, 48),
    hostData: fixed(0xc0, 32),
    idKeyDigest: fixed(0xe0, 48),
    authorKeyDigest: fixed(0x110, 48),
    reportId: fixed(0x140, 32),
    reportIdMa: fixed(0x160, 32),
    reportedTcb: fixed(0x180, 8),
    ...(hasCpuid ? { cpuid: { family: b[0x188]!, model: b[0x189]!, stepping: b[0x18a]! } } : {}),
    chipId: fixed(0x1a0, 64),
    committedTcb: fixed(0x1e0, 8),
    currentVersion: version(b, 0x1e8),
    committedVersion: version(b, 0x1ec),
    launchTcb: fixed(0x1f0, 8),
    ...(hasMitigations
      ? { launchMitVector: b.readBigUInt64LE(0x1f8), currentMitVector: b.readBigUInt64LE(0x200) }
      : {}),
    signatureR: bigEndianSignatureHalf(fixed(0x2a0, 72), 'R'),
    signatureS: bigEndianSignatureHalf(fixed(0x2e8, 72), 'S'),
  };
}

import { AttestationError, ensure } from '../errors.js';
import { expectHexEqual } from '../matching.js';
import { bytesEqual, fromHex, isAllZero, toHex } from '../bytes.js';
import type { SnpReferenceValues } from '../reference-values.js';
import type { FirmwareVersion, SnpReport } from './report.js';
import { firstBelow, firstDifferent, formatTcb, type SnpTcb } from './tcb.js';
import type { SnpProduct } from './product.js';

/** The report's TCB values decoded for its product line. */
export interface SnpTcbs {
  readonly current: SnpTcb;
  readonly committed: SnpTcb;
  readonly launch: SnpTcb;
  readonly reported: SnpTcb;
}

/**
 * Consistency checks that hold for every genuine report: the firmware may run a provisional
 * (uncommitted) version only if it is newer than the committed one, and the TCB the VCEK was
 * derived for cannot be newer than the running firmware.
 */
export function validateSnpTcbConsistency(tcbs: SnpTcbs): void {
  const c = firstBelow(tcbs.current, tcbs.committed);
  ensure(
    c === undefined,
    'snp.tcb.committed',
    `COMMITTED_TCB ${c} is newer than CURRENT_TCB`,
    `committed <= current (${formatTcb(tcbs.current)})`,
    formatTcb(tcbs.committed),
  );
  const r = firstBelow(tcbs.current, tcbs.reported);
  ensure(
    r === undefined,
    'snp.tcb.reported',
    `REPORTED_TCB ${r} is newer than CURRENT_TCB`,
    `reported <= current (${formatTcb(tcbs.current)})`,
    formatTcb(tcbs.reported),
  );
}

/**
 * The minimum TCB of an entry. Like upstream, all four Milan/Genoa components are required: a
 * reference value without them would accept any firmware. FMCVersion is optional (Turin only).
 */
function minimumTcb(ref: SnpReferenceValues): Partial<SnpTcb> {
  const m = ref.MinimumTCB ?? {};
  const required = {
    bootloader: m.BootloaderVersion,
    tee: m.TEEVersion,
    snp: m.SNPVersion,
    microcode: m.MicrocodeVersion,
  };
  for (const [name, value] of Object.entries(required)) {
    if (value == null)
      throw new AttestationError(
        'snp.tcb.minimum',
        `the reference values do not set a minimum ${name} version (MinimumTCB)`,
      );
  }
  return { ...required, ...(m.FMCVersion != null ? { fmc: m.FMCVersion } : {}) } as Partial<SnpTcb>;
}

/** A report bit, the reference value's setting for it, and its name in messages. */
type Flag = readonly [has: boolean, reference: boolean | undefined, name: string];

/** Permissions: the report may have the flag only if the reference values grant it. */
function checkAllowed(flags: Flag[], check: (name: string) => string, where: string): void {
  for (const [has, allowed, name] of flags) {
    ensure(
      !has || allowed === true,
      check(name),
      `${where} has ${name} set, the reference values do not allow it`,
      `${name}=0`,
      `${name}=1`,
    );
  }
}

/** Requirements: the report must have the flag if the reference values demand it. */
function checkRequired(flags: Flag[], check: (name: string) => string, where: string): void {
  for (const [has, required, name] of flags) {
    ensure(
      has || required !== true,
      check(name),
      `the reference values require ${name} in ${where}`,
      `${name}=1`,
      `${name}=0`,
    );
  }
}

function checkGuestPolicy(report: SnpReport, ref: SnpReferenceValues): void {
  const gp = ref.GuestPolicy;
  if (!gp) return;
  const p = report.policy;
  const wantAbi = ((gp.ABIMajor ?? 0) << 8) | (gp.ABIMinor ?? 0);
  const haveAbi = (p.abiMajor << 8) | p.abiMinor;
  ensure(
    haveAbi >= wantAbi,
    'snp.policy.abi',
    'the guest policy permits an older firmware ABI than required',
    `ABI >= ${gp.ABIMajor ?? 0}.${gp.ABIMinor ?? 0}`,
    `${p.abiMajor}.${p.abiMinor}`,
  );
  const check = (name: string) => `snp.policy.${name.toLowerCase()}`;
  checkAllowed(
    [
      [p.smt, gp.SMT, 'SMT'],
      [p.migrateMa, gp.MigrateMA, 'MIGRATE_MA'],
      [p.cxlAllowed, gp.CXLAllowed, 'CXL_ALLOW'],
    ],
    check,
    'the guest policy',
  );
  checkRequired(
    [
      [p.singleSocket, gp.SingleSocket, 'SINGLE_SOCKET'],
      [p.memAes256Xts, gp.MemAES256XTS, 'MEM_AES_256_XTS'],
      [p.raplDis, gp.RAPLDis, 'RAPL_DIS'],
      [p.ciphertextHidingDram, gp.CipherTextHidingDRAM, 'CIPHERTEXT_HIDING_DRAM'],
      [p.pageSwapDisable, gp.PageSwapDisable, 'PAGE_SWAP_DISABLE'],
    ],
    check,
    'the guest policy',
  );
}

function checkPlatformInfo(report: SnpReport, ref: SnpReferenceValues): void {
  const want = ref.PlatformInfo;
  if (!want) return;
  const pi = report.platformInfo;
  const check = () => 'snp.platforminfo';
  checkAllowed(
    [
      [pi.smtEnabled, want.SMTEnabled, 'SMTEnabled'],
      [pi.tsmeEnabled, want.TSMEEnabled, 'TSMEEnabled'],
      [pi.tioEnabled, want.TIOEnabled, 'TIOEnabled'],
    ],
    check,
    'the platform',
  );
  checkRequired(
    [
      [pi.eccEnabled, want.ECCEnabled, 'ECCEnabled'],
      [pi.raplDisabled, want.RAPLDisabled, 'RAPLDisabled'],
      [pi.ciphertextHidingDramEnabled, want.CiphertextHidingDRAMEnabled, 'CiphertextHidingDRAMEnabled'],
      [pi.aliasCheckComplete, want.AliasCheckComplete, 'AliasCheckComplete'],
    ],
    check,
    'the platform info',
  );
}

function checkTcbMinimums(tcbs: SnpTcbs, ref: SnpReferenceValues): void {
  const min = minimumTcb(ref);
  // Upstream applies the one minimum to the reported TCB (the VCEK's) and to the launch TCB
  // (the oldest firmware this guest has run on); committed and current follow from
  // reported <= current and the firmware's rollback rules, and are checked for clarity.
  for (const which of ['reported', 'committed', 'current', 'launch'] as const) {
    const c = firstBelow(tcbs[which], min);
    ensure(
      c === undefined,
      'snp.tcb.minimum',
      `${which.toUpperCase()}_TCB ${c} is below the minimum`,
      formatTcb(min),
      formatTcb(tcbs[which]),
    );
  }
}

function checkMitigations(report: SnpReport, ref: SnpReferenceValues): void {
  const min = BigInt(ref.MinimumMitigationVector ?? 0);
  if (min === 0n) return;
  ensure(
    report.launchMitVector !== undefined && report.currentMitVector !== undefined,
    'snp.mitigations',
    'the reference values require mitigations, but this report version carries no mitigation vector',
    'report version >= 5',
    String(report.version),
  );
  for (const [name, v] of [
    ['LAUNCH_MIT_VECTOR', report.launchMitVector],
    ['CURRENT_MIT_VECTOR', report.currentMitVector],
  ] as const) {
    ensure(
      (v & min) === min,
      'snp.mitigations',
      `${name} lacks required mitigation bits`,
      `0x${min.toString(16)} set`,
      `0x${v.toString(16)}`,
    );
  }
}

function checkChipId(report: SnpReport, ref: SnpReferenceValues): void {
  const allowed = ref.AllowedChipIDs ?? [];
  if (allowed.length === 0) return;
  ensure(
    !isAllZero(report.chipId),
    'snp.chipid',
    'the report masks its CHIP_ID, but the reference values restrict chips',
    'a listed chip id',
    'masked (all zero)',
  );
  const ok = allowed.some((id) => {
    const b = fromHex(id);
    return b !== null && bytesEqual(b, report.chipId);
  });
  ensure(ok, 'snp.chipid', 'CHIP_ID is not in AllowedChipIDs', allowed.join(' | '), toHex(report.chipId));
}

function formatVersion(v: FirmwareVersion): string {
  return `${v.major}.${v.minor} build ${v.build}`;
}

function checkFirmware(report: SnpReport, tcbs: SnpTcbs, ref: SnpReferenceValues): void {
  const firmware = [
    ['CURRENT', report.currentVersion],
    ['COMMITTED', report.committedVersion],
  ] as const;
  if (ref.MinimumBuild != null) {
    for (const [name, v] of firmware) {
      ensure(
        v.build >= ref.MinimumBuild,
        'snp.firmware.build',
        `the ${name} firmware build is below the minimum`,
        `build >= ${ref.MinimumBuild}`,
        formatVersion(v),
      );
    }
  }
  if (ref.MinimumVersion) {
    const [major, minor] = ref.MinimumVersion.split('.').map(Number) as [number, number];
    for (const [name, v] of firmware) {
      ensure(
        v.major > major || (v.major === major && v.minor >= minor),
        'snp.firmware.version',
        `the ${name} firmware version is below the minimum`,
        `>= ${ref.MinimumVersion}`,
        formatVersion(v),
      );
    }
  }
  if (ref.PermitProvisionalFirmware !== true) {
    // Provisional firmware (installed but not committed) can still be rolled back by the host.
    const cur = report.currentVersion;
    const com = report.committedVersion;
    const sameVersion = cur.major === com.major && cur.minor === com.minor && cur.build === com.build;
    ensure(
      sameVersion && firstDifferent(tcbs.current, tcbs.committed) === undefined,
      'snp.firmware.provisional',
      'the firmware is provisional (CURRENT differs from COMMITTED); set PermitProvisionalFirmware to accept it',
      `committed ${formatVersion(com)}, TCB ${formatTcb(tcbs.committed)}`,
      `current ${formatVersion(cur)}, TCB ${formatTcb(tcbs.current)}`,
    );
  }
}

/**
 * The judgement of `evidence verify` without reference values: what no reference value can make
 * acceptable or Contrast never runs — a debug guest, a report from VMPL above 0, a guest that a
 * migration agent may move.
 */
export function validateSnpBaseline(report: SnpReport): void {
  ensure(
    !report.policy.debug,
    'snp.policy.debug',
    'the guest policy allows debugging (the host can decrypt guest memory)',
    'DEBUG=0',
    'DEBUG=1',
  );
  ensure(report.vmpl === 0, 'snp.vmpl', 'the report comes from another VMPL', '0', String(report.vmpl));
  ensure(
    !report.policy.migrateMa,
    'snp.policy.migrate_ma',
    'the guest policy allows a migration agent',
    'MIGRATE_MA=0',
    'MIGRATE_MA=1',
  );
}

/** Validates one reference-value entry; throws the first failed check. */
export function validateSnpReference(
  report: SnpReport,
  product: SnpProduct,
  tcbs: SnpTcbs,
  ref: SnpReferenceValues,
): void {
  // A debug guest can be decrypted by the host, so no reference value makes it trustworthy.
  ensure(
    !report.policy.debug,
    'snp.policy.debug',
    'the guest policy allows debugging (the host can decrypt guest memory)',
    'DEBUG=0',
    'DEBUG=1',
  );
  if (ref.ProductName !== undefined && ref.ProductName !== '') {
    ensure(
      ref.ProductName === product,
      'snp.product',
      'the reference values are for another product line',
      ref.ProductName,
      product,
    );
  }
  if (!ref.TrustedMeasurement)
    throw new AttestationError('snp.measurement', 'the reference values name no TrustedMeasurement');
  expectHexEqual('snp.measurement', 'MEASUREMENT', ref.TrustedMeasurement, report.measurement);
  checkTcbMinimums(tcbs, ref);
  checkGuestPolicy(report, ref);
  checkPlatformInfo(report, ref);
  checkMitigations(report, ref);
  checkChipId(report, ref);
  checkFirmware(report, tcbs, ref);
}

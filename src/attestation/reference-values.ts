import { UserError } from '../util/errors.js';
import { fromHex } from './bytes.js';

/**
 * Reference values in upstream Contrast's manifest schema (`manifest.json` → `ReferenceValues`),
 * plus `insecure` for the simulated TEE. JSON keys are the upstream Go field names, so manifests
 * move between the two tools unchanged. A workload is accepted when its evidence satisfies any
 * one entry of its TEE's list (src/attestation/tees.ts names the list of each TEE).
 */
export interface ReferenceValues {
  snp?: SnpReferenceValues[];
  tdx?: TdxReferenceValues[];
  insecure?: SimReferenceValues[];
}

/** Each field is a security version number 0–255; upstream requires all four. */
export interface SnpTcbReference {
  BootloaderVersion?: number | null;
  TEEVersion?: number | null;
  SNPVersion?: number | null;
  MicrocodeVersion?: number | null;
  /** Turin only; not in upstream's schema yet, accepted so Turin minimums can be expressed. */
  FMCVersion?: number | null;
}

/** The guest policy as a ceiling: the report may not allow more than this. */
export interface SnpGuestPolicyReference {
  ABIMinor?: number;
  ABIMajor?: number;
  SMT?: boolean;
  MigrateMA?: boolean;
  Debug?: boolean;
  SingleSocket?: boolean;
  CXLAllowed?: boolean;
  MemAES256XTS?: boolean;
  RAPLDis?: boolean;
  CipherTextHidingDRAM?: boolean;
  PageSwapDisable?: boolean;
}

/** Platform features: SMT/TSME/TIO are permissions, the others requirements. */
export interface SnpPlatformInfoReference {
  SMTEnabled?: boolean;
  TSMEEnabled?: boolean;
  ECCEnabled?: boolean;
  RAPLDisabled?: boolean;
  CiphertextHidingDRAMEnabled?: boolean;
  AliasCheckComplete?: boolean;
  TIOEnabled?: boolean;
}

export interface SnpReferenceValues {
  Platform?: string;
  ProductName?: string;
  /** Hex, 48 bytes: the launch measurement. */
  TrustedMeasurement: string;
  /** Unset: refused when evidence is verified (`snp.tcb.minimum`). */
  MinimumTCB?: SnpTcbReference;
  GuestPolicy?: SnpGuestPolicyReference;
  PlatformInfo?: SnpPlatformInfoReference;
  /** Bits that must be set in the v5 launch and current mitigation vectors. */
  MinimumMitigationVector?: number;
  /** Hex, 64 bytes each; when non-empty, the report's CHIP_ID must be one of them. */
  AllowedChipIDs?: string[];
  /** Minimum SNP firmware build (0–255), for the current and the committed firmware (go-sev-guest's MinimumBuild). */
  MinimumBuild?: number;
  /** Minimum SNP firmware version "major.minor", for the current and the committed firmware (go-sev-guest's MinimumVersion). */
  MinimumVersion?: string;
  /**
   * Accept firmware that runs uncommitted (provisional: CURRENT differs from COMMITTED in
   * version, build or TCB). Unset: refused (`snp.firmware.provisional`), as go-sev-guest does.
   */
  PermitProvisionalFirmware?: boolean;
  CPUs?: number;
}

export interface TdxReferenceValues {
  Platform?: string;
  MinTCBEvaluationDataNumber?: number;
  /** Hex, 48 bytes. */
  MrTd: string;
  /** Hex, 48 bytes. */
  MrSeam?: string;
  /** Hex, 48 bytes each (RTMR0..3). */
  Rtmrs?: string[];
  /** Hex, 8 bytes. */
  Xfam?: string;
  /** Hex, 8 bytes; upstream fixes this to SEPT_VE_DISABLE. */
  TdAttributes?: string;
  /** Hex, 16 bytes: component-wise minimum of TEE_TCB_SVN. */
  MinimumTeeTcbSvn?: string;
  AllowedPIIDs?: string[];
  /** Hex, 48 bytes: MR_OWNER of the TD report. */
  MrOwner?: string;
  /** Hex, 48 bytes: MR_OWNER_CONFIG of the TD report. */
  MrOwnerConfig?: string;
  /** Hex, 48 bytes: MR_SIGNER_SEAM, the signer of the TDX module (zero for Intel's). */
  MrSignerSeam?: string;
  /** Minimum ISVSVN of the quoting enclave (from its report, signed by the PCK key), 0–65535. */
  MinimumQeSvn?: number;
  /** Minimum PCESVN (from the PCK certificate), 0–65535. */
  MinimumPceSvn?: number;
  MemoryIntegrity?: boolean;
  SMTDisabled?: boolean;
  StaticPlatform?: boolean;
  CPUs?: number;
}

/** The simulated TEE (src/attestation/simulated.ts): its measurement, nothing else to check. */
export interface SimReferenceValues {
  Platform?: string;
  /** Hex, 48 bytes, lower case. */
  TrustedMeasurement: string;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Checker {
  constructor(private readonly source: string) {}

  fail(path: string, message: string): never {
    throw new UserError(message, { file: this.source, field: path });
  }

  obj(v: unknown, path: string): Obj {
    if (!isObj(v)) this.fail(path, 'must be an object');
    return v;
  }

  hex(v: unknown, path: string, bytes: number, optional: boolean): void {
    if (v === undefined || (optional && (v === '' || v === null))) {
      if (!optional) this.fail(path, `is required (${bytes} bytes as hex)`);
      return;
    }
    const b = typeof v === 'string' ? fromHex(v) : null;
    if (!b || b.length !== bytes) this.fail(path, `must be ${bytes} bytes as hex (${bytes * 2} hex digits)`);
  }

  uint(v: unknown, path: string, max: number): void {
    if (v === undefined || v === null) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
      this.fail(path, `must be an integer 0..${max}`);
  }

  bools(o: Obj, path: string, keys: string[]): void {
    for (const k of keys)
      if (o[k] !== undefined && typeof o[k] !== 'boolean') this.fail(`${path}.${k}`, 'must be true or false');
  }
}

function checkSnp(c: Checker, v: unknown, path: string): void {
  const o = c.obj(v, path);
  c.hex(o.TrustedMeasurement, `${path}.TrustedMeasurement`, 48, false);
  const tcb = c.obj(o.MinimumTCB ?? {}, `${path}.MinimumTCB`);
  for (const k of ['BootloaderVersion', 'TEEVersion', 'SNPVersion', 'MicrocodeVersion', 'FMCVersion'])
    c.uint(tcb[k], `${path}.MinimumTCB.${k}`, 255);
  if (o.GuestPolicy !== undefined) {
    const gp = c.obj(o.GuestPolicy, `${path}.GuestPolicy`);
    c.uint(gp.ABIMinor, `${path}.GuestPolicy.ABIMinor`, 255);
    c.uint(gp.ABIMajor, `${path}.GuestPolicy.ABIMajor`, 255);
    c.bools(gp, `${path}.GuestPolicy`, [
      'SMT',
      'MigrateMA',
      'Debug',
      'SingleSocket',
      'CXLAllowed',
      'MemAES256XTS',
      'RAPLDis',
      'CipherTextHidingDRAM',
      'PageSwapDisable',
    ]);
    if (gp.Debug === true) c.fail(`${path}.GuestPolicy.Debug`, 'debug guests are never trusted; set Debug to false');
  }
  if (o.PlatformInfo !== undefined) {
    c.bools(c.obj(o.PlatformInfo, `${path}.PlatformInfo`), `${path}.PlatformInfo`, [
      'SMTEnabled',
      'TSMEEnabled',
      'ECCEnabled',
      'RAPLDisabled',
      'CiphertextHidingDRAMEnabled',
      'AliasCheckComplete',
      'TIOEnabled',
    ]);
  }
  c.uint(o.MinimumMitigationVector, `${path}.MinimumMitigationVector`, Number.MAX_SAFE_INTEGER);
  if (o.AllowedChipIDs !== undefined && o.AllowedChipIDs !== null) {
    if (!Array.isArray(o.AllowedChipIDs)) c.fail(`${path}.AllowedChipIDs`, 'must be a list');
    o.AllowedChipIDs.forEach((id, i) => c.hex(id, `${path}.AllowedChipIDs[${i}]`, 64, false));
  }
  if (o.ProductName !== undefined && typeof o.ProductName !== 'string')
    c.fail(`${path}.ProductName`, 'must be a string');
  c.uint(o.MinimumBuild, `${path}.MinimumBuild`, 255);
  if (
    o.MinimumVersion !== undefined &&
    o.MinimumVersion !== null &&
    (typeof o.MinimumVersion !== 'string' || !FIRMWARE_VERSION.test(o.MinimumVersion))
  ) {
    c.fail(`${path}.MinimumVersion`, 'must be a firmware version "major.minor", e.g. "1.55"');
  }
  c.bools(o, path, ['PermitProvisionalFirmware']);
}

/** "major.minor", each 0–255. */
const FIRMWARE_VERSION = /^(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)$/;

function checkTdx(c: Checker, v: unknown, path: string): void {
  const o = c.obj(v, path);
  c.hex(o.MrTd, `${path}.MrTd`, 48, false);
  c.hex(o.MrSeam, `${path}.MrSeam`, 48, true);
  c.hex(o.Xfam, `${path}.Xfam`, 8, true);
  c.hex(o.TdAttributes, `${path}.TdAttributes`, 8, true);
  c.hex(o.MinimumTeeTcbSvn, `${path}.MinimumTeeTcbSvn`, 16, true);
  c.uint(o.MinTCBEvaluationDataNumber, `${path}.MinTCBEvaluationDataNumber`, 2 ** 31);
  for (const k of ['MrOwner', 'MrOwnerConfig', 'MrSignerSeam']) c.hex(o[k], `${path}.${k}`, 48, true);
  c.uint(o.MinimumQeSvn, `${path}.MinimumQeSvn`, 65535);
  c.uint(o.MinimumPceSvn, `${path}.MinimumPceSvn`, 65535);
  // Upstream's v1 schema spelled the key "Rtrms"; read it too.
  const rtmrs = o.Rtmrs ?? o.Rtrms;
  if (rtmrs !== undefined && rtmrs !== null) {
    if (!Array.isArray(rtmrs) || rtmrs.length !== 4) c.fail(`${path}.Rtmrs`, 'must be a list of four measurements');
    rtmrs.forEach((r, i) => c.hex(r, `${path}.Rtmrs[${i}]`, 48, true));
  }
}

const SIM_FIELDS = ['Platform', 'TrustedMeasurement'];
const LOWER_HEX48 = /^[0-9a-f]{96}$/;

function checkSim(c: Checker, v: unknown, path: string): void {
  const o = c.obj(v, path);
  for (const k of Object.keys(o))
    if (!SIM_FIELDS.includes(k)) c.fail(`${path}.${k}`, `unknown field "${k}" (expected ${SIM_FIELDS.join(', ')})`);
  if (o.Platform !== undefined && typeof o.Platform !== 'string') c.fail(`${path}.Platform`, 'must be a string');
  if (typeof o.TrustedMeasurement !== 'string' || !LOWER_HEX48.test(o.TrustedMeasurement))
    c.fail(`${path}.TrustedMeasurement`, 'must be 48 bytes as lower-case hex (96 hex digits)');
}

/** A TDX entry as checkTdx let it through: upstream's v1 schema spelled Rtmrs "Rtrms". */
type TdxEntryAsRead = TdxReferenceValues & { Rtrms?: string[] };

/** The entry with upstream's old "Rtrms" spelling read as Rtmrs. */
function normalizeTdx(entry: TdxEntryAsRead): TdxReferenceValues {
  const { Rtrms, ...rest } = entry;
  return rest.Rtmrs === undefined && Rtrms !== undefined ? { ...rest, Rtmrs: Rtrms } : rest;
}

/**
 * Checks the shape of reference values read from JSON. Accepts either the `ReferenceValues`
 * object or a whole manifest containing one.
 */
export function parseReferenceValues(json: unknown, source: string): ReferenceValues {
  const c: Checker = new Checker(source);
  let o = c.obj(json, 'ReferenceValues');
  if (isObj(o.ReferenceValues)) o = o.ReferenceValues;
  for (const [key, check] of [
    ['snp', checkSnp],
    ['tdx', checkTdx],
    ['insecure', checkSim],
  ] as const) {
    const list = o[key];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) c.fail(key, 'must be a list');
    list.forEach((entry, i) => check(c, entry, `${key}[${i}]`));
  }
  const out: ReferenceValues = {};
  if (Array.isArray(o.snp)) out.snp = o.snp as SnpReferenceValues[];
  if (Array.isArray(o.tdx)) out.tdx = (o.tdx as TdxEntryAsRead[]).map(normalizeTdx);
  if (Array.isArray(o.insecure)) out.insecure = o.insecure as SimReferenceValues[];
  return out;
}

/**
 * Fields that must be filled in before evidence can be accepted: a manifest generated for
 * bare metal starts with them empty (src/platforms/reference-values.ts). The values may come
 * straight from JSON, so every field is looked at as it is.
 */
export function missingReferenceFields(values: ReferenceValues): string[] {
  const missing: string[] = [];
  values.snp?.forEach((e, i) => {
    if (!e.TrustedMeasurement) missing.push(`ReferenceValues.snp[${i}].TrustedMeasurement`);
    const tcb: Partial<Record<string, unknown>> = isObj(e.MinimumTCB) ? e.MinimumTCB : {};
    for (const k of ['BootloaderVersion', 'TEEVersion', 'SNPVersion', 'MicrocodeVersion']) {
      if (tcb[k] === null || tcb[k] === undefined) missing.push(`ReferenceValues.snp[${i}].MinimumTCB.${k}`);
    }
  });
  values.tdx?.forEach((e, i) => {
    for (const k of ['MrTd', 'MrSeam', 'MinimumTeeTcbSvn'] as const)
      if (!e[k]) missing.push(`ReferenceValues.tdx[${i}].${k}`);
    const rtmrs: unknown[] = Array.isArray(e.Rtmrs) ? e.Rtmrs : [];
    if (rtmrs.length !== 4 || rtmrs.some((r) => !r)) missing.push(`ReferenceValues.tdx[${i}].Rtmrs`);
  });
  return missing;
}

import { AttestationError } from '../errors.js';

/**
 * Intel TDX quotes, versions 4 and 5 (ECDSA-256 attestation key, QE report certification data
 * wrapping a PCK certificate chain). Little-endian. Bytes after the declared signature data are
 * tolerated (real quotes are padded) and reported as `trailingBytes`; inside the declared sizes
 * every length must add up exactly.
 */
const TEE_TYPE_TDX = 0x81;
const ATTESTATION_KEY_ECDSA_P256 = 2;
const CERT_DATA_QE_REPORT = 6;
const CERT_DATA_PCK_CHAIN = 5;
export const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607';
const BODY_SIZE_TDX10 = 584;
const BODY_SIZE_TDX15 = 648;
const ENCLAVE_REPORT_SIZE = 384;

export interface TdxQuoteHeader {
  readonly version: number;
  readonly attestationKeyType: number;
  readonly teeType: number;
  readonly pceSvn: number;
  readonly qeSvn: number;
  readonly qeVendorId: Buffer;
  readonly userData: Buffer;
}

export interface TdReportBody {
  readonly teeTcbSvn: Buffer;
  readonly mrSeam: Buffer;
  readonly mrSignerSeam: Buffer;
  readonly seamAttributes: Buffer;
  readonly tdAttributes: Buffer;
  readonly xfam: Buffer;
  readonly mrTd: Buffer;
  readonly mrConfigId: Buffer;
  readonly mrOwner: Buffer;
  readonly mrOwnerConfig: Buffer;
  readonly rtmrs: readonly [Buffer, Buffer, Buffer, Buffer];
  readonly reportData: Buffer;
  /** TDX 1.5 bodies (v5, body type 3) only. */
  readonly teeTcbSvn2?: Buffer;
  readonly mrServiceTd?: Buffer;
}

/** SGX enclave report of the Quoting Enclave. */
export interface EnclaveReport {
  readonly raw: Buffer;
  readonly cpuSvn: Buffer;
  readonly miscSelect: number;
  readonly attributes: Buffer;
  readonly mrEnclave: Buffer;
  readonly mrSigner: Buffer;
  readonly isvProdId: number;
  readonly isvSvn: number;
  readonly reportData: Buffer;
}

export interface TdxQuote {
  readonly raw: Buffer;
  readonly header: TdxQuoteHeader;
  /** v5 only: 2 (TDX 1.0) or 3 (TDX 1.5). */
  readonly bodyType?: number;
  readonly body: TdReportBody;
  /** The bytes the attestation key signed: header and body (and the v5 body descriptor). */
  readonly signedBytes: Buffer;
  /** r‖s, big-endian, 32 bytes each. */
  readonly signature: Buffer;
  /** Raw X‖Y of the P-256 attestation key. */
  readonly attestationKey: Buffer;
  readonly qeReport: EnclaveReport;
  readonly qeReportSignature: Buffer;
  readonly qeAuthData: Buffer;
  /** Concatenated PEM certificates: PCK leaf, intermediate CA, root. */
  readonly pckChainPem: Buffer;
  readonly trailingBytes: number;
}

function fail(detail: string, expected?: string, actual?: string): never {
  throw new AttestationError('tdx.quote.parse', detail, expected, actual);
}

/** A bounds-checked little-endian reader over one region of the quote. */
class Reader {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
    private readonly end: number,
  ) {}

  take(n: number, what: string): Buffer {
    if (n < 0 || this.pos + n > this.end)
      fail(
        `${what} runs past the end of its enclosing data`,
        `${n} bytes`,
        `${Math.max(0, this.end - this.pos)} bytes left`,
      );
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  u16(what: string): number {
    return this.take(2, what).readUInt16LE(0);
  }

  u32(what: string): number {
    return this.take(4, what).readUInt32LE(0);
  }

  expectEnd(what: string): void {
    if (this.pos !== this.end) fail(`${what} has ${this.end - this.pos} unexplained bytes`);
  }
}

function parseHeader(r: Reader): TdxQuoteHeader {
  const version = r.u16('version');
  if (version !== 4 && version !== 5) fail('unsupported quote version', '4 or 5', String(version));
  const attestationKeyType = r.u16('attestation key type');
  if (attestationKeyType !== ATTESTATION_KEY_ECDSA_P256)
    fail('unsupported attestation key type', '2 (ECDSA-256 with P-256)', String(attestationKeyType));
  const teeType = r.u32('TEE type');
  if (teeType !== TEE_TYPE_TDX) fail('not a TDX quote', '0x81', `0x${teeType.toString(16)}`);
  return {
    version,
    attestationKeyType,
    teeType,
    pceSvn: r.u16('PCE SVN'),
    qeSvn: r.u16('QE SVN'),
    qeVendorId: r.take(16, 'QE vendor id'),
    userData: r.take(20, 'user data'),
  };
}

function parseBody(r: Reader, tdx15: boolean): TdReportBody {
  const t = (n: number, what: string) => r.take(n, what);
  const body = {
    teeTcbSvn: t(16, 'TEE_TCB_SVN'),
    mrSeam: t(48, 'MR_SEAM'),
    mrSignerSeam: t(48, 'MR_SIGNER_SEAM'),
    seamAttributes: t(8, 'SEAM_ATTRIBUTES'),
    tdAttributes: t(8, 'TD_ATTRIBUTES'),
    xfam: t(8, 'XFAM'),
    mrTd: t(48, 'MR_TD'),
    mrConfigId: t(48, 'MR_CONFIG_ID'),
    mrOwner: t(48, 'MR_OWNER'),
    mrOwnerConfig: t(48, 'MR_OWNER_CONFIG'),
    rtmrs: [t(48, 'RTMR0'), t(48, 'RTMR1'), t(48, 'RTMR2'), t(48, 'RTMR3')] as const,
    reportData: t(64, 'REPORT_DATA'),
  };
  return tdx15 ? { ...body, teeTcbSvn2: t(16, 'TEE_TCB_SVN_2'), mrServiceTd: t(48, 'MR_SERVICETD') } : body;
}

function parseEnclaveReport(raw: Buffer): EnclaveReport {
  return {
    raw,
    cpuSvn: raw.subarray(0x00, 0x10),
    miscSelect: raw.readUInt32LE(0x10),
    attributes: raw.subarray(0x30, 0x40),
    mrEnclave: raw.subarray(0x40, 0x60),
    mrSigner: raw.subarray(0x80, 0xa0),
    isvProdId: raw.readUInt16LE(0x100),
    isvSvn: raw.readUInt16LE(0x102),
    reportData: raw.subarray(0x140, 0x180),
  };
}

export function parseTdxQuote(data: Uint8Array): TdxQuote {
  const buf = Buffer.from(data); // private copy
  const r = new Reader(buf, 0, buf.length);
  const header = parseHeader(r);
  let bodyType: number | undefined;
  let tdx15 = false;
  if (header.version === 5) {
    bodyType = r.u16('body type');
    const bodySize = r.u32('body size');
    if (bodyType === 2 && bodySize === BODY_SIZE_TDX10) tdx15 = false;
    else if (bodyType === 3 && bodySize === BODY_SIZE_TDX15) tdx15 = true;
    else
      fail(
        'unsupported v5 body type or size',
        `type 2 (${BODY_SIZE_TDX10} bytes) or 3 (${BODY_SIZE_TDX15} bytes)`,
        `type ${bodyType} (${bodySize} bytes)`,
      );
  }
  const body = parseBody(r, tdx15);
  const signedBytes = buf.subarray(0, r.pos);
  const sigLen = r.u32('signature data length');
  const sigEnd = r.pos + sigLen;
  if (sigEnd > buf.length)
    fail('signature data runs past the end of the quote', `${sigLen} bytes`, `${buf.length - r.pos} bytes left`);
  const s = new Reader(buf, r.pos, sigEnd);
  const signature = s.take(64, 'quote signature');
  const attestationKey = s.take(64, 'attestation key');
  const certType = s.u16('certification data type');
  if (certType !== CERT_DATA_QE_REPORT)
    fail('unsupported certification data type', `${CERT_DATA_QE_REPORT} (QE report)`, String(certType));
  const certLen = s.u32('certification data length');
  const c = new Reader(buf, s.pos, s.pos + certLen);
  s.take(certLen, 'QE report certification data');
  s.expectEnd('signature data');
  const qeReport = parseEnclaveReport(c.take(ENCLAVE_REPORT_SIZE, 'QE report'));
  const qeReportSignature = c.take(64, 'QE report signature');
  const qeAuthData = c.take(c.u16('QE auth data length'), 'QE auth data');
  const innerType = c.u16('inner certification data type');
  if (innerType !== CERT_DATA_PCK_CHAIN)
    fail(
      'unsupported inner certification data type',
      `${CERT_DATA_PCK_CHAIN} (PCK certificate chain)`,
      String(innerType),
    );
  const pckChainPem = c.take(c.u32('PCK chain length'), 'PCK certificate chain');
  c.expectEnd('QE report certification data');
  return {
    raw: buf,
    header,
    ...(bodyType !== undefined ? { bodyType } : {}),
    body,
    signedBytes,
    signature,
    attestationKey,
    qeReport,
    qeReportSignature,
    qeAuthData,
    pckChainPem,
    trailingBytes: buf.length - sigEnd,
  };
}

import { decodeBase64Strict } from '../util/encoding.js';
import { AttestationError } from './errors.js';
import { REPORT_SIZE } from './snp/report.js';

/**
 * Evidence files as users have them: raw binary, or the same bytes as hex text (as several
 * tools print them). Hex is recognised only when the whole file is hex digits and whitespace.
 */
export function decodeBinaryOrHex(data: Uint8Array): Buffer {
  const buf = Buffer.from(data);
  const text = buf.toString('latin1').trim();
  if (text.length > 0 && /^[0-9a-fA-F\s]+$/.test(text)) {
    const compact = text.replace(/\s+/g, '');
    if (compact.length % 2 === 0) return Buffer.from(compact, 'hex');
  }
  return buf;
}

/** base64 or base64url text (line breaks allowed, padding optional) in its one canonical spelling, else undefined. */
function decodeBase64Text(text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, '');
  if (compact.length === 0 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) return undefined;
  if (/[+/]/.test(compact) && /[_-]/.test(compact)) return undefined; // both alphabets at once: no reading is the intended one
  const std = compact.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  return decodeBase64Strict(std + '='.repeat((4 - (std.length % 4)) % 4));
}

/**
 * Field names under which cloud providers and attestation agents hand out evidence as JSON: a
 * TDX quote as `quote` (Azure's `/acc/tdquote`, the confidential-containers attestation agent's
 * TDX evidence), an SNP report as `report` or `attestation_report`. Only string values (base64,
 * base64url or hex) are read; structured objects are formats of their own.
 */
const JSON_FIELDS: Record<'snp' | 'tdx', readonly string[]> = { snp: ['report', 'attestation_report'], tdx: ['quote'] };

export type EvidenceEncoding = 'binary' | 'hex' | 'base64' | `json .${string}`;

/**
 * An evidence file as users have them: binary; hex or base64 text (the whole file); or a JSON
 * object with exactly one field that names the evidence (JSON_FIELDS) holding hex or base64.
 * Anything else that looks like text or JSON is refused with the reason rather than parsed as
 * binary. Binary evidence never looks like text: reports and quotes begin with a small
 * little-endian version number.
 */
export function decodeEvidenceFile(
  data: Uint8Array,
  tee: 'snp' | 'tdx',
): { bytes: Buffer; encoding: EvidenceEncoding } {
  const buf = Buffer.from(data);
  const text = buf.toString('latin1').trim();
  if (text.length === 0 || /[^\x09\x0a\x0d\x20-\x7e]/.test(text)) return { bytes: buf, encoding: 'binary' };
  const hexed = decodeHexText(text);
  if (hexed) return { bytes: hexed, encoding: 'hex' };
  if (text.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new AttestationError(
        'evidence.format',
        `the evidence looks like JSON but is not (${(err as Error).message})`,
      );
    }
    const obj = json as Record<string, unknown>;
    const found = JSON_FIELDS[tee].filter((k) => Object.hasOwn(obj, k));
    if (found.length !== 1) {
      throw new AttestationError(
        'evidence.format',
        `a JSON evidence file must have exactly one of the fields ${JSON_FIELDS[tee].join(', ')}`,
        'one field',
        found.length ? found.join(', ') : `none (fields: ${Object.keys(obj).slice(0, 8).join(', ') || 'none'})`,
      );
    }
    const key = found[0]!;
    const value = obj[key];
    const inner = typeof value === 'string' ? decodeTextEvidence(value) : undefined;
    if (!inner)
      throw new AttestationError(
        'evidence.format',
        `the JSON field ${key} must be the evidence as base64, base64url or hex text`,
      );
    return { bytes: inner, encoding: `json .${key}` };
  }
  const b64 = decodeBase64Text(text);
  if (b64) return { bytes: b64, encoding: 'base64' };
  throw new AttestationError(
    'evidence.format',
    'the evidence is text, but neither hex, base64 nor a JSON object naming the evidence',
  );
}

/** Hex digits and whitespace only, an even number of digits (hex wins over base64: a real base64 report has other letters). */
function decodeHexText(text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, '');
  return compact.length > 0 && compact.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(compact)
    ? Buffer.from(compact, 'hex')
    : undefined;
}

function decodeTextEvidence(value: string): Buffer | undefined {
  return decodeHexText(value) ?? decodeBase64Text(value);
}

/**
 * An SNP evidence file: the 1184-byte report, optionally followed by the certificate table
 * from the extended report (the layout go-sev-guest's raw quotes use).
 */
export function splitSnpEvidence(data: Uint8Array): { report: Buffer; certTable?: Buffer } {
  const buf = decodeEvidenceFile(data, 'snp').bytes;
  if (buf.length < REPORT_SIZE) {
    throw new AttestationError(
      'snp.report.parse',
      'the evidence is shorter than one report',
      `>= ${REPORT_SIZE} bytes`,
      `${buf.length} bytes`,
    );
  }
  const report = buf.subarray(0, REPORT_SIZE);
  return buf.length === REPORT_SIZE ? { report } : { report, certTable: buf.subarray(REPORT_SIZE) };
}

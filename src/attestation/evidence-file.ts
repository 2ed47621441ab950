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

/**
 * An SNP evidence file: the 1184-byte report, optionally followed by the certificate table
 * from the extended report (the layout go-sev-guest's raw quotes use).
 */
export function splitSnpEvidence(data: Uint8Array): { report: Buffer; certTable?: Buffer } {
  const buf = decodeBinaryOrHex(data);
  if (buf.length < REPORT_SIZE) {
    throw new AttestationError('snp.report.parse', 'the evidence is shorter than one report', `>= ${REPORT_SIZE} bytes`, `${buf.length} bytes`);
  }
  const report = buf.subarray(0, REPORT_SIZE);
  return buf.length === REPORT_SIZE ? { report } : { report, certTable: buf.subarray(REPORT_SIZE) };
}

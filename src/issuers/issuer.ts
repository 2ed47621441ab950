/** Evidence issuers: produce attestation evidence binding 64 bytes of report data. */

export interface Evidence {
  /** Certificate-extension OID naming the evidence type. */
  oid: string;
  value: Buffer;
}

export interface Issuer {
  /** Human-readable platform name for logs. */
  readonly platform: string;
  issue(reportData: Buffer): Promise<Evidence>;
}

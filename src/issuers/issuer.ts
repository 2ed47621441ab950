/** Evidence issuers: produce attestation evidence binding 64 bytes of report data. */

export interface Evidence {
  /** Certificate-extension OID naming the evidence type. */
  oid: string;
  value: Buffer;
}

export interface Issuer {
  /** Its name for logs: the `issuer` of its TEEs in src/attestation/tees.ts, or a test's. */
  readonly name: string;
  issue(reportData: Buffer): Promise<Evidence>;
}

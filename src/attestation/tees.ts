/**
 * The trusted execution environments (TEEs) whose evidence kubectl-contrast verifies: one row
 * per TEE, and what depends on the TEE is read from its row — the certificate extension its
 * evidence travels in, its list in manifest.json's `ReferenceValues`, the issuer that produces
 * its evidence inside a VM. A platform (src/platforms) runs on one TEE; several platforms can
 * share one (with and without GPU).
 */
import type { ReferenceValues } from './reference-values.js';

export const OID_SNP_EVIDENCE = '1.3.9901.2.1';
export const OID_TDX_EVIDENCE = '1.3.9901.2.2';
/**
 * Extension OID for simulated evidence. It sits next to upstream's SNP (1.3.9901.2.1) and TDX
 * (1.3.9901.2.2) evidence OIDs with an arc value far from theirs (upstream's own insecure OID is
 * not known to us). A UUID OID (2.25.<uuid>) was the first choice, but @peculiar/x509 cannot
 * encode arcs above 2^53.
 */
export const OID_SIMULATED_EVIDENCE = '1.3.9901.2.4242';

export type TeeType = 'snp' | 'tdx' | 'insecure-sim';

export interface Tee {
  type: TeeType;
  /** The aTLS certificate extension that carries its evidence. */
  evidenceOid: string;
  /** Its list in `ReferenceValues`; evidence is only tried when the manifest's list is not empty. */
  referenceValues: keyof ReferenceValues;
  /** The issuer (src/issuers) that produces its evidence: the Linux report interface, or the simulation. */
  issuer: 'configfs-tsm' | 'insecure-sim';
  /** No protection at all; a manifest never lists it together with real TEEs. */
  simulated: boolean;
}

export const TEES: readonly Tee[] = [
  { type: 'snp', evidenceOid: OID_SNP_EVIDENCE, referenceValues: 'snp', issuer: 'configfs-tsm', simulated: false },
  { type: 'tdx', evidenceOid: OID_TDX_EVIDENCE, referenceValues: 'tdx', issuer: 'configfs-tsm', simulated: false },
  {
    type: 'insecure-sim',
    evidenceOid: OID_SIMULATED_EVIDENCE,
    referenceValues: 'insecure',
    issuer: 'insecure-sim',
    simulated: true,
  },
];

export type IssuerName = Tee['issuer'];

export const EVIDENCE_OIDS: readonly string[] = TEES.map((t) => t.evidenceOid);

/** The TEE whose evidence an extension OID names, or undefined for every other OID. */
export function teeOfEvidence(oid: string): Tee | undefined {
  return TEES.find((t) => t.evidenceOid === oid);
}

/** The `ReferenceValues` keys, in table order. */
export const REFERENCE_VALUE_KEYS: readonly (keyof ReferenceValues)[] = TEES.map((t) => t.referenceValues);

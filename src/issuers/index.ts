/** Pick the evidence issuer of this machine. */
import { ConfigfsTsmIssuer, TSM_REPORT_DIR, tsmAvailable } from './configfs-tsm.js';
import { SimulatedIssuer } from './simulated.js';
import type { Issuer } from './issuer.js';

export type { Evidence, Issuer } from './issuer.js';

export interface IssuerOptions {
  /** `auto` (configfs-tsm), `configfs-tsm` or `insecure-sim`. */
  platform: string;
  /** insecure-sim only: the policy hash to report as host data. */
  simPolicyHash?: string;
}

export function issuerFor(opts: IssuerOptions): Issuer {
  const p = opts.platform.toLowerCase();
  if (p === 'insecure-sim') {
    if (!opts.simPolicyHash) throw new Error('the insecure-sim platform needs the policy hash to report (--sim-policy-hash or CONTRAST_SIM_POLICY_HASH)');
    return SimulatedIssuer.fromEnvironment(opts.simPolicyHash);
  }
  if (p === 'configfs-tsm' || p === 'auto') {
    if (!tsmAvailable()) throw new Error(`${TSM_REPORT_DIR} does not exist: not a confidential VM with configfs-tsm (use --platform insecure-sim for a simulation)`);
    return new ConfigfsTsmIssuer();
  }
  throw new Error(`unknown attestation platform ${JSON.stringify(opts.platform)} (expected auto, configfs-tsm or insecure-sim)`);
}

/** Pick the evidence issuer of this machine: one maker per issuer the TEE table names. */
import type { IssuerName } from '../attestation/tees.js';
import { ConfigfsTsmIssuer, TSM_REPORT_DIR, tsmAvailable } from './configfs-tsm.js';
import { SimulatedIssuer } from './simulated.js';
import type { Issuer } from './issuer.js';

export type { Evidence, Issuer } from './issuer.js';

export interface IssuerOptions {
  /** `auto` (configfs-tsm) or an issuer's name: `configfs-tsm` or `insecure-sim` (the `--platform` flag). */
  issuer: string;
  /** insecure-sim only: the policy hash to report as host data. */
  simPolicyHash?: string;
}

const MAKERS: Record<IssuerName, (opts: IssuerOptions) => Issuer> = {
  'configfs-tsm': () => {
    if (!tsmAvailable())
      throw new Error(
        `${TSM_REPORT_DIR} does not exist: not a confidential VM with configfs-tsm (use --platform insecure-sim for a simulation)`,
      );
    return new ConfigfsTsmIssuer();
  },
  'insecure-sim': (opts) => {
    if (!opts.simPolicyHash)
      throw new Error(
        'the insecure-sim platform needs the policy hash to report (--sim-policy-hash or CONTRAST_SIM_POLICY_HASH)',
      );
    return SimulatedIssuer.fromEnvironment(opts.simPolicyHash);
  },
};

const isIssuerName = (name: string): name is IssuerName => Object.hasOwn(MAKERS, name);

export function issuerFor(opts: IssuerOptions): Issuer {
  const name = opts.issuer.toLowerCase();
  if (name === 'auto') return MAKERS['configfs-tsm'](opts);
  if (isIssuerName(name)) return MAKERS[name](opts);
  const names = ['auto', ...Object.keys(MAKERS)];
  throw new Error(
    `unknown attestation platform ${JSON.stringify(opts.issuer)} (expected ${names.slice(0, -1).join(', ')} or ${names.at(-1)})`,
  );
}

/** Pick the evidence issuer of this machine: one maker per issuer the TEE table names. */
import { SIM_DEVICE_MOUNT, SIM_DEVICE_SOCKET } from '../attestation/simulated.js';
import type { IssuerName } from '../attestation/tees.js';
import { ConfigfsTsmIssuer, TSM_REPORT_DIR, tsmAvailable } from './configfs-tsm.js';
import { SimDeviceIssuer, simDeviceAvailable } from './sim-device.js';
import { SimulatedIssuer } from './simulated.js';
import type { Issuer } from './issuer.js';
import { join } from 'node:path';

export type { Evidence, Issuer } from './issuer.js';

export interface IssuerOptions {
  /** `auto` or an issuer's name: `configfs-tsm` or `insecure-sim` (the `--platform` flag). */
  issuer: string;
  /** insecure-sim without the node's device only: the policy hash to report as host data. */
  simPolicyHash?: string;
  /** Where configfs-tsm reports are made (default TSM_REPORT_DIR; tests point elsewhere). */
  tsmReportDir?: string;
  /** Where the simulated runtime's device is mounted (default SIM_DEVICE_MOUNT; tests point elsewhere). */
  simDeviceDir?: string;
  /** Where a note goes that a flag is ignored (default: standard error). */
  warn?: (message: string) => void;
}

const tsmDir = (opts: IssuerOptions): string => opts.tsmReportDir ?? TSM_REPORT_DIR;
const deviceDir = (opts: IssuerOptions): string => opts.simDeviceDir ?? SIM_DEVICE_MOUNT;

const MAKERS: Record<IssuerName, (opts: IssuerOptions) => Issuer> = {
  'configfs-tsm': (opts) => {
    if (!tsmAvailable(tsmDir(opts)))
      throw new Error(
        `${tsmDir(opts)} does not exist: not a confidential VM with configfs-tsm (use --platform insecure-sim for a simulation)`,
      );
    return new ConfigfsTsmIssuer(tsmDir(opts));
  },
  'insecure-sim': (opts) => {
    // On the simulated runtime the node fixes the host data; a configured hash cannot apply.
    if (simDeviceAvailable(deviceDir(opts))) {
      if (opts.simPolicyHash)
        (opts.warn ?? ((m: string) => process.stderr.write(`${m}\n`)))(
          `ignoring the simulated policy hash (--sim-policy-hash, CONTRAST_SIM_POLICY_HASH or --manifest): this pod's device at ${deviceDir(opts)} reports the host data the node registered for it`,
        );
      return new SimDeviceIssuer(deviceDir(opts));
    }
    if (!opts.simPolicyHash)
      throw new Error(
        `the insecure-sim platform needs the node's simulated device (${join(deviceDir(opts), SIM_DEVICE_SOCKET)}, present in pods of the insecure-sim runtime) or, outside such a pod, the policy hash to report (--sim-policy-hash or CONTRAST_SIM_POLICY_HASH)`,
      );
    return SimulatedIssuer.fromEnvironment(opts.simPolicyHash);
  },
};

const isIssuerName = (name: string): name is IssuerName => Object.hasOwn(MAKERS, name);

export function issuerFor(opts: IssuerOptions): Issuer {
  const name = opts.issuer.toLowerCase();
  if (name === 'auto') {
    if (tsmAvailable(tsmDir(opts))) return MAKERS['configfs-tsm'](opts);
    if (simDeviceAvailable(deviceDir(opts))) return MAKERS['insecure-sim'](opts);
    throw new Error(
      `no attestation device: neither ${tsmDir(opts)} (configfs-tsm, a confidential VM) nor ${join(deviceDir(opts), SIM_DEVICE_SOCKET)} (the simulated device of the insecure-sim runtime) exists; outside a pod use --platform insecure-sim with --sim-policy-hash for a simulation`,
    );
  }
  if (isIssuerName(name)) return MAKERS[name](opts);
  const names = ['auto', ...Object.keys(MAKERS)];
  throw new Error(
    `unknown attestation platform ${JSON.stringify(opts.issuer)} (expected ${names.slice(0, -1).join(', ')} or ${names.at(-1)})`,
  );
}

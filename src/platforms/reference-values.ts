/**
 * Default reference values per platform, in the upstream manifest schema
 * (`ReferenceValues{snp:[…], tdx:[…]}`), plus `insecure` for the simulated platform.
 *
 * Bare-metal values depend on the VM image and firmware the cluster runs. This project does not
 * ship a VM image, so the measurement and TCB fields start empty and `generate` tells the user
 * to fill them in, as upstream does for bare metal.
 */
import { createHash } from 'node:crypto';
import type { Platform } from './platforms.js';

export type ReferenceValueEntry = Record<string, unknown>;
export interface ReferenceValues {
  snp?: ReferenceValueEntry[];
  tdx?: ReferenceValueEntry[];
  insecure?: ReferenceValueEntry[];
}

/** The measurement the simulated platform reports; fixed so manifests stay reproducible. */
export const SIMULATED_MEASUREMENT = createHash('sha384').update('kubectl-contrast insecure-sim launch measurement v1').digest('hex');

const SNP_PRODUCTS = ['Milan', 'Genoa'] as const;

function snpEntries(platform: Platform): ReferenceValueEntry[] {
  return SNP_PRODUCTS.map((product) => ({
    Platform: platform.displayName,
    ProductName: product,
    TrustedMeasurement: '',
    MinimumTCB: { BootloaderVersion: null, TEEVersion: null, SNPVersion: null, MicrocodeVersion: null },
    GuestPolicy: { ABIMinor: 0, ABIMajor: 0, SMT: true, MigrateMA: false, Debug: false, SingleSocket: false },
    PlatformInfo: { SMTEnabled: true },
    AllowedChipIDs: [],
  }));
}

function tdxEntries(platform: Platform): ReferenceValueEntry[] {
  return [{
    Platform: platform.displayName,
    MrTd: '',
    Rtmrs: ['', '', '', ''],
    MrSeam: '',
    Xfam: 'e702060000000000',
    MinimumTeeTcbSvn: '',
    AllowedPIIDs: [],
  }];
}

export function defaultReferenceValues(platform: Platform): ReferenceValues {
  switch (platform.tee) {
    case 'snp': return { snp: snpEntries(platform) };
    case 'tdx': return { tdx: tdxEntries(platform) };
    case 'insecure': return { insecure: [{ Platform: platform.displayName, TrustedMeasurement: SIMULATED_MEASUREMENT }] };
  }
}

/** Fields that must be filled in before the Coordinator can be attested. */
export function missingReferenceFields(values: ReferenceValues): string[] {
  const missing: string[] = [];
  values.snp?.forEach((e, i) => {
    if (!e.TrustedMeasurement) missing.push(`ReferenceValues.snp[${i}].TrustedMeasurement`);
    const tcb = (e.MinimumTCB ?? {}) as Record<string, unknown>;
    for (const k of ['BootloaderVersion', 'TEEVersion', 'SNPVersion', 'MicrocodeVersion']) {
      if (tcb[k] === null || tcb[k] === undefined) missing.push(`ReferenceValues.snp[${i}].MinimumTCB.${k}`);
    }
  });
  values.tdx?.forEach((e, i) => {
    for (const k of ['MrTd', 'MrSeam', 'MinimumTeeTcbSvn']) if (!e[k]) missing.push(`ReferenceValues.tdx[${i}].${k}`);
    const rtmrs = Array.isArray(e.Rtmrs) ? e.Rtmrs : [];
    if (rtmrs.length !== 4 || rtmrs.some((r) => !r)) missing.push(`ReferenceValues.tdx[${i}].Rtmrs`);
  });
  return missing;
}

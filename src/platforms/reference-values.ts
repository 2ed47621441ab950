/**
 * Default reference values per platform, in the manifest schema of src/attestation
 * (`ReferenceValues{snp:[…], tdx:[…], insecure:[…]}`), one builder per TEE.
 *
 * Bare-metal values depend on the VM image and firmware the cluster runs. This project does not
 * ship a VM image, so the measurement and TCB fields start empty and `generate` tells the user
 * to fill them in, as upstream does for bare metal.
 */
import type { ReferenceValues } from '../attestation/reference-values.js';
import { SIMULATED_MEASUREMENT } from '../attestation/simulated.js';
import { REFERENCE_VALUE_KEYS, type TeeType } from '../attestation/tees.js';
import type { Platform } from './platforms.js';

const SNP_PRODUCTS = ['Milan', 'Genoa'] as const;

const DEFAULTS: Record<TeeType, (platform: Platform) => ReferenceValues> = {
  snp: (platform) => ({
    snp: SNP_PRODUCTS.map((product) => ({
      Platform: platform.displayName,
      ProductName: product,
      TrustedMeasurement: '',
      MinimumTCB: { BootloaderVersion: null, TEEVersion: null, SNPVersion: null, MicrocodeVersion: null },
      GuestPolicy: { ABIMinor: 0, ABIMajor: 0, SMT: true, MigrateMA: false, Debug: false, SingleSocket: false },
      PlatformInfo: { SMTEnabled: true },
      AllowedChipIDs: [],
    })),
  }),
  tdx: (platform) => ({
    tdx: [
      {
        Platform: platform.displayName,
        MrTd: '',
        Rtmrs: ['', '', '', ''],
        MrSeam: '',
        Xfam: 'e702060000000000',
        MinimumTeeTcbSvn: '',
        AllowedPIIDs: [],
      },
    ],
  }),
  'insecure-sim': (platform) => ({
    insecure: [{ Platform: platform.displayName, TrustedMeasurement: SIMULATED_MEASUREMENT }],
  }),
};

function defaultReferenceValues(platform: Platform): ReferenceValues {
  return DEFAULTS[platform.tee](platform);
}

/**
 * The reference values of a manifest for this run's platforms: the lists the manifest has are
 * kept as the user edited them; a platform whose entries (by `Platform` name) are not there yet
 * gets its defaults added.
 */
export function withDefaultReferenceValues(existing: ReferenceValues, platforms: readonly Platform[]): ReferenceValues {
  const out: ReferenceValues = { ...existing };
  for (const platform of new Set(platforms)) {
    const defaults = defaultReferenceValues(platform);
    for (const key of REFERENCE_VALUE_KEYS) {
      const fresh = defaults[key];
      if (fresh !== undefined) addMissing(out, key, fresh);
    }
  }
  return out;
}

function addMissing<K extends keyof ReferenceValues>(
  out: ReferenceValues,
  key: K,
  fresh: NonNullable<ReferenceValues[K]>,
): void {
  const current: NonNullable<ReferenceValues[K]> = out[key] ?? [];
  const names = new Set(current.map((e) => e.Platform));
  // The list stays of K's entry type; TypeScript cannot follow that through the union of keys.
  out[key] = [...current, ...fresh.filter((e) => !names.has(e.Platform))] as ReferenceValues[K];
}

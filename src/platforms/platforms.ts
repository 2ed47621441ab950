/**
 * The platforms a confidential pod can run on, and the runtime class names that select them.
 *
 * Runtime class names follow upstream Contrast: `contrast-cc-<platform>-<8 hex>`, where the
 * hex part changes whenever the runtime (VM image, node installer) changes, so pods of an old
 * release never land on a new runtime by accident.
 */
import { createHash } from 'node:crypto';
import { VERSION } from '../version.js';
import { UserError } from '../util/errors.js';
import { SIM_PLATFORM_NAME } from '../attestation/simulated.js';
import type { TeeType } from '../attestation/tees.js';
import { INJECTED_IMAGES } from './images.js';

export interface Platform {
  /** Lower-case id as used on the command line and in runtime class names. */
  id: string;
  /** Upstream spelling, e.g. `Metal-QEMU-SNP`, written into reference values. */
  displayName: string;
  /**
   * The TEE its pods run in: its row in src/attestation/tees.ts says which evidence they send
   * and which reference values check it; src/platforms/reference-values.ts has its defaults.
   */
  tee: TeeType;
  gpu: boolean;
}

/** The platforms: one row each; `insecure-sim` is simulated hardware, without any protection. */
export const PLATFORMS: readonly Platform[] = [
  { id: 'metal-qemu-snp', displayName: 'Metal-QEMU-SNP', tee: 'snp', gpu: false },
  { id: 'metal-qemu-tdx', displayName: 'Metal-QEMU-TDX', tee: 'tdx', gpu: false },
  { id: 'metal-qemu-snp-gpu', displayName: 'Metal-QEMU-SNP-GPU', tee: 'snp', gpu: true },
  { id: 'metal-qemu-tdx-gpu', displayName: 'Metal-QEMU-TDX-GPU', tee: 'tdx', gpu: true },
  { id: 'insecure-sim', displayName: SIM_PLATFORM_NAME, tee: 'insecure-sim', gpu: false },
];

export const GENERIC_RUNTIME_CLASS = 'contrast-cc';

export function platformIds(): string[] {
  return PLATFORMS.map((p) => p.id);
}

/** Look a platform up by id or upstream name, case-insensitively. */
function findPlatform(name: string): Platform | undefined {
  const wanted = name.toLowerCase();
  return PLATFORMS.find((p) => p.id === wanted);
}

export function requirePlatform(name: string): Platform {
  const platform = findPlatform(name);
  if (!platform) throw new UserError(`unknown platform "${name}"; choose one of: ${platformIds().join(', ')}`);
  return platform;
}

/** 8 hex characters that identify the runtime of this release for a platform. */
function runtimeHash(platform: Platform): string {
  const identity = JSON.stringify({
    version: VERSION,
    platform: platform.id,
    nodeInstaller: INJECTED_IMAGES.nodeInstaller,
  });
  return createHash('sha256').update(identity).digest('hex').slice(0, 8);
}

/** The versioned runtime class (= runtime handler) name of a platform. */
export function runtimeHandler(platform: Platform): string {
  return `${GENERIC_RUNTIME_CLASS}-${platform.id}-${runtimeHash(platform)}`;
}

export type RuntimeClassMeaning =
  | { type: 'not-confidential' }
  | { type: 'generic' }
  | { type: 'platform'; platform: Platform }
  | { type: 'versioned'; platform: Platform; hash: string }
  | { type: 'unknown'; reason: string };

/** What a `runtimeClassName` value asks for. */
export function parseRuntimeClassName(value: unknown): RuntimeClassMeaning {
  if (typeof value !== 'string' || !value.startsWith(GENERIC_RUNTIME_CLASS)) return { type: 'not-confidential' };
  if (value === GENERIC_RUNTIME_CLASS) return { type: 'generic' };
  if (!value.startsWith(`${GENERIC_RUNTIME_CLASS}-`)) return { type: 'not-confidential' };
  const rest = value.slice(GENERIC_RUNTIME_CLASS.length + 1);
  // Longest platform id first: `metal-qemu-snp-gpu` must not be read as `metal-qemu-snp` + `gpu`.
  const byLength = [...PLATFORMS].sort((a, b) => b.id.length - a.id.length);
  for (const platform of byLength) {
    if (rest === platform.id) return { type: 'platform', platform };
    const m = rest.startsWith(`${platform.id}-`) ? rest.slice(platform.id.length + 1) : undefined;
    if (m !== undefined && /^[0-9a-f]{8}$/.test(m)) return { type: 'versioned', platform, hash: m };
  }
  return {
    type: 'unknown',
    reason: `"${value}" is not a known Contrast runtime class; use "${GENERIC_RUNTIME_CLASS}" or "${GENERIC_RUNTIME_CLASS}-<platform>" with a platform of: ${platformIds().join(', ')}`,
  };
}

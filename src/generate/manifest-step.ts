/** Builds the new `manifest.json` from this run's policies, platforms and owner keys. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';
import type { Platform } from '../platforms/platforms.js';
import { defaultReferenceValues, missingReferenceFields, type ReferenceValues } from '../platforms/reference-values.js';
import { checkNoInsecureMix, emptyManifest, manifestToJson, readManifest, type Manifest, type PolicyEntry } from '../workspace/manifest.js';
import { ensureKey, loadPublicKey, seedshareOwnerKeyHex, workloadOwnerKeyHex, SEEDSHARE_OWNER_KEY, WORKLOAD_OWNER_KEY } from '../workspace/keys.js';
import type { Diagnostics } from './diagnostics.js';

export interface ManifestOptions {
  workspaceDir: string;
  /** Default `<workspace>/manifest.json`. */
  manifestPath?: string;
  /** Extra workload owner keys; the workspace key is created and used when none is given. */
  workloadOwnerKeys: string[];
  seedshareOwnerKeys: string[];
  /** No workload owner keys: the manifest can never be changed. */
  disableUpdates: boolean;
}

export function manifestPathOf(options: ManifestOptions): string {
  return options.manifestPath ?? join(options.workspaceDir, 'manifest.json');
}

export function buildManifest(options: ManifestOptions, policies: Record<string, PolicyEntry>, platforms: Platform[], diagnostics: Diagnostics): { manifest: Manifest; changed: boolean } {
  const path = manifestPathOf(options);
  const previous = readManifest(path);
  const manifest = previous ? structuredClone(previous) : emptyManifest();
  manifest.Policies = policies;
  manifest.ReferenceValues = mergeReferenceValues(manifest.ReferenceValues, platforms);
  checkNoInsecureMix(manifest, path);

  if (options.disableUpdates) {
    manifest.WorkloadOwnerPubKeys = [];
  } else {
    const keys = options.workloadOwnerKeys.length > 0 ? options.workloadOwnerKeys : [defaultKey(options, WORKLOAD_OWNER_KEY, 'workload-owner')];
    manifest.WorkloadOwnerPubKeys = union(manifest.WorkloadOwnerPubKeys, keys.map((k) => workloadOwnerKeyHex(loadPublicKey(k, 'workload-owner'))));
  }
  const shares = options.seedshareOwnerKeys.length > 0 ? options.seedshareOwnerKeys : [defaultKey(options, SEEDSHARE_OWNER_KEY, 'seedshare-owner')];
  manifest.SeedshareOwnerPubKeys = union(manifest.SeedshareOwnerPubKeys, shares.map((k) => seedshareOwnerKeyHex(loadPublicKey(k, 'seedshare-owner'))));

  if (!Object.values(policies).some((p) => p.Role === 'coordinator') && Object.keys(policies).length > 0) {
    diagnostics.warn('no Coordinator resource found; `kubectl contrast coordinator render` produces one, or add it to the inputs', { file: path });
  }
  const missing = missingReferenceFields(manifest.ReferenceValues);
  if (missing.length > 0) {
    diagnostics.warn(`fill in the reference values of your hardware before \`set\`: ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ` and ${missing.length - 4} more` : ''}`, { file: path });
  }
  const changed = !previous || manifestToJson(previous) !== manifestToJson(manifest);
  return { manifest, changed };
}

/** Keep user-edited reference values of a platform type; add defaults for newly used ones. */
function mergeReferenceValues(existing: ReferenceValues, platforms: Platform[]): ReferenceValues {
  const out: ReferenceValues = { ...existing };
  for (const platform of new Set(platforms)) {
    const defaults = defaultReferenceValues(platform);
    for (const tee of Object.keys(defaults) as (keyof ReferenceValues)[]) {
      const current = out[tee] ?? [];
      const names = new Set(current.map((e) => e.Platform));
      const fresh = (defaults[tee] ?? []).filter((e) => !names.has(e.Platform));
      out[tee] = [...current, ...fresh];
    }
  }
  return out;
}

function defaultKey(options: ManifestOptions, file: string, kind: 'workload-owner' | 'seedshare-owner'): string {
  const path = join(options.workspaceDir, file);
  try {
    mkdirSync(options.workspaceDir, { recursive: true });
    ensureKey(path, kind);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`cannot create ${kind} key: ${(err as Error).message}`, { file: path });
  }
  return path;
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}

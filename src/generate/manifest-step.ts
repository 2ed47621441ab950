/** Builds the new `manifest.json` from this run's policies, platforms and owner keys. */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gitIgnores, gitWorkTreeOf } from '../util/git.js';
import { UserError } from '../util/errors.js';
import type { Warn } from '../util/diagnostics.js';
import type { Platform } from '../platforms/platforms.js';
import { withDefaultReferenceValues } from '../platforms/reference-values.js';
import { missingReferenceFields } from '../attestation/reference-values.js';
import {
  checkNoInsecureMix,
  emptyManifest,
  manifestToJson,
  validateManifest,
  withRecoveryChoice,
  type Manifest,
  type PolicyEntry,
} from '../coordinator/manifest.js';
import { seedshareOwnerKeyHex, workloadOwnerKeyHex } from '../coordinator/owner-keys.js';
import { MANIFEST_FILE, readManifest } from '../workspace/manifest.js';
import { ensureKey, loadPublicKey, SEEDSHARE_OWNER_KEY, WORKLOAD_OWNER_KEY } from '../workspace/keys.js';

/** Where manifest.json lives and who may change or recover the deployment. */
export interface ManifestOptions {
  /** Directory of manifest.json, the owner keys and settings.json. */
  workspaceDir: string;
  /** Unset: `<workspaceDir>/manifest.json`. */
  manifestPath?: string;
  /** Workload owner keys (PEM files) allowed to update the manifest. Unset or empty: the workspace key, created once. */
  workloadOwnerKeys?: string[];
  /** Seed-share owner keys (PEM files) that can recover the Coordinator. Unset or empty: the workspace key, created once. */
  seedshareOwnerKeys?: string[];
  /** No workload owner keys: the manifest can never be changed. Unset: false. */
  disableUpdates?: boolean;
  /** No seed-share owners ("DisableRecovery": true); no seed-share key is created. Unset: false. */
  disableRecovery?: boolean;
}

export function manifestPathOf(options: Pick<ManifestOptions, 'workspaceDir' | 'manifestPath'>): string {
  return options.manifestPath ?? join(options.workspaceDir, MANIFEST_FILE);
}

export function buildManifest(
  options: ManifestOptions,
  policies: Record<string, PolicyEntry>,
  platforms: Platform[],
  warn: Warn,
): { manifest: Manifest; changed: boolean } {
  const path = manifestPathOf(options);
  const previous = readManifest(path);
  let manifest = previous ? structuredClone(previous) : emptyManifest();
  manifest.Policies = policies;
  manifest.ReferenceValues = withDefaultReferenceValues(manifest.ReferenceValues, platforms);
  checkNoInsecureMix(manifest, path);

  if (options.disableUpdates) {
    manifest.WorkloadOwnerPubKeys = [];
  } else {
    const keys = nonEmpty(options.workloadOwnerKeys) ?? [
      defaultKey(options, WORKLOAD_OWNER_KEY, 'workload-owner', warn),
    ];
    manifest.WorkloadOwnerPubKeys = union(
      manifest.WorkloadOwnerPubKeys,
      keys.map((k) => workloadOwnerKeyHex(loadPublicKey(k, 'workload-owner'))),
    );
  }
  if (!options.disableRecovery) {
    const shares = nonEmpty(options.seedshareOwnerKeys) ?? [
      defaultKey(options, SEEDSHARE_OWNER_KEY, 'seedshare-owner', warn),
    ];
    manifest.SeedshareOwnerPubKeys = union(
      manifest.SeedshareOwnerPubKeys,
      shares.map((k) => seedshareOwnerKeyHex(loadPublicKey(k, 'seedshare-owner'))),
    );
  }
  manifest = withRecoveryChoice(manifest, options.disableRecovery === true);
  // The manifest about to be written passes the same checks `set` and the Coordinator make on it.
  manifest = validateManifest(JSON.parse(manifestToJson(manifest)), path);

  if (!Object.values(policies).some((p) => p.Role === 'coordinator') && Object.keys(policies).length > 0) {
    warn(
      'no Coordinator resource found; `kubectl contrast coordinator render` produces one, or add it to the inputs',
      { file: path },
      'no-coordinator',
    );
  }
  const missing = missingReferenceFields(manifest.ReferenceValues);
  if (missing.length > 0) {
    warn(
      `fill in the reference values of your hardware before \`set\`: ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ` and ${missing.length - 4} more` : ''}`,
      { file: path },
      'missing-reference-values',
    );
  }
  const changed = !previous || manifestToJson(previous) !== manifestToJson(manifest);
  return { manifest, changed };
}

function nonEmpty(keys: string[] | undefined): string[] | undefined {
  return keys !== undefined && keys.length > 0 ? keys : undefined;
}

function defaultKey(
  options: ManifestOptions,
  file: string,
  kind: 'workload-owner' | 'seedshare-owner',
  warn: Warn,
): string {
  const path = join(options.workspaceDir, file);
  if (!existsSync(path)) warnIfCommittable(path, warn);
  try {
    mkdirSync(options.workspaceDir, { recursive: true });
    ensureKey(path, kind);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`cannot create ${kind} key: ${(err as Error).message}`, { file: path });
  }
  return path;
}

/**
 * A private key about to be created where `git add .` would pick it up: in a git work tree and
 * not ignored. GitOps repositories are where this happens (a kustomization directory, a chart).
 */
function warnIfCommittable(path: string, warn: Warn): void {
  const tree = gitWorkTreeOf(dirname(path));
  if (tree === undefined || gitIgnores(path, tree)) return;
  warn(
    `the private key ${path} is created inside the git work tree ${tree}, where git does not ignore it: never commit it; add it to .gitignore, or keep the workspace outside the repository (--workspace-dir, workspaceDir) and the keys in a secret store (docs/helm-kustomize.md, GitOps)`,
  );
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}

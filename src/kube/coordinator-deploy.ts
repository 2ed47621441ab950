/**
 * Rendering the Coordinator with its own policy: the canonical template goes through the same
 * `generate` pipeline as any workload (in memory, with a throw-away workspace so no keys or
 * manifest of the user are touched), which computes the agent policy and marks it Role
 * "coordinator".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { generateFromInputs } from '../generate/pipeline.js';
import type { ImageResolverLike } from '../images/types.js';
import { BugError } from '../util/errors.js';
import { Diagnostics, type Warning } from '../util/diagnostics.js';
import { readManifest } from '../workspace/manifest.js';
import { formatObjects, parseObjects } from './output.js';
import { renderCoordinator, type CoordinatorRenderOptions } from './coordinator-resources.js';

export interface CoordinatorWithPolicy {
  objects: KubernetesObject[];
  /** The Coordinator's policy hash (sha256 of its initdata), as recorded in manifest.json. */
  policyHash: string;
  warnings: Warning[];
}

export async function renderCoordinatorWithPolicy(
  opts: CoordinatorRenderOptions & { imageResolver: ImageResolverLike; imageReplacementsFile?: string },
): Promise<CoordinatorWithPolicy> {
  if (!opts.platform) throw new BugError('a platform is needed to compute the Coordinator policy');
  const template = formatObjects(renderCoordinator({ ...opts, imageReplacements: new Map() }));
  const scratch = mkdtempSync(join(tmpdir(), 'kc-coordinator-'));
  try {
    const diagnostics = new Diagnostics();
    const result = await generateFromInputs(
      [{ name: '<coordinator>', text: template }],
      {
        platform: opts.platform.id,
        imageReplacementsFile: opts.imageReplacementsFile,
        workspaceDir: scratch,
        // Keys of a throw-away manifest would never be used; the RSA one takes seconds to make.
        disableUpdates: true,
        disableRecovery: true,
        imageResolver: opts.imageResolver,
      },
      diagnostics,
    );
    const coordinator = Object.entries(result.manifest.Policies).find(([, p]) => p.Role === 'coordinator');
    if (!coordinator) throw new BugError('the policy engine did not mark the Coordinator (pod-role annotation lost?)');
    return {
      objects: parseObjects(result.outputs.map((o) => o.text).join('\n---\n')),
      policyHash: coordinator[0],
      // The scratch manifest is thrown away: what it lacks concerns nobody.
      warnings: diagnostics.warnings.filter((w) => w.code !== 'missing-reference-values'),
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Is the Coordinator's policy in the workspace manifest, with Role coordinator? */
export function manifestHasCoordinator(
  manifestPath: string,
  policyHash: string,
): 'yes' | 'no-manifest' | 'missing' | 'wrong-role' {
  const m = readManifest(manifestPath);
  if (!m) return 'no-manifest';
  const entry = m.Policies[policyHash];
  if (!entry) return 'missing';
  return entry.Role === 'coordinator' ? 'yes' : 'wrong-role';
}

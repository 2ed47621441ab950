/**
 * Rendering the Coordinator with its own policy: the canonical template goes through the same
 * `generate` pipeline as any workload (in memory, with a throw-away workspace so no keys or
 * manifest of the user are touched), which computes the agent policy and marks it Role
 * "coordinator".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import { generateFromInputs } from '../generate/pipeline.js';
import type { ImageResolverLike } from '../images/types.js';
import { Diagnostics } from '../generate/diagnostics.js';
import { readManifest } from '../workspace/manifest.js';
import { formatObjects } from './output.js';
import { renderCoordinator, type CoordinatorRenderOptions } from './coordinator-resources.js';

export interface CoordinatorWithPolicy {
  objects: KubernetesObject[];
  /** The Coordinator's policy hash (sha256 of its initdata), as recorded in manifest.json. */
  policyHash: string;
  warnings: string[];
}

export function parseObjects(text: string): KubernetesObject[] {
  return parseAllDocuments(text, { version: '1.1' })
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null && typeof o === 'object');
}

export async function renderCoordinatorWithPolicy(opts: CoordinatorRenderOptions & { imageResolver: ImageResolverLike; imageReplacementsFile?: string }): Promise<CoordinatorWithPolicy> {
  if (!opts.platform) throw new Error('a platform is needed to compute the Coordinator policy');
  const template = formatObjects(renderCoordinator({ ...opts, imageReplacements: new Map() }));
  const scratch = mkdtempSync(join(tmpdir(), 'kc-coordinator-'));
  try {
    const diagnostics = new Diagnostics();
    const result = await generateFromInputs([{ name: '<coordinator>', text: template }], {
      inputs: [],
      platform: opts.platform.id,
      skipInitializer: false,
      ...(opts.imageReplacementsFile !== undefined ? { imageReplacementsFile: opts.imageReplacementsFile } : {}),
      workspaceDir: scratch,
      manifestPath: join(scratch, 'manifest.json'),
      workloadOwnerKeys: [],
      seedshareOwnerKeys: [],
      disableUpdates: true,
      imageResolver: opts.imageResolver,
    } as Parameters<typeof generateFromInputs>[1], diagnostics);
    const coordinator = Object.entries(result.manifest.Policies).find(([, p]) => p.Role === 'coordinator');
    if (!coordinator) throw new Error('the policy engine did not mark the Coordinator (pod-role annotation lost?)');
    return {
      objects: parseObjects(result.outputs.map((o) => o.text).join('\n---\n')),
      policyHash: coordinator[0],
      warnings: result.diagnostics.warnings.map((w) => Diagnostics.format(w)).filter((w) => !/reference values/.test(w)),
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Is the Coordinator's policy in the workspace manifest, with Role coordinator? */
export function manifestHasCoordinator(manifestPath: string, policyHash: string): 'yes' | 'no-manifest' | 'missing' | 'wrong-role' {
  const m = readManifest(manifestPath);
  if (!m) return 'no-manifest';
  const entry = m.Policies[policyHash];
  if (!entry) return 'missing';
  return entry.Role === 'coordinator' ? 'yes' : 'wrong-role';
}

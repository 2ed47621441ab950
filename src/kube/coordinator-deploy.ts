/**
 * Rendering the Coordinator with its own policy: the canonical template goes through the same
 * `generate` pipeline as any workload (in memory, with a throw-away workspace so no keys or
 * manifest of the user are touched), which computes the agent policy and marks it Role
 * "coordinator".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject, V1Node } from '@kubernetes/client-node';
import { generateFromInputs } from '../generate/pipeline.js';
import type { ImageResolverLike } from '../images/types.js';
import { BugError } from '../util/errors.js';
import { Diagnostics, type Warning } from '../util/diagnostics.js';
import { readManifest } from '../workspace/manifest.js';
import { formatObjects, parseObjects } from './output.js';
import { DEFAULT_REPLICAS, renderCoordinator, type CoordinatorRenderOptions } from './coordinator-resources.js';
import type { Cluster } from './client.js';

export interface CoordinatorWithPolicy {
  objects: KubernetesObject[];
  /** The Coordinator's policy hash (sha256 of its initdata), as recorded in manifest.json. */
  policyHash: string;
  warnings: Warning[];
}

export async function renderCoordinatorWithPolicy(
  opts: CoordinatorRenderOptions & {
    imageResolver: ImageResolverLike;
    imageReplacementsFile?: string;
    /** The workspace's policy settings, so the hash is the one `generate` records there. */
    settingsPath?: string;
  },
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
        ...(opts.settingsPath !== undefined ? { settingsPath: opts.settingsPath } : {}),
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

/** A node a new pod can land on: Ready, not cordoned, without a NoSchedule or NoExecute taint. */
function schedulable(n: V1Node): boolean {
  if (n.spec?.unschedulable) return false;
  if ((n.spec?.taints ?? []).some((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute')) return false;
  return (n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

export interface ReplicaChoice {
  replicas: number;
  /** Schedulable nodes counted; undefined when they could not be listed. */
  nodes?: number;
  /** Why, for the user (standard error). */
  reason: string;
}

/**
 * `apply` without --replicas: one replica per schedulable node, at most DEFAULT_REPLICAS, at
 * least one. A replica more than there are nodes would share a node with another and add no
 * tolerance of node failures; it still adds tolerance of a replica's own crash, which is why
 * `--replicas` may ask for more. A caller that may not list nodes gets DEFAULT_REPLICAS.
 */
export async function replicasForCluster(cluster: Cluster): Promise<ReplicaChoice> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  let nodes: V1Node[];
  try {
    nodes = (await cluster.kc.makeApiClient(CoreV1Api).listNode()).items;
  } catch (err) {
    return {
      replicas: DEFAULT_REPLICAS,
      reason: `cannot list the nodes (${(err as Error).message.split('\n')[0]}): ${DEFAULT_REPLICAS} replicas; pass --replicas to choose`,
    };
  }
  const n = nodes.filter(schedulable).length;
  const replicas = Math.max(1, Math.min(DEFAULT_REPLICAS, n));
  return {
    replicas,
    nodes: n,
    reason: `${n} schedulable node(s): ${replicas} replica(s)${n < DEFAULT_REPLICAS ? `; pass --replicas ${DEFAULT_REPLICAS} for replicas that share a node (they still recover from each other after a crash)` : ''}`,
  };
}

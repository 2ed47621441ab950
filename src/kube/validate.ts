/**
 * `generate --validate-server`: a server-side dry run (server-side apply, dryRun=All) of every
 * object `generate` produced, before anything is written. The API server runs its full
 * validation and admission (including the RuntimeClass check for Pods) but persists nothing.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { UserError } from '../util/errors.js';
import type { Cluster } from './client.js';
import { applyObjects, plural } from './apply.js';
import { parseObjects } from './output.js';

export interface ValidationResult {
  objects: number;
}

export async function validateOnServer(
  cluster: Cluster,
  text: string,
  source = 'generated resources',
): Promise<ValidationResult> {
  let objects: KubernetesObject[];
  try {
    objects = parseObjects(text);
  } catch (err) {
    throw new UserError(`${source}: cannot parse for validation: ${(err as Error).message}`);
  }
  const incomplete = objects.find((o) => !o.apiVersion || !o.kind || !o.metadata?.name);
  if (incomplete)
    throw new UserError(
      `${source}: an object lacks apiVersion, kind or metadata.name (${plural(incomplete)}); the API server cannot take it`,
    );
  const lists = objects.flatMap((o) =>
    o.kind?.endsWith('List') && Array.isArray((o as { items?: unknown }).items)
      ? (o as { items: KubernetesObject[] }).items
      : [o],
  );
  try {
    await applyObjects(cluster, lists, { dryRun: 'server', force: true });
  } catch (err) {
    throw new UserError(`server-side validation failed, nothing was written: ${(err as Error).message}`);
  }
  return { objects: lists.length };
}

/**
 * Server-side apply of a set of objects, in dependency order, with field manager
 * `kubectl-contrast`; plus server-side and client-side dry runs.
 */
import { KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import type { Cluster } from './client.js';
import { explainKubeError, isNotFound } from './errors.js';

const FIELD_MANAGER = 'kubectl-contrast';

export type DryRun = 'none' | 'server' | 'client';

/** KubernetesObjectApi with access to its discovery cache (is a kind namespaced?). */
class ObjectClient extends KubernetesObjectApi {
  async isNamespaced(apiVersion: string, kind: string): Promise<boolean> {
    const r = await this.resource(apiVersion, kind);
    if (!r) throw new Error(`the API server does not know ${kind} in ${apiVersion}`);
    return r.namespaced;
  }

  /** The URL path of the collection or object (used for raw requests such as watches). */
  async pathOf(obj: KubernetesObject, action: 'read' | 'list' = 'read'): Promise<string> {
    return this.specUriPath(obj, action);
  }
}

function objectClient(cluster: Cluster): ObjectClient {
  return cluster.kc.makeApiClient(ObjectClient);
}

/** Lower numbers are applied first: namespaces and RBAC before the workloads that need them. */
const ORDER: Record<string, number> = {
  Namespace: 0,
  CustomResourceDefinition: 1,
  RuntimeClass: 2,
  ServiceAccount: 3,
  ClusterRole: 4,
  Role: 4,
  ClusterRoleBinding: 5,
  RoleBinding: 5,
  ConfigMap: 6,
  Secret: 6,
  PersistentVolumeClaim: 7,
  Service: 8,
};

export function applyOrder(objects: KubernetesObject[]): KubernetesObject[] {
  return objects
    .map((o, i) => ({ o, i }))
    .sort((a, b) => (ORDER[a.o.kind ?? ''] ?? 10) - (ORDER[b.o.kind ?? ''] ?? 10) || a.i - b.i)
    .map(({ o }) => o);
}

export function plural(obj: KubernetesObject): string {
  const group = (obj.apiVersion ?? '').includes('/') ? (obj.apiVersion ?? '').split('/')[0] : '';
  return `${(obj.kind ?? '').toLowerCase()}${group ? `.${group}` : ''}/${obj.metadata?.name ?? ''}`;
}

export interface ApplyResult {
  object: KubernetesObject;
  /** created, configured, unchanged (compared by resourceVersion), or the dry-run equivalent. */
  action: 'created' | 'configured' | 'unchanged';
  applied?: KubernetesObject;
}

export interface ApplyOptions {
  dryRun?: DryRun;
  force?: boolean;
}

/** Fill in the namespace of namespaced objects that have none (kubectl's -n behaviour). */
async function withNamespaces(
  client: ObjectClient,
  objects: KubernetesObject[],
  namespace: string,
  what: string,
  target: string,
): Promise<KubernetesObject[]> {
  const out: KubernetesObject[] = [];
  for (const o of objects) {
    if (o.metadata?.namespace) {
      out.push(o);
      continue;
    }
    let namespaced: boolean;
    try {
      namespaced = await client.isNamespaced(o.apiVersion ?? '', o.kind ?? '');
    } catch (err) {
      throw explainKubeError(err, `${what} ${plural(o)}`, target);
    }
    out.push(namespaced ? { ...o, metadata: { ...o.metadata, namespace } } : o);
  }
  return out;
}

/** Apply every object with server-side apply; stops at the first failure. */
export async function applyObjects(
  cluster: Cluster,
  objects: KubernetesObject[],
  opts: ApplyOptions = {},
): Promise<ApplyResult[]> {
  const dryRun = opts.dryRun ?? 'none';
  const ordered = applyOrder(objects);
  if (dryRun === 'client') return ordered.map((object) => ({ object, action: 'configured' as const }));
  const client = objectClient(cluster);
  const namespaced = await withNamespaces(client, ordered, cluster.namespace, 'apply', cluster.describe);
  const results: ApplyResult[] = [];
  for (const obj of namespaced) {
    const what = `apply ${plural(obj)}${obj.metadata?.namespace ? ` in namespace ${obj.metadata.namespace}` : ''}`;
    try {
      let before: string | undefined;
      try {
        const current = await client.read({
          apiVersion: obj.apiVersion!,
          kind: obj.kind!,
          metadata: {
            name: obj.metadata!.name!,
            ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
          },
        });
        before = current.metadata?.resourceVersion;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      const body = { ...obj, metadata: { ...obj.metadata } };
      delete (body.metadata as { resourceVersion?: string }).resourceVersion;
      const applied = await client.patch(
        body,
        undefined,
        dryRun === 'server' ? 'All' : undefined,
        FIELD_MANAGER,
        opts.force ?? false,
        PatchStrategy.ServerSideApply,
      );
      const action =
        before === undefined ? 'created' : applied.metadata?.resourceVersion === before ? 'unchanged' : 'configured';
      results.push({ object: obj, action, applied });
    } catch (err) {
      throw explainKubeError(err, what, cluster.describe);
    }
  }
  return results;
}

export function describeResults(results: ApplyResult[], dryRun: DryRun): string {
  const suffix = dryRun === 'server' ? ' (server dry run)' : dryRun === 'client' ? ' (dry run)' : '';
  return results
    .map(
      (r) =>
        `${plural(r.object)} ${r.action === 'unchanged' ? 'unchanged' : dryRun === 'none' && r.action === 'created' ? 'created' : 'serverside-applied'}${suffix}\n`,
    )
    .join('');
}

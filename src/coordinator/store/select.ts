/**
 * Which Store `coordinator serve` uses: the directory store by default, the ConfigMap store when
 * `CONTRAST_STATE_STORE=configmap` (set by the rendered StatefulSet). The ConfigMap store talks to
 * the API server with the pod's service account (or $KUBECONFIG when set, for tests), in
 * `CONTRAST_NAMESPACE` (downward API) or the service account's namespace.
 */
import { readFileSync } from 'node:fs';
import { DirStore } from './dir.js';
import type { Store } from './interface.js';

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export async function stateStoreFromEnv(stateDir: string, env: NodeJS.ProcessEnv = process.env): Promise<Store> {
  const kind = (env.CONTRAST_STATE_STORE ?? 'dir').toLowerCase();
  if (kind === 'dir') return new DirStore(stateDir);
  if (kind !== 'configmap')
    throw new Error(
      `CONTRAST_STATE_STORE must be "dir" or "configmap", not ${JSON.stringify(env.CONTRAST_STATE_STORE)}`,
    );
  let namespace = env.CONTRAST_NAMESPACE;
  if (!namespace) {
    try {
      namespace = readFileSync(SA_NAMESPACE_FILE, 'utf8').trim();
    } catch {
      throw new Error('CONTRAST_STATE_STORE=configmap needs CONTRAST_NAMESPACE (or a service account namespace file)');
    }
  }
  // Loaded only here: the Kubernetes client costs about 56 MB of the Coordinator's memory.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { ConfigMapStore } = await import('./configmap.js');
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const store = new ConfigMapStore({
    kc,
    namespace,
    onStale: (key) => process.stderr.write(`coordinator: state key ${key} was changed by another writer\n`),
  });
  await store.watch();
  process.stderr.write(`coordinator: state in ConfigMaps of namespace ${namespace}\n`);
  return store;
}

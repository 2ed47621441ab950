/** Shared bits of the cluster tests: admin clients and per-test namespaces. */
import { AppsV1Api, CoreV1Api, KubeConfig, NodeV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { ApiServer } from '../helpers/apiserver.js';

export interface Admin {
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  node: NodeV1Api;
  rbac: RbacAuthorizationV1Api;
}

export function admin(api: ApiServer, context = 'admin'): Admin {
  const kc = new KubeConfig();
  kc.loadFromFile(api.kubeconfig);
  kc.setCurrentContext(context);
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    node: kc.makeApiClient(NodeV1Api),
    rbac: kc.makeApiClient(RbacAuthorizationV1Api),
  };
}

export async function freshNamespace(a: Admin, prefix = 'kc'): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await a.core.createNamespace({ body: { metadata: { name } } });
  return name;
}

/**
 * From kubectl flags to a connected client: kubeconfig loading, context and namespace selection,
 * and a per-request timeout (`--request-timeout`), mirroring what kubectl does with the same flags.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, type RequestContext } from '@kubernetes/client-node';
import { UserError } from '../util/errors.js';

/** A KubeConfig that aborts each API request after `timeoutMs` (0 = never). Watches are not affected. */
export class TimedKubeConfig extends KubeConfig {
  timeoutMs = 0;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    if (this.timeoutMs > 0) context.setSignal(AbortSignal.timeout(this.timeoutMs));
  }
}

export interface Cluster {
  kc: TimedKubeConfig;
  /** The namespace from -n, else the context's, else "default". */
  namespace: string;
  /** True when -n was given explicitly. */
  namespaceExplicit: boolean;
  allNamespaces: boolean;
  objects: KubernetesObjectApi;
  /** Human-readable name of the target, for messages: `context "x" (https://…)`. */
  describe: string;
}

/** The kubectl flags, parsed (src/cli/kube-options.ts). */
export interface ClusterOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  allNamespaces?: boolean;
  requestTimeoutMs?: number;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * Without --kubeconfig, kubectl reads $KUBECONFIG (a list of files), else ~/.kube/config, else
 * the pod's service account. The Kubernetes client would fall back to http://localhost:8080
 * when none exists, and the user would read about a refused connection or plain HTTP instead.
 */
function requireDefaultKubeconfig(): void {
  const listed = (process.env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');
  if (listed.length > 0) {
    if (listed.some((f) => existsSync(f))) return;
    throw new UserError(
      `no kubeconfig: $KUBECONFIG names ${listed.length === 1 ? 'a file that does not exist' : 'files none of which exists'} (${listed.join(delimiter)})`,
      {},
      {
        hint: 'point $KUBECONFIG or --kubeconfig at the kubeconfig of your cluster',
      },
    );
  }
  const home = join(homedir(), '.kube', 'config');
  if (existsSync(home)) return;
  if (process.env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) return;
  throw new UserError(
    `no kubeconfig: $KUBECONFIG is not set and ${home} does not exist (and this is not a pod with a service account)`,
    {},
    {
      hint: 'point --kubeconfig or $KUBECONFIG at the kubeconfig of your cluster (kind: `kind get kubeconfig`, k3s: /etc/rancher/k3s/k3s.yaml); set, verify and recover also work without a cluster: -c HOST:PORT',
    },
  );
}

function loadKubeConfig(opts: ClusterOptions): TimedKubeConfig {
  const kc = new TimedKubeConfig();
  if (opts.kubeconfig === undefined) requireDefaultKubeconfig();
  if (opts.kubeconfig !== undefined) {
    if (!existsSync(opts.kubeconfig))
      throw new UserError(
        'the kubeconfig file does not exist',
        { file: opts.kubeconfig },
        { hint: 'check --kubeconfig' },
      );
    try {
      kc.loadFromFile(opts.kubeconfig);
    } catch (err) {
      throw new UserError(`cannot read the kubeconfig: ${(err as Error).message}`, { file: opts.kubeconfig });
    }
  } else {
    try {
      kc.loadFromDefault();
    } catch (err) {
      throw new UserError(`cannot read the kubeconfig ($KUBECONFIG or ~/.kube/config): ${(err as Error).message}`);
    }
  }
  if (opts.context !== undefined) {
    if (!kc.getContextObject(opts.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new UserError(
        `context "${opts.context}" is not in the kubeconfig${known.length ? `; known contexts: ${known.join(', ')}` : ''} (see \`kubectl config get-contexts\`)`,
      );
    }
    kc.setCurrentContext(opts.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new UserError(
      'no cluster is configured: point $KUBECONFIG or --kubeconfig at a kubeconfig with a current context, or pass --context (see `kubectl config get-contexts`)',
    );
  }
  kc.timeoutMs = opts.requestTimeoutMs ?? 0;
  return kc;
}

export function connect(opts: ClusterOptions): Cluster {
  const kc = loadKubeConfig(opts);
  const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace;
  const namespace = opts.namespace ?? contextNamespace ?? 'default';
  const objects = KubernetesObjectApi.makeApiClient(kc);
  return {
    kc,
    namespace,
    namespaceExplicit: opts.namespace !== undefined,
    allNamespaces: opts.allNamespaces === true,
    objects,
    describe: `context "${kc.getCurrentContext()}" (${kc.getCurrentCluster()?.server ?? '?'})`,
  };
}

/** Completion of --context: the context names of the kubeconfig (no cluster is asked). */
export function contextNames(opts: Pick<ClusterOptions, 'kubeconfig'>): string[] {
  try {
    const kc = new KubeConfig();
    if (opts.kubeconfig !== undefined) kc.loadFromFile(opts.kubeconfig);
    else {
      requireDefaultKubeconfig();
      kc.loadFromDefault();
    }
    return kc.getContexts().map((c) => c.name);
  } catch {
    return [];
  }
}

/** Completion of -n/--namespace: the namespaces the cluster lists, as kubectl completes them. */
export async function namespaceNames(opts: ClusterOptions): Promise<string[]> {
  try {
    const cluster = connect({ ...opts, requestTimeoutMs: opts.requestTimeoutMs || 5000 });
    const list = await cluster.kc.makeApiClient(CoreV1Api).listNamespace();
    return list.items.map((n) => n.metadata?.name ?? '').filter((n) => n !== '');
  } catch {
    return [];
  }
}

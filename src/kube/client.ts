/**
 * From kubectl flags to a connected client: kubeconfig loading, context and namespace selection,
 * and a per-request timeout (`--request-timeout`), mirroring what kubectl does with the same flags.
 */
import { existsSync } from 'node:fs';
import { KubeConfig, KubernetesObjectApi, type RequestContext } from '@kubernetes/client-node';
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

function loadKubeConfig(opts: ClusterOptions): TimedKubeConfig {
  const kc = new TimedKubeConfig();
  if (opts.kubeconfig !== undefined) {
    if (!existsSync(opts.kubeconfig)) throw new UserError('the kubeconfig file does not exist', { file: opts.kubeconfig }, { hint: 'check --kubeconfig' });
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
      throw new UserError(`context "${opts.context}" is not in the kubeconfig${known.length ? `; known contexts: ${known.join(', ')}` : ''} (see \`kubectl config get-contexts\`)`);
    }
    kc.setCurrentContext(opts.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new UserError('no cluster is configured: point $KUBECONFIG or --kubeconfig at a kubeconfig with a current context, or pass --context (see `kubectl config get-contexts`)');
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

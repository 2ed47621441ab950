/** The kubectl flags every cluster command accepts (kubectl passes plugin flags through as-is). */
import type { Argv } from 'yargs';
import { UsageError } from '../util/errors.js';
import type { Cluster, ClusterOptions } from '../kube/client.js';

export interface KubeArgs {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  'all-namespaces'?: boolean;
  'request-timeout': string;
}

export interface OutputArgs {
  output?: string;
}

export function kubeOptions<T>(y: Argv<T>, opts: { allNamespaces?: boolean } = {}): Argv<T & KubeArgs> {
  let r = y
    .option('kubeconfig', {
      type: 'string',
      describe: 'Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)',
    })
    .option('context', { type: 'string', describe: 'The kubeconfig context to use' })
    .option('namespace', {
      alias: 'n',
      type: 'string',
      describe: 'Namespace (default: the context\'s namespace, else "default")',
    })
    .option('request-timeout', {
      type: 'string',
      default: '0',
      describe: 'How long to wait for each request before giving up, e.g. 30s, 1m; 0 = no limit',
    });
  if (opts.allNamespaces)
    r = r.option('all-namespaces', { alias: 'A', type: 'boolean', describe: 'Look at every namespace' });
  return r as Argv<T & KubeArgs>;
}

/** What the kubectl flags ask for: kubeconfig, context, namespace, timeout. */
function clusterOptionsFrom(argv: KubeArgs): ClusterOptions {
  return {
    ...(argv.kubeconfig !== undefined ? { kubeconfig: argv.kubeconfig } : {}),
    ...(argv.context !== undefined ? { context: argv.context } : {}),
    ...(argv.namespace !== undefined ? { namespace: argv.namespace } : {}),
    allNamespaces: argv['all-namespaces'] === true,
    requestTimeoutMs: parseDuration(argv['request-timeout'] ?? '0'),
  };
}

/**
 * The cluster the kubectl flags name. The Kubernetes client costs about a second to load, so
 * it is imported only by a command that connects.
 */
export async function connectFromArgs(argv: KubeArgs): Promise<Cluster> {
  const { connect } = await import('../kube/client.js');
  return connect(clusterOptionsFrom(argv));
}

export function outputOption<T>(y: Argv<T>, choices: string[], describe: string): Argv<T & OutputArgs> {
  return y.option('output', { alias: 'o', type: 'string', choices, describe }) as Argv<T & OutputArgs>;
}

/** kubectl's --request-timeout syntax: a bare number of seconds, or a Go duration (1h2m3s, 500ms). */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let ms = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(t)) !== null) {
    const n = Number(m[1]);
    ms += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
    end = re.lastIndex;
  }
  if (end === 0 || end !== t.length)
    throw new UsageError(
      `invalid --request-timeout "${text}": use a number of seconds or a duration such as 30s, 1m, 1h`,
    );
  return Math.round(ms);
}

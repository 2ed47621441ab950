/** `kubectl contrast status`: the Coordinator and confidential workloads of a namespace (or all). */
import type { Argv, CommandModule } from 'yargs';
import { formatValue } from '../kube/output.js';
import { connectFromArgs, kubeOptions, outputOption, type KubeArgs, type OutputArgs } from './kube-options.js';

type StatusArgs = KubeArgs & OutputArgs;

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status',
  describe:
    'Show the Coordinator (ready, manifest set, recovery needed) and each confidential workload (policy in the active manifest, pods stuck in the Initializer)',
  builder: (y: Argv) =>
    outputOption(kubeOptions(y, { allNamespaces: true }), ['table', 'json', 'yaml'], 'Output format (default table)')
      .example('$0 status -n my-app', 'One namespace')
      .example('$0 status -A -o json', 'Every namespace, as JSON') as Argv<StatusArgs>,
  handler: async (argv) => {
    // Cluster modules load @kubernetes/client-node (about a second); they are imported when the command runs.
    const [cluster, { collectStatus, formatStatusTable }] = await Promise.all([
      connectFromArgs(argv),
      import('../kube/status.js'),
    ]);
    const report = await collectStatus(cluster);
    const format = argv.output ?? 'table';
    process.stdout.write(
      format === 'table'
        ? formatStatusTable(report, cluster.allNamespaces)
        : formatValue(report, format as 'json' | 'yaml'),
    );
  },
};

/** `kubectl contrast runtime render|apply --platform P`: the RuntimeClass and node installer of a platform. */
import type { Argv, CommandModule } from 'yargs';
import { platformIds, requirePlatform } from '../platforms/platforms.js';
import { loadImageReplacements } from '../platforms/images.js';
import { renderRuntime } from '../runtime/render.js';
import { nodeCommands, nodePathOptions, type NodePathArgs } from './runtime-node.js';
import type { DryRun } from '../kube/apply.js';
import { formatObjects, objectFormat } from '../kube/output.js';
import { connectFromArgs, kubeOptions, outputOption, type KubeArgs, type OutputArgs } from './kube-options.js';

interface RuntimeArgs extends KubeArgs, OutputArgs, NodePathArgs {
  platform: string;
  'image-replacements'?: string;
  'dry-run'?: string;
  'force-conflicts': boolean;
}

function runtimeOptions(y: Argv): Argv<RuntimeArgs> {
  const withFlags = kubeOptions(y)
    .option('platform', {
      type: 'string',
      choices: platformIds(),
      demandOption: true,
      describe: 'The platform whose runtime to deploy',
    })
    .option('image-replacements', {
      type: 'string',
      describe: 'File of "source=target" lines that replace the node-installer and pause images',
    });
  return nodePathOptions(withFlags) as unknown as Argv<RuntimeArgs>;
}

function render(argv: RuntimeArgs) {
  const platform = requirePlatform(argv.platform);
  return renderRuntime(platform, {
    ...(argv.namespace ? { namespace: argv.namespace } : {}),
    imageReplacements: loadImageReplacements(argv['image-replacements']),
    runtimeDir: argv['runtime-dir'],
    containerdConfig: argv['containerd-config'],
  });
}

export function dryRunOption<T>(y: Argv<T>): Argv<T & { 'dry-run'?: string; 'force-conflicts': boolean }> {
  return y
    .option('dry-run', {
      type: 'string',
      choices: ['none', 'server', 'client'],
      describe: 'server: let the API server validate without persisting; client: only print what would be applied',
    })
    .option('force-conflicts', {
      type: 'boolean',
      default: false,
      describe: 'Take over fields that another field manager owns',
    }) as Argv<T & { 'dry-run'?: string; 'force-conflicts': boolean }>;
}

const renderCommand: CommandModule<object, RuntimeArgs> = {
  command: 'render',
  describe: 'Print the RuntimeClass and node-installer DaemonSet of a platform',
  builder: (y: Argv) => outputOption(runtimeOptions(y), ['yaml', 'json'], 'Output format') as Argv<RuntimeArgs>,
  handler: (argv) => {
    process.stdout.write(formatObjects(render(argv), objectFormat(argv.output)));
  },
};

const applyCommand: CommandModule<object, RuntimeArgs> = {
  command: 'apply',
  describe:
    'Server-side apply the RuntimeClass and node-installer DaemonSet of a platform (field manager kubectl-contrast)',
  builder: (y: Argv) => dryRunOption(runtimeOptions(y)) as Argv<RuntimeArgs>,
  handler: async (argv) => {
    const objects = render(argv);
    // Cluster modules load @kubernetes/client-node (about a second); they are imported when the command runs.
    const [{ applyObjects, describeResults }, cluster] = await Promise.all([
      import('../kube/apply.js'),
      connectFromArgs(argv),
    ]);
    const dryRun = (argv['dry-run'] ?? 'none') as DryRun;
    const results = await applyObjects(cluster, objects, { dryRun, force: argv['force-conflicts'] });
    process.stdout.write(describeResults(results, dryRun));
  },
};

export const runtimeCommand: CommandModule = {
  command: 'runtime <command>',
  describe: 'Render or deploy the runtime of a platform (RuntimeClass and node installer)',
  builder: (y: Argv) => y.command(renderCommand).command(applyCommand).command(nodeCommands).demandCommand(1),
  handler: () => undefined,
};

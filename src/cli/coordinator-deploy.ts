import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SETTINGS_FILE } from '../generate/policy-step.js';
/**
 * `kubectl contrast coordinator render|apply`: the Coordinator's Kubernetes objects.
 * Kept apart from src/cli/coordinator.ts (the `coordinator serve` entry point); that module
 * registers these two subcommands.
 */
import type { Argv, CommandModule } from 'yargs';
import { platformIds, requirePlatform } from '../platforms/platforms.js';
import { loadImageReplacements } from '../platforms/images.js';
import { UsageError } from '../util/errors.js';
import { warnOnStderr } from '../util/diagnostics.js';
import { DEFAULT_REPLICAS, renderCoordinator, type ServiceType } from '../kube/coordinator-resources.js';
import { manifestHasCoordinator, renderCoordinatorWithPolicy } from '../kube/coordinator-deploy.js';
import type { Cluster } from '../kube/client.js';
import type { DryRun } from '../kube/apply.js';
import { formatObjects, objectFormat } from '../kube/output.js';
import { connectFromArgs, kubeOptions, outputOption, type KubeArgs, type OutputArgs } from './kube-options.js';
import { imageOptions, imageResolverFrom, type ImageArgs } from './image-options.js';
import { manifestPath, workspaceOptions, type WorkspaceArgs } from './workspace-options.js';
import { dryRunOption } from './runtime.js';

interface CoordinatorDeployArgs extends KubeArgs, OutputArgs, ImageArgs, WorkspaceArgs {
  platform?: string;
  policy: boolean;
  'service-type': ServiceType;
  'image-replacements'?: string;
  'dry-run'?: string;
  'force-conflicts': boolean;
  replicas?: number;
}

function common(y: Argv): Argv<CoordinatorDeployArgs> {
  return imageOptions(workspaceOptions(kubeOptions(y)))
    .option('platform', {
      type: 'string',
      choices: platformIds(),
      describe: 'Platform the Coordinator runs on (needed for its policy)',
    })
    .option('service-type', {
      type: 'string',
      choices: ['LoadBalancer', 'ClusterIP', 'NodePort'],
      default: 'LoadBalancer',
      describe: 'Type of the "coordinator" Service that users reach the UserAPI through',
    })
    .option('image-replacements', {
      type: 'string',
      describe: 'File of "source=target" lines that replace the Coordinator image',
    })
    .option('replicas', {
      type: 'number',
      requiresArg: true,
      describe: `Coordinator replicas; they recover from each other after a restart (default: render ${DEFAULT_REPLICAS}; apply one per schedulable node, at most ${DEFAULT_REPLICAS})`,
    }) as Argv<CoordinatorDeployArgs>;
}

/** --replicas, checked; undefined when not given. */
function replicasOption(argv: CoordinatorDeployArgs): number | undefined {
  const n = argv.replicas;
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < 1 || n > 100)
    throw new UsageError(`--replicas must be a whole number from 1 to 100, got ${String(n)}`);
  return n;
}

/** apply: --replicas, else as many as the cluster has schedulable nodes (at most DEFAULT_REPLICAS). */
async function replicasFor(argv: CoordinatorDeployArgs, cluster: Cluster): Promise<number> {
  const given = replicasOption(argv);
  if (given !== undefined) return given;
  const { replicasForCluster } = await import('../kube/coordinator-deploy.js');
  const choice = await replicasForCluster(cluster);
  process.stderr.write(`Coordinator replicas: ${choice.reason}\n`);
  return choice.replicas;
}

async function objectsFor(argv: CoordinatorDeployArgs, namespace: string, replicas: number) {
  const platform = argv.platform ? requirePlatform(argv.platform) : undefined;
  const base = { namespace, serviceType: argv['service-type'], replicas, ...(platform ? { platform } : {}) };
  if (!argv.policy) {
    return {
      objects: renderCoordinator({ ...base, imageReplacements: loadImageReplacements(argv['image-replacements']) }),
      policyHash: undefined,
    };
  }
  if (!platform)
    throw new UsageError(
      "--platform is needed to compute the Coordinator's policy (or pass --no-policy for the template that `generate` takes)",
    );
  const settings = join(argv['workspace-dir'], SETTINGS_FILE);
  const r = await renderCoordinatorWithPolicy({
    ...base,
    platform,
    imageResolver: imageResolverFrom(argv),
    ...(argv['image-replacements'] !== undefined ? { imageReplacementsFile: argv['image-replacements'] } : {}),
    // The settings `generate` uses in this workspace (the defaults while there is none).
    ...(existsSync(settings) ? { settingsPath: settings } : {}),
  });
  for (const w of r.warnings) warnOnStderr(w.message, w.location);
  return r;
}

function reportManifest(argv: CoordinatorDeployArgs, policyHash: string): void {
  const path = manifestPath(argv);
  process.stderr.write(`Coordinator policy hash: ${policyHash}\n`);
  const state = manifestHasCoordinator(path, policyHash);
  if (state === 'yes') return;
  const why =
    state === 'no-manifest'
      ? `there is no ${path} yet`
      : state === 'missing'
        ? `${path} does not list this policy`
        : `${path} lists this policy without Role "coordinator"`;
  warnOnStderr(
    `${why}; \`set\` will refuse a Coordinator whose policy is not in the manifest. Put the Coordinator into the inputs of \`generate\` (\`kubectl contrast coordinator render --no-policy > coordinator.yaml\`) and generate again.`,
  );
}

const renderCommand: CommandModule<object, CoordinatorDeployArgs> = {
  command: 'render',
  describe:
    'Print the Coordinator StatefulSet, Services, ServiceAccount and Role (with its policy when --platform is given)',
  builder: (y: Argv) =>
    outputOption(common(y), ['yaml', 'json'], 'Output format')
      .option('policy', {
        type: 'boolean',
        default: true,
        describe: "Compute the Coordinator's policy (needs --platform); --no-policy prints the template for `generate`",
      })
      .example(
        '$0 coordinator render --no-policy -n app > coordinator.yaml',
        'A template to pass to `generate` together with the app',
      )
      .example('$0 coordinator render --platform metal-qemu-snp', 'The Coordinator with its policy')
      .example(
        '$0 coordinator render --platform metal-qemu-snp --replicas 5',
        'Five replicas that recover from each other',
      ) as Argv<CoordinatorDeployArgs>,
  handler: async (argv) => {
    if (argv.policy && !argv.platform) argv.policy = false;
    // No cluster to look at: DEFAULT_REPLICAS (the anti-affinity is preferred, so fewer nodes still schedule them).
    const replicas = replicasOption(argv) ?? DEFAULT_REPLICAS;
    const { objects, policyHash } = await objectsFor(argv, argv.namespace ?? 'default', replicas);
    process.stdout.write(formatObjects(objects, objectFormat(argv.output)));
    if (policyHash) reportManifest(argv, policyHash);
  },
};

const applyCommand: CommandModule<object, CoordinatorDeployArgs> = {
  command: 'apply',
  describe: 'Server-side apply the Coordinator with its policy (field manager kubectl-contrast)',
  builder: (y: Argv) =>
    dryRunOption(common(y))
      .option('policy', { type: 'boolean', default: true, hidden: true })
      .demandOption('platform') as Argv<CoordinatorDeployArgs>,
  handler: async (argv) => {
    // Cluster modules load @kubernetes/client-node (about a second); they are imported when the command runs.
    const [{ applyObjects, describeResults }, cluster] = await Promise.all([
      import('../kube/apply.js'),
      connectFromArgs(argv),
    ]);
    const replicas = await replicasFor(argv, cluster);
    const { objects, policyHash } = await objectsFor({ ...argv, policy: true }, cluster.namespace, replicas);
    const dryRun = (argv['dry-run'] ?? 'none') as DryRun;
    const results = await applyObjects(cluster, objects, { dryRun, force: argv['force-conflicts'] });
    process.stdout.write(describeResults(results, dryRun));
    if (policyHash) reportManifest(argv, policyHash);
  },
};

/** Subcommands for `coordinator` (registered by src/cli/coordinator.ts). */
export const coordinatorDeployCommands: CommandModule[] = [
  renderCommand as CommandModule,
  applyCommand as CommandModule,
];

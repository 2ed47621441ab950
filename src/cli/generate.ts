import type { Argv, CommandModule } from 'yargs';
import { generate, type GenerateOptions } from '../generate/pipeline.js';
import { writeGenerateResult } from '../generate/write.js';
import { platformIds } from '../platforms/platforms.js';
import { UsageError } from '../util/errors.js';
import { Diagnostics } from '../generate/diagnostics.js';
import { STDIN } from '../manifests/inputs.js';
import { workspaceOptions, type WorkspaceArgs } from './workspace-options.js';
import { imageOptions, imageResolverFrom, type ImageArgs } from './image-options.js';
import { kubeOptions, type KubeArgs } from './kube-options.js';
import { joinStreams } from '../generate/write.js';
import { join } from 'node:path';
import { MANIFEST_FILE, manifestToJson, readManifest, validateManifest, withRecoveryChoice } from '../workspace/manifest.js';

/** The flags of the transform itself; shared by `generate`, the Helm post-renderer and the kustomize transformer. */
export interface TransformArgs extends WorkspaceArgs, ImageArgs {
  platform?: string;
  'skip-initializer': boolean;
  'image-replacements'?: string;
  'coordinator-host'?: string;
  'add-workload-owner-key': string[];
  'add-seedshare-owner-key': string[];
  'disable-updates': boolean;
}

interface GenerateArgs extends TransformArgs, KubeArgs {
  paths: string[];
  output?: string;
  'validate-server': boolean;
  'disable-recovery': boolean;
  'inject-image-store': boolean;
}

/** Adds the transform flags (workspace, images, platform, keys, …) to a command. */
export function transformOptions<T>(y: Argv<T>): Argv<T & TransformArgs> {
  return imageOptions(workspaceOptions(y))
    .option('platform', { alias: 'reference-values', type: 'string', choices: platformIds(), describe: 'Platform for workloads with runtimeClassName contrast-cc (contrast-cc-<platform> selects one per workload)' })
    .option('skip-initializer', { type: 'boolean', default: false, describe: 'Do not inject the Initializer (per workload: annotation contrast.edgeless.systems/skip-initializer: "true")' })
    .option('image-replacements', { type: 'string', describe: 'File of "source=target" lines that replace container images (e.g. a mirror)' })
    .option('coordinator-host', { type: 'string', describe: 'Address the Initializer dials (default coordinator-ready.<namespace of the Coordinator>)' })
    .option('add-workload-owner-key', { alias: 'w', type: 'string', array: true, default: [], describe: 'Workload owner key (private or public PEM, ECDSA P-384) allowed to update the manifest; default <workspace>/workload-owner.pem, created once' })
    .option('add-seedshare-owner-key', { type: 'string', array: true, default: [], describe: 'Seed-share owner key (RSA PEM) that can recover the Coordinator; default <workspace>/seedshare-owner.pem, created once' })
    .option('disable-updates', { alias: 'd', type: 'boolean', default: false, describe: 'Write a manifest without workload owner keys: it can never be changed' })
    .check((argv) => {
      if (argv['disable-updates'] && argv['add-workload-owner-key'].length > 0) throw new UsageError('--disable-updates and --add-workload-owner-key exclude each other');
      return true;
    }) as unknown as Argv<T & TransformArgs>;
}

/** The pipeline options that the transform flags stand for. */
export function generateOptionsFrom(argv: TransformArgs, inputs: string[]): GenerateOptions {
  return {
    inputs,
    platform: argv.platform,
    skipInitializer: argv['skip-initializer'],
    imageReplacementsFile: argv['image-replacements'],
    coordinatorHost: argv['coordinator-host'],
    workspaceDir: argv['workspace-dir'],
    manifestPath: argv.manifest,
    workloadOwnerKeys: argv['add-workload-owner-key'],
    seedshareOwnerKeys: argv['add-seedshare-owner-key'],
    disableUpdates: argv['disable-updates'],
    imageResolver: imageResolverFrom(argv),
  };
}

export const generateCommand: CommandModule<object, GenerateArgs> = {
  command: 'generate [paths..]',
  describe: 'Make workloads with runtimeClassName contrast-cc confidential: inject the Initializer and service mesh, compute their policies, update manifest.json',
  builder: (y: Argv) => kubeOptions(transformOptions(y))
    .positional('paths', { type: 'string', array: true, default: [], describe: 'YAML files or directories (recursively *.yaml, *.yml); "-" or nothing for standard input' })
    .option('output', { alias: 'o', type: 'string', describe: 'Write all resources to this file ("-" for stdout) instead of editing the inputs in place' })
    .option('validate-server', { type: 'boolean', default: false, describe: 'Before writing, let the API server of the current kube context validate every resource (server-side dry run); with --kubeconfig, --context, -n' })
    .option('disable-recovery', { type: 'boolean', default: false, describe: 'Write a manifest without seed-share owners ("DisableRecovery": true): a restarted Coordinator can then never be recovered' })
    .option('inject-image-store', { type: 'boolean', default: false, describe: 'Give every confidential workload a block volume the guest pulls images onto (size: annotation contrast.edgeless.systems/image-store-size, default 10Gi, "0": none)' })
    .check((argv) => {
      if (argv['disable-recovery'] && (argv['add-seedshare-owner-key'] as string[]).length > 0) throw new UsageError('--disable-recovery and --add-seedshare-owner-key exclude each other');
      return true;
    })
    .example('$0 generate --platform metal-qemu-snp deployment/', 'Rewrite every YAML file under deployment/ in place')
    .example('helm template my-app ./chart | $0 generate --platform metal-qemu-tdx - > resources.yaml', 'Transform a stream')
    .example('$0 generate -o resources.yaml --workspace-dir ./contrast app.yaml', 'Write the result elsewhere; keys and manifest.json go to ./contrast')
    .example('$0 generate --offline --oci-layout ./images --platform insecure-sim app.yaml', 'Take images from a local OCI layout, never from the network'),
  handler: async (argv) => {
    const paths = argv.paths.length === 0 ? [STDIN] : argv.paths;
    const diagnostics = new Diagnostics();
    const result = await generate({ ...generateOptionsFrom(argv, paths), injectImageStore: argv['inject-image-store'] }, diagnostics);
    const manifestFile = argv.manifest ?? join(argv['workspace-dir'], MANIFEST_FILE);
    result.manifest = withRecoveryChoice(result.manifest, argv['disable-recovery']);
    // The manifest about to be written passes the same checks `set` and the Coordinator make on it.
    result.manifest = validateManifest(JSON.parse(manifestToJson(result.manifest)), manifestFile);
    const previous = readManifest(manifestFile);
    result.manifestChanged = !previous || manifestToJson(previous) !== manifestToJson(result.manifest);
    if (argv['validate-server']) {
      const { connectFromArgs } = await import('../kube/client.js');
      const { validateOnServer } = await import('../kube/validate.js');
      const checked = await validateOnServer(connectFromArgs(argv), joinStreams(result.outputs.map((o) => o.text)));
      process.stderr.write(`The API server accepted all ${checked.objects} resources (server-side dry run).\n`);
    }
    for (const w of result.diagnostics.warnings) process.stderr.write(`Warning: ${Diagnostics.format(w)}\n`);
    const summary = writeGenerateResult(result, { output: argv.output, toStdout: argv.output === undefined && paths.includes(STDIN) }, argv);
    process.stderr.write(`${summary}\n`);
  },
};

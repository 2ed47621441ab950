/** `kubectl contrast generate`: flags to options, the generate use case, then write (src/generate). */
import type { Argv, CommandModule } from 'yargs';
import { generate } from '../generate/pipeline.js';
import { joinStreams, writeGenerateResult, type OutputTarget } from '../generate/write.js';
import { Diagnostics, warnOnStderr } from '../util/diagnostics.js';
import { STDIN } from '../resources/inputs.js';
import { UsageError } from '../util/errors.js';
import { connectFromArgs, kubeOptions, type KubeArgs } from './kube-options.js';
import { generateOptionsFrom, transformOptions, type TransformArgs } from './transform-options.js';
import { refuseRulesFile, rulesOption } from './upstream.js';

interface GenerateArgs extends TransformArgs, KubeArgs {
  paths: string[];
  _: (string | number)[];
  output?: string;
  'validate-server': boolean;
  policy?: string;
  'genpolicy-cache-path'?: string;
}

function outputTarget(argv: GenerateArgs, paths: string[]): OutputTarget {
  if (argv.output === '-' || (argv.output === undefined && paths.includes(STDIN))) return { to: 'stdout' };
  return argv.output === undefined ? { to: 'in-place' } : { to: 'file', path: argv.output };
}

/**
 * The inputs: the paths, including those after `--`; none means standard input, which is read
 * only when it is not a terminal (a user who forgot the paths gets an error, not a hang).
 */
export function inputPaths(
  argv: { paths: string[]; _: (string | number)[] },
  stdinIsTTY = process.stdin.isTTY === true,
): string[] {
  const paths = [...argv.paths, ...argv._.slice(1).map(String)];
  if (paths.length > 0) return paths;
  if (stdinIsTTY) {
    throw new UsageError(
      'name the YAML files or directories to transform, or "-" to read standard input (standard input is a terminal)',
    );
  }
  return [STDIN];
}

export const generateCommand: CommandModule<object, GenerateArgs> = {
  command: 'generate [paths..]',
  describe:
    'Make workloads with runtimeClassName contrast-cc confidential: inject the Initializer and service mesh, compute their policies, update manifest.json',
  builder: (y: Argv) =>
    rulesOption(kubeOptions(transformOptions(y)))
      .positional('paths', {
        type: 'string',
        array: true,
        default: [],
        describe: 'YAML files or directories (recursively *.yaml, *.yml); "-" or nothing for standard input',
      })
      .option('output', {
        alias: 'o',
        type: 'string',
        describe: 'Write all resources to this file ("-" for stdout) instead of editing the inputs in place',
      })
      .option('validate-server', {
        type: 'boolean',
        default: false,
        describe:
          'Before writing, let the API server of the current kube context validate every resource (server-side dry run); with --kubeconfig, --context, -n',
      })
      .example(
        '$0 generate --platform metal-qemu-snp deployment/',
        'Rewrite every YAML file under deployment/ in place',
      )
      .example(
        'helm template my-app ./chart | $0 generate --platform metal-qemu-tdx - > resources.yaml',
        'Transform a stream',
      )
      .example(
        '$0 generate -o resources.yaml --workspace-dir ./contrast app.yaml',
        'Write the result elsewhere; keys and manifest.json go to ./contrast',
      )
      .example(
        '$0 generate --offline --oci-layout ./images --platform insecure-sim app.yaml',
        'Take images from a local OCI layout, never from the network',
      ),
  handler: async (argv) => {
    refuseRulesFile(argv);
    const paths = inputPaths(argv);
    const diagnostics = new Diagnostics(warnOnStderr);
    const options = generateOptionsFrom(argv, diagnostics.warn);
    const result = await generate(paths, options, diagnostics);
    if (argv['validate-server']) {
      const [cluster, { validateOnServer }] = await Promise.all([connectFromArgs(argv), import('../kube/validate.js')]);
      const checked = await validateOnServer(cluster, joinStreams(result.outputs.map((o) => o.text)));
      process.stderr.write(`The API server accepted all ${checked.objects} resources (server-side dry run).\n`);
    }
    const summary = await writeGenerateResult(result, outputTarget(argv, paths), options);
    process.stderr.write(`${summary}\n`);
  },
};

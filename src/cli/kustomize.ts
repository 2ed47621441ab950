/**
 * `kubectl contrast kustomize [config]`: the transform as a kustomize transformer.
 *
 * - KRM function (standalone `kustomize build --enable-alpha-plugins --enable-exec`): stdin
 *   is a ResourceList; options come from its functionConfig; warnings become `results`.
 * - Legacy exec plugin (what `kubectl kustomize` runs): stdin is a plain stream of resources
 *   and argv[1] is the transformer config file (kustomize also puts it in
 *   KUSTOMIZE_PLUGIN_CONFIG_STRING); relative paths in it are taken from the kustomization
 *   directory (KUSTOMIZE_PLUGIN_CONFIG_ROOT).
 * In both modes a failure prints nothing on stdout, explains itself on stderr and in
 * <workspace>/render.log, and exits 1.
 */
import { dirname } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { readStdin } from '../resources/inputs.js';
import { parseValues } from '../resources/stream.js';
import { Diagnostics, warningLine } from '../util/diagnostics.js';
import { readUserText } from '../util/files.js';
import { failureLines, logPath, postRender, writeLog } from '../postrender/postrender.js';
import { itemInputs, parseResourceList, resourceListOutput } from '../postrender/krm.js';
import { configuredWorkspace, FUNCTION_CONFIG_FIELDS, functionConfigToArgs, generateOptionsFrom, parseTransformArgs } from './transform-options.js';

interface KustomizeArgs {
  config?: string;
}

const MODE = 'kustomize';

/** The transformer config: the one document of a file or of KUSTOMIZE_PLUGIN_CONFIG_STRING. */
function parseConfig(text: string, origin: string): unknown {
  return parseValues(origin, text)[0];
}

export const kustomizeCommand: CommandModule<object, KustomizeArgs> = {
  command: 'kustomize [config]',
  describe: 'kustomize transformer: a KRM function (ResourceList on stdin) or a legacy exec plugin (config file as argument, resources on stdin)',
  builder: (y: Argv) => y
    .positional('config', { type: 'string', describe: 'Transformer config (legacy exec plugin mode); a KRM function gets it as functionConfig' })
    .epilog(`Config fields (spec of kind ContrastTransformer, or data of a ConfigMap): ${FUNCTION_CONFIG_FIELDS.join(', ')}. CONTRAST_* environment variables give defaults. See docs/helm-kustomize.md.`) as Argv<KustomizeArgs>,
  handler: async (argv) => {
    let log = logPath(undefined);
    try {
      const input = await readStdin();
      const list = parseResourceList(input.text);
      if (list) {
        log = logPath(configuredWorkspace(list.functionConfig, process.cwd()));
        const args = parseTransformArgs(functionConfigToArgs({ config: list.functionConfig, baseDir: process.cwd(), origin: 'functionConfig' }));
        log = logPath(args['workspace-dir']);
        const inputs = itemInputs(list);
        const diagnostics = new Diagnostics();
        const r = await postRender(inputs, generateOptionsFrom(args, diagnostics.warn), diagnostics);
        process.stdout.write(resourceListOutput(list, inputs, r.texts, diagnostics.warnings));
        writeLog(log, `${MODE} (KRM function)`, [`ok: ${r.summary}`, ...diagnostics.warnings.map(warningLine)]);
        return;
      }
      const envConfig = process.env.KUSTOMIZE_PLUGIN_CONFIG_STRING;
      const config = argv.config !== undefined
        ? parseConfig(readUserText(argv.config, 'the transformer config'), argv.config)
        : envConfig ? parseConfig(envConfig, 'KUSTOMIZE_PLUGIN_CONFIG_STRING') : undefined;
      const baseDir = process.env.KUSTOMIZE_PLUGIN_CONFIG_ROOT || (argv.config !== undefined && envConfig === undefined ? dirname(argv.config) : process.cwd());
      log = logPath(configuredWorkspace(config, baseDir));
      const args = parseTransformArgs(functionConfigToArgs({ config, baseDir, origin: argv.config ?? 'transformer config' }));
      log = logPath(args['workspace-dir']);
      input.name = 'kustomize resources';
      const diagnostics = new Diagnostics();
      const r = await postRender([input], generateOptionsFrom(args, diagnostics.warn), diagnostics);
      const warnings = diagnostics.warnings.map(warningLine);
      process.stdout.write(r.texts[0]!);
      for (const w of warnings) process.stderr.write(`${w}\n`);
      writeLog(log, `${MODE} (exec plugin)`, [`ok: ${r.summary}`, ...warnings]);
    } catch (err) {
      writeLog(log, MODE, failureLines(err));
      throw err;
    }
  },
};

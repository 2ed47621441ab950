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
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isPlainObject } from '../manifests/patch.js';
import { parse } from 'yaml';
import type { Argv, CommandModule } from 'yargs';
import { readStdin } from '../manifests/inputs.js';
import { Diagnostics } from '../generate/diagnostics.js';
import { YAML_PARSE_OPTIONS } from '../manifests/stream.js';
import { functionConfigToArgs, parseTransformArgs } from '../render/settings.js';
import { failureLines, renderInputs, renderLogPath, writeRenderLog } from '../render/render.js';
import { itemInputs, parseResourceList, resourceListOutput } from '../render/krm.js';
import { UserError } from '../util/errors.js';

interface KustomizeArgs {
  config?: string;
}

const MODE = 'kustomize';

function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read the transformer config: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file: path });
  }
  return parseConfigText(text, path);
}

function parseConfigText(text: string, origin: string): unknown {
  try {
    return parse(text, YAML_PARSE_OPTIONS);
  } catch (err) {
    throw new UserError(`invalid YAML: ${(err as Error).message.split('\n')[0]}`, { file: origin });
  }
}

/** The workspace a config names, read before the config is checked, so its errors can be logged there. */
function configuredWorkspace(config: unknown, baseDir: string): string | undefined {
  const fields = isPlainObject(config) ? (config.kind === 'ConfigMap' ? config.data : config.spec) : undefined;
  const dir = isPlainObject(fields) ? fields.workspaceDir : undefined;
  return typeof dir === 'string' && dir !== '' ? resolve(baseDir, dir) : undefined;
}

export const kustomizeCommand: CommandModule<object, KustomizeArgs> = {
  command: 'kustomize [config]',
  describe: 'kustomize transformer: a KRM function (ResourceList on stdin) or a legacy exec plugin (config file as argument, resources on stdin)',
  builder: (y: Argv) => y
    .positional('config', { type: 'string', describe: 'Transformer config (legacy exec plugin mode); a KRM function gets it as functionConfig' })
    .epilog('Config fields (spec of kind ContrastTransformer, or data of a ConfigMap): platform, workspaceDir, manifest, skipInitializer, imageReplacements, coordinatorHost, workloadOwnerKeys, seedshareOwnerKeys, disableUpdates, ociLayouts, dockerArchives, cacheDir, cache, insecureRegistries, offline, dockerConfig, imagePlatform. CONTRAST_* environment variables give defaults. See docs/helm-kustomize.md.') as Argv<KustomizeArgs>,
  handler: async (argv) => {
    let log = renderLogPath(undefined);
    try {
      const input = await readStdin();
      const list = parseResourceList(input.text);
      if (list) {
        log = renderLogPath(configuredWorkspace(list.functionConfig, process.cwd()));
        const args = parseTransformArgs(functionConfigToArgs({ config: list.functionConfig, baseDir: process.cwd(), origin: 'functionConfig' }));
        log = renderLogPath(args['workspace-dir']);
        const inputs = itemInputs(list);
        const r = await renderInputs(inputs, args);
        process.stdout.write(resourceListOutput(list, inputs, r.texts, r.warnings));
        writeRenderLog(log, `${MODE} (KRM function)`, [`ok: ${r.summary}`, ...r.warnings.map((w) => `Warning: ${Diagnostics.format(w)}`)]);
        return;
      }
      const envConfig = process.env.KUSTOMIZE_PLUGIN_CONFIG_STRING;
      const config = argv.config !== undefined ? readConfigFile(argv.config) : envConfig ? parseConfigText(envConfig, 'KUSTOMIZE_PLUGIN_CONFIG_STRING') : undefined;
      const baseDir = process.env.KUSTOMIZE_PLUGIN_CONFIG_ROOT || (argv.config !== undefined && envConfig === undefined ? dirname(argv.config) : process.cwd());
      log = renderLogPath(configuredWorkspace(config, baseDir));
      const args = parseTransformArgs(functionConfigToArgs({ config, baseDir, origin: argv.config ?? 'transformer config' }));
      log = renderLogPath(args['workspace-dir']);
      input.name = 'kustomize resources';
      const r = await renderInputs([input], args);
      const warnings = r.warnings.map((w) => `Warning: ${Diagnostics.format(w)}`);
      process.stdout.write(r.texts[0]!);
      for (const w of warnings) process.stderr.write(`${w}\n`);
      writeRenderLog(log, `${MODE} (exec plugin)`, [`ok: ${r.summary}`, ...warnings]);
    } catch (err) {
      writeRenderLog(log, MODE, failureLines(err));
      throw err;
    }
  },
};

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
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { readStdin } from '../resources/inputs.js';
import { parseValues } from '../resources/stream.js';
import { writeStdout } from '../util/chunked-write.js';
import { Diagnostics, warningLine } from '../util/diagnostics.js';
import { readUserText } from '../util/files.js';
import { failureLines, logPath, postRender, writeLog } from '../postrender/postrender.js';
import { itemInputs, parseResourceList, resourceListOutput } from '../postrender/krm.js';
import {
  configuredWorkspace,
  FUNCTION_CONFIG_FIELDS,
  functionConfigToArgs,
  generateOptionsFrom,
  parseTransformArgs,
} from './transform-options.js';

interface KustomizeArgs {
  config?: string;
  'print-workspace'?: string;
}

const MODE = 'kustomize';

/** The transformer config: the one document of a file or of KUSTOMIZE_PLUGIN_CONFIG_STRING. */
function parseConfig(text: string, origin: string): unknown {
  return parseValues(origin, text)[0];
}

/**
 * The workspace of a kustomization that configures none (no workspaceDir, no
 * $CONTRAST_WORKSPACE_DIR): a directory of its own below the user's state directory
 * (`$XDG_STATE_HOME`, default ~/.local/state), named after the kustomization directory and a hash
 * of its path. Never the kustomization directory itself: that is usually a git repository, and
 * the owner keys are private.
 */
export function defaultKustomizeWorkspace(kustomizationDir: string, env: NodeJS.ProcessEnv = process.env): string {
  let dir = resolve(kustomizationDir);
  try {
    dir = realpathSync(dir);
  } catch {
    // Not there (yet): its path as given.
  }
  const state = env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state');
  const id = createHash('sha256').update(dir).digest('hex').slice(0, 12);
  return join(state, 'kubectl-contrast', 'kustomize', `${basename(dir) || 'root'}-${id}`);
}

/** The workspace flag to add when neither the config nor the environment names one. */
function workspaceDefault(
  config: unknown,
  baseDir: string,
  kustomizationDir: string,
): { args: string[]; workspace: string | undefined } {
  if (configuredWorkspace(config, baseDir) !== undefined || process.env.CONTRAST_WORKSPACE_DIR)
    return { args: [], workspace: undefined };
  const workspace = defaultKustomizeWorkspace(kustomizationDir);
  return { args: [`--workspace-dir=${workspace}`], workspace };
}

function announce(workspace: string | undefined): void {
  if (workspace !== undefined) {
    process.stderr.write(
      `kubectl-contrast: workspace ${workspace} (manifest.json, owner keys, render.log); set workspaceDir in the transformer config to choose one\n`,
    );
  }
}

export const kustomizeCommand: CommandModule<object, KustomizeArgs> = {
  command: 'kustomize [config]',
  describe:
    'kustomize transformer: a KRM function (ResourceList on stdin) or a legacy exec plugin (config file as argument, resources on stdin)',
  builder: (y: Argv) =>
    y
      .positional('config', {
        type: 'string',
        describe: 'Transformer config (legacy exec plugin mode); a KRM function gets it as functionConfig',
      })
      .option('print-workspace', {
        type: 'string',
        describe:
          'Print the workspace a kustomization directory (default: the current one) gets when its config names none, and exit',
      })
      .epilog(
        `Config fields (spec of kind ContrastTransformer, or data of a ConfigMap): ${FUNCTION_CONFIG_FIELDS.join(', ')}. CONTRAST_* environment variables give defaults. See docs/helm-kustomize.md.`,
      ) as Argv<KustomizeArgs>,
  handler: async (argv) => {
    if (argv['print-workspace'] !== undefined) {
      process.stdout.write(`${defaultKustomizeWorkspace(argv['print-workspace'] || process.cwd())}\n`);
      return;
    }
    // kustomize runs transformers in the kustomization directory.
    const kustomizationDir = process.env.KUSTOMIZE_PLUGIN_CONFIG_ROOT || process.cwd();
    let log = logPath(process.env.CONTRAST_WORKSPACE_DIR || defaultKustomizeWorkspace(kustomizationDir));
    try {
      const input = await readStdin();
      const list = parseResourceList(input.text);
      if (list) {
        const fallback = workspaceDefault(list.functionConfig, process.cwd(), kustomizationDir);
        log = logPath(configuredWorkspace(list.functionConfig, process.cwd()) ?? fallback.workspace);
        const args = parseTransformArgs([
          ...functionConfigToArgs({ config: list.functionConfig, baseDir: process.cwd(), origin: 'functionConfig' }),
          ...fallback.args,
        ]);
        announce(fallback.workspace);
        log = logPath(args['workspace-dir']);
        const inputs = itemInputs(list);
        const diagnostics = new Diagnostics();
        const r = await postRender(inputs, generateOptionsFrom(args, diagnostics.warn), diagnostics);
        await writeStdout(resourceListOutput(list, inputs, r.texts, diagnostics.warnings));
        writeLog(log, `${MODE} (KRM function)`, [`ok: ${r.summary}`, ...diagnostics.warnings.map(warningLine)]);
        return;
      }
      const envConfig = process.env.KUSTOMIZE_PLUGIN_CONFIG_STRING;
      const config =
        argv.config !== undefined
          ? parseConfig(readUserText(argv.config, 'the transformer config'), argv.config)
          : envConfig
            ? parseConfig(envConfig, 'KUSTOMIZE_PLUGIN_CONFIG_STRING')
            : undefined;
      const baseDir =
        process.env.KUSTOMIZE_PLUGIN_CONFIG_ROOT ||
        (argv.config !== undefined && envConfig === undefined ? dirname(argv.config) : process.cwd());
      const fallback = workspaceDefault(config, baseDir, kustomizationDir);
      log = logPath(configuredWorkspace(config, baseDir) ?? fallback.workspace);
      const args = parseTransformArgs([
        ...functionConfigToArgs({ config, baseDir, origin: argv.config ?? 'transformer config' }),
        ...fallback.args,
      ]);
      announce(fallback.workspace);
      log = logPath(args['workspace-dir']);
      input.name = 'kustomize resources';
      const diagnostics = new Diagnostics();
      const r = await postRender([input], generateOptionsFrom(args, diagnostics.warn), diagnostics);
      const warnings = diagnostics.warnings.map(warningLine);
      await writeStdout(r.texts[0]!);
      for (const w of warnings) process.stderr.write(`${w}\n`);
      writeLog(log, `${MODE} (exec plugin)`, [`ok: ${r.summary}`, ...warnings]);
    } catch (err) {
      writeLog(log, MODE, failureLines(err));
      throw err;
    }
  },
};

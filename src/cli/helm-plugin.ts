/**
 * Helm integration:
 * - `helm-post-render`: the post-renderer itself (Helm 3 runs it as an executable, Helm 4
 *   through the `postrenderer/v1` plugin). Rendered resources on stdin, confidential
 *   resources on stdout, manifest.json updated; on failure nothing on stdout, exit 1.
 * - `helm-plugin install|uninstall|print`: installs the Helm 4 plugin pointing at this very
 *   executable (for krew and npm installs, where there is no plugin/ directory to hand).
 */
import { isSingleExecutable } from '../util/sea.js';
import { spawnSync } from 'node:child_process';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { readStdin } from '../resources/inputs.js';
import { writeStdout } from '../util/chunked-write.js';
import { Diagnostics, warningLine } from '../util/diagnostics.js';
import { failureLines, logPath, postRender, writeLog } from '../postrender/postrender.js';
import { UsageError, UserError } from '../util/errors.js';
import { repeatable } from './options-table.js';
import {
  ENVIRONMENT_VARIABLES,
  generateOptionsFrom,
  postRenderOptions,
  type TransformArgs,
} from './transform-options.js';
import { VERSION } from '../version.js';

const HELM_PLUGIN_NAME = 'contrast';
const POST_RENDER_COMMAND = 'helm-post-render';

export const helmPostRenderCommand: CommandModule<object, TransformArgs> = {
  command: POST_RENDER_COMMAND,
  describe: 'Helm post-renderer: make the rendered chart confidential (stdin → stdout) and update manifest.json',
  builder: (y: Argv) =>
    postRenderOptions(y)
      .fail((msg, err) => {
        // Helm 4 hides our stderr: a wrong --post-renderer-args must reach render.log too.
        const error = err ?? new UsageError(msg);
        writeLog(logPath(workspaceDirIn(process.argv)), POST_RENDER_COMMAND, failureLines(error));
        throw error;
      })
      .example(
        'helm install app ./chart --post-renderer kubectl-contrast --post-renderer-args helm-post-render --post-renderer-args --platform=metal-qemu-snp',
        'Helm 3',
      )
      .example(
        'helm install app ./chart --post-renderer contrast --post-renderer-args --platform=metal-qemu-snp',
        'Helm 4, after `$0 helm-plugin install`',
      )
      .epilog(
        `Every flag can also be set through the environment (${ENVIRONMENT_VARIABLES.join(', ')}; see docs/helm-kustomize.md). The outcome of the last run is in <workspace-dir>/render.log.`,
      ),
  handler: async (argv) => {
    const log = logPath(argv['workspace-dir']);
    try {
      const input = await readStdin();
      if (input.text.trim() === '') {
        throw new UserError(
          'Helm passed no manifests (an empty chart, or a chart of hooks only, which Helm 3 does not post-render); refusing to print an empty release',
        );
      }
      input.name = 'rendered chart';
      const diagnostics = new Diagnostics();
      const r = await postRender([input], generateOptionsFrom(argv, diagnostics.warn), diagnostics);
      const warnings = diagnostics.warnings.map(warningLine);
      await writeStdout(r.texts[0]!);
      for (const w of warnings) process.stderr.write(`${w}\n`);
      writeLog(log, POST_RENDER_COMMAND, [`ok: ${r.summary}`, ...warnings]);
    } catch (err) {
      writeLog(log, POST_RENDER_COMMAND, failureLines(err));
      throw err;
    }
  },
};

/** --workspace-dir from a command line that did not parse (best effort, for the log). */
function workspaceDirIn(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--workspace-dir=')) return a.slice('--workspace-dir='.length);
    if (a === '--workspace-dir') return argv[i + 1];
  }
  return undefined;
}

interface HelmPluginArgs {
  action: 'install' | 'uninstall' | 'print';
  helm: string;
  dir: string;
  name: string;
  'post-render-arg': string[];
}

/**
 * How Helm should start us: the single executable itself, or the `kubectl-contrast` script.
 * A PATH entry that leads to the same file is preferred (krew's ~/.krew/bin link stays valid
 * across `krew upgrade`, the versioned store directory does not).
 */
function selfCommand(env: NodeJS.ProcessEnv = process.env): string {
  const self = realpathSync(isSingleExecutable() ? process.execPath : resolve(process.argv[1] ?? 'kubectl-contrast'));
  let path = self;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir || '.', 'kubectl-contrast');
    try {
      if (isAbsolute(candidate) && realpathSync(candidate) === self) {
        path = candidate;
        break;
      }
    } catch {
      /* not there */
    }
  }
  if (path.includes(' ')) {
    // Helm 4 splits platformCommand.command on spaces.
    throw new UserError(
      `Helm cannot run a plugin command whose path contains a space: ${path}; install kubectl-contrast elsewhere`,
    );
  }
  return path;
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

/** plugin.yaml of a Helm 4 post-renderer plugin that runs `command helm-post-render [args]`. */
function pluginYaml(name: string, command: string, extraArgs: string[] = []): string {
  const args = [POST_RENDER_COMMAND, ...extraArgs].map(yamlString).join(', ');
  return [
    'apiVersion: v1',
    'type: postrenderer/v1',
    `name: ${name}`,
    `version: ${VERSION}`,
    'runtime: subprocess',
    'runtimeConfig:',
    '  platformCommand:',
    `    - command: ${yamlString(command)}`,
    `      args: [${args}]`,
    '',
  ].join('\n');
}

function defaultPluginDir(): string {
  const data = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'kubectl-contrast', 'helm-plugin');
}

function runHelm(helm: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(helm, args, { encoding: 'utf8' });
  if (r.error)
    throw new UserError(
      `cannot run ${helm}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}; pass --helm PATH`,
    );
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** Helm's major version, from `helm version`. */
function helmMajor(helm: string): number {
  const r = runHelm(helm, ['version', '--template', '{{.Version}}']);
  const m = /^v?(\d+)\./.exec(r.stdout.trim());
  if (r.status !== 0 || !m) throw new UserError(`cannot tell the version of ${helm}: ${(r.stderr || r.stdout).trim()}`);
  return Number(m[1]);
}

export const helmPluginCommand: CommandModule<object, HelmPluginArgs> = {
  command: 'helm-plugin <action>',
  describe: 'Install the Helm 4 post-renderer plugin that runs this kubectl-contrast',
  builder: (y: Argv) =>
    y
      .positional('action', {
        choices: ['install', 'uninstall', 'print'] as const,
        demandOption: true,
        describe: 'install: write and install the plugin; uninstall: remove it; print: show its plugin.yaml',
      })
      .option('helm', { type: 'string', default: process.env.HELM_BIN || 'helm', describe: 'Helm 4 binary' })
      .option('dir', { type: 'string', default: defaultPluginDir(), describe: 'Where the plugin directory is written' })
      .option('name', {
        type: 'string',
        default: HELM_PLUGIN_NAME,
        describe: 'Plugin name (the value of --post-renderer)',
      })
      .option(
        'post-render-arg',
        repeatable(
          'Flag always passed to the post-renderer, e.g. --post-render-arg=--platform=metal-qemu-snp (repeat the flag for several)',
        ),
      )
      .check((argv) => {
        if (!/^[A-Za-z0-9_-]+$/.test(argv.name))
          throw new UsageError('--name may contain only letters, digits, "_" and "-"');
        return true;
      })
      .example(
        '$0 helm-plugin install',
        'Then: helm install app ./chart --post-renderer contrast --post-renderer-args --platform=metal-qemu-snp',
      ) as Argv<HelmPluginArgs>,
  handler: (argv) => {
    const yaml = pluginYaml(argv.name, selfCommand(), argv['post-render-arg']);
    if (argv.action === 'print') {
      process.stdout.write(yaml);
      return;
    }
    if (argv.action === 'uninstall') {
      const r = runHelm(argv.helm, ['plugin', 'uninstall', argv.name]);
      if (r.status !== 0) throw new UserError(`helm plugin uninstall ${argv.name} failed: ${r.stderr.trim()}`);
      process.stderr.write(`Helm plugin "${argv.name}" removed\n`);
      return;
    }
    const major = helmMajor(argv.helm);
    if (major < 4) {
      throw new UserError(
        `${argv.helm} is Helm ${major}, which takes post-renderers as executables, not plugins: use --post-renderer kubectl-contrast --post-renderer-args ${POST_RENDER_COMMAND}`,
      );
    }
    const dir = resolve(argv.dir, argv.name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'plugin.yaml'), yaml);
    const list = runHelm(argv.helm, ['plugin', 'list']);
    if (new RegExp(`^${argv.name}\\s`, 'm').test(list.stdout)) runHelm(argv.helm, ['plugin', 'uninstall', argv.name]);
    const r = runHelm(argv.helm, ['plugin', 'install', dir]);
    if (r.status !== 0) throw new UserError(`helm plugin install ${dir} failed: ${(r.stderr || r.stdout).trim()}`);
    process.stderr.write(
      `Helm plugin "${argv.name}" installed (${dir}); use: helm install … --post-renderer ${argv.name}\n`,
    );
  },
};

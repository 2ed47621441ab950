import { basename } from 'node:path';
import type { Argv } from 'yargs';
import { UsageError, UserError, errorMessage } from '../util/errors.js';
import { debugEnabled, levelFromVerbosity, parseLogLevel, setLogLevel } from '../util/log.js';
import { VERSION } from '../version.js';
import { commandsFor } from './command-index.js';

/** `kubectl contrast` when run as a kubectl plugin, the file name otherwise. */
function programName(argv0: string = process.argv[1] ?? 'kubectl-contrast'): string {
  const name = basename(argv0);
  return name.startsWith('kubectl-') ? `kubectl ${name.slice('kubectl-'.length)}` : name;
}

/**
 * The parser for these arguments. Commands are imported on demand (see command-index.ts), so
 * `--version` and each single command load only what they use.
 */
export async function buildParser(args: string[]): Promise<Argv> {
  const [commands, { default: yargs }] = await Promise.all([commandsFor(args), import('yargs')]);
  let parser = yargs(args)
    .scriptName(programName())
    .usage(
      '$0 <command> [options]\n\nDeploy and attest Confidential Containers (Contrast) from kubectl, Helm and kustomize.',
    )
    .version(VERSION)
    .alias('h', 'help')
    // kubectl's -v/--v is verbosity (kubectl passes it to plugins as given); the version is
    // --version or the `version` command.
    .option('v', {
      type: 'number',
      requiresArg: true,
      global: true,
      describe: "Verbosity as kubectl's: 4 or more prints debug output (also --log-level debug)",
    })
    .option('log-level', {
      type: 'string',
      requiresArg: true,
      global: true,
      describe:
        'debug, info, warn or error, as upstream Contrast (messages and warnings are always printed; debug adds the steps)',
    })
    .middleware((argv) => {
      if (argv['log-level'] !== undefined) {
        const level = parseLogLevel(String(argv['log-level']));
        if (level === undefined)
          throw new UsageError(`--log-level "${String(argv['log-level'])}": use debug, info, warn or error`);
        setLogLevel(level);
      } else if (argv.v !== undefined) {
        if (!Number.isInteger(argv.v) || (argv.v as number) < 0)
          throw new UsageError(
            `-v takes a verbosity level, a whole number as kubectl's (e.g. -v=4); the version is --version or \`${programName()} version\``,
          );
        setLogLevel(levelFromVerbosity(argv.v as number));
      }
    }, true)
    .strict()
    .demandCommand(1, 'Name a command; see --help.')
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      // yargs' own errors (a flag without its value, …) are usage errors too.
      if (err && err.name !== 'YError') throw err;
      throw new UsageError(usageMessage(msg ?? err?.message ?? ''));
    });
  for (const command of commands) parser = parser.command(command);
  skipHelpCache(parser);
  return parser;
}

/**
 * yargs lays out the whole help text each time it runs a command handler, in case the handler
 * fails and the help is to be shown (25–35 ms, every run). Our `.fail` throws instead of showing
 * it, and `--help` lays it out when asked, so that copy is never printed: skip making it.
 */
function skipHelpCache(parser: Argv): void {
  const internal = (parser as unknown as { getInternalMethods?: () => { getUsageInstance?: () => unknown } })
    .getInternalMethods?.()
    .getUsageInstance?.() as { cacheHelpMessage?: () => void } | undefined;
  if (typeof internal?.cacheHelpMessage === 'function') internal.cacheHelpMessage = () => undefined;
}

const camel = (name: string) => name.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/**
 * yargs' message, as a user reads it: no camel-case twin of a flag the user typed with dashes
 * ("Unknown arguments: skip-service-mesh, skipServiceMesh"), and -v explained.
 */
export function usageMessage(msg: string): string {
  const cleaned = msg.replace(
    /^(Unknown argument|Missing required argument)s?: (.*)$/gm,
    (_line, what: string, list: string) => {
      const names = list.split(', ');
      const kept = names.filter(
        (n) => !names.some((other) => other !== n && other.includes('-') && camel(other) === n),
      );
      return `${what}${kept.length > 1 ? 's' : ''}: ${kept.join(', ')}`;
    },
  );
  if (/^Not enough arguments following: v$/m.test(cleaned)) {
    return `-v takes a verbosity level as kubectl's (e.g. -v=4); the version is --version or \`${programName()} version\``;
  }
  return cleaned;
}

/** Runs the CLI and returns the exit code: 0 success, 1 failure, 2 usage error. */
export async function main(args: string[]): Promise<number> {
  setLogLevel(process.env.CONTRAST_DEBUG ? 'debug' : 'info'); // -v and --log-level apply to this run only
  if (args.length === 1 && args[0] === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  try {
    await (await buildParser(args)).parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    // Matched by name, not instanceof: a command module may be loaded as a second instance
    // (CommonJS and ESM copies under a test loader) with its own error classes.
    const name = err instanceof Error ? err.name : '';
    if (debugEnabled() && err instanceof Error) process.stderr.write(`debug: ${err.stack}\n`);
    if (err instanceof UsageError || name === 'UsageError') {
      process.stderr.write(`Error: ${(err as Error).message}\nSee '${programName()} --help'.\n`);
      return 2;
    }
    if (err instanceof UserError || name === 'UserError' || name === 'AttestationError') {
      process.stderr.write(`Error: ${(err as Error).message}\n`);
      return (err as UserError).exitCode ?? 1;
    }
    process.stderr.write(`Error: ${errorMessage(err)}\n`);
    return 1;
  }
}

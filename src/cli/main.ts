import { basename } from 'node:path';
import type { Argv } from 'yargs';
import { UsageError, UserError, errorMessage } from '../util/errors.js';
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
    .usage('$0 <command> [options]\n\nDeploy and attest Confidential Containers (Contrast) from kubectl, Helm and kustomize.')
    .version(VERSION)
    .alias('h', 'help')
    .alias('v', 'version')
    .strict()
    .demandCommand(1, 'Name a command; see --help.')
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(msg);
    });
  for (const command of commands) parser = parser.command(command);
  return parser;
}

/** Runs the CLI and returns the exit code: 0 success, 1 failure, 2 usage error. */
export async function main(args: string[]): Promise<number> {
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
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
    if (err instanceof UsageError || name === 'UsageError') {
      process.stderr.write(`Error: ${(err as Error).message}\nSee '${programName()} --help'.\n`);
      return 2;
    }
    if (err instanceof UserError || name === 'UserError' || name === 'AttestationError') {
      process.stderr.write(`Error: ${(err as Error).message}\n`);
      return (err as UserError).exitCode ?? 1;
    }
    process.stderr.write(`Error: ${errorMessage(err)}\n`);
    if (process.env.CONTRAST_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

import { basename } from 'node:path';
import yargs, { type Argv } from 'yargs';
import { UsageError, UserError, errorMessage } from '../util/errors.js';
import { commands } from './commands.js';
import { VERSION } from '../version.js';

/** `kubectl contrast` when run as a kubectl plugin, the file name otherwise. */
export function programName(argv0: string = process.argv[1] ?? 'kubectl-contrast'): string {
  const name = basename(argv0);
  return name.startsWith('kubectl-') ? `kubectl ${name.slice('kubectl-'.length)}` : name;
}

export function buildParser(args: string[]): Argv {
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
  try {
    await buildParser(args).parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`Error: ${err.message}\nSee '${programName()} --help'.\n`);
      return 2;
    }
    if (err instanceof UserError) {
      process.stderr.write(`Error: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`Error: ${errorMessage(err)}\n`);
    if (process.env.CONTRAST_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

/**
 * Shell completion for kubectl's plugin completion (kubectl ≥ 1.26): kubectl runs
 * `kubectl_complete-contrast <args…> <word being completed>` and reads one candidate per line,
 * optionally followed by `:<directive>` (Cobra's ShellCompDirective). The script calls the
 * hidden `__complete` command, which asks yargs for candidates and prints them plainly,
 * whatever shell yargs believes it runs in.
 */
import type { Argv, CommandModule } from 'yargs';
import { buildParser } from './main.js';

/** Cobra's ShellCompDirective values that we use. */
const DIRECTIVE_DEFAULT = 0; // let the shell complete file names
const DIRECTIVE_NO_FILE = 4;

interface CompleteArgs {
  words: string[];
}

/** Candidates for the last of `words` (the word being completed; "" for a new word). */
async function completions(words: string[]): Promise<string[]> {
  const current = words.length > 0 ? words[words.length - 1]! : '';
  const printed: string[] = [];
  const log = console.log;
  const shell = process.env.SHELL;
  process.env.SHELL = '/bin/bash'; // yargs formats zsh/fish candidates differently
  console.log = (...parts: unknown[]) => { printed.push(parts.map(String).join(' ')); };
  try {
    (await buildParser(['--get-yargs-completions', ...words])).completion('__yargs_completion', false).exitProcess(false).parseAsync();
  } catch {
    // An incomplete command line may not parse; offer nothing rather than an error.
  } finally {
    console.log = log;
    if (shell === undefined) delete process.env.SHELL; else process.env.SHELL = shell;
  }
  const candidates = printed.join('\n').split('\n').map((s) => s.trim())
    // yargs lists one-letter aliases as "--w"; kubectl users type "-w" and rarely complete it.
    .filter((s) => s !== '' && !/^--.$/.test(s) && !s.startsWith('__'))
    .filter((s) => s.startsWith(current))
    // Like Cobra: flags only once the user typed "-"; a new word may be a file.
    .filter((s) => current.startsWith('-') || !s.startsWith('-'));
  return [...new Set(candidates)];
}

export const completeCommand: CommandModule<object, CompleteArgs> = {
  command: '__complete [words..]',
  describe: false,
  builder: (y: Argv) => y
    .strict(false)
    .parserConfiguration({ 'unknown-options-as-args': true })
    .positional('words', { type: 'string', array: true, default: [] }) as Argv<CompleteArgs>,
  handler: async (argv) => {
    const words = argv.words.map(String);
    const found = await completions(words);
    const current = words[words.length - 1] ?? '';
    const directive = found.length > 0 || current.startsWith('-') ? DIRECTIVE_NO_FILE : DIRECTIVE_DEFAULT;
    process.stdout.write(`${found.map((c) => `${c}\n`).join('')}:${directive}\n`);
  },
};

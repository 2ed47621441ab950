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
  console.log = (...parts: unknown[]) => {
    printed.push(parts.map(String).join(' '));
  };
  try {
    (await buildParser(['--get-yargs-completions', ...words]))
      .completion('__yargs_completion', false)
      .exitProcess(false)
      .parseAsync();
  } catch {
    // An incomplete command line may not parse; offer nothing rather than an error.
  } finally {
    console.log = log;
    if (shell === undefined) delete process.env.SHELL;
    else process.env.SHELL = shell;
  }
  const candidates = printed
    .join('\n')
    .split('\n')
    .map((s) => s.trim())
    // yargs lists one-letter aliases as "--w"; kubectl users type "-w" and rarely complete it.
    .filter((s) => s !== '' && !/^--.$/.test(s) && !s.startsWith('__'))
    .filter((s) => s.startsWith(current))
    // Like Cobra: flags only once the user typed "-"; a new word may be a file.
    .filter((s) => current.startsWith('-') || !s.startsWith('-'));
  return [...new Set(candidates)];
}

/** The value of a kubectl flag among the words (`--flag v` or `--flag=v`), the last one given. */
function flagValue(words: readonly string[], names: readonly string[]): string | undefined {
  let value: string | undefined;
  words.forEach((w, i) => {
    for (const n of names) {
      if (w === n && i + 1 < words.length) value = words[i + 1];
      else if (w.startsWith(`${n}=`)) value = w.slice(n.length + 1);
    }
  });
  return value;
}

/**
 * Values of -n/--namespace and --context, as kubectl completes them: namespaces from the cluster
 * (with the kubeconfig and context the words name), contexts from the kubeconfig. Undefined when
 * the word being completed is not such a value.
 */
async function kubeValueCompletions(words: readonly string[]): Promise<string[] | undefined> {
  const current = words[words.length - 1] ?? '';
  const previous = words[words.length - 2];
  let what: 'namespace' | 'context' | undefined;
  let prefix = '';
  let partial = current;
  if (previous === '-n' || previous === '--namespace') what = 'namespace';
  else if (previous === '--context') what = 'context';
  else {
    const m = /^(-n=|--namespace=|--context=)(.*)$/.exec(current);
    if (m) {
      what = m[1] === '--context=' ? 'context' : 'namespace';
      prefix = m[1]!;
      partial = m[2]!;
    }
  }
  if (what === undefined) return undefined;
  const earlier = words.slice(0, -1);
  const kubeconfig = flagValue(earlier, ['--kubeconfig']);
  const context = flagValue(earlier, ['--context']);
  const { contextNames, namespaceNames } = await import('../kube/client.js');
  const names =
    what === 'context'
      ? contextNames({ ...(kubeconfig !== undefined ? { kubeconfig } : {}) })
      : await namespaceNames({
          ...(kubeconfig !== undefined ? { kubeconfig } : {}),
          ...(context !== undefined ? { context } : {}),
        });
  return names
    .filter((n) => n.startsWith(partial))
    .sort()
    .map((n) => `${prefix}${n}`);
}

export const completeCommand: CommandModule<object, CompleteArgs> = {
  command: '__complete [words..]',
  describe: false,
  builder: (y: Argv) =>
    y
      .strict(false)
      .parserConfiguration({ 'unknown-options-as-args': true })
      .positional('words', { type: 'string', array: true, default: [] }) as Argv<CompleteArgs>,
  handler: async (argv) => {
    const words = argv.words.map(String);
    const kubeValues = await kubeValueCompletions(words);
    if (kubeValues !== undefined) {
      process.stdout.write(`${kubeValues.map((c) => `${c}\n`).join('')}:${DIRECTIVE_NO_FILE}\n`);
      return;
    }
    const found = await completions(words);
    const current = words[words.length - 1] ?? '';
    const directive = found.length > 0 || current.startsWith('-') ? DIRECTIVE_NO_FILE : DIRECTIVE_DEFAULT;
    process.stdout.write(`${found.map((c) => `${c}\n`).join('')}:${directive}\n`);
  },
};

import assert from 'node:assert/strict';
import { COMMAND_LOADERS, commandsFor } from '../../src/cli/command-index.js';

describe('command index', () => {
  it('names exactly the registered top-level commands, each loading its own module', async () => {
    const registered = (await commandsFor([])).map((c) => String(c.command).split(' ')[0]).sort();
    assert.deepEqual(Object.keys(COMMAND_LOADERS).sort(), registered);
    for (const [name, load] of Object.entries(COMMAND_LOADERS)) {
      assert.equal(String((await load()).command).split(' ')[0], name);
    }
  });
});

describe('start-up: no help layout for a command that runs', () => {
  it('runs a command without yargs laying out (and caching) the help text, and --help still prints it', async () => {
    const { buildParser } = await import('../../src/cli/main.js');
    const write = process.stdout.write.bind(process.stdout);
    let out = '';
    process.stdout.write = ((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    }) as typeof process.stdout.write;
    try {
      const parser = await buildParser(['version', '-o', 'json']);
      await parser.parseAsync();
      const usage = (
        parser as unknown as { getInternalMethods(): { getUsageInstance(): { hasCachedHelpMessage(): boolean } } }
      )
        .getInternalMethods()
        .getUsageInstance();
      assert.equal(usage.hasCachedHelpMessage(), false);
      const help = await buildParser(['version', '--help']);
      await help.exitProcess(false).parseAsync();
    } finally {
      process.stdout.write = write;
    }
    assert.match(out, /"version"/, 'the command ran');
    assert.match(out, /--output/, 'the help of `version` was printed');
  });
});

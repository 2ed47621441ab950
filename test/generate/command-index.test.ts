import assert from 'node:assert/strict';
import { COMMAND_LOADERS } from '../../src/cli/command-index.js';
import { commands } from '../../src/cli/commands.js';

describe('command index', () => {
  it('names exactly the registered top-level commands, each loading its own module', async () => {
    const registered = commands.map((c) => String(c.command).split(' ')[0]).filter((n) => n !== '__complete').sort();
    assert.deepEqual(Object.keys(COMMAND_LOADERS).sort(), registered);
    for (const [name, load] of Object.entries(COMMAND_LOADERS)) {
      assert.equal(String((await load()).command).split(' ')[0], name);
    }
  });
});

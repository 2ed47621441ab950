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

import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/cli.js';

const INPUTS = join(REPO_ROOT, 'src', 'resources', 'inputs.ts');

/**
 * readStdin in a child process, fed `parts` with a pause between them (each part arrives as a
 * read of its own). `nonBlocking`: the child touches process.stdin first, which makes the pipe
 * non-blocking, so reading starts with EAGAIN.
 */
function readThroughStdin(parts: Buffer[], nonBlocking = false): Promise<{ text?: string; error?: string }> {
  const code = [
    `import { readStdin } from ${JSON.stringify(INPUTS)};`,
    nonBlocking ? 'process.stdin;' : '',
    'readStdin().then((f) => process.stdout.write(JSON.stringify({ text: f.text })),',
    '  (e) => process.stdout.write(JSON.stringify({ error: e.message })));',
  ].join('\n');
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  void (async () => {
    for (const p of parts) {
      child.stdin.write(p);
      await new Promise((r) => setTimeout(r, 150));
    }
    child.stdin.end();
  })();
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => (status === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${status}`))));
  });
}

describe('standard input', function () {
  it('decodes characters split between reads, and drops a BOM split between reads', async () => {
    const text = 'name: "é€𝄞"\n';
    const bytes = Buffer.from(text, 'utf8');
    for (const cut of [7, 8, 9, 10, 11, 12, 13, 14]) {
      const got = await readThroughStdin([bytes.subarray(0, cut), bytes.subarray(cut)]);
      assert.equal(got.text, text, `cut at ${cut}`);
    }
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]);
    assert.equal((await readThroughStdin([bom.subarray(0, 2), bom.subarray(2)])).text, text);
  });

  it('reads more than one buffer (1 MiB) with characters across every read', async () => {
    const text = `a: "${'é€'.repeat(300_000)}"\n`;
    const bytes = Buffer.from(text, 'utf8');
    const got = await readThroughStdin([bytes.subarray(0, 1_500_001), bytes.subarray(1_500_001)]);
    assert.equal(got.text, text);
  });

  it('reads a pipe that was left non-blocking (EAGAIN) to the end', async () => {
    const got = await readThroughStdin([Buffer.from('a: 1\n'), Buffer.from('b: "é"\n')], true);
    assert.equal(got.text, 'a: 1\nb: "é"\n');
  });

  it('refuses invalid UTF-8, a character cut by the end of input, and NUL bytes', async () => {
    const invalid = await readThroughStdin([Buffer.from('a: '), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]);
    assert.match(invalid.error ?? '', /not valid UTF-8/);
    const cut = await readThroughStdin([Buffer.from('a: '), Buffer.from([0xe2, 0x82])]);
    assert.match(cut.error ?? '', /not valid UTF-8/);
    const nul = await readThroughStdin([Buffer.from('a: 1\n\0')]);
    assert.match(nul.error ?? '', /NUL byte/);
  });

  it('stops reading an endless input at the size limit', async () => {
    const zero = openSync('/dev/zero', 'r');
    try {
      const code = `import { readStdin } from ${JSON.stringify(INPUTS)};\nreadStdin().then(() => process.stdout.write('read'), (e) => process.stdout.write(e.message));`;
      const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], {
        stdio: [zero, 'pipe', 'inherit'],
        encoding: 'utf8',
      });
      assert.equal(r.status, 0);
      assert.match(r.stdout, /standard input is larger than 256 MiB/);
    } finally {
      closeSync(zero);
    }
  });
});

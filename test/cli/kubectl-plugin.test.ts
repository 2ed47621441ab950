/** The plugin as kubectl finds it: a real `kubectl` binary discovering bin/kubectl-contrast on PATH. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ensureBuilt, REPO_ROOT, simGenerateArgs } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

function kubectl(args: string[], input = '') {
  ensureBuilt();
  const env = { ...process.env, PATH: `${join(REPO_ROOT, 'bin')}${delimiter}${process.env.PATH}` };
  const r = spawnSync('kubectl', args, { env, input, encoding: 'utf8' });
  if (r.error) throw new Error(`kubectl is not installed (scripts/setup.sh installs it): ${r.error.message}`);
  return r;
}

describe('kubectl plugin discovery', function () {
  this.timeout(60_000);

  it('kubectl plugin list finds kubectl-contrast', () => {
    const r = kubectl(['plugin', 'list']);
    assert.match(r.stdout, /bin\/kubectl-contrast/);
  });

  it('kubectl contrast --version and --help run the plugin', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    const version = kubectl(['contrast', '--version']);
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout.trim(), pkg.version);
    const help = kubectl(['contrast', 'generate', '--help']);
    assert.match(help.stdout, /^kubectl contrast generate/);
  });

  it('kubectl contrast generate transforms a stream and propagates exit codes', () => {
    const ws = tempDir();
    try {
      const input = readFileSync(join(REPO_ROOT, 'samples', 'plain', 'api.yaml'), 'utf8');
      const ok = kubectl(['contrast', ...simGenerateArgs(ws), '-'], input);
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout, /runtimeClassName: contrast-cc-insecure-sim-[0-9a-f]{8}/);
      const usage = kubectl(['contrast', 'generate', '--platform', 'nope']);
      assert.equal(usage.status, 2);
      const bad = kubectl(['contrast', 'generate', '--workspace-dir', ws, '-'], 'kind: [\n');
      assert.equal(bad.status, 1);
      assert.equal(bad.stdout, '');
    } finally {
      removeDir(ws);
    }
  });
});

/**
 * Issue 14, item 1: a list-valued flag takes one value per occurrence, so the paths after it
 * stay inputs; `generate` never reads a terminal and refuses an empty input stream.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ensureBuilt, REPO_ROOT, runCli } from '../helpers/cli.js';
import { SAMPLE_IMAGES } from '../helpers/images.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { TRANSFORM_OPTIONS } from '../../src/cli/options-table.js';
import { parseTransformArgs } from '../../src/cli/transform-options.js';

const SAMPLES = join(REPO_ROOT, 'samples', 'plain');

describe('list-valued flags and the input stream (issue 14, item 1)', function () {
  this.timeout(180_000);
  let dir: string;
  beforeEach(() => {
    dir = tempDir('kc-lists-');
  });
  afterEach(() => removeDir(dir));

  const app = () => {
    cpSync(SAMPLES, join(dir, 'app'), { recursive: true });
    return join(dir, 'app');
  };

  for (const form of ['space', 'equals'] as const) {
    it(`generate --oci-layout DIR deployment/ (${form}) transforms deployment/, not standard input`, () => {
      const ws = join(dir, 'ws');
      const layout = form === 'space' ? ['--oci-layout', SAMPLE_IMAGES] : [`--oci-layout=${SAMPLE_IMAGES}`];
      const r = runCli([
        'generate',
        '--platform',
        'insecure-sim',
        '--offline',
        '--no-cache',
        '--workspace-dir',
        ws,
        ...layout,
        app(),
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /4 confidential workloads written in place \(4 of 4 files changed\)/);
      const manifest = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8'));
      assert.equal(Object.keys(manifest.Policies).length, 4);
    });
  }

  it('-w KEY deployment/: the key is the one value of -w, deployment/ is the input', () => {
    const ws = join(dir, 'ws');
    mkdirSync(ws);
    const first = runCli(
      [
        'generate',
        '--platform',
        'insecure-sim',
        '--offline',
        '--no-cache',
        '--oci-layout',
        SAMPLE_IMAGES,
        '--workspace-dir',
        ws,
        '-',
      ],
      { input: readFileSync(join(SAMPLES, 'web.yaml'), 'utf8') },
    );
    assert.equal(first.code, 0, first.stderr);
    const key = join(ws, 'workload-owner.pem');
    const other = join(dir, 'ws2');
    const r = runCli([
      'generate',
      '--platform',
      'insecure-sim',
      '--offline',
      '--no-cache',
      '--oci-layout',
      SAMPLE_IMAGES,
      '--workspace-dir',
      other,
      '-w',
      key,
      app(),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /4 confidential workloads/);
    assert.equal(existsSync(join(other, 'workload-owner.pem')), false, 'the given key is used, no new one is made');
  });

  it('paths after -- are inputs', () => {
    const ws = join(dir, 'ws');
    const r = runCli([
      'generate',
      '--platform',
      'insecure-sim',
      '--offline',
      '--no-cache',
      '--workspace-dir',
      ws,
      '--oci-layout',
      SAMPLE_IMAGES,
      '--',
      app(),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /4 confidential workloads written in place/);
  });

  it('a repeated list flag collects every occurrence', () => {
    const argv = parseTransformArgs(['--oci-layout', 'a', '--oci-layout=b', '--insecure-registry', 'r:5000'], {});
    assert.deepEqual(argv['oci-layout'], ['a', 'b']);
    assert.deepEqual(argv['insecure-registry'], ['r:5000']);
    assert.deepEqual(argv['docker-archive'], []);
  });

  for (const o of TRANSFORM_OPTIONS.filter((row) => row.kind === 'list')) {
    it(`--${o.flag} takes exactly one value`, () => {
      assert.throws(
        () => parseTransformArgs([`--${o.flag}`, 'one', 'two'], {}),
        /unexpected argument "two"|Unknown argument: two/,
      );
      if ('alias' in o)
        assert.throws(
          () => parseTransformArgs([`-${o.alias}`, 'one', 'two'], {}),
          /unexpected argument "two"|Unknown argument: two/,
        );
    });
  }

  it('helm-plugin --post-render-arg takes one value per occurrence', () => {
    const r = runCli([
      'helm-plugin',
      'print',
      '--post-render-arg=--platform=insecure-sim',
      '--post-render-arg=--offline',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /args: \["helm-post-render", "--platform=insecure-sim", "--offline"\]/);
    const greedy = runCli(['helm-plugin', '--post-render-arg=--offline', 'print']);
    assert.equal(greedy.code, 0, `"print" is the action, not a second value: ${greedy.stderr}`);
  });

  describe('the input stream', () => {
    it('an empty standard input is refused: exit 1, nothing written', () => {
      const ws = join(dir, 'ws');
      for (const args of [['-'], []]) {
        const r = runCli(['generate', '--platform', 'insecure-sim', '--workspace-dir', ws, ...args], { input: '' });
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /standard input is empty/);
        assert.equal(r.stdout, '');
        assert.equal(existsSync(join(ws, 'manifest.json')), false);
      }
      const comments = runCli(['generate', '--platform', 'insecure-sim', '--workspace-dir', ws, '-'], {
        input: '# nothing\n---\n',
      });
      assert.equal(comments.code, 1, comments.stderr);
      assert.match(comments.stderr, /standard input is empty/);
    });

    it('a directory without YAML files is refused, manifest.json is left as it was', () => {
      const ws = join(dir, 'ws');
      mkdirSync(ws);
      writeFileSync(join(ws, 'manifest.json'), '{"keep": true}\n');
      const empty = join(dir, 'empty');
      mkdirSync(empty);
      const r = runCli(['generate', '--platform', 'insecure-sim', '--workspace-dir', ws, empty]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /no \*\.yaml or \*\.yml files/);
      assert.equal(readFileSync(join(ws, 'manifest.json'), 'utf8'), '{"keep": true}\n');
    });

    it('without paths on a terminal: a usage error at once, no wait for input', function () {
      ensureBuilt();
      // `script` gives the CLI a pseudo-terminal as standard input; a CLI that read it would hang
      // until the timeout kills it.
      const ws = join(dir, 'ws');
      const r = spawnSync(
        'script',
        [
          '-qec',
          `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} generate --platform insecure-sim --workspace-dir ${JSON.stringify(ws)}`,
          '/dev/null',
        ],
        {
          encoding: 'utf8',
          timeout: 60_000,
          input: '',
        },
      );
      if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') this.skip();
      assert.notEqual(r.signal, 'SIGTERM', 'generate waited for input on a terminal');
      assert.equal(r.status, 2, r.stdout);
      assert.match(r.stdout, /standard input is a terminal/);
      assert.equal(existsSync(join(ws, 'manifest.json')), false);
    });
  });
});

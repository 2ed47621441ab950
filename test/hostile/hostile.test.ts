/**
 * Hostile input: every file in test/hostile/cases has an expected outcome in expectations.json.
 * Each run is bounded (a time limit and a heap limit for the child process): a hang or an
 * out-of-memory crash fails the test just like a wrong answer.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, ensureBuilt, REPO_ROOT } from '../helpers/cli.js';
import { SAMPLE_IMAGES } from '../helpers/images.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { decodeInitDataAnnotation, INITDATA_ANNOTATION } from '../../src/policy/initdata.js';
import { docs } from '../generate/harness.js';

const CASES = join(REPO_ROOT, 'test', 'hostile', 'cases');
const expectations = JSON.parse(
  readFileSync(join(REPO_ROOT, 'test', 'hostile', 'expectations.json'), 'utf8'),
) as Record<string, { exit: number; stderr: string | null; note: string }>;

/** The CLI with a heap limit and a time limit. */
function boundedRun(args: string[], heapMb = 512, timeoutMs = 120_000) {
  ensureBuilt();
  const r = spawnSync(process.execPath, [`--max-old-space-size=${heapMb}`, CLI, ...args], {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 512 * 1024 * 1024,
  });
  assert.equal(r.signal, null, `the run was killed (${r.signal}): hang or resource exhaustion`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const IMG = ['--oci-layout', SAMPLE_IMAGES, '--offline', '--no-cache', '--platform', 'insecure-sim'];

describe('hostile input', function () {
  this.timeout(300_000);
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => removeDir(dir));

  for (const [name, expected] of Object.entries(expectations)) {
    it(`${name}: ${expected.exit === 0 ? 'correct result' : 'clear error'}${expected.note ? ` (${expected.note})` : ''}`, () => {
      const file = join(dir, name);
      copyFileSync(join(CASES, name), file);
      const before = readFileSync(file);
      const r = boundedRun(['generate', ...IMG, '--workspace-dir', join(dir, 'ws'), file]);
      assert.equal(r.code, expected.exit, r.stderr);
      if (expected.stderr) assert.match(r.stderr, new RegExp(expected.stderr));
      assert.equal(r.stdout, '');
      if (expected.exit !== 0) {
        assert.deepEqual(readFileSync(file), before, 'a failed run leaves the input untouched');
        assert.equal(existsSync(join(dir, 'ws', 'manifest.json')), false, 'and writes no manifest');
      }
    });
  }

  it('non-confidential hostile-looking files pass through byte for byte', () => {
    for (const name of ['non-string-keys.yaml', 'bom.yaml', 'crlf.yaml']) {
      const file = join(dir, name);
      copyFileSync(join(CASES, name), file);
      const r = boundedRun(['generate', ...IMG, '--workspace-dir', join(dir, 'ws'), file]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readFileSync(file), readFileSync(join(CASES, name)), name);
    }
  });

  it('replaces a corrupted policy annotation with a valid one', () => {
    const file = join(dir, 'p.yaml');
    copyFileSync(join(CASES, 'corrupt-policy-annotation.yaml'), file);
    const r = boundedRun(['generate', ...IMG, '--workspace-dir', join(dir, 'ws'), file]);
    assert.equal(r.code, 0, r.stderr);
    const [pod] = docs(readFileSync(file, 'utf8'));
    const decoded = decodeInitDataAnnotation(pod.metadata.annotations[INITDATA_ANNOTATION]);
    const manifest = JSON.parse(readFileSync(join(dir, 'ws', 'manifest.json'), 'utf8'));
    assert.deepEqual(Object.keys(manifest.Policies), [decoded.hash]);
  });

  it('a 100 MB stream passes through unchanged within the bounds', () => {
    const doc = (i: number) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  key: ${'x'.repeat(900)}\n---\n`;
    const parts: string[] = [];
    for (let i = 0; i < 100_000; i++) parts.push(doc(i));
    const file = join(dir, 'big.yaml');
    writeFileSync(file, parts.join(''));
    const out = join(dir, 'out.yaml');
    const r = boundedRun(['generate', ...IMG, '--workspace-dir', join(dir, 'ws'), '-o', out, file], 2048, 600_000);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(out).equals(readFileSync(file)), 'byte-identical');
  });

  it('a huge annotation on a confidential pod is kept exactly', () => {
    const big = 'v'.repeat(5 * 1024 * 1024);
    const file = join(dir, 'pod.yaml');
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    example.com/huge: ${big}\nspec:\n  runtimeClassName: contrast-cc\n  securityContext: {supplementalGroups: [2000]}\n  containers:\n  - name: c\n    image: ghcr.io/kubectl-contrast/samples/worker:1.0\n    securityContext: {runAsUser: 1001, runAsGroup: 1001}\n`,
    );
    const r = boundedRun(['generate', ...IMG, '--workspace-dir', join(dir, 'ws'), file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(docs(readFileSync(file, 'utf8'))[0].metadata.annotations['example.com/huge'], big);
  });

  describe('workspace files', () => {
    const input = () => {
      const file = join(dir, 'worker.yaml');
      copyFileSync(join(REPO_ROOT, 'samples', 'plain', 'worker.yaml'), file);
      return file;
    };
    const manifestCases: [string, string, RegExp][] = [
      ['not JSON', 'this is not json', /manifest\.json: manifest is not valid JSON/],
      ['an array', '[]', /manifest\.json, field \(top level\): manifest must be a JSON object/],
      [
        'a bad policy hash',
        '{"Policies": {"abc": {"SANs": []}}}',
        /field Policies\["abc"\]: policy hash must be 64 lower-case hex characters/,
      ],
      ['an unknown field', '{"Policiez": {}}', /field Policiez: unknown field "Policiez"/],
      [
        'SANs of the wrong type',
        `{"Policies": {"${'a'.repeat(64)}": {"SANs": "x"}}}`,
        /SANs: must be a list of strings/,
      ],
      [
        'an unknown role',
        `{"Policies": {"${'a'.repeat(64)}": {"SANs": [], "Role": "admin"}}}`,
        /Role: unknown role "admin"/,
      ],
      [
        'a key that is not hex',
        '{"WorkloadOwnerPubKeys": ["zz"]}',
        /WorkloadOwnerPubKeys\[0\]: must be a hex-encoded public key/,
      ],
      [
        'an unknown reference value type',
        '{"ReferenceValues": {"sgx": []}}',
        /ReferenceValues\.sgx: unknown platform type/,
      ],
    ];
    for (const [what, text, pattern] of manifestCases) {
      it(`a manifest.json with ${what} is reported and left alone`, () => {
        const ws = join(dir, 'ws');
        mkdirSync(ws);
        writeFileSync(join(ws, 'manifest.json'), text);
        const file = input();
        const before = readFileSync(file, 'utf8');
        const r = boundedRun(['generate', ...IMG, '--workspace-dir', ws, file]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, pattern);
        assert.equal(readFileSync(join(ws, 'manifest.json'), 'utf8'), text);
        assert.equal(readFileSync(file, 'utf8'), before);
      });
    }

    it('a key file that is not a key, or a key of the wrong kind', () => {
      const ws = join(dir, 'ws');
      mkdirSync(ws);
      writeFileSync(join(ws, 'workload-owner.pem'), 'not a key', { mode: 0o600 });
      const r = boundedRun(['generate', ...IMG, '--workspace-dir', ws, input()]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /workload-owner\.pem: not a PEM-encoded private or public key/);
      assert.equal(readFileSync(join(ws, 'workload-owner.pem'), 'utf8'), 'not a key', 'never overwritten');
    });

    it('a private key readable by others gets a warning', () => {
      const ws = join(dir, 'ws');
      const first = boundedRun(['generate', ...IMG, '--workspace-dir', ws, input()]);
      assert.equal(first.code, 0, first.stderr);
      chmodSync(join(ws, 'seedshare-owner.pem'), 0o644);
      const r = boundedRun(['generate', ...IMG, '--workspace-dir', ws, input()]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /seedshare-owner\.pem: private key is accessible by other users \(mode 644\); run chmod 600/,
      );
    });
  });
});

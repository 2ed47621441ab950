import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, REPO_ROOT } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { docs } from './harness.js';
import { SAMPLE_IMAGES } from '../helpers/images.js';

/** Offline image source for every run: the committed sample images. */
const IMG = ['--oci-layout', SAMPLE_IMAGES, '--offline', '--no-cache'];

const SAMPLES = join(REPO_ROOT, 'samples', 'plain');

/** Every file below `dir`, with its content, to prove a failed run changed nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[p] = readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return out;
}

describe('kubectl contrast generate (CLI)', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => removeDir(dir));

  const sampleCopy = () => {
    cpSync(SAMPLES, join(dir, 'app'), { recursive: true });
    return join(dir, 'app');
  };

  it('edits files in place, creates keys with mode 0600 and writes manifest.json', () => {
    const app = sampleCopy();
    const before = snapshot(app);
    const ws = join(dir, 'ws');
    const r = runCli(['generate', ...IMG, '--platform', 'metal-qemu-snp', '--workspace-dir', ws, app]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '', 'in-place mode prints no data');
    assert.match(r.stderr, /4 confidential workloads written in place \(4 of 4 files changed\)/);
    const after = snapshot(app);
    for (const f of Object.keys(before)) assert.notEqual(after[f], before[f], `${f} was rewritten`);
    for (const key of ['workload-owner.pem', 'seedshare-owner.pem']) {
      assert.equal(statSync(join(ws, key)).mode & 0o777, 0o600, `${key} is private`);
    }
    const manifest = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8'));
    assert.equal(Object.keys(manifest.Policies).length, 4);
    assert.equal(manifest.WorkloadOwnerPubKeys.length, 1);
    assert.equal(manifest.SeedshareOwnerPubKeys.length, 1);
    assert.ok(readFileSync(join(ws, 'manifest.json'), 'utf8').endsWith('}\n'));

    // A second run changes nothing and keeps the keys.
    const keys = ['workload-owner.pem', 'seedshare-owner.pem'].map((k) => readFileSync(join(ws, k), 'utf8'));
    const manifestText = readFileSync(join(ws, 'manifest.json'), 'utf8');
    const again = runCli(['generate', ...IMG, '--platform', 'metal-qemu-snp', '--workspace-dir', ws, app]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /\(0 of 4 files changed\).*unchanged/);
    assert.deepEqual(snapshot(app), after);
    assert.deepEqual(
      ['workload-owner.pem', 'seedshare-owner.pem'].map((k) => readFileSync(join(ws, k), 'utf8')),
      keys,
    );
    assert.equal(readFileSync(join(ws, 'manifest.json'), 'utf8'), manifestText);
  });

  it('reads standard input and writes standard output', () => {
    const input = readFileSync(join(SAMPLES, 'web.yaml'), 'utf8');
    const r = runCli(['generate', ...IMG, '--platform', 'insecure-sim', '--workspace-dir', join(dir, 'ws'), '-'], {
      input,
    });
    assert.equal(r.code, 0, r.stderr);
    const out = docs(r.stdout);
    assert.equal(out.length, 3);
    assert.match(out[0].spec.template.spec.runtimeClassName, /^contrast-cc-insecure-sim-[0-9a-f]{8}$/);
    assert.ok(
      r.stdout.endsWith(input.slice(input.indexOf('---\napiVersion: v1\nkind: ConfigMap'))),
      'untouched documents are byte-identical',
    );
  });

  it('writes all inputs into one -o file and leaves the inputs alone', () => {
    const app = sampleCopy();
    const before = snapshot(app);
    const out = join(dir, 'out.yaml');
    const r = runCli([
      'generate',
      ...IMG,
      '--platform',
      'metal-qemu-tdx',
      '--workspace-dir',
      join(dir, 'ws'),
      '-o',
      out,
      app,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(snapshot(app), before);
    const kinds = docs(readFileSync(out, 'utf8')).map((d) => d.kind);
    assert.deepEqual(kinds, [
      'StatefulSet',
      'ConfigMap',
      'Service',
      'ServiceAccount',
      'Role',
      'RoleBinding',
      'StatefulSet',
      'Service',
      'Service',
      'Service', // coordinator-peers (the replicas find each other through it)
      'Deployment',
      'ConfigMap',
      'Service',
      'CronJob',
      'Job',
    ]);
  });

  it('uses an explicit workload owner key and --disable-updates', () => {
    const ws = join(dir, 'ws');
    const input = readFileSync(join(SAMPLES, 'worker.yaml'), 'utf8');
    const ok = runCli(['generate', ...IMG, '--platform', 'insecure-sim', '--workspace-dir', ws, '-d', '-'], { input });
    assert.equal(ok.code, 0, ok.stderr);
    const manifest = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8'));
    assert.deepEqual(manifest.WorkloadOwnerPubKeys, []);
    assert.equal(existsSync(join(ws, 'workload-owner.pem')), false, 'no workload owner key is created');
  });

  describe('bad input: clear error, exit code, nothing written', () => {
    const cases: { name: string; files: Record<string, string>; args?: string[]; code: number; message: RegExp }[] = [
      {
        name: 'malformed YAML',
        files: { 'a.yaml': 'apiVersion: v1\nkind: Pod\nmetadata: {name: x\n' },
        code: 1,
        message: /a\.yaml, document 1: invalid YAML: .*line \d+/,
      },
      {
        name: 'a document without kind',
        files: { 'a.yaml': 'kind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nmetadata: {name: nokind}\n' },
        code: 1,
        message: /a\.yaml, document 2, <no kind> nokind, field kind: resource has no kind/,
      },
      {
        name: 'a scalar document',
        files: { 'a.yaml': 'just a string\n' },
        code: 1,
        message: /a\.yaml, document 1.*expected a Kubernetes resource \(a mapping\), found a string/,
      },
      {
        name: 'an unknown runtime class variant',
        files: {
          'a.yaml':
            'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  runtimeClassName: contrast-cc-sev\n  containers: [{name: c, image: i}]\n',
        },
        code: 1,
        message:
          /a\.yaml, document 1, Pod default\/p|a\.yaml, document 1, Pod p, field spec\.runtimeClassName: "contrast-cc-sev" is not a known Contrast runtime class/,
      },
      {
        name: 'duplicate keys',
        files: { 'a.yaml': 'apiVersion: v1\nkind: Pod\nkind: Service\n' },
        code: 1,
        message: /a\.yaml, document 1: invalid YAML: Map keys must be unique/,
      },
      {
        name: 'invalid UTF-8',
        files: { 'a.yaml': 'kind: ConfigMap\n\u0000' },
        code: 1,
        message: /a\.yaml: input contains a NUL byte/,
      },
      {
        name: 'conflicting flags',
        files: { 'a.yaml': 'kind: ConfigMap\n' },
        args: ['--disable-updates', '-w', 'x.pem'],
        code: 2,
        message: /--disable-updates and --add-workload-owner-key exclude each other/,
      },
      {
        name: 'an unknown platform',
        files: { 'a.yaml': 'kind: ConfigMap\n' },
        args: ['--platform', 'aks'],
        code: 2,
        message: /Invalid values:[\s\S]*platform/,
      },
      {
        name: 'a missing input file',
        files: {},
        args: ['missing.yaml'],
        code: 1,
        message: /missing\.yaml: cannot read input: no such file or directory/,
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const app = join(dir, 'app');
        mkdirSync(app);
        for (const [name, text] of Object.entries(c.files)) writeFileSync(join(app, name), text);
        // A valid confidential workload next to the bad file must not be rewritten either.
        cpSync(join(SAMPLES, 'web.yaml'), join(app, 'web.yaml'));
        const before = snapshot(app);
        const ws = join(dir, 'ws');
        const args = c.args?.includes('missing.yaml')
          ? ['generate', '--platform', 'metal-qemu-snp', '--workspace-dir', ws, join(app, 'missing.yaml')]
          : ['generate', '--platform', 'metal-qemu-snp', '--workspace-dir', ws, ...(c.args ?? []), app];
        const r = runCli(args);
        assert.equal(r.code, c.code, r.stderr);
        assert.match(r.stderr, c.message);
        assert.equal(r.stdout, '');
        assert.deepEqual(snapshot(app), before, 'no input file was modified');
        assert.equal(existsSync(join(ws, 'manifest.json')), false, 'no manifest was written');
      });
    }

    it('an unreadable file', () => {
      // Root reads every file whatever its mode: run the CLI as an unprivileged user then.
      const asUser = process.getuid?.() === 0 ? { uid: 65534, env: { HOME: dir } } : {};
      if (asUser.uid !== undefined) chmodSync(dir, 0o777);
      const p = join(dir, 'x.yaml');
      writeFileSync(p, 'kind: ConfigMap\n');
      chmodSync(p, 0);
      const r = runCli(
        ['generate', ...IMG, '--platform', 'metal-qemu-snp', '--workspace-dir', join(dir, 'ws'), p],
        asUser,
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /x\.yaml: cannot read input: permission denied/);
      assert.equal(existsSync(join(dir, 'ws', 'manifest.json')), false);
    });

    it('a corrupted manifest.json is reported, not overwritten', () => {
      const ws = join(dir, 'ws');
      mkdirSync(ws);
      writeFileSync(join(ws, 'manifest.json'), '{"Policies": [}');
      const r = runCli(['generate', ...IMG, '--platform', 'metal-qemu-snp', '--workspace-dir', ws, '-'], {
        input: readFileSync(join(SAMPLES, 'web.yaml'), 'utf8'),
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /manifest\.json: manifest is not valid JSON/);
      assert.equal(readFileSync(join(ws, 'manifest.json'), 'utf8'), '{"Policies": [}');
      assert.equal(r.stdout, '');
    });

    it('a settings.json regex the self-check cannot sample is reported with its field (it looped for ever)', () => {
      const ws = join(dir, 'ws');
      const seed = runCli(['generate', ...IMG, '--platform', 'metal-qemu-snp', '--workspace-dir', ws, '-'], {
        input: readFileSync(join(SAMPLES, 'web.yaml'), 'utf8'),
      });
      assert.equal(seed.code, 0, seed.stderr);
      const settings = JSON.parse(readFileSync(join(ws, 'settings.json'), 'utf8'));
      settings.pauseContainer.annotations['io.kubernetes.cri.sandbox-log-directory'] = '^/var/log/pods/[a-z';
      writeFileSync(join(ws, 'settings.json'), JSON.stringify(settings, null, 2));
      const before = snapshot(ws);
      const r = runCli(['generate', ...IMG, '--platform', 'metal-qemu-snp', '--workspace-dir', ws, '-'], {
        input: readFileSync(join(SAMPLES, 'web.yaml'), 'utf8'),
      });
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /settings\.json, field pauseContainer\.annotations\["io\.kubernetes\.cri\.sandbox-log-directory"\]: the regular expression "\^\/var\/log\/pods\/\[a-z" has a character class without its \]/,
      );
      assert.equal(r.stdout, '');
      assert.deepEqual(snapshot(ws), before);
    });

    it('a workload owner key of the wrong type', () => {
      const ws = join(dir, 'ws');
      const rsa = join(dir, 'rsa.pem');
      writeFileSync(
        rsa,
        generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }),
        { mode: 0o600 },
      );
      const r = runCli(['generate', ...IMG, '--platform', 'metal-qemu-snp', '--workspace-dir', ws, '-w', rsa, '-'], {
        input: readFileSync(join(SAMPLES, 'web.yaml'), 'utf8'),
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /rsa\.pem: a workload owner key must be ECDSA P-384, found rsa 2048 bits/);
      assert.equal(r.stdout, '');
    });
  });

  it('prints help with examples for the root and for generate, and the version', () => {
    const root = runCli(['--help']);
    assert.equal(root.code, 0);
    assert.match(root.stdout, /kubectl contrast <command>/);
    assert.match(root.stdout, /generate/);
    const help = runCli(['generate', ...IMG, '-h']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Examples:/);
    assert.match(help.stdout, /--platform/);
    const version = runCli(['--version']);
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    assert.equal(version.stdout.trim(), pkg.version);
    const unknown = runCli(['frobnicate']);
    assert.equal(unknown.code, 2);
  });
});

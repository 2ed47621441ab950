import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiServer, type ApiServer } from '../helpers/apiserver.js';
import { runCli, REPO_ROOT } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const IMAGES = ['--oci-layout', join(REPO_ROOT, 'samples/images'), '--offline', '--no-cache'];
const SAMPLES = ['api.yaml', 'web.yaml', 'worker.yaml', 'coordinator.yaml'];

describe('generate --validate-server against a real API server', function () {
  this.timeout(300_000);
  let api: ApiServer;
  let work: string;

  before(async function () {
    api = await apiServer();
    work = tempDir('kc-validate-');
  });
  after(() => removeDir(work));

  for (const platform of ['metal-qemu-snp', 'insecure-sim']) {
    for (const sample of SAMPLES) {
      it(`server-side dry run of generate's output for samples/plain/${sample} (${platform})`, function () {
        const out = join(work, `${platform}-${sample}`);
        const r = runCli([
          'generate',
          '--validate-server',
          '--kubeconfig',
          api.kubeconfig,
          '--platform',
          platform,
          '--workspace-dir',
          join(work, `ws-${platform}-${sample}`),
          '-o',
          out,
          ...IMAGES,
          join(REPO_ROOT, 'samples/plain', sample),
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /The API server accepted all \d+ resources \(server-side dry run\)/);
        assert.ok(existsSync(out));
      });
    }
  }

  it('refuses ConfigMap data that Kubernetes reads as a boolean (unquoted on), writing nothing', () => {
    const input = join(work, 'bool-data.yaml');
    writeFileSync(
      input,
      readFileSync(join(REPO_ROOT, 'samples/plain', 'web.yaml'), 'utf8').replace('compress: "on"', 'compress: on'),
    );
    const out = join(work, 'bool-data.out.yaml');
    const r = runCli([
      'generate',
      '--validate-server',
      '--kubeconfig',
      api.kubeconfig,
      '--platform',
      'insecure-sim',
      '--workspace-dir',
      join(work, 'ws-bool'),
      '-o',
      out,
      ...IMAGES,
      input,
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /server-side validation failed, nothing was written: .*configmap\/web-site.*data\.compress: expected string/,
    );
    assert.ok(!existsSync(out));
    assert.ok(!existsSync(join(work, 'ws-bool', 'manifest.json')));
  });

  it('the whole sample app at once (without the ConfigMap above), and nothing is persisted', function () {
    const dir = join(work, 'app');
    mkdirSync(dir);
    for (const sample of SAMPLES) {
      writeFileSync(
        join(dir, sample),
        readFileSync(join(REPO_ROOT, 'samples/plain', sample), 'utf8').replace(/^(\s*compress:) on\b/m, '$1 "on"'),
      );
    }
    const r = runCli([
      'generate',
      '--validate-server',
      '--kubeconfig',
      api.kubeconfig,
      '--platform',
      'insecure-sim',
      '--workspace-dir',
      join(work, 'ws-all'),
      '-o',
      join(work, 'all.yaml'),
      ...IMAGES,
      dir,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const s = runCli(['status', '--kubeconfig', api.kubeconfig, '-n', 'default', '-o', 'json']);
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual(JSON.parse(s.stdout).workloads, []);
  });

  it('rejected resources fail the run and nothing is written', function () {
    const bad = join(work, 'bad.yaml');
    writeFileSync(
      bad,
      [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata:',
        '  name: fine',
        'data:',
        '  a: b',
        '---',
        'apiVersion: v1',
        'kind: Service',
        'metadata:',
        '  name: broken',
        'spec:',
        '  ports:',
        '    - port: 70000',
        '',
      ].join('\n'),
    );
    const out = join(work, 'bad-out.yaml');
    const r = runCli([
      'generate',
      '--validate-server',
      '--kubeconfig',
      api.kubeconfig,
      '--platform',
      'metal-qemu-tdx',
      '--workspace-dir',
      join(work, 'ws-bad'),
      '-o',
      out,
      ...IMAGES,
      bad,
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /server-side validation failed, nothing was written: apply service\/broken .*spec\.ports\[0\]\.port/,
    );
    assert.ok(!existsSync(out));
    assert.ok(!existsSync(join(work, 'ws-bad', 'manifest.json')));
  });
});

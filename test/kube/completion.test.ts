/**
 * kubectl's flags as kubectl users know them (issue 14 item 7): -n/--namespace completes the
 * namespaces of the cluster, --context the contexts of the kubeconfig; without any kubeconfig
 * a command says so instead of dialling localhost:8080.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { apiServer, type ApiServer } from '../helpers/apiserver.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { admin, freshNamespace } from './kube.js';

/** The candidates of `__complete`, without the directive line. */
function candidates(
  words: string[],
  env: NodeJS.ProcessEnv = {},
): { lines: string[]; directive: string; stderr: string } {
  const r = runCli(['__complete', ...words], { env });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  return { lines: lines.slice(0, -1), directive: lines[lines.length - 1]!, stderr: r.stderr };
}

describe('kubectl flags: completion of -n and --context, no kubeconfig', function () {
  this.timeout(180_000);
  let api: ApiServer;
  let dir: string;
  let ns: string;
  before(async () => {
    api = await apiServer();
    dir = tempDir('kc-complete-');
    ns = await freshNamespace(admin(api), 'kc-complete');
  });
  after(() => removeDir(dir));

  it('-n, --namespace and --namespace= complete the namespaces of the cluster the kubeconfig and context name', () => {
    for (const words of [
      ['status', '--kubeconfig', api.kubeconfig, '--context', 'admin', '-n', 'kc-complete'],
      ['set', '--kubeconfig', api.kubeconfig, '--context=admin', '--namespace', 'kc-comp'],
    ]) {
      const c = candidates(words);
      assert.ok(c.lines.includes(ns), `${words.join(' ')}: ${c.lines.join(',')}`);
      assert.ok(
        c.lines.every((l) => l.startsWith('kc-comp')),
        c.lines.join(','),
      );
      assert.equal(c.directive, ':4', 'no file names');
    }
    const eq = candidates([
      'verify',
      `--kubeconfig=${api.kubeconfig}`,
      '--context',
      'admin',
      `--namespace=${ns.slice(0, -2)}`,
    ]);
    assert.deepEqual(eq.lines, [`--namespace=${ns}`]);
    const all = candidates(['status', '--kubeconfig', api.kubeconfig, '--context', 'admin', '-n', '']);
    for (const builtin of ['default', 'kube-system', ns]) assert.ok(all.lines.includes(builtin), builtin);
  });

  it('--context completes the contexts of the kubeconfig, without asking a cluster', () => {
    const kubeconfig = join(dir, 'contexts.yaml');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: dev',
        'clusters:',
        '- name: c',
        '  cluster: {server: "https://127.0.0.1:1"}',
        'users:',
        '- name: u',
        '  user: {token: x}',
        'contexts:',
        ...['dev', 'prod-eu', 'prod-us'].flatMap((n) => [`- name: ${n}`, '  context: {cluster: c, user: u}']),
        '',
      ].join('\n'),
    );
    assert.deepEqual(candidates(['status', '--kubeconfig', kubeconfig, '--context', '']).lines, [
      'dev',
      'prod-eu',
      'prod-us',
    ]);
    assert.deepEqual(candidates(['status', '--context', 'prod'], { KUBECONFIG: kubeconfig }).lines, [
      'prod-eu',
      'prod-us',
    ]);
    assert.deepEqual(candidates(['status', '--kubeconfig', kubeconfig, '--context=prod-u']).lines, [
      '--context=prod-us',
    ]);
    // A cluster that cannot be reached offers no namespaces, and no error.
    const none = candidates(['status', '--kubeconfig', kubeconfig, '-n', '']);
    assert.deepEqual(none.lines, []);
    assert.equal(none.stderr, '');
  });

  it('no kubeconfig at all: the command says so (not "localhost:8080"), and what to do', () => {
    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    const env = { HOME: home, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '' };
    const r = runCli(['status'], { env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `no kubeconfig: \\$KUBECONFIG is not set and ${join(home, '.kube', 'config').replace(/\//g, '\\/')} does not exist`,
      ),
    );
    assert.match(r.stderr, /--kubeconfig or \$KUBECONFIG.*-c HOST:PORT/);
    assert.doesNotMatch(r.stderr, /localhost:8080/);
    const missing = runCli(['status'], { env: { ...env, KUBECONFIG: join(dir, 'gone.yaml') } });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no kubeconfig: \$KUBECONFIG names a file that does not exist \(.*gone\.yaml\)/);
    // Control: the same HOME with the apiserver's kubeconfig in ~/.kube/config reaches the cluster.
    mkdirSync(join(home, '.kube'), { recursive: true });
    writeFileSync(join(home, '.kube', 'config'), readFileSync(api.kubeconfig));
    const ok = runCli(['status', '--context', 'admin', '-n', ns], { env });
    assert.doesNotMatch(ok.stderr, /no kubeconfig/);
    assert.equal(ok.code, 0, ok.stderr);
  });
});

/**
 * The runc wrapper's hook in process, on specs containerd really wrote (test/runtime/fixtures):
 * what it refuses before any policy is looked at, that a refusal reaches runc's log as the line
 * the shim reports, and that deleting never fails. The allowed path (a policy, the device, the
 * mount) runs on the real node in test/e2e/flow.test.ts.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSimAgent } from '../../src/runtime/sim-agent.js';
import { INITDATA_ANNOTATION } from '../../src/policy/initdata.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'coordinator');
const host = JSON.parse(readFileSync(join(FIXTURE, 'host.json'), 'utf8')) as {
  containers: { file: string; id: string }[];
};

describe('runtime: the simulated runtime hook (sim-agent)', () => {
  let root: string;
  let opts: { stateDir: string; deviceStateDir: string };
  beforeEach(() => {
    root = tempDir('kc-simagent-');
    opts = { stateDir: join(root, 'agent'), deviceStateDir: join(root, 'device') };
  });
  afterEach(() => removeDir(root));

  /** A bundle with the fixture's spec, edited; the runc line the shim would run for it. */
  function bundle(index: number, edit: (spec: Record<string, any>) => void = () => undefined) {
    const { file, id } = host.containers[index]!;
    const spec = JSON.parse(readFileSync(join(FIXTURE, file), 'utf8').split('@HOST@').join(root));
    edit(spec);
    const dir = join(root, 'bundles', id);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
    const log = join(dir, 'log.json');
    const argv = [
      '--root',
      join(root, 'runc'),
      '--log',
      log,
      '--log-format',
      'json',
      'create',
      '--bundle',
      dir,
      '--pid-file',
      join(dir, 'init.pid'),
      id,
    ];
    return { argv, log, id };
  }

  const lastError = (log: string): string => {
    const lines = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: string; msg: string });
    assert.equal(lines.at(-1)!.level, 'error');
    return lines.at(-1)!.msg;
  };

  it("refuses a pod sandbox without initdata, with the reason as the last error of runc's log", async () => {
    const b = bundle(0, (s) => delete s.annotations[INITDATA_ANNOTATION]);
    assert.equal(await runSimAgent(b.argv, opts), 1);
    assert.match(lastError(b.log), /the pod has no io\.katacontainers\.config\.hypervisor\.cc_init_data annotation/);
  });

  it('refuses broken initdata and a spec that is not a CRI pod', async () => {
    const broken = bundle(0, (s) => (s.annotations[INITDATA_ANNOTATION] = 'not base64!'));
    assert.equal(await runSimAgent(broken.argv, opts), 1);
    assert.match(lastError(broken.log), /initdata annotation is not base64/);
    const plain = bundle(0, (s) => delete s.annotations['io.kubernetes.cri.container-type']);
    assert.equal(await runSimAgent(plain.argv, opts), 1);
    assert.match(lastError(plain.log), /io\.kubernetes\.cri\.container-type/);
  });

  it('refuses a container whose sandbox it never created, and a spec with a field runc would take', async () => {
    const c = bundle(1);
    assert.equal(await runSimAgent(c.argv, opts), 1);
    assert.match(lastError(c.log), /was not created by this runtime/);
    const odd = bundle(1, (s) => (s.process.ARGS = ['sh']));
    assert.equal(await runSimAgent(odd.argv, opts), 1);
    assert.match(lastError(odd.log), /process\.ARGS/);
  });

  it('fails the sandbox, without a stack trace, when a file of the node it must read is missing', async () => {
    const b = bundle(0);
    assert.equal(await runSimAgent(b.argv, opts), 1);
    const msg = lastError(b.log);
    assert.match(msg, /ENOENT: no such file or directory, stat '.*resolv\.conf'/);
    assert.doesNotMatch(msg, /internal error|\n\s+at /);
  });

  it('leaves every other runc command alone, never fails a delete, and refuses a broken command line', async () => {
    assert.equal(await runSimAgent(['--root', '/r', 'state', 'a'.repeat(64)], opts), 0);
    assert.equal(await runSimAgent(['delete', '--force', 'b'.repeat(64)], opts), 0);
    assert.equal(await runSimAgent(['delete', '../../etc'], opts), 0);
    assert.equal(await runSimAgent(['--log'], opts), 1);
    const bad = bundle(0);
    bad.argv[bad.argv.length - 1] = 'not-an-id';
    assert.equal(await runSimAgent(bad.argv, opts), 1);
    assert.match(lastError(bad.log), /is not a containerd id/);
  });
});

/**
 * set, verify and recover as a user scripts them (issue 14 items 7, 9, 10): `-o json`, upstream's
 * `--coordinator-policy-hash`, `set --atomic` and `sign`, the names newer upstream releases write
 * into verify/, setting the same manifest twice, recover refreshing the workspace's CA files, and
 * `coordinator serve --manifest` finding its simulated policy hash in the workspace. Real
 * processes on loopback, the simulated platform.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { CLI, REPO_ROOT, ensureBuilt, runCli, simGenerateArgs } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { chainHash } from '../../src/coordinator/history.js';

interface Served {
  proc: ChildProcess;
  userapi: number;
  meshapi: number;
  metrics: number;
  log: () => string;
  kill: () => Promise<void>;
}

describe('set, verify, recover: -o json, upstream flags, local Coordinator (issue 14)', function () {
  this.timeout(300_000);
  let dir: string;
  let ws: string;
  let res: string;
  let sim: string;
  let state: string;
  let hashes: { coordinator: string; web: string };
  let coord: Served | undefined;
  const env = () => ({ CONTRAST_INSECURE_SIM_DIR: sim });
  const cli = (args: string[]) => runCli(args, { cwd: dir, env: env() });

  /** `coordinator serve --manifest`: no policy hash copied by hand. */
  async function serve(extra: string[] = [], port = 0): Promise<Served> {
    ensureBuilt();
    const portsFile = join(dir, `ports-${process.hrtime.bigint()}.json`);
    const proc = spawn(
      process.execPath,
      [
        CLI,
        'coordinator',
        'serve',
        '--platform',
        'insecure-sim',
        '--manifest',
        join(ws, 'manifest.json'),
        ...extra,
        '--state-dir',
        state,
        '--listen',
        '127.0.0.1',
        '--user-port',
        String(port),
        '--mesh-port',
        '0',
        '--metrics-port',
        '0',
        '--ports-file',
        portsFile,
      ],
      { env: { ...process.env, ...env() }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    proc.stderr!.on('data', (c: Buffer) => {
      log += c.toString();
    });
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    while (!existsSync(portsFile)) {
      if (proc.exitCode !== null) throw new Error(`the Coordinator exited:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const ports = JSON.parse(readFileSync(portsFile, 'utf8')) as { userapi: number; meshapi: number; metrics: number };
    return {
      proc,
      ...ports,
      log: () => log,
      kill: async () => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        await exited;
      },
    };
  }

  before(() => {
    dir = tempDir('kc-cli-coord-');
    ws = join(dir, 'ws');
    res = join(dir, 'resources');
    sim = join(dir, 'sim');
    state = join(dir, 'state');
    cpSync(join(REPO_ROOT, 'samples', 'plain'), res, { recursive: true });
    const g = cli([...simGenerateArgs(ws), res]);
    assert.equal(g.code, 0, g.stderr);
    const m = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8')) as {
      Policies: Record<string, { SANs: string[]; Role?: string }>;
    };
    const entries = Object.entries(m.Policies);
    hashes = {
      coordinator: entries.find(([, e]) => e.Role === 'coordinator')![0],
      web: entries.find(([, e]) => e.SANs[0] === 'web')![0],
    };
  });
  after(async () => {
    await coord?.kill();
    removeDir(dir);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && coord)
      process.stderr.write(`--- Coordinator log ---\n${coord.log()}\n`);
  });

  it('coordinator serve --manifest reports the Coordinator entry of the manifest; set -o json; the same manifest again is not sent', async () => {
    coord = await serve();
    assert.match(coord.log(), new RegExp(`reporting policy hash ${hashes.coordinator} \\(the Coordinator entry of `));
    const addr = `127.0.0.1:${coord.userapi}`;

    const first = cli(['set', '-c', addr, '--workspace-dir', ws, '-o', 'json', res]);
    assert.equal(first.code, 0, first.stderr);
    const out = JSON.parse(first.stdout);
    assert.equal(out.changed, true);
    assert.equal(out.historyLength, 1);
    assert.equal(out.coordinator.policyHash, hashes.coordinator);
    assert.equal(out.coordinator.tee, 'insecure-sim');
    assert.equal(out.files.meshCA, join(ws, 'mesh-ca.pem'));
    assert.equal(out.files.seedShares, join(ws, 'seed-shares.json'));
    assert.doesNotMatch(first.stdout, /Attested/, 'messages stay on standard error');

    const meshBefore = readFileSync(join(ws, 'mesh-ca.pem'), 'utf8');
    rmSync(join(ws, 'mesh-ca.pem'));
    const again = cli(['set', '-c', addr, '--workspace-dir', ws, '-o', 'yaml', res]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already runs .*manifest\.json as its active manifest: nothing to set, nothing sent/);
    assert.match(again.stdout, /^changed: false$/m);
    assert.match(again.stdout, /^historyLength: 1$/m);
    // Sending it again would have made a new mesh CA (and a second history entry).
    assert.equal(
      readFileSync(join(ws, 'mesh-ca.pem'), 'utf8'),
      meshBefore,
      'mesh-ca.pem refreshed with the CA that is in use',
    );

    // Nothing is sent, but a key that could not set it is refused all the same.
    const other = join(dir, 'other-owner.pem');
    writeFileSync(
      other,
      generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string,
      { mode: 0o600 },
    );
    const wrongKey = cli(['set', '-c', addr, '--workspace-dir', ws, '--workload-owner-key', other, res]);
    assert.equal(wrongKey.code, 1, wrongKey.stderr);
    assert.match(
      wrongKey.stderr,
      /already runs .*manifest\.json, but .*other-owner\.pem is not a workload owner key of the current manifest; expected one of: [0-9a-f]{16}/,
    );
  });

  it('verify -o json, and the files newer upstream releases write (initdata.<hash>.toml, latest-transition)', () => {
    const r = cli(['verify', '-c', `127.0.0.1:${coord!.userapi}`, '--workspace-dir', ws, '--output', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.activeManifestMatches, true);
    assert.equal(out.ready, true);
    assert.equal(out.historyLength, 1);
    const vdir = join(ws, 'verify');
    const manifest = readFileSync(join(ws, 'manifest.json'));
    const latest = chainHash([manifest]).toString('hex');
    assert.equal(out.latestTransition, latest);
    assert.equal(
      readFileSync(join(vdir, 'latest-transition'), 'utf8'),
      latest,
      'hex without a newline, as upstream set --atomic reads it',
    );
    for (const h of Object.values(hashes)) {
      assert.deepEqual(readFileSync(join(vdir, `initdata.${h}.toml`)), readFileSync(join(vdir, `policy.${h}.rego`)));
      assert.ok(out.files.includes(join(vdir, `initdata.${h}.toml`)));
    }
    assert.match(readFileSync(join(vdir, `initdata.${hashes.web}.toml`), 'utf8'), /^version = "0\.1\.0"/);
  });

  it('-c with the MeshAPI or the metrics port says which port it hit', () => {
    const mesh = cli(['verify', '-c', `127.0.0.1:${coord!.meshapi}`, '--workspace-dir', ws]);
    assert.equal(mesh.code, 1, mesh.stderr);
    assert.match(
      mesh.stderr,
      new RegExp(
        `127\\.0\\.0\\.1:${coord!.meshapi} is a Coordinator \\(it passed attestation\\), but not its UserAPI: this is probably the MeshAPI \\(port 7777\\).*UserAPI, port 1313`,
      ),
    );
    const metrics = cli(['verify', '-c', `127.0.0.1:${coord!.metrics}`, '--workspace-dir', ws]);
    assert.equal(metrics.code, 1, metrics.stderr);
    assert.match(
      metrics.stderr,
      new RegExp(
        `127\\.0\\.0\\.1:${coord!.metrics} does not speak TLS .*probes and metrics port \\(9102, plain HTTP\\).*UserAPI, port 1313`,
      ),
    );
  });

  it('verify -o json on a differing manifest prints the summary and fails', () => {
    const ws2 = join(dir, 'ws-differs');
    cpSync(ws, ws2, { recursive: true });
    writeFileSync(join(ws2, 'manifest.json'), `${readFileSync(join(ws2, 'manifest.json'), 'utf8')}\n`);
    const r = cli(['verify', '-c', `127.0.0.1:${coord!.userapi}`, '--workspace-dir', ws2, '-o', 'json']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(JSON.parse(r.stdout).activeManifestMatches, false);
    assert.match(r.stderr, /differs from/);
  });

  it("--coordinator-policy-hash: the manifest's Coordinator hash works, any other is refused before dialling, an empty one is a usage error", () => {
    const addr = `127.0.0.1:${coord!.userapi}`;
    const ok = cli([
      'verify',
      '-c',
      addr,
      '--workspace-dir',
      ws,
      '--coordinator-policy-hash',
      hashes.coordinator.toUpperCase(),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const other = cli(['verify', '-c', addr, '--workspace-dir', ws, '--coordinator-policy-hash', hashes.web]);
    assert.equal(other.code, 1, other.stderr);
    assert.match(
      other.stderr,
      new RegExp(
        `--coordinator-policy-hash ${hashes.web} is not a Coordinator policy of the manifest \\(${hashes.coordinator}\\)`,
      ),
    );
    assert.match(other.stderr, /"Role": "coordinator"/);
    const empty = cli(['set', '-c', addr, '--workspace-dir', ws, '--coordinator-policy-hash', '', res]);
    assert.equal(empty.code, 2, empty.stderr);
    assert.match(empty.stderr, /does not turn the check off/);
    const rec = cli(['recover', '-c', addr, '--workspace-dir', ws, '--coordinator-policy-hash', hashes.web]);
    assert.equal(rec.code, 1, rec.stderr);
    assert.match(rec.stderr, /is not a Coordinator policy of the manifest/);
  });

  it("upstream's set --atomic, --latest-transition, -s and sign name what to do here", () => {
    const addr = `127.0.0.1:${coord!.userapi}`;
    for (const args of [['--atomic'], ['--atomic', '--latest-transition', '00'.repeat(32)], ['-s', 'sig.der']]) {
      const r = cli(['set', '-c', addr, '--workspace-dir', ws, ...args, res]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /no signed or atomic transitions.*latest-transition\.json.*docs\/upstream\.md/s);
    }
    const sign = cli(['sign', '--prepare', '--out', 'x']);
    assert.equal(sign.code, 2, sign.stderr);
    assert.match(sign.stderr, /no signed or atomic transitions/);
  });

  it('recover -o json writes the new mesh-ca.pem and coordinator-root-ca.pem into the workspace', async () => {
    const port = coord!.userapi;
    await coord!.kill();
    coord = await serve([], port);
    const addr = `127.0.0.1:${port}`;
    const meshBefore = readFileSync(join(ws, 'mesh-ca.pem'), 'utf8');
    const rootBefore = readFileSync(join(ws, 'coordinator-root-ca.pem'), 'utf8');
    rmSync(join(ws, 'coordinator-root-ca.pem'));
    const r = cli(['recover', '-c', addr, '--workspace-dir', ws, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.coordinator.policyHash, hashes.coordinator);
    assert.equal(out.files.meshCA, join(ws, 'mesh-ca.pem'));
    const meshAfter = readFileSync(join(ws, 'mesh-ca.pem'), 'utf8');
    assert.notEqual(meshAfter, meshBefore, 'recovery makes a new mesh CA; the workspace has it');
    assert.equal(readFileSync(join(ws, 'coordinator-root-ca.pem'), 'utf8'), rootBefore, "the root CA is the seed's");
    const v = cli(['verify', '-c', addr, '--workspace-dir', ws]);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(readFileSync(join(ws, 'verify', 'mesh-ca.pem'), 'utf8'), meshAfter);
  });

  it('coordinator serve --manifest refuses real hardware, a manifest without a Coordinator, and a --sim-policy-hash not in it', () => {
    const hw = cli([
      'coordinator',
      'serve',
      '--platform',
      'auto',
      '--manifest',
      join(ws, 'manifest.json'),
      '--state-dir',
      join(dir, 's1'),
    ]);
    assert.equal(hw.code, 2, hw.stderr);
    assert.match(hw.stderr, /--manifest applies to --platform insecure-sim only/);
    const m = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8'));
    delete m.Policies[hashes.coordinator];
    const noCoord = join(dir, 'no-coordinator.json');
    writeFileSync(noCoord, JSON.stringify(m));
    const r = cli([
      'coordinator',
      'serve',
      '--platform',
      'insecure-sim',
      '--manifest',
      noCoord,
      '--state-dir',
      join(dir, 's2'),
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no-coordinator\.json.*has no Coordinator entry/);
    const wrong = cli([
      'coordinator',
      'serve',
      '--platform',
      'insecure-sim',
      '--manifest',
      join(ws, 'manifest.json'),
      '--sim-policy-hash',
      hashes.web,
      '--state-dir',
      join(dir, 's3'),
    ]);
    assert.equal(wrong.code, 2, wrong.stderr);
    assert.match(wrong.stderr, /is not a Coordinator policy of/);
  });
});

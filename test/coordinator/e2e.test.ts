/**
 * End to end with real processes on loopback and the simulated platform: generate the samples,
 * start the Coordinator, set, run Initializers, connect two workloads with mTLS, verify,
 * update, kill and restart the Coordinator, recover, verify again; plus the negative cases.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import {
  constants,
  createPublicKey,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import { spawn } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import { CLI, REPO_ROOT, ensureBuilt, runCli, simGenerateArgs } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/tmp.js';
import { startCoordinatorProcess, type CoordinatorProcess } from './process.js';
import { createRootCert } from '../../src/coordinator/ca.js';
import { SeedEngine } from '../../src/coordinator/seedengine.js';

interface Ctx {
  dir: string;
  ws: string;
  res: string;
  sim: string;
  state: string;
  hashes: Record<string, string>;
  /** transitions/latest right after the first set: validly signed, one manifest behind the end. */
  latestAfterFirstSet?: Buffer;
}

function cli(ctx: Ctx, args: string[]) {
  return runCli(args, { cwd: ctx.dir, env: { CONTRAST_INSECURE_SIM_DIR: ctx.sim } });
}

function initializer(ctx: Ctx, c: CoordinatorProcess, policyHash: string, out: string, timeout = 20) {
  return cli(ctx, [
    'initializer',
    '--coordinator-host',
    `127.0.0.1:${c.ports.meshapi}`,
    '--platform',
    'insecure-sim',
    '--sim-policy-hash',
    policyHash,
    '--out-dir',
    out,
    '--timeout',
    String(timeout),
    '--retry-interval',
    '1',
  ]);
}

function tlsFiles(out: string) {
  const t = (f: string) => readFileSync(join(out, 'tls-config', f));
  return {
    key: t('key.pem'),
    cert: t('certChain.pem'),
    meshCA: t('mesh-ca.pem'),
    rootCA: t('coordinator-root-ca.pem'),
  };
}

/** Serve on `server`'s mesh credentials, connect with `client`'s; both sides require the other's certificate. */
async function mtlsExchange(
  server: ReturnType<typeof tlsFiles>,
  client: ReturnType<typeof tlsFiles>,
  ca: 'meshCA' | 'rootCA',
  servername: string,
): Promise<string> {
  const srv = createTlsServer(
    { key: server.key, cert: server.cert, ca: server[ca], requestCert: true, rejectUnauthorized: true },
    (s) => {
      s.end(`hello ${new X509Certificate(s.getPeerX509Certificate()!.raw).subject.replace(/\n/g, ',')}`);
    },
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  try {
    return await new Promise<string>((resolve, reject) => {
      const sock = tlsConnect(
        { host: '127.0.0.1', port, servername, key: client.key, cert: client.cert, ca: client[ca] },
        () => undefined,
      );
      let data = '';
      sock.on('data', (c: Buffer) => {
        data += c.toString();
      });
      sock.on('end', () => resolve(data));
      sock.on('error', reject);
    });
  } finally {
    srv.close();
  }
}

function setupWorkspace(): Ctx {
  const dir = tempDir('kc-e2e-');
  const ctx: Ctx = {
    dir,
    ws: join(dir, 'ws'),
    res: join(dir, 'resources'),
    sim: join(dir, 'sim'),
    state: join(dir, 'state'),
    hashes: {},
  };
  cpSync(join(REPO_ROOT, 'samples', 'plain'), ctx.res, { recursive: true });
  const g = cli(ctx, [...simGenerateArgs(ctx.ws), ctx.res]);
  assert.equal(g.code, 0, g.stderr);
  const m = JSON.parse(readFileSync(join(ctx.ws, 'manifest.json'), 'utf8')) as {
    Policies: Record<string, { SANs: string[]; Role?: string }>;
  };
  for (const [h, e] of Object.entries(m.Policies))
    ctx.hashes[e.Role === 'coordinator' ? 'coordinator' : e.SANs[0]!] = h;
  assert.ok(ctx.hashes.coordinator && ctx.hashes.web && ctx.hashes.api, JSON.stringify(ctx.hashes));
  return ctx;
}

describe('Coordinator end to end (real processes, simulated platform)', function () {
  this.timeout(600_000);
  let ctx: Ctx;
  let coord: CoordinatorProcess | undefined;

  before(() => {
    ctx = setupWorkspace();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && coord)
      process.stderr.write(`--- Coordinator log ---\n${coord.log()}\n`);
  });
  after(async () => {
    await coord?.kill();
    removeDir(ctx.dir);
  });

  it('set, Initializers, mTLS, verify, update, restart, recover, verify', async () => {
    coord = await startCoordinatorProcess({
      stateDir: ctx.state,
      policyHash: ctx.hashes.coordinator!,
      simDir: ctx.sim,
      workDir: ctx.dir,
    });
    const addr = `127.0.0.1:${coord.ports.userapi}`;

    const set1 = cli(ctx, ['set', '-c', addr, '--workspace-dir', ctx.ws, ctx.res]);
    assert.equal(set1.code, 0, set1.stderr);
    ctx.latestAfterFirstSet = readFileSync(join(ctx.state, 'transitions', 'latest'));
    assert.match(set1.stderr, /insecure-sim platform is SIMULATED/);
    for (const f of ['coordinator-root-ca.pem', 'mesh-ca.pem', 'seed-shares.json'])
      assert.ok(existsSync(join(ctx.ws, f)), f);

    // Two workloads attest and receive their credentials.
    const web = join(ctx.dir, 'web');
    const api = join(ctx.dir, 'api');
    for (const [name, out] of [
      ['web', web],
      ['api', api],
    ] as const) {
      const r = initializer(ctx, coord, ctx.hashes[name]!, out);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal(statSync(join(web, 'tls-config', 'key.pem')).mode & 0o777, 0o400);
    assert.equal(statSync(join(web, 'tls-config', 'certChain.pem')).mode & 0o777, 0o444);
    assert.equal(statSync(join(web, 'secrets', 'workload-secret-seed')).mode & 0o777, 0o400);
    assert.match(readFileSync(join(web, 'secrets', 'workload-secret-seed'), 'utf8'), /^[0-9a-f]{128}$/);
    assert.deepEqual(readFileSync(join(web, 'tls-config', 'mesh-ca.pem')), readFileSync(join(ctx.ws, 'mesh-ca.pem')));

    // They talk to each other with mutual TLS, trusting the mesh CA or the root CA.
    assert.match(await mtlsExchange(tlsFiles(web), tlsFiles(api), 'meshCA', 'web'), /hello CN=api/);
    assert.match(await mtlsExchange(tlsFiles(api), tlsFiles(web), 'rootCA', 'api'), /hello CN=web/);

    const v1 = cli(ctx, ['verify', '-c', addr, '--workspace-dir', ctx.ws]);
    assert.equal(v1.code, 0, v1.stderr);
    const vdir = join(ctx.ws, 'verify');
    assert.deepEqual(readFileSync(join(vdir, 'manifest.0.json')), readFileSync(join(ctx.ws, 'manifest.json')));
    for (const h of Object.values(ctx.hashes)) assert.ok(existsSync(join(vdir, `policy.${h}.rego`)), h);
    assert.ok(existsSync(join(vdir, 'mesh-ca.pem')));

    // Update the manifest (an extra SAN for web), set it with the workload owner key.
    const manifestFile = join(ctx.ws, 'manifest.json');
    const m = JSON.parse(readFileSync(manifestFile, 'utf8'));
    m.Policies[ctx.hashes.web!].SANs.push('web.default.svc');
    writeFileSync(manifestFile, `${JSON.stringify(m, null, 2)}\n`);
    const meshCA1 = readFileSync(join(ctx.ws, 'mesh-ca.pem'), 'utf8');
    const set2 = cli(ctx, ['set', '-c', addr, '--workspace-dir', ctx.ws, ctx.res]);
    assert.equal(set2.code, 0, set2.stderr);
    assert.notEqual(
      readFileSync(join(ctx.ws, 'mesh-ca.pem'), 'utf8'),
      meshCA1,
      'the mesh CA rotates with the manifest',
    );
    const web2 = join(ctx.dir, 'web2');
    assert.equal(initializer(ctx, coord, ctx.hashes.web!, web2).code, 0);
    assert.match(
      new X509Certificate(readFileSync(join(web2, 'tls-config', 'certChain.pem'))).subjectAltName ?? '',
      /web\.default\.svc/,
    );
    const v2 = cli(ctx, ['verify', '-c', addr, '--workspace-dir', ctx.ws]);
    assert.equal(v2.code, 0, v2.stderr);
    assert.ok(existsSync(join(vdir, 'manifest.1.json')));
    const secretBefore = readFileSync(join(web, 'secrets', 'workload-secret-seed'), 'utf8');
    assert.equal(readFileSync(join(web2, 'secrets', 'workload-secret-seed'), 'utf8'), secretBefore);
    const rootBefore = readFileSync(join(ctx.ws, 'coordinator-root-ca.pem'), 'utf8');

    // Kill and restart: the Coordinator serves the history but issues nothing until recovered.
    await coord.kill('SIGKILL');
    coord = await startCoordinatorProcess({
      stateDir: ctx.state,
      policyHash: ctx.hashes.coordinator!,
      simDir: ctx.sim,
      workDir: ctx.dir,
      ports: coord.ports,
    });
    const v3 = cli(ctx, ['verify', '-c', addr, '--workspace-dir', ctx.ws]);
    assert.equal(v3.code, 0, v3.stderr);
    assert.match(v3.stderr, /waits for recovery/);
    const blocked = initializer(ctx, coord, ctx.hashes.web!, join(ctx.dir, 'blocked'), 2);
    assert.equal(blocked.code, 1);
    assert.match(blocked.stderr, /recover/);
    const setBlocked = cli(ctx, ['set', '-c', addr, '--workspace-dir', ctx.ws, ctx.res]);
    assert.equal(setBlocked.code, 1);
    assert.match(setBlocked.stderr, /recover/);

    const rec = cli(ctx, ['recover', '-c', addr, '--workspace-dir', ctx.ws]);
    assert.equal(rec.code, 0, rec.stderr);
    const v4 = cli(ctx, ['verify', '-c', addr, '--workspace-dir', ctx.ws]);
    assert.equal(v4.code, 0, v4.stderr);
    assert.deepEqual(
      readdirSync(vdir)
        .filter((f) => f.startsWith('manifest.'))
        .sort(),
      ['manifest.0.json', 'manifest.1.json'],
    );
    assert.equal(
      readFileSync(join(vdir, 'coordinator-root-ca.pem'), 'utf8'),
      rootBefore,
      'the root CA survives recovery',
    );
    const web3 = join(ctx.dir, 'web3');
    assert.equal(initializer(ctx, coord, ctx.hashes.web!, web3).code, 0);
    assert.equal(
      readFileSync(join(web3, 'secrets', 'workload-secret-seed'), 'utf8'),
      secretBefore,
      'workload secrets survive recovery',
    );
    // New mesh certificates chain to the same root: old and new workloads still trust each other through it.
    assert.match(await mtlsExchange(tlsFiles(api), tlsFiles(web3), 'rootCA', 'api'), /hello CN=web/);
  });

  describe('refusals', () => {
    it('set with a key that is not a workload owner key', () => {
      const other = join(ctx.dir, 'other-owner.pem');
      writeFileSync(
        other,
        generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string,
        { mode: 0o600 },
      );
      const r = cli(ctx, [
        'set',
        '-c',
        `127.0.0.1:${coord!.ports.userapi}`,
        '--workspace-dir',
        ctx.ws,
        '--workload-owner-key',
        other,
        ctx.res,
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /not a workload owner key of the current manifest; expected one of: [0-9a-f]{16}/);
    });

    it('set with resources whose policies are not in the manifest', () => {
      const single = join(ctx.res, 'web.yaml');
      const r = cli(ctx, ['set', '-c', `127.0.0.1:${coord!.ports.userapi}`, '--workspace-dir', ctx.ws, single]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /none of the given resources carries it/);
    });

    it('NewMeshCert with a policy hash that is not in the manifest', () => {
      const r = initializer(ctx, coord!, randomBytes(32).toString('hex'), join(ctx.dir, 'rogue'), 2);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /not a workload policy in the manifest/);
      assert.ok(!existsSync(join(ctx.dir, 'rogue', 'tls-config', 'certChain.pem')));
    });

    it('the CLI refuses a Coordinator that reports another policy hash', async () => {
      const impostor = await startCoordinatorProcess({
        stateDir: join(ctx.dir, 'impostor-state'),
        policyHash: ctx.hashes.web!,
        simDir: ctx.sim,
        workDir: ctx.dir,
      });
      try {
        const r = cli(ctx, ['verify', '-c', `127.0.0.1:${impostor.ports.userapi}`, '--workspace-dir', ctx.ws]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /failed attestation.*not a Coordinator policy.*run `kubectl contrast generate`/);
      } finally {
        await impostor.kill();
      }
    });

    it('the CLI refuses wrong reference values, naming the field and the observed value', () => {
      const ws2 = join(ctx.dir, 'ws-wrong-refs');
      cpSync(ctx.ws, ws2, { recursive: true });
      const m = JSON.parse(readFileSync(join(ws2, 'manifest.json'), 'utf8'));
      m.ReferenceValues.insecure[0].TrustedMeasurement = '00'.repeat(48);
      writeFileSync(join(ws2, 'manifest.json'), `${JSON.stringify(m, null, 2)}\n`);
      const r = cli(ctx, ['verify', '-c', `127.0.0.1:${coord!.ports.userapi}`, '--workspace-dir', ws2]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /ReferenceValues\.insecure\[0\]\.TrustedMeasurement is 0{96}, the report measured [0-9a-f]{96}/,
      );
    });

    it('verify fails when the local manifest differs from the active one', () => {
      const ws2 = join(ctx.dir, 'ws-differs');
      cpSync(ctx.ws, ws2, { recursive: true });
      writeFileSync(join(ws2, 'manifest.json'), `${readFileSync(join(ws2, 'manifest.json'), 'utf8')}\n`);
      const r = cli(ctx, ['verify', '-c', `127.0.0.1:${coord!.ports.userapi}`, '--workspace-dir', ws2]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /differs from/);
    });

    it('recover with a seed share for a different key, and with the wrong seed', async () => {
      // A fresh Coordinator in recovery mode (copy of the state).
      const state2 = join(ctx.dir, 'state-copy');
      cpSync(ctx.state, state2, { recursive: true });
      const c2 = await startCoordinatorProcess({
        stateDir: state2,
        policyHash: ctx.hashes.coordinator!,
        simDir: ctx.sim,
        workDir: ctx.dir,
      });
      try {
        const addr = `127.0.0.1:${c2.ports.userapi}`;
        const otherKey = join(ctx.dir, 'other-seedshare.pem');
        const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
        writeFileSync(otherKey, other.export({ type: 'pkcs1', format: 'pem' }) as string, { mode: 0o600 });
        const r1 = cli(ctx, ['recover', '-c', addr, '--workspace-dir', ctx.ws, '--seedshare-owner-key', otherKey]);
        assert.equal(r1.code, 1);
        assert.match(r1.stderr, /no seed share for the key/);

        // A well-formed share of a wrong seed for the right key: the Coordinator refuses it.
        const doc = JSON.parse(readFileSync(join(ctx.ws, 'seed-shares.json'), 'utf8'));
        const pub = {
          key: Buffer.from(doc.SeedShares[0].PublicKey, 'hex'),
          format: 'der' as const,
          type: 'pkcs1' as const,
        };
        doc.SeedShares[0].EncryptedSeed = publicEncrypt(
          {
            key: createPublicKey(pub),
            padding: constants.RSA_PKCS1_OAEP_PADDING,
            oaepHash: 'sha256',
            oaepLabel: Buffer.from('seedshare'),
          },
          randomBytes(64),
        ).toString('base64');
        const wrong = join(ctx.dir, 'wrong-seed-shares.json');
        writeFileSync(wrong, JSON.stringify(doc));
        const r2 = cli(ctx, ['recover', '-c', addr, '--workspace-dir', ctx.ws, '--seed', wrong]);
        assert.equal(r2.code, 1);
        assert.match(r2.stderr, /seed does not belong to this history/);

        // Control: the genuine share recovers this Coordinator.
        const ok = cli(ctx, ['recover', '-c', addr, '--workspace-dir', ctx.ws]);
        assert.equal(ok.code, 0, ok.stderr);
      } finally {
        await c2.kill();
      }
    });

    it('set waits for a Coordinator that is still starting', async () => {
      const ws2 = join(ctx.dir, 'ws-retry');
      cpSync(ctx.ws, ws2, { recursive: true });
      // A new Coordinator for this copy: it has not seen its history.
      rmSync(join(ws2, 'latest-transition.json'));
      const port = await new Promise<number>((resolve) => {
        const srv = createNetServer().listen(0, '127.0.0.1', () => {
          const p = (srv.address() as { port: number }).port;
          srv.close(() => resolve(p));
        });
      });
      ensureBuilt();
      const setProc = spawn(
        process.execPath,
        [CLI, 'set', '-c', `127.0.0.1:${port}`, '--workspace-dir', ws2, '--retry-for', '60', ctx.res],
        {
          cwd: ctx.dir,
          env: { ...process.env, CONTRAST_INSECURE_SIM_DIR: ctx.sim },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      setProc.stderr!.on('data', (c: Buffer) => {
        stderr += c.toString();
      });
      const exit = new Promise<number | null>((r) => setProc.once('exit', (code) => r(code)));
      await new Promise((r) => setTimeout(r, 2500));
      const late = await startCoordinatorProcess({
        stateDir: join(ctx.dir, 'state-late'),
        policyHash: ctx.hashes.coordinator!,
        simDir: ctx.sim,
        workDir: ctx.dir,
        ports: { userapi: port, meshapi: 0 },
      });
      try {
        assert.equal(await exit, 0, stderr);
        assert.match(stderr, /Waiting for the Coordinator/);
        assert.ok(existsSync(join(ws2, 'seed-shares.json')));
      } finally {
        await late.kill();
      }
    });
  });
  describe('state integrity against the real CLI', () => {
    /** A Coordinator in recovery mode on a copy of the state, changed by `tamper` first. */
    async function restartedCopy(
      name: string,
      tamper: (state: string) => void = () => undefined,
    ): Promise<{ c: CoordinatorProcess; addr: string; state: string }> {
      const state = join(ctx.dir, `state-${name}`);
      cpSync(ctx.state, state, { recursive: true });
      tamper(state);
      const c = await startCoordinatorProcess({
        stateDir: state,
        policyHash: ctx.hashes.coordinator!,
        simDir: ctx.sim,
        workDir: ctx.dir,
      });
      return { c, addr: `127.0.0.1:${c.ports.userapi}`, state };
    }
    function workspaceCopy(name: string, drop: string[] = []): string {
      const ws = join(ctx.dir, `ws-${name}`);
      cpSync(ctx.ws, ws, { recursive: true });
      for (const f of drop) rmSync(join(ws, f), { force: true });
      return ws;
    }

    it('a restored older transitions/latest is refused by verify, recover and set; --accept-history is the way out', async () => {
      assert.ok(ctx.latestAfterFirstSet, 'the main test ran first');
      const { c, addr } = await restartedCopy('rollback', (state) =>
        writeFileSync(join(state, 'transitions', 'latest'), ctx.latestAfterFirstSet!),
      );
      try {
        const v = cli(ctx, ['verify', '-c', addr, '--workspace-dir', ctx.ws]);
        assert.equal(v.code, 1, v.stderr);
        assert.match(
          v.stderr,
          /serves a history of 1 manifest\(s\) .* does not contain transition [0-9a-f]{64} \(manifest 2 of the history\).*an older history.*--accept-history/,
        );
        const r = cli(ctx, ['recover', '-c', addr, '--workspace-dir', ctx.ws]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /an older history/);
        const s = cli(ctx, ['set', '-c', addr, '--workspace-dir', ctx.ws, '--retry-for', '0', ctx.res]);
        assert.equal(s.code, 1, s.stderr);
        assert.match(s.stderr, /an older history/);
        assert.doesNotMatch(c.log(), /recovered/, 'the rolled-back Coordinator was recovered');
        // Restored on purpose: accept it, in a copy of the workspace.
        const ws = workspaceCopy('rollback-accepted');
        const ok = cli(ctx, ['recover', '-c', addr, '--workspace-dir', ws, '--accept-history']);
        assert.equal(ok.code, 0, ok.stderr);
        assert.equal(JSON.parse(readFileSync(join(ws, 'latest-transition.json'), 'utf8')).HistoryLength, 1);
        const again = cli(ctx, ['verify', '-c', addr, '--workspace-dir', ws]);
        assert.equal(again.code, 1, 'the local manifest is the newer one');
        assert.match(again.stderr, /differs from/);
      } finally {
        await c.kill();
      }
    });

    it('recover without seed-shares.json uses the stored document and writes it; set writes it when missing', async () => {
      const original = JSON.parse(readFileSync(join(ctx.ws, 'seed-shares.json'), 'utf8'));
      const { c, addr } = await restartedCopy('no-shares');
      try {
        const ws = workspaceCopy('no-shares', ['seed-shares.json']);
        const r = cli(ctx, ['recover', '-c', addr, '--workspace-dir', ws]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /using the seed-share document from the Coordinator's store/);
        const written = JSON.parse(readFileSync(join(ws, 'seed-shares.json'), 'utf8'));
        assert.equal(written.salt, original.salt);
        assert.equal(statSync(join(ws, 'seed-shares.json')).mode & 0o777, 0o600);
        const v = cli(ctx, ['verify', '-c', addr, '--workspace-dir', ws]);
        assert.equal(v.code, 0, v.stderr);
        assert.doesNotMatch(v.stderr, /waits for recovery/);
        // The Coordinator is ready now: an update from a workspace without the file gets it back.
        const ws2 = workspaceCopy('no-shares-set', ['seed-shares.json']);
        const s = cli(ctx, ['set', '-c', addr, '--workspace-dir', ws2, ctx.res]);
        assert.equal(s.code, 0, s.stderr);
        assert.match(s.stderr, /seed-shares\.json \(it was missing; served by the Coordinator\)/);
        assert.equal(JSON.parse(readFileSync(join(ws2, 'seed-shares.json'), 'utf8')).salt, original.salt);
      } finally {
        await c.kill();
      }
    });

    it('a stored seed-share document for another seed is refused before the seed is sent', async () => {
      const doc = JSON.parse(readFileSync(join(ctx.ws, 'seed-shares.json'), 'utf8'));
      const pub = createPublicKey({
        key: Buffer.from(doc.SeedShares[0].PublicKey, 'hex'),
        format: 'der',
        type: 'pkcs1',
      });
      doc.SeedShares[0].EncryptedSeed = publicEncrypt(
        {
          key: pub,
          padding: constants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: 'sha256',
          oaepLabel: Buffer.from('seedshare'),
        },
        randomBytes(64),
      ).toString('base64');
      const { c, addr } = await restartedCopy('forged-shares', (state) =>
        writeFileSync(join(state, 'seedshares', 'document'), JSON.stringify(doc)),
      );
      try {
        const ws = workspaceCopy('forged-shares', ['seed-shares.json']);
        const r = cli(ctx, ['recover', '-c', addr, '--workspace-dir', ws]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /seed-share document in the Coordinator's store does not belong to the history/);
        assert.ok(!existsSync(join(ws, 'seed-shares.json')));
        assert.doesNotMatch(c.log(), /recovered/);
      } finally {
        await c.kill();
      }
    });

    it('PEM blocks appended to the stored ca/root.pem reach neither verify nor the Initializers', async () => {
      // Another CA certificate with the root's name, appended after the genuine one.
      const evil = await createRootCert(SeedEngine.generate().rootCAKey);
      const rootBefore = readFileSync(join(ctx.ws, 'coordinator-root-ca.pem'), 'utf8');
      const { c, addr } = await restartedCopy('root-append', (state) =>
        writeFileSync(join(state, 'ca', 'root.pem'), `${readFileSync(join(state, 'ca', 'root.pem'), 'utf8')}${evil}\n`),
      );
      try {
        const ws = workspaceCopy('root-append');
        const waiting = cli(ctx, ['verify', '-c', addr, '--workspace-dir', ws]);
        assert.equal(waiting.code, 0, waiting.stderr);
        assert.ok(
          !existsSync(join(ws, 'verify', 'coordinator-root-ca.pem')) ||
            !readFileSync(join(ws, 'verify', 'coordinator-root-ca.pem'), 'utf8').includes(evil.split(/\r?\n/)[1]!),
        );
        assert.equal(cli(ctx, ['recover', '-c', addr, '--workspace-dir', ws]).code, 0);
        const v = cli(ctx, ['verify', '-c', addr, '--workspace-dir', ws]);
        assert.equal(v.code, 0, v.stderr);
        const out = join(ctx.dir, 'root-append-web');
        const init = initializer(ctx, c, ctx.hashes.web!, out);
        assert.equal(init.code, 0, init.stderr);
        for (const file of [
          join(ws, 'verify', 'coordinator-root-ca.pem'),
          join(out, 'tls-config', 'coordinator-root-ca.pem'),
        ]) {
          const text = readFileSync(file, 'utf8');
          assert.equal(text.match(/BEGIN CERTIFICATE/g)?.length, 1, `${file} holds one certificate`);
          assert.ok(
            new X509Certificate(text).publicKey.equals(new X509Certificate(rootBefore).publicKey),
            `${file} is the deployment's root`,
          );
        }
      } finally {
        await c.kill();
      }
    });

    it('set refuses a manifest with a weak seed-share owner key before contacting the Coordinator', () => {
      const ws = workspaceCopy('weak-key');
      const m = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8'));
      m.SeedshareOwnerPubKeys.push(
        generateKeyPairSync('rsa', { modulusLength: 1024 })
          .publicKey.export({ type: 'pkcs1', format: 'der' })
          .toString('hex'),
      );
      m.SeedshareOwnerPubKeys.sort();
      writeFileSync(join(ws, 'manifest.json'), `${JSON.stringify(m, null, 2)}\n`);
      const r = cli(ctx, ['set', '-c', '127.0.0.1:1', '--workspace-dir', ws, '--retry-for', '0', ctx.res]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /manifest\.json, field SeedshareOwnerPubKeys\[\d\]: RSA key of 1024 bits; at least 2048 required/,
      );
    });

    it('generate --disable-recovery writes DisableRecovery and no seed-share owner; set accepts it', async () => {
      const ws = join(ctx.dir, 'ws-norecovery');
      const res = join(ctx.dir, 'res-norecovery');
      cpSync(join(REPO_ROOT, 'samples', 'plain'), res, { recursive: true });
      const both = cli(ctx, [...simGenerateArgs(ws), '--disable-recovery', '--add-seedshare-owner-key', 'x.pem', res]);
      assert.equal(both.code, 2, both.stderr);
      const g = cli(ctx, [...simGenerateArgs(ws), '--disable-recovery', res]);
      assert.equal(g.code, 0, g.stderr);
      const m = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8'));
      assert.deepEqual(m.SeedshareOwnerPubKeys, []);
      assert.equal(m.DisableRecovery, true);
      const c = await startCoordinatorProcess({
        stateDir: join(ctx.dir, 'state-norecovery'),
        policyHash: ctx.hashes.coordinator!,
        simDir: ctx.sim,
        workDir: ctx.dir,
      });
      try {
        const s = cli(ctx, ['set', '-c', `127.0.0.1:${c.ports.userapi}`, '--workspace-dir', ws, res]);
        assert.equal(s.code, 0, s.stderr);
        assert.match(s.stderr, /disables recovery/);
        assert.ok(!existsSync(join(ws, 'seed-shares.json')));
      } finally {
        await c.kill();
      }
      // Without the flag the next run lists the workspace's owner key again.
      const g2 = cli(ctx, [...simGenerateArgs(ws), res]);
      assert.equal(g2.code, 0, g2.stderr);
      const m2 = JSON.parse(readFileSync(join(ws, 'manifest.json'), 'utf8'));
      assert.equal(m2.SeedshareOwnerPubKeys.length, 1);
      assert.equal(m2.DisableRecovery, undefined);
    });
  });
});

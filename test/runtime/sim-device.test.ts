/**
 * The simulated runtime's attestation device over real Unix sockets: a pod gets reports with the
 * host data the node registered for it and nothing it sends changes that; hostile bytes on the
 * device and control sockets get no report and do not stop the daemon; registrations survive a
 * restart; the root key stays out of every pod's directory. Then the whole admission in process:
 * a Coordinator and an Initializer that attest through their devices.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  MAX_CONTROL_REQUEST,
  NOT_RUNNING,
  SIM_CONTROL_SOCKET,
  checkSandboxId,
  registerSandbox,
  simDeviceDir,
  startSimDevice,
  unregisterSandbox,
  type SimDevice,
  type SimDeviceOptions,
} from '../../src/runtime/sim-device.js';
import { SimDeviceIssuer, requestSimDeviceReport } from '../../src/issuers/sim-device.js';
import { unixAddress } from '../../src/issuers/unix-path.js';
import { buildSimReport, loadOrCreateSimRoot } from '../../src/issuers/simulated.js';
import {
  SIMULATED_MEASUREMENT,
  SIM_DEVICE_SOCKET,
  SIM_REPORT_SIZE,
  loadSimRootPublicKey,
  parseSimReport,
  verifySimulated,
} from '../../src/attestation/simulated.js';
import { OID_SIMULATED_EVIDENCE } from '../../src/attestation/tees.js';
import { verifyEvidence } from '../../src/attestation/dispatch.js';
import { startCoordinator } from '../../src/coordinator/server.js';
import { MemoryStore } from '../../src/coordinator/store/dir.js';
import { sha256 } from '../../src/coordinator/crypto.js';
import { callUserApi } from '../../src/coordinator/client.js';
import { RpcError, Status } from '../../src/coordinator/api/grpc.js';
import { requestMeshCert, runInitializer } from '../../src/initializer/initializer.js';
import { COORD, manifest, wo } from '../coordinator/state-helpers.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const REFS = [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }];
const sandbox = () => randomBytes(32).toString('hex'); // what the CRI gives: 64 hex
const hash = (s: string) => createHash('sha256').update(s).digest();
const quiet = { log: () => undefined };

/** What the device sends back for these bytes (and whether we end our side), until it closes. */
function rawDevice(dir: string, send: Buffer | undefined, opts: { end?: boolean } = {}): Promise<Buffer> {
  const address = unixAddress(dir, SIM_DEVICE_SOCKET);
  return new Promise((resolve, reject) => {
    const sock = connect(address.path);
    const chunks: Buffer[] = [];
    sock.on('connect', () => {
      address.release();
      if (send) sock.write(send);
      if (opts.end) sock.end();
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') return; // the daemon dropped us mid-write
      address.release();
      reject(e);
    });
    sock.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** One raw control request line (or bytes), the daemon's parsed answer. */
function rawControl(stateDir: string, bytes: string | Buffer): Promise<{ ok: boolean; error?: string }> {
  const address = unixAddress(stateDir, SIM_CONTROL_SOCKET);
  return new Promise((resolve, reject) => {
    const sock = connect(address.path);
    const chunks: Buffer[] = [];
    sock.on('connect', () => {
      address.release();
      sock.end(bytes);
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || e.code === 'ECONNRESET') return;
      reject(e);
    });
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(JSON.parse(text) as { ok: boolean; error?: string });
      } catch {
        reject(new Error(`not an answer: ${JSON.stringify(text)}`));
      }
    });
  });
}

function filesBelow(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesBelow(join(dir, e.name)) : [join(dir, e.name)],
  );
}

const mode = (path: string) => statSync(path).mode & 0o777;

describe('the simulated attestation device (node side and container side)', function () {
  this.timeout(60_000);
  let base: string;
  let stateDir: string;
  let rootDir: string;
  let daemon: SimDevice | undefined;
  const start = async (opts: Partial<SimDeviceOptions> = {}) => {
    daemon = await startSimDevice({ stateDir, rootDir, ...quiet, ...opts });
    return daemon;
  };

  beforeEach(() => {
    // Short paths: a socket address holds 107 bytes (a long state directory has its own test).
    base = tempDir('kc-sd-');
    stateDir = join(base, 's');
    rootDir = join(base, 'root');
  });
  afterEach(async () => {
    await daemon?.close();
    daemon = undefined;
    removeDir(base);
  });

  describe('attacks on the device socket', () => {
    it('the host data is the registered one whatever the client sends', async () => {
      await start();
      const a = sandbox();
      const dir = await registerSandbox(stateDir, a, hash('policy A'));
      // Report data that spells another pod's host data, twice over: it stays report data.
      const spoof = Buffer.concat([hash('policy B'), hash('policy B')]);
      const report = parseSimReport(await rawDevice(dir, spoof));
      assert.deepEqual(report.hostData, hash('policy A'));
      assert.deepEqual(report.reportData, spoof);
      // Host data appended after the report data: no report at all.
      assert.equal((await rawDevice(dir, Buffer.concat([randomBytes(64), hash('policy B')]))).length, 0);
    });

    it('requests of the wrong size get no report: short then end, long, empty', async () => {
      await start();
      const dir = await registerSandbox(stateDir, sandbox(), hash('p'));
      assert.equal((await rawDevice(dir, randomBytes(63), { end: true })).length, 0);
      assert.equal((await rawDevice(dir, randomBytes(65))).length, 0);
      assert.equal((await rawDevice(dir, undefined, { end: true })).length, 0);
      // 64 bytes split over writes are one request: framing is by count, not by write.
      const rd = randomBytes(64);
      const address = unixAddress(dir, SIM_DEVICE_SOCKET);
      const got = await new Promise<Buffer>((resolve, reject) => {
        const s = connect(address.path);
        const chunks: Buffer[] = [];
        s.on('connect', () => {
          address.release();
          s.write(rd.subarray(0, 10));
          setImmediate(() => s.write(rd.subarray(10)));
        });
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('error', reject);
        s.on('close', () => resolve(Buffer.concat(chunks)));
      });
      assert.equal(got.length, SIM_REPORT_SIZE);
      assert.deepEqual(parseSimReport(got).reportData, rd);
    });

    it('a megabyte of garbage gets nothing and the device keeps serving', async () => {
      await start();
      const dir = await registerSandbox(stateDir, sandbox(), hash('p'));
      assert.equal((await rawDevice(dir, randomBytes(1024 * 1024))).length, 0);
      assert.equal((await rawDevice(dir, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), { end: true })).length, 0);
      assert.equal((await rawDevice(dir, randomBytes(64))).length, SIM_REPORT_SIZE);
      // Random lengths around the right one: a report for exactly 64 bytes, nothing for any other.
      for (let i = 0; i < 60; i++) {
        const n = i === 0 ? 64 : (randomBytes(1)[0]! % 130) + (i % 2);
        const got = await rawDevice(dir, n ? randomBytes(n) : undefined, { end: true });
        assert.equal(got.length, n === 64 ? SIM_REPORT_SIZE : 0, `${n} bytes`);
      }
    });

    it('a client that never sends is dropped', async () => {
      await start({ requestTimeoutMs: 200 });
      const dir = await registerSandbox(stateDir, sandbox(), hash('p'));
      assert.equal((await rawDevice(dir, undefined)).length, 0); // resolves only once the daemon closes it
      assert.equal((await rawDevice(dir, randomBytes(10))).length, 0);
      // The same on the control socket: a half-written request is dropped without an answer.
      const control = unixAddress(stateDir, SIM_CONTROL_SOCKET);
      const got = await new Promise<Buffer>((resolve, reject) => {
        const s = connect(control.path);
        const chunks: Buffer[] = [];
        s.on('connect', () => s.write('{"op":"reg'));
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('error', reject);
        s.on('close', () => resolve(Buffer.concat(chunks)));
      });
      control.release();
      assert.equal(got.length, 0);
    });

    it('connections beyond the limit are closed at once; the others and other pods are served', async () => {
      await start({ maxConnectionsPerDevice: 4, requestTimeoutMs: 60_000 });
      const dir = await registerSandbox(stateDir, sandbox(), hash('p'));
      const other = await registerSandbox(stateDir, sandbox(), hash('q'));
      const idle: Socket[] = [];
      for (let i = 0; i < 4; i++) {
        const address = unixAddress(dir, SIM_DEVICE_SOCKET);
        const s = connect(address.path);
        await new Promise((ok) => s.once('connect', ok));
        address.release();
        s.on('error', () => undefined);
        idle.push(s);
      }
      // Four idle clients hold every slot: the fifth is closed without a report, even with a valid request.
      for (let round = 0; ; round++) {
        const got = await rawDevice(dir, randomBytes(64));
        if (got.length === 0) break;
        // The server may not have counted the last idle connection yet.
        assert.ok(round < 50, 'the fifth connection was served');
        await new Promise((ok) => setTimeout(ok, 20));
      }
      assert.equal((await rawDevice(other, randomBytes(64))).length, SIM_REPORT_SIZE);
      for (const s of idle) s.destroy();
      for (let round = 0; ; round++) {
        if ((await rawDevice(dir, randomBytes(64))).length === SIM_REPORT_SIZE) break;
        assert.ok(round < 100, 'the device did not serve again after the idle clients left');
        await new Promise((ok) => setTimeout(ok, 20));
      }
    });

    it('many parallel requests within the limit each get their own report', async () => {
      await start({ maxConnectionsPerDevice: 64 });
      const dir = await registerSandbox(stateDir, sandbox(), hash('p'));
      const rds = Array.from({ length: 48 }, () => randomBytes(64));
      const reports = await Promise.all(rds.map((rd) => rawDevice(dir, rd)));
      reports.forEach((r, i) => assert.deepEqual(parseSimReport(r).reportData, rds[i]));
    });
  });

  describe('attacks on the control socket', () => {
    it('refuses bad sandbox ids on the client and on the daemon', async () => {
      await start();
      const bad = ['../x', '', '.', '..', 'a/b', 'a..b', '-a', 'a-', 'a\n', 'ü', 'x'.repeat(77), '/etc', 'a b'];
      for (const id of bad) {
        assert.throws(() => checkSandboxId(id), /invalid sandbox id/, id);
        await assert.rejects(registerSandbox(stateDir, id, hash('p')), /invalid sandbox id/, id);
        // The same request written by hand, past the client's check.
        const answer = await rawControl(
          stateDir,
          `${JSON.stringify({ op: 'register', sandboxId: id, hostData: hash('p').toString('hex') })}\n`,
        );
        assert.equal(answer.ok, false, id);
        assert.match(answer.error!, /invalid sandbox id/);
      }
      assert.deepEqual(readdirSync(join(stateDir, 'pods')), []);
      assert.deepEqual(readdirSync(base).sort(), ['root', 's']); // nothing written next to the state
      // What containerd gives is accepted: CRI's 64 hex, and its identifier grammar up to 76 characters.
      for (const id of [sandbox(), 'test-1.a_b', 'X'.repeat(76)]) assert.equal(checkSandboxId(id), id);
    });

    it('refuses malformed requests and keeps serving', async () => {
      await start();
      const id = sandbox();
      const hd = hash('p').toString('hex');
      const cases: [string | Buffer, RegExp][] = [
        ['not json\n', /not JSON/],
        ['[]\n', /not a JSON object/],
        ['null\n', /not a JSON object/],
        [`${JSON.stringify({ op: 'register', sandboxId: id, hostData: hd, extra: 1 })}\n`, /exactly op, sandboxId/],
        [`${JSON.stringify({ op: 'register', sandboxId: id, hostData: hd.toUpperCase() })}\n`, /hostData must be/],
        [`${JSON.stringify({ op: 'register', sandboxId: id, hostData: hd.slice(2) })}\n`, /hostData must be/],
        [`${JSON.stringify({ op: 'register', sandboxId: id, hostData: [1] })}\n`, /hostData must be/],
        [`${JSON.stringify({ op: 'register', sandboxId: 5, hostData: hd })}\n`, /invalid sandbox id number/],
        [`${JSON.stringify({ op: 'unregister', sandboxId: id, hostData: hd })}\n`, /exactly op and sandboxId/],
        [`${JSON.stringify({ op: 'delete-everything', sandboxId: id })}\n`, /op must be/],
        [`${JSON.stringify({ op: 'unregister', sandboxId: id })}\n{"op":"unregister"}\n`, /one request per connection/],
        [`{"op":"register"`, /ended before its newline/],
        [Buffer.alloc(MAX_CONTROL_REQUEST + 10, 'a'), /longer than 1024 bytes/],
      ];
      for (const [bytes, expected] of cases) {
        const answer = await rawControl(stateDir, bytes);
        assert.equal(answer.ok, false, String(bytes).slice(0, 80));
        assert.match(answer.error!, expected);
      }
      assert.deepEqual(readdirSync(join(stateDir, 'pods')), []);
      assert.ok((await registerSandbox(stateDir, id, hash('p'))).endsWith(join(id, 'device')));
    });

    it('re-registration: same host data is the same device, other host data is refused', async () => {
      await start();
      const id = sandbox();
      const dir = await registerSandbox(stateDir, id, hash('A'));
      assert.equal(dir, simDeviceDir(stateDir, id));
      assert.equal(await registerSandbox(stateDir, id, hash('A')), dir);
      await assert.rejects(
        registerSandbox(stateDir, id, hash('B')),
        /refused: sandbox [0-9a-f]{64} is registered with other host data/,
      );
      assert.deepEqual(parseSimReport(await rawDevice(dir, randomBytes(64))).hostData, hash('A'));
      // Concurrent registrations of one sandbox with two hashes: exactly one wins.
      const id2 = sandbox();
      const results = await Promise.allSettled([
        registerSandbox(stateDir, id2, hash('A')),
        registerSandbox(stateDir, id2, hash('B')),
      ]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      await assert.rejects(registerSandbox(stateDir, sandbox(), Buffer.alloc(31)), /host data must be 32 bytes/);
    });

    it('unregister removes the socket and the directory; an unknown sandbox is no error', async () => {
      await start();
      const id = sandbox();
      const dir = await registerSandbox(stateDir, id, hash('A'));
      await unregisterSandbox(stateDir, id);
      assert.deepEqual(readdirSync(join(stateDir, 'pods')), []);
      await assert.rejects(rawDevice(dir, randomBytes(64)), /ENOENT/);
      await unregisterSandbox(stateDir, id);
      await unregisterSandbox(stateDir, sandbox());
      // Registered again afterwards, with any host data: it is a new pod.
      const again = await registerSandbox(stateDir, id, hash('B'));
      assert.deepEqual(parseSimReport(await rawDevice(again, randomBytes(64))).hostData, hash('B'));
    });

    it("answers the device directory under the caller's path; a daemon answer for another sandbox is refused", async () => {
      await start();
      // The wrapper on the host and the daemon in its container may see the state at different paths.
      const link = join(base, 'host-path');
      symlinkSync(stateDir, link);
      const id = sandbox();
      const dir = await registerSandbox(link, id, hash('A'));
      assert.equal(dir, join(link, 'pods', id, 'device'));
      assert.deepEqual(parseSimReport(await rawDevice(dir, randomBytes(64))).hostData, hash('A'));
      await daemon!.close();
      daemon = undefined;
      // A control socket that answers ok for some other directory.
      const fake = createServer((s) => {
        s.on('data', () => s.end(`${JSON.stringify({ ok: true, deviceDir: `/x/pods/${sandbox()}/device` })}\n`));
        s.on('error', () => undefined);
      });
      await new Promise<void>((ok) => fake.listen(join(stateDir, SIM_CONTROL_SOCKET), ok));
      try {
        await assert.rejects(registerSandbox(stateDir, id, hash('A')), /names no device directory for sandbox/);
      } finally {
        await new Promise((ok) => fake.close(ok));
      }
    });

    it('says the daemon is not running when nothing listens, and refuses a second daemon', async () => {
      await assert.rejects(registerSandbox(stateDir, sandbox(), hash('A')), (e: Error) =>
        e.message.startsWith(`${NOT_RUNNING} (nothing listens on ${join(stateDir, SIM_CONTROL_SOCKET)})`),
      );
      mkdirSync(stateDir, { recursive: true });
      writeFileSync(join(stateDir, SIM_CONTROL_SOCKET), ''); // a stale file, not a socket
      await assert.rejects(unregisterSandbox(stateDir, sandbox()), (e: Error) => e.message.startsWith(NOT_RUNNING));
      await start();
      await assert.rejects(
        startSimDevice({ stateDir, rootDir, ...quiet }),
        /another insecure-sim device daemon serves/,
      );
      assert.ok(await registerSandbox(stateDir, sandbox(), hash('A'))); // the first one still serves
    });
  });

  describe('trust shape', () => {
    it('two pods get reports with their own host data, signed by the node root', async () => {
      await start();
      const [a, b] = [sandbox(), sandbox()];
      const dirA = await registerSandbox(stateDir, a, hash('policy A'));
      const dirB = await registerSandbox(stateDir, b, hash('policy B'));
      const rd = randomBytes(64);
      const [ra, rb] = [await rawDevice(dirA, rd), await rawDevice(dirB, rd)];
      assert.deepEqual(parseSimReport(ra).hostData, hash('policy A'));
      assert.deepEqual(parseSimReport(rb).hostData, hash('policy B'));
      // The public root in each device directory is the node's.
      for (const dir of [rootDir, dirA, dirB]) {
        const root = loadSimRootPublicKey(dir);
        assert.equal(
          verifySimulated(ra, REFS, { reportData: rd, hostData: hash('policy A') }, root).tee,
          'insecure-sim',
        );
        assert.throws(
          () => verifySimulated(rb, REFS, { reportData: rd, hostData: hash('policy A') }, root),
          /HOST_DATA does not match/,
        );
      }
      // A report by another root (a container's own key) does not verify with the node's.
      const forged = buildSimReport(
        generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
        hash('policy A'),
        rd,
      );
      assert.throws(() => verifySimulated(forged, REFS, { reportData: rd }, loadSimRootPublicKey(dirA)), /signature/);
    });

    it('no private key below the pods; modes: state 0700, control 0600, device dir 0755, socket 0666', async () => {
      await start();
      const dir = await registerSandbox(stateDir, sandbox(), hash('A'));
      await registerSandbox(stateDir, sandbox(), hash('B'));
      for (const f of filesBelow(join(stateDir, 'pods'))) {
        assert.notEqual(f.split('/').at(-1), 'root-key.pem', f);
        if (statSync(f).isFile()) assert.ok(!readFileSync(f, 'utf8').includes('PRIVATE KEY'), f);
      }
      assert.deepEqual(readdirSync(dir).sort(), ['root.pub.pem', 'tsm.sock']);
      assert.equal(mode(stateDir), 0o700);
      assert.equal(mode(join(stateDir, SIM_CONTROL_SOCKET)), 0o600);
      assert.ok(statSync(join(stateDir, SIM_CONTROL_SOCKET)).isSocket());
      assert.equal(mode(dir), 0o755);
      assert.equal(mode(join(dir, SIM_DEVICE_SOCKET)), 0o666);
      assert.equal(mode(join(dir, 'root.pub.pem')), 0o644);
      assert.equal(mode(join(rootDir, 'root-key.pem')), 0o600);
      await assert.rejects(
        startSimDevice({ stateDir: join(base, 's2'), rootDir: join(base, 's2', 'pods', 'x'), ...quiet }),
        /must not be below/,
      );
    });

    it('a restart serves the registered pods again with the same root; broken entries are not served', async () => {
      await start();
      const [a, b] = [sandbox(), sandbox()];
      const dirA = await registerSandbox(stateDir, a, hash('A'));
      await registerSandbox(stateDir, b, hash('B'));
      const blocked = sandbox();
      await registerSandbox(stateDir, blocked, hash('C'));
      const rootBefore = readFileSync(join(rootDir, 'root.pub.pem'), 'utf8');
      await daemon!.close();
      daemon = undefined;
      assert.deepEqual(readdirSync(dirA), ['root.pub.pem']); // the socket goes with the daemon
      // Tampering while it is down: b's host data rewritten badly, a half-made registration, a stray name.
      writeFileSync(join(stateDir, 'pods', b, 'hostdata'), `${hash('evil').toString('hex').toUpperCase()}\n`);
      const half = sandbox();
      mkdirSync(join(stateDir, 'pods', half, 'device'), { recursive: true });
      mkdirSync(join(stateDir, 'pods', '..evil'));
      // blocked's socket name is taken by a directory: it cannot be served, the others are.
      mkdirSync(join(simDeviceDir(stateDir, blocked), SIM_DEVICE_SOCKET, 'x'), { recursive: true });
      const logs: string[] = [];
      await start({ log: (m) => logs.push(m) });
      const rd = randomBytes(64);
      const report = await rawDevice(dirA, rd);
      assert.equal(
        verifySimulated(report, REFS, { reportData: rd, hostData: hash('A') }, loadSimRootPublicKey(dirA)).tee,
        'insecure-sim',
      );
      assert.equal(readFileSync(join(rootDir, 'root.pub.pem'), 'utf8'), rootBefore);
      assert.equal(await registerSandbox(stateDir, a, hash('A')), dirA);
      await assert.rejects(registerSandbox(stateDir, a, hash('B')), /other host data/);
      // b is not served (its host data is unreadable) and cannot be re-registered until unregistered.
      await assert.rejects(rawDevice(simDeviceDir(stateDir, b), randomBytes(64)), /ENOENT/);
      await assert.rejects(registerSandbox(stateDir, b, hash('evil')), /exists but is not a registered sandbox/);
      await unregisterSandbox(stateDir, b);
      assert.ok(await registerSandbox(stateDir, b, hash('B')));
      assert.deepEqual(readdirSync(join(stateDir, 'pods')).sort(), ['..evil', a, b, blocked].sort());
      assert.ok(logs.some((l) => l.startsWith(`not serving sandbox ${blocked}: `)));
      assert.ok(logs.some((l) => l.includes(`not serving sandbox ${b}`)));
      assert.ok(logs.some((l) => l.includes('a registration that did not complete')));
      assert.ok(logs.some((l) => l.includes('..evil') && l.includes('not a sandbox id')));
    });

    it('works below a state directory longer than a socket address', async () => {
      stateDir = join(base, 'x'.repeat(120));
      await start();
      const id = sandbox();
      const dir = await registerSandbox(stateDir, id, hash('A'));
      assert.ok(Buffer.byteLength(join(dir, SIM_DEVICE_SOCKET)) > 107);
      assert.deepEqual(readdirSync(dir).sort(), ['root.pub.pem', 'tsm.sock']);
      assert.deepEqual(readdirSync(stateDir).sort(), ['control.sock', 'pods']);
      const rd = randomBytes(64);
      assert.deepEqual(parseSimReport(await requestSimDeviceReport(dir, rd)).hostData, hash('A'));
      await unregisterSandbox(stateDir, id);
    });
  });

  describe('the container side: SimDeviceIssuer', () => {
    it('returns simulated evidence that the dispatcher verifies with the pod-visible root', async () => {
      await start();
      const dir = await registerSandbox(stateDir, sandbox(), hash('A'));
      const rd = randomBytes(64);
      const ev = await new SimDeviceIssuer(dir).issue(rd);
      assert.equal(ev.oid, OID_SIMULATED_EVIDENCE);
      assert.equal(ev.value.length, SIM_REPORT_SIZE);
      const ok = await verifyEvidence(ev.oid, ev.value, { insecure: REFS }, rd, {
        simRoot: loadSimRootPublicKey(dir),
        onSimulated: () => undefined,
      });
      assert.deepEqual(ok.hostData, hash('A'));
      await assert.rejects(new SimDeviceIssuer(dir).issue(randomBytes(32)), /exactly 64 bytes/);
    });

    it('refuses a device that answers wrong: short, long, not a report, another binding, silence', async () => {
      const dir = join(base, 'fake');
      mkdirSync(dir);
      const root = loadOrCreateSimRoot(join(base, 'fake-root'));
      let answer: (rd: Buffer) => Buffer | undefined = () => undefined;
      const server = createServer((s) => {
        let got = Buffer.alloc(0);
        s.on('data', (c: Buffer) => {
          got = Buffer.concat([got, c]);
          if (got.length < 64) return;
          const a = answer(got);
          if (a) s.end(a);
        });
        s.on('error', () => undefined);
      });
      await new Promise<void>((ok) => server.listen(join(dir, SIM_DEVICE_SOCKET), ok));
      try {
        const issuer = new SimDeviceIssuer(dir, 300);
        const cases: [(rd: Buffer) => Buffer | undefined, RegExp][] = [
          [(rd) => buildSimReport(root, hash('A'), rd).subarray(0, 100), /sent 100 bytes, a report has 252/],
          [(rd) => Buffer.concat([buildSimReport(root, hash('A'), rd), Buffer.alloc(1)]), /more than 252 bytes/],
          [() => Buffer.alloc(SIM_REPORT_SIZE), /not a simulated report/],
          [() => buildSimReport(root, hash('A'), randomBytes(64)), /does not carry our report data/],
          [() => Buffer.alloc(0), /closed the connection without a report/],
          [() => undefined, /no report within 300 ms/],
        ];
        for (const [a, expected] of cases) {
          answer = a;
          await assert.rejects(issuer.issue(randomBytes(64)), expected);
        }
        answer = (rd) => buildSimReport(root, hash('A'), rd);
        assert.equal((await issuer.issue(randomBytes(64))).value.length, SIM_REPORT_SIZE);
      } finally {
        await new Promise((ok) => server.close(ok));
      }
      await assert.rejects(new SimDeviceIssuer(join(base, 'none')).issue(randomBytes(64)), /cannot open|not reachable/);
      rmSync(join(base, 'fake'), { recursive: true });
    });
  });

  describe('admission end to end in process: Coordinator and Initializer through their devices', () => {
    it('admits the workload whose registered host data is its manifest hash, refuses another', async () => {
      await start();
      const web = Buffer.from('web policy');
      const coordDir = await registerSandbox(stateDir, sandbox(), sha256(COORD));
      const webDir = await registerSandbox(stateDir, sandbox(), sha256(web));
      const evilDir = await registerSandbox(stateDir, sandbox(), sha256(Buffer.from('patched web policy')));
      // Verifiers read the public root where a pod sees it: its own device directory.
      const saved = process.env.CONTRAST_INSECURE_SIM_DIR;
      process.env.CONTRAST_INSECURE_SIM_DIR = coordDir;
      const coord = await startCoordinator({
        store: new MemoryStore(),
        issuer: new SimDeviceIssuer(coordDir),
        host: '127.0.0.1',
        userPort: 0,
        meshPort: 0,
        metricsPort: 0,
        log: () => undefined,
      });
      try {
        const raw = manifest({ policies: [web] });
        await coord.authority.setManifest(raw, [COORD, web], undefined);
        // The user attests the Coordinator's device evidence against the manifest's Coordinator entry.
        const parsed = JSON.parse(raw.toString('utf8'));
        await callUserApi('GetManifests', Buffer.alloc(0), {
          address: { host: '127.0.0.1', port: coord.ports.userapi },
          manifest: parsed,
          clientKey: wo,
        });
        const out = join(base, 'out');
        const result = await runInitializer({
          host: '127.0.0.1',
          port: coord.ports.meshapi,
          issuer: new SimDeviceIssuer(webDir),
          outDir: out,
          timeoutMs: 30_000,
          log: () => undefined,
        });
        assert.equal(result.attempts, 1);
        assert.ok(readFileSync(join(out, 'tls-config', 'certChain.pem'), 'utf8').includes('BEGIN CERTIFICATE'));
        await assert.rejects(
          requestMeshCert({ host: '127.0.0.1', port: coord.ports.meshapi, issuer: new SimDeviceIssuer(evilDir) }),
          (e: unknown) =>
            e instanceof RpcError &&
            e.code === Status.PERMISSION_DENIED &&
            e.message.includes('policy.hash') &&
            e.message.includes(sha256(Buffer.from('patched web policy')).toString('hex')),
        );
      } finally {
        await coord.close();
        if (saved === undefined) delete process.env.CONTRAST_INSECURE_SIM_DIR;
        else process.env.CONTRAST_INSECURE_SIM_DIR = saved;
      }
    });
  });
});

/**
 * The node side of the simulated runtime's attestation device (`insecure-sim`). A daemon on the
 * node holds the simulated root key and gives every pod a device of its own: a Unix socket that
 * answers 64 bytes of report data with a report whose host data is the hash the node registered
 * for that pod (its initdata hash). The containers get the device directory (the socket and the
 * public root) and nothing else, so, as in a confidential VM, they can ask for reports but cannot
 * sign one or choose its host data.
 *
 * Layout of the state directory (only root on the node reaches it; mode 0700):
 *
 *   control.sock                   the wrapper's control socket (0600)
 *   pods/<sandbox>/hostdata        the registered host data, 64 hex + newline (0600), for restarts
 *   pods/<sandbox>/device/         what the wrapper mounts at SIM_DEVICE_MOUNT (0755)
 *   pods/<sandbox>/device/tsm.sock the pod's device (0666: containers run as any user)
 *   pods/<sandbox>/device/root.pub.pem   the public root, for a Coordinator's verifier (0644)
 *
 * Control protocol (control.sock; one request per connection): one line of JSON, at most
 * MAX_CONTROL_REQUEST bytes with its newline, `{"op":"register","sandboxId":ID,"hostData":HEX64}`
 * or `{"op":"unregister","sandboxId":ID}`; the answer is one line `{"ok":true,"deviceDir":DIR}`
 * (register), `{"ok":true}` (unregister) or `{"ok":false,"error":TEXT}`. Registering again with
 * the same host data answers the same directory; with other host data it is refused.
 *
 * Device protocol (tsm.sock; one request per connection): the client sends exactly 64 bytes, the
 * daemon answers exactly one 252-byte report (src/attestation/simulated.ts) and closes. More than
 * 64 bytes, fewer followed by the end of the stream, or nothing within the request timeout: the
 * connection is closed without a report. Connections beyond the per-device limit are closed at once.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { join, resolve, sep } from 'node:path';
import { SIM_DEVICE_SOCKET } from '../attestation/simulated.js';
import { issueSimReport, loadOrCreateSimRoot } from '../issuers/simulated.js';
import { unixAddress, unixExchange, type UnixAddress, type UnixExchangeError } from '../issuers/unix-path.js';
import { writeFileAtomic } from '../util/atomic-write.js';

export const SIM_CONTROL_SOCKET = 'control.sock';
export const MAX_CONTROL_REQUEST = 1024;
const MAX_CONTROL_ANSWER = 64 * 1024;
const REPORT_DATA_SIZE = 64;
const HOST_DATA_SIZE = 32;
const HEX64 = /^[0-9a-f]{64}$/;

export const NOT_RUNNING =
  "the insecure-sim device daemon is not running on this node: is the node installer's pod running?";

/**
 * containerd's identifier grammar (pkg/identifiers/validate.go): runs of letters and digits
 * joined by single `.`, `_` or `-`, 1 to 76 characters. The CRI's sandbox ids (64 lower-case hex)
 * are such names. One never contains `/` and is never `.` or `..`: always one path component.
 */
const SANDBOX_ID = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const MAX_SANDBOX_ID = 76;

export function checkSandboxId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_SANDBOX_ID || !SANDBOX_ID.test(id)) {
    const shown = typeof id === 'string' ? JSON.stringify(id.slice(0, 80)) + (id.length > 80 ? '…' : '') : typeof id;
    throw new Error(
      `invalid sandbox id ${shown}: expected a containerd identifier (letters and digits joined by single '.', '_' or '-', 1 to ${MAX_SANDBOX_ID} characters)`,
    );
  }
  return id;
}

const podDir = (stateDir: string, id: string): string => join(stateDir, 'pods', checkSandboxId(id));

/** The directory the wrapper mounts at SIM_DEVICE_MOUNT in the containers of this sandbox. */
export function simDeviceDir(stateDir: string, sandboxId: string): string {
  return join(podDir(resolve(stateDir), sandboxId), 'device');
}

export interface SimDeviceOptions {
  /** The daemon's state (above); created with mode 0700. */
  stateDir: string;
  /** The simulated root (root-key.pem, root.pub.pem), created on first start; never below stateDir/pods. */
  rootDir: string;
  /** A connection's whole life, request and answer (default 5 s); a slower client is dropped. */
  requestTimeoutMs?: number;
  /** Open connections per pod's device (default 16); more are closed at once. */
  maxConnectionsPerDevice?: number;
  /** What the daemon did and refused (default: standard error). */
  log?: (message: string) => void;
}

export interface SimDevice {
  /** Stop serving (the sockets go away); the registrations stay for the next start. */
  close(): Promise<void>;
}

interface Limits {
  timeoutMs: number;
  maxConnections: number;
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(path, () => {
      server.off('error', fail);
      ok();
    });
  });
}

/** Answer one device request: exactly 64 bytes in, one report out, then the connection ends. */
function serveReport(sock: Socket, rootKey: KeyObject, hostData: Buffer, limits: Limits): void {
  const timer = setTimeout(() => sock.destroy(), limits.timeoutMs);
  sock.on('close', () => clearTimeout(timer));
  sock.on('error', () => sock.destroy());
  const chunks: Buffer[] = [];
  let received = 0;
  let answered = false;
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    if (received > REPORT_DATA_SIZE) return void sock.destroy();
    chunks.push(chunk);
    if (received < REPORT_DATA_SIZE) return;
    answered = true;
    sock.off('data', onData);
    issueSimReport(rootKey, hostData, Buffer.concat(chunks)).then(
      (report) => sock.end(report, () => sock.destroy()),
      () => sock.destroy(),
    );
  };
  sock.on('data', onData);
  sock.on('end', () => {
    if (!answered) sock.destroy();
  });
}

/** One pod's device: its socket, served until closed. */
class Device {
  private constructor(
    readonly hostData: Buffer,
    private readonly server: Server,
    private readonly address: UnixAddress,
    private readonly sockets: Set<Socket>,
  ) {}

  static async open(dir: string, hostData: Buffer, rootKey: KeyObject, limits: Limits): Promise<Device> {
    // A socket left by the previous run: the directory stays (containers have it mounted), the socket is renewed.
    rmSync(join(dir, SIM_DEVICE_SOCKET), { force: true });
    const address = unixAddress(dir, SIM_DEVICE_SOCKET);
    const sockets = new Set<Socket>();
    // Half-open: a client that ends its side after the 64 bytes still gets the report, which is
    // signed asynchronously (serveReport ends our side).
    const server = createServer({ allowHalfOpen: true }, (sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      serveReport(sock, rootKey, hostData, limits);
    });
    server.maxConnections = limits.maxConnections;
    try {
      await listen(server, address.path);
      chmodSync(join(dir, SIM_DEVICE_SOCKET), 0o666);
    } catch (err) {
      server.close();
      address.release();
      throw err;
    }
    server.on('error', () => undefined);
    return new Device(hostData, server, address, sockets);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((ok) => this.server.close(() => ok()));
    for (const s of this.sockets) s.destroy();
    await closed;
    this.address.release();
  }
}

function parseHostDataFile(text: string): Buffer {
  if (!/^[0-9a-f]{64}\n$/.test(text)) throw new Error('expected 64 lower-case hex characters and a newline');
  return Buffer.from(text.slice(0, 64), 'hex');
}

type ControlRequest = { op: 'register'; sandboxId: string; hostData: Buffer } | { op: 'unregister'; sandboxId: string };

function parseControlRequest(line: string): ControlRequest {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error('the request is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('the request is not a JSON object');
  const r = v as Record<string, unknown>;
  const keys = Object.keys(r).sort().join(',');
  if (r.op === 'register') {
    if (keys !== 'hostData,op,sandboxId') throw new Error('register takes exactly op, sandboxId and hostData');
    if (typeof r.hostData !== 'string' || !HEX64.test(r.hostData))
      throw new Error('hostData must be 64 lower-case hex characters (32 bytes)');
    return { op: 'register', sandboxId: checkSandboxId(r.sandboxId), hostData: Buffer.from(r.hostData, 'hex') };
  }
  if (r.op === 'unregister') {
    if (keys !== 'op,sandboxId') throw new Error('unregister takes exactly op and sandboxId');
    return { op: 'unregister', sandboxId: checkSandboxId(r.sandboxId) };
  }
  throw new Error('op must be "register" or "unregister"');
}

class Daemon {
  private readonly devices = new Map<string, Device>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly rootPublicPem: string;

  constructor(
    readonly stateDir: string,
    private readonly rootKey: KeyObject,
    private readonly limits: Limits,
    private readonly log: (message: string) => void,
  ) {
    this.rootPublicPem = createPublicKey(rootKey).export({ type: 'spki', format: 'pem' }) as string;
  }

  /** Control operations one at a time: a register and an unregister of one sandbox never interleave. */
  serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op, op);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async openDevice(id: string, hostData: Buffer): Promise<string> {
    const dir = join(podDir(this.stateDir, id), 'device');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    writeFileAtomic(join(dir, 'root.pub.pem'), this.rootPublicPem, { mode: 0o644 });
    this.devices.set(id, await Device.open(dir, hostData, this.rootKey, this.limits));
    return dir;
  }

  async register(id: string, hostData: Buffer): Promise<string> {
    checkSandboxId(id);
    if (hostData.length !== HOST_DATA_SIZE) throw new Error(`host data must be ${HOST_DATA_SIZE} bytes`);
    const existing = this.devices.get(id);
    const pod = podDir(this.stateDir, id);
    if (existing) {
      if (existing.hostData.equals(hostData)) return join(pod, 'device');
      throw new Error(
        `sandbox ${id} is registered with other host data (${existing.hostData.toString('hex')}); a pod's host data never changes`,
      );
    }
    try {
      mkdirSync(pod, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      throw new Error(
        `${pod} exists but is not a registered sandbox (see the daemon's start log); unregister ${id} first`,
        { cause: err },
      );
    }
    try {
      writeFileAtomic(join(pod, 'hostdata'), `${hostData.toString('hex')}\n`, { mode: 0o600 });
      const dir = await this.openDevice(id, hostData);
      this.log(`registered sandbox ${id} with host data ${hostData.toString('hex')}`);
      return dir;
    } catch (err) {
      rmSync(pod, { recursive: true, force: true });
      throw err;
    }
  }

  async unregister(id: string): Promise<void> {
    const pod = podDir(this.stateDir, id);
    const device = this.devices.get(id);
    if (device) {
      this.devices.delete(id);
      await device.close();
    }
    rmSync(pod, { recursive: true, force: true });
    if (device) this.log(`unregistered sandbox ${id}`);
  }

  /** Serve the devices of the pods registered before this start. */
  async reopen(): Promise<void> {
    const pods = join(this.stateDir, 'pods');
    mkdirSync(pods, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(pods)) {
      try {
        checkSandboxId(name);
      } catch {
        this.log(`ignoring ${join(pods, name)}: not a sandbox id`);
        continue;
      }
      let text: string;
      try {
        text = readFileSync(join(pods, name, 'hostdata'), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        // A registration that crashed before its host data was written was never answered.
        rmSync(join(pods, name), { recursive: true, force: true });
        this.log(`removed ${join(pods, name)}: a registration that did not complete`);
        continue;
      }
      let hostData: Buffer;
      try {
        hostData = parseHostDataFile(text);
      } catch (err) {
        this.log(`not serving sandbox ${name}: ${join(pods, name, 'hostdata')}: ${(err as Error).message}`);
        continue;
      }
      try {
        await this.openDevice(name, hostData);
      } catch (err) {
        // One pod's broken directory must not keep the others' devices down.
        this.log(`not serving sandbox ${name}: ${(err as Error).message}`);
        continue;
      }
      this.log(`serving sandbox ${name} again (host data ${hostData.toString('hex')})`);
    }
  }

  async close(): Promise<void> {
    await this.queue;
    const devices = [...this.devices.values()];
    this.devices.clear();
    await Promise.all(devices.map((d) => d.close()));
  }
}

function answerControl(sock: Socket, daemon: Daemon, timeoutMs: number): void {
  const timer = setTimeout(() => sock.destroy(), timeoutMs);
  sock.on('close', () => clearTimeout(timer));
  sock.on('error', () => sock.destroy());
  const reply = (answer: object): void => void sock.end(`${JSON.stringify(answer)}\n`, () => sock.destroy());
  const chunks: Buffer[] = [];
  let received = 0;
  let done = false;
  const onData = (chunk: Buffer): void => {
    const nl = chunk.indexOf(0x0a);
    received += nl < 0 ? chunk.length : nl + 1;
    if (received > MAX_CONTROL_REQUEST) {
      done = true;
      sock.off('data', onData);
      return reply({ ok: false, error: `the request is longer than ${MAX_CONTROL_REQUEST} bytes` });
    }
    chunks.push(nl < 0 ? chunk : chunk.subarray(0, nl));
    if (nl < 0) return;
    done = true;
    sock.off('data', onData);
    clearTimeout(timer); // the time limit is the client's; a registration waiting for others is not dropped
    if (nl !== chunk.length - 1) return reply({ ok: false, error: 'one request per connection' });
    let request: ControlRequest;
    try {
      request = parseControlRequest(Buffer.concat(chunks).toString('utf8'));
    } catch (err) {
      return reply({ ok: false, error: (err as Error).message });
    }
    const op =
      request.op === 'register'
        ? daemon.serial(() => daemon.register(request.sandboxId, request.hostData)).then((deviceDir) => ({ deviceDir }))
        : daemon.serial(() => daemon.unregister(request.sandboxId)).then(() => ({}));
    op.then(
      (result) => reply({ ok: true, ...result }),
      (err: Error) => reply({ ok: false, error: err.message }),
    );
  };
  sock.on('data', onData);
  sock.on('end', () => {
    if (!done) reply({ ok: false, error: 'the request ended before its newline' });
  });
}

/** Whether a daemon answers on this control socket (another instance is running). */
function controlAnswers(stateDir: string): Promise<boolean> {
  return new Promise((ok) => {
    let address: UnixAddress;
    try {
      address = unixAddress(stateDir, SIM_CONTROL_SOCKET);
    } catch {
      return ok(false);
    }
    const sock = connect(address.path);
    const done = (answers: boolean): void => {
      address.release();
      sock.destroy();
      ok(answers);
    };
    sock.on('connect', () => done(true));
    sock.on('error', () => done(false));
  });
}

export async function startSimDevice(opts: SimDeviceOptions): Promise<SimDevice> {
  const stateDir = resolve(opts.stateDir);
  const rootDir = resolve(opts.rootDir);
  const log = opts.log ?? ((m: string) => process.stderr.write(`insecure-sim device: ${m}\n`));
  const limits: Limits = {
    timeoutMs: opts.requestTimeoutMs ?? 5000,
    maxConnections: opts.maxConnectionsPerDevice ?? 16,
  };
  if (`${rootDir}${sep}`.startsWith(`${join(stateDir, 'pods')}${sep}`))
    throw new Error(
      `the simulated root ${rootDir} must not be below ${join(stateDir, 'pods')}: pods see those directories`,
    );
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);
  const daemon = new Daemon(stateDir, loadOrCreateSimRoot(rootDir), limits, log);
  if (await controlAnswers(stateDir))
    throw new Error(`another insecure-sim device daemon serves ${join(stateDir, SIM_CONTROL_SOCKET)}`);
  rmSync(join(stateDir, SIM_CONTROL_SOCKET), { force: true });
  try {
    await daemon.reopen();
  } catch (err) {
    await daemon.close();
    throw err;
  }
  const address = unixAddress(stateDir, SIM_CONTROL_SOCKET);
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    answerControl(sock, daemon, limits.timeoutMs);
  });
  server.maxConnections = 64;
  try {
    await listen(server, address.path);
    chmodSync(join(stateDir, SIM_CONTROL_SOCKET), 0o600);
  } catch (err) {
    server.close();
    address.release();
    await daemon.close();
    throw err;
  }
  server.on('error', (err) => log(`control socket: ${err.message}`));
  return {
    close: async () => {
      const closed = new Promise<void>((ok) => server.close(() => ok()));
      await daemon.close();
      for (const s of sockets) s.destroy();
      await closed;
      address.release();
    },
  };
}

/** One control request: the daemon's answer, or an error that says what went wrong. */
function controlRequest(
  stateDir: string,
  request: Record<string, string>,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const path = join(resolve(stateDir), SIM_CONTROL_SOCKET);
  return unixExchange(resolve(stateDir), SIM_CONTROL_SOCKET, `${JSON.stringify(request)}\n`, {
    timeoutMs,
    maxBytes: MAX_CONTROL_ANSWER,
  }).then(
    (bytes) => {
      const text = bytes.toString('utf8');
      let answer: unknown;
      try {
        if (!text.endsWith('\n')) throw new Error('no newline');
        answer = JSON.parse(text);
      } catch {
        throw new Error(`the insecure-sim device daemon (${path}) sent no valid answer`);
      }
      const a = answer as Record<string, unknown>;
      if (typeof a !== 'object' || a === null) throw new Error(`the device daemon's answer is not an object`);
      if (a.ok !== true)
        throw new Error(
          `the insecure-sim device daemon refused: ${typeof a.error === 'string' ? a.error : 'no reason'}`,
        );
      return a;
    },
    (err: UnixExchangeError) => {
      throw new Error(
        err.kind === 'open'
          ? `${NOT_RUNNING} (${path} cannot be reached)`
          : err.kind === 'unreachable'
            ? `${NOT_RUNNING} (nothing listens on ${path})`
            : err.kind === 'timeout'
              ? `the insecure-sim device daemon (${path}) did not answer within ${timeoutMs} ms`
              : err.kind === 'too-long'
                ? `the device daemon's answer is too long (${path})`
                : `the insecure-sim device daemon (${path}): ${err.message}`,
      );
    },
  );
}

/**
 * Register a sandbox's host data (the wrapper, before the sandbox's first container). Returns the
 * device directory to mount at SIM_DEVICE_MOUNT, as seen from the caller's `stateDir`.
 */
export async function registerSandbox(
  stateDir: string,
  sandboxId: string,
  hostData: Buffer,
  opts: { timeoutMs?: number } = {},
): Promise<string> {
  checkSandboxId(sandboxId);
  if (hostData.length !== HOST_DATA_SIZE)
    throw new Error(`host data must be ${HOST_DATA_SIZE} bytes (the initdata hash), got ${hostData.length}`);
  const answer = await controlRequest(
    stateDir,
    { op: 'register', sandboxId, hostData: hostData.toString('hex') },
    opts.timeoutMs ?? 10_000,
  );
  // The daemon may see the state directory at another path (its container's mount): the caller's path is the one to mount.
  if (typeof answer.deviceDir !== 'string' || !answer.deviceDir.endsWith(`${sep}${join('pods', sandboxId, 'device')}`))
    throw new Error(`the device daemon's answer names no device directory for sandbox ${sandboxId}`);
  return simDeviceDir(stateDir, sandboxId);
}

/** Remove a sandbox's device (the wrapper, when the sandbox is deleted); nothing to do for an unknown one. */
export async function unregisterSandbox(
  stateDir: string,
  sandboxId: string,
  opts: { timeoutMs?: number } = {},
): Promise<void> {
  checkSandboxId(sandboxId);
  await controlRequest(stateDir, { op: 'unregister', sandboxId }, opts.timeoutMs ?? 10_000);
}

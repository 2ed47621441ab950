/**
 * The node installer's parts without a node: containerd's configuration block, runc's command
 * line, and the installation into a directory standing for the node's `/`, with a real process
 * standing for containerd (found through the real /proc, restarted with a real signal). The
 * installation on a real node is test/e2e/.
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { withRuntimeHandler } from '../../src/runtime/containerd-config.js';
import { parseRuncArgs } from '../../src/runtime/runc-args.js';
import { containerdProcesses, installNode, wrapperScript } from '../../src/runtime/install-node.js';
import { runtimePaths } from '../../src/runtime/paths.js';
import { requirePlatform, runtimeHandler } from '../../src/platforms/platforms.js';
import { ALL_CAPS, defaultSettings } from '../../src/policy/settings.js';
import { nodeSettings } from '../../scripts/node-settings.js';

const HANDLER = 'contrast-cc-insecure-sim-0123abcd';
const CFG = { handler: HANDLER, binaryName: '/opt/x/bin/runc-wrapper', podAnnotations: ['io.katacontainers.*'] };
const CRI = 'io.containerd.grpc.v1.cri';
type T = Record<string, any>;

describe('runtime: containerd configuration block', () => {
  const base = `version = 2\n[plugins."${CRI}"]\n  sandbox_image = "pause"\n[plugins."${CRI}".containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n`;

  it('adds the handler with the runc v2 shim, BinaryName and pod_annotations, keeping everything else', () => {
    const out = withRuntimeHandler(base, CFG, 'config.toml');
    assert.ok(out.startsWith(base), 'what was there stays byte for byte');
    const cfg = parseToml(out) as T;
    const rt = cfg.plugins[CRI].containerd.runtimes[HANDLER];
    assert.equal(rt.runtime_type, 'io.containerd.runc.v2');
    assert.deepEqual(rt.pod_annotations, ['io.katacontainers.*']);
    assert.equal(rt.options.BinaryName, CFG.binaryName);
    assert.equal(rt.privileged_without_host_devices, true);
    assert.equal(cfg.plugins[CRI].sandbox_image, 'pause');
    assert.equal(cfg.plugins[CRI].containerd.runtimes.runc.runtime_type, 'io.containerd.runc.v2');
  });

  it('is idempotent, and installing again with another wrapper replaces only its block', () => {
    const once = withRuntimeHandler(base, CFG, 'config.toml');
    assert.equal(withRuntimeHandler(once, CFG, 'config.toml'), once);
    const moved = withRuntimeHandler(once, { ...CFG, binaryName: '/other/wrapper' }, 'config.toml');
    assert.equal((moved.match(/BEGIN kubectl-contrast/g) ?? []).length, 1);
    assert.equal(
      (parseToml(moved) as T).plugins[CRI].containerd.runtimes[HANDLER].options.BinaryName,
      '/other/wrapper',
    );
    const two = withRuntimeHandler(once, { ...CFG, handler: 'contrast-cc-insecure-sim-ffffffff' }, 'config.toml');
    assert.deepEqual(Object.keys((parseToml(two) as T).plugins[CRI].containerd.runtimes).sort(), [
      HANDLER,
      'contrast-cc-insecure-sim-ffffffff',
      'runc',
    ]);
  });

  it('starts an empty file as version 2', () => {
    const out = withRuntimeHandler('', CFG, 'config.toml');
    assert.equal((parseToml(out) as T).version, 2);
  });

  it('refuses version 1 (or none with content), broken TOML, a handler defined by someone else, a half block, a bad name', () => {
    assert.throws(() => withRuntimeHandler('[plugins.cri]\n', CFG, 'c.toml'), /c\.toml: no "version = 2"/);
    assert.throws(() => withRuntimeHandler('version = 1\n', CFG, 'c.toml'), /version 1; version 2 is needed/);
    assert.throws(() => withRuntimeHandler('version = 2\n[plugins\n', CFG, 'c.toml'), /c\.toml: not valid TOML/);
    const theirs = `${base}[plugins."${CRI}".containerd.runtimes."${HANDLER}"]\n  runtime_type = "x"\n`;
    assert.throws(() => withRuntimeHandler(theirs, CFG, 'c.toml'), /outside the kubectl-contrast block/);
    const half = withRuntimeHandler(base, CFG, 'c.toml').replace(/# END[^\n]*\n/, '');
    assert.throws(() => withRuntimeHandler(half, CFG, 'c.toml'), /but not its end/);
    assert.throws(() => withRuntimeHandler(base, { ...CFG, handler: 'a"]\n[x' }, 'c.toml'), /not a DNS label/);
  });
});

describe('runtime: runc command lines of the runc v2 shim', () => {
  const id = 'a'.repeat(64);
  it('reads the subcommand, log, bundle and id of create and delete', () => {
    assert.deepEqual(
      parseRuncArgs([
        '--root',
        '/run/containerd/runc/k8s.io',
        '--log',
        '/b/log.json',
        '--log-format',
        'json',
        '--systemd-cgroup',
        'create',
        '--bundle',
        '/b',
        '--pid-file',
        '/b/init.pid',
        '--no-pivot',
        id,
      ]),
      { subcommand: 'create', logFile: '/b/log.json', logFormat: 'json', bundle: '/b', id },
    );
    assert.deepEqual(parseRuncArgs(['--log=/l', 'delete', '--force', id]), { subcommand: 'delete', logFile: '/l', id });
    assert.deepEqual(parseRuncArgs(['create', '-b', '/x', id]).bundle, '/x');
    assert.equal(
      parseRuncArgs(['--root', 'create', 'state', id]).subcommand,
      'state',
      'a flag value named create is a value',
    );
  });
  it('refuses a line without subcommand or with a flag missing its value', () => {
    assert.throws(() => parseRuncArgs(['--root', '/r']), /no runc subcommand/);
    assert.throws(() => parseRuncArgs(['--log']), /--log has no value/);
    assert.throws(() => parseRuncArgs(['create', '--bundle']), /--bundle has no value/);
  });
});

describe('runtime: install-node into a directory standing for the node', function () {
  this.timeout(30_000);
  const handler = runtimeHandler(requirePlatform('insecure-sim'));
  let host: string;
  let containerd: ChildProcess | undefined;
  const config = '/etc/contrast-test/containerd.toml';
  const fakeContainerd = () => {
    // A real process that /proc shows as containerd reading our configuration.
    containerd = spawn(
      'bash',
      [
        '-c',
        `exec -a containerd "$0" -e 'setTimeout(() => {}, 60000)' -- --config ${join(host, config)}`,
        process.execPath,
      ],
      { stdio: 'ignore' },
    );
    return containerd;
  };
  const waitExit = (p: ChildProcess) =>
    new Promise<NodeJS.Signals | null>((resolve) =>
      p.exitCode !== null ? resolve(null) : p.once('exit', (_c, s) => resolve(s)),
    );
  const opts = () => ({
    platform: 'insecure-sim',
    handler,
    hostRoot: host,
    runtimeDir: '/opt/kc',
    containerdConfig: join(host, config).slice(host.length),
    executable: process.execPath,
  });

  beforeEach(() => {
    host = mkdtempSync(join(tmpdir(), 'node-install-'));
    mkdirSync(join(host, 'usr', 'sbin'), { recursive: true });
    writeFileSync(join(host, 'usr', 'sbin', 'runc'), '');
    mkdirSync(join(host, 'etc', 'contrast-test'), { recursive: true });
  });
  afterEach(() => {
    containerd?.kill('SIGKILL');
    containerd = undefined;
    rmSync(host, { recursive: true, force: true });
  });

  it('installs the executable, the wrapper and the handler, and restarts the containerd that reads that file', async () => {
    // The containerd of the test reads the file by its path inside `host` (it is not chrooted).
    const o = { ...opts(), containerdConfig: join(host, config), hostRoot: '/' };
    o.runtimeDir = join(host, 'opt', 'kc');
    writeFileSync(join(host, config), 'version = 2\n');
    const p = fakeContainerd();
    await new Promise((r) => setTimeout(r, 200));
    const old = Date.now() / 1000 - 60;
    utimesSync(join(host, config), old, old);
    const result = installNode(o);
    const paths = runtimePaths(o.runtimeDir, handler);
    assert.equal(statSync(paths.executable).size, statSync(process.execPath).size);
    assert.equal(statSync(paths.wrapper).mode & 0o777, 0o755);
    assert.equal(readFileSync(paths.wrapper, 'utf8'), wrapperScript(paths, '/usr/sbin/runc', handler));
    const cfg = parseToml(readFileSync(join(host, config), 'utf8')) as T;
    assert.equal(cfg.plugins[CRI].containerd.runtimes[handler].options.BinaryName, paths.wrapper);
    assert.deepEqual(result.restarted, [p.pid]);
    assert.equal(await waitExit(p), 'SIGTERM');
    assert.ok(existsSync(paths.agentState) && existsSync(paths.deviceState) && existsSync(paths.simRoot));

    // Again, with a containerd started after the configuration was written: nothing changes.
    const q = fakeContainerd();
    await new Promise((r) => setTimeout(r, 1200));
    const old2 = Date.now() / 1000 - 30;
    utimesSync(join(host, config), old2, old2);
    const again = installNode(o);
    assert.deepEqual(again.changed, []);
    assert.deepEqual(again.restarted, []);
    assert.equal(q.exitCode, null);
  });

  it('finds only the containerd of its configuration file', async () => {
    const p = fakeContainerd();
    await new Promise((r) => setTimeout(r, 200));
    const found = containerdProcesses('/proc', join(host, config)).map((x) => x.pid);
    assert.deepEqual(found, [p.pid]);
    assert.deepEqual(containerdProcesses('/proc', join(host, 'other.toml')), []);
  });

  it('refuses without a containerd, without runc, for a hardware platform, and a handler of another platform', () => {
    writeFileSync(join(host, config), 'version = 2\n');
    assert.throws(() => installNode(opts()), /no running containerd reads/);
    rmSync(join(host, 'usr', 'sbin', 'runc'));
    assert.throws(() => installNode(opts()), /no runc on the node/);
    assert.throws(
      () =>
        installNode({
          ...opts(),
          platform: 'metal-qemu-snp',
          handler: runtimeHandler(requirePlatform('metal-qemu-snp')),
        }),
      /installs the simulated runtime \(insecure-sim\) only/,
    );
    assert.throws(
      () => installNode({ ...opts(), handler: 'contrast-cc-metal-qemu-snp-00000000' }),
      /not a runtime class of insecure-sim/,
    );
    assert.throws(
      () => installNode({ ...opts(), handler: 'contrast-cc-insecure-sim-0' }),
      /not a runtime class of insecure-sim/,
    );
  });
});

describe("runtime: the local node's policy settings (scripts/node-settings.ts)", () => {
  const full = (1n << 41n) - 1n;
  const resolv = (s: ReturnType<typeof nodeSettings>) =>
    s.pauseContainer.mounts.find((m) => m.destination === '/etc/resolv.conf')!.options;

  it('describes containerd 1.6 specs: OCI version 1.0.2-dev, the sandbox resolv.conf rbind,ro', () => {
    const s = nodeSettings('1.6.20~ds1', full);
    assert.equal(s.ociVersion, '1.0.2-dev');
    assert.deepEqual(resolv(s), ['rbind', 'ro']);
    assert.deepEqual(s.privilegedCaps, [...ALL_CAPS]);
  });

  it('keeps the defaults for containerd 1.7 and 2.x', () => {
    for (const v of ['1.7.24', 'v2.1.0']) {
      const s = nodeSettings(v, full);
      assert.equal(s.ociVersion, defaultSettings().ociVersion, v);
      assert.deepEqual(resolv(s), resolv(defaultSettings()), v);
    }
  });

  it("gives privileged containers exactly containerd's bounding set", () => {
    const withoutSysResource = full & ~(1n << 24n);
    const s = nodeSettings('1.6.20', withoutSysResource);
    assert.deepEqual(
      s.privilegedCaps,
      ALL_CAPS.filter((c) => c !== 'CAP_SYS_RESOURCE'),
    );
    assert.deepEqual(nodeSettings('1.6.20', 0n).privilegedCaps, []);
  });

  it('refuses what is not a containerd version', () => {
    assert.throws(() => nodeSettings('containerd', full), /not a containerd version/);
  });
});

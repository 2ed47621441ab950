/**
 * Two "pods" for the tests: network namespaces joined by a veth pair (client 10.213.0.1,
 * server 10.213.0.2), each with loopback up. Processes started in them are tracked by pid and
 * killed, and the namespaces deleted, by `destroy()` — and, should the test process die
 * first, by an exit hook.
 */
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export const CLIENT_IP = '10.213.0.1';
export const SERVER_IP = '10.213.0.2';

/** These tests need root for namespaces and iptables; CI runs as root. Never a silent skip. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'test/servicemesh needs root (it makes network namespaces and iptables rules); run it as root, as CI does',
    );
  }
}

/**
 * Why this kernel cannot run the tests, or undefined when it can: a throw-away namespace must be
 * creatable and accept the kinds of rules the proxy installs (nat REDIRECT, conntrack ctstate,
 * REJECT with a reset). A missing program is not a reason (scripts/setup.sh installs them): it
 * fails the test.
 */
export function kernelCannot(): string | undefined {
  const ns = `kcsm-probe-${randomBytes(3).toString('hex')}`;
  const run = (args: string[], input?: string): string | undefined => {
    const r = spawnSync('ip', args, { input: input ?? '', encoding: 'utf8' });
    if (r.error) throw new Error(`cannot run ip: ${r.error.message} (scripts/setup.sh installs iproute2)`);
    return r.status === 0 ? undefined : `\`ip ${args.join(' ')}\` failed: ${(r.stderr || r.stdout).trim()}`;
  };
  const made = run(['netns', 'add', ns]);
  if (made) return made;
  try {
    for (const tool of ['iptables-restore', 'ip6tables-restore']) {
      const r = spawnSync('ip', ['netns', 'exec', ns, tool, '--test'], {
        encoding: 'utf8',
        input:
          '*nat\n:P - [0:0]\n-A P -p tcp --dport 1 -j REDIRECT --to-ports 2\nCOMMIT\n' +
          '*filter\n:G - [0:0]\n-A G -m conntrack --ctstate DNAT -j RETURN\n-A G -p tcp -j REJECT --reject-with tcp-reset\nCOMMIT\n',
      });
      if (r.error) throw new Error(`cannot run ${tool}: ${r.error.message} (scripts/setup.sh installs iptables)`);
      if (r.status === 127) throw new Error(`${tool} is not installed (scripts/setup.sh installs iptables)`);
      if (r.status !== 0) return `${tool} refuses the proxy's rules in a new namespace: ${r.stderr.trim()}`;
    }
    return undefined;
  } finally {
    run(['netns', 'del', ns]);
  }
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Started {
  proc: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal) once the process has ended. */
  exited: Promise<number | string>;
  /** Wait until the output matches, or the process ends, or `ms` pass. */
  waitFor(pattern: RegExp, ms?: number): Promise<void>;
}

const live = new Set<PodNetwork>();
process.once('exit', () => {
  for (const n of live) n.destroySync();
});

export class PodNetwork {
  readonly client: string;
  readonly server: string;
  private readonly veth: [string, string];
  private readonly processes = new Set<ChildProcess>();

  constructor() {
    const id = randomBytes(3).toString('hex');
    this.client = `kcsm-${id}-c`;
    this.server = `kcsm-${id}-s`;
    this.veth = [`kcsm${id}c`, `kcsm${id}s`];
  }

  create(): void {
    live.add(this);
    const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    ip('netns', 'add', this.client);
    ip('netns', 'add', this.server);
    ip('link', 'add', this.veth[0], 'type', 'veth', 'peer', 'name', this.veth[1]);
    ip('link', 'set', this.veth[0], 'netns', this.client);
    ip('link', 'set', this.veth[1], 'netns', this.server);
    ip('-n', this.client, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', this.veth[0]);
    ip('-n', this.server, 'addr', 'add', `${SERVER_IP}/24`, 'dev', this.veth[1]);
    for (const [ns, dev] of [
      [this.client, this.veth[0]],
      [this.server, this.veth[1]],
    ] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', dev, 'up');
    }
  }

  /** Run a command in `ns` to completion. */
  exec(
    ns: string,
    cmd: string,
    args: string[],
    opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
  ): Promise<ExecResult> {
    return new Promise((resolve) => {
      const child = execFile(
        'ip',
        ['netns', 'exec', ns, cmd, ...args],
        { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...opts.env } },
        (err, stdout, stderr) => {
          const code = err
            ? typeof (err as { code?: unknown }).code === 'number'
              ? (err as { code: number }).code
              : -1
            : 0;
          resolve({ code, stdout, stderr });
        },
      );
      this.processes.add(child);
      child.once('exit', () => this.processes.delete(child));
      // A command that exits without reading its input must not fail the test with EPIPE.
      child.stdin?.on('error', () => {});
      child.stdin?.end(opts.input ?? '');
    });
  }

  /** Start a long-running command in `ns`. `ip netns exec` execs it, so the pid is the command's. */
  start(ns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Started {
    const proc = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.processes.add(proc);
    let out = '';
    const waiters: (() => void)[] = [];
    const onData = (c: Buffer) => {
      out += c.toString();
      for (const w of [...waiters]) w();
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    const exited = new Promise<number | string>((resolve) =>
      proc.once('exit', (code, signal) => {
        this.processes.delete(proc);
        for (const w of [...waiters]) w();
        resolve(code ?? signal ?? -1);
      }),
    );
    const waitFor = (pattern: RegExp, ms = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          remove();
          reject(new Error(`no ${pattern} within ${ms} ms; output:\n${out}`));
        }, ms);
        const check = () => {
          if (pattern.test(out)) {
            remove();
            resolve();
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            remove();
            reject(new Error(`exited (${proc.exitCode ?? proc.signalCode}) before ${pattern}; output:\n${out}`));
          }
        };
        const remove = () => {
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(check), 1);
        };
        waiters.push(check);
        check();
      });
    return { proc, output: () => out, exited, waitFor };
  }

  async destroy(): Promise<void> {
    for (const p of this.processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    this.destroySync();
  }

  destroySync(): void {
    for (const p of this.processes) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const ns of [this.client, this.server]) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
    live.delete(this);
  }
}

/** Start the real Coordinator CLI as a child process on random loopback ports. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ensureBuilt } from '../helpers/cli.js';

export interface CoordinatorProcess {
  proc: ChildProcess;
  ports: { userapi: number; meshapi: number; metrics: number };
  log(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startCoordinatorProcess(opts: {
  stateDir: string;
  policyHash: string;
  simDir: string;
  workDir: string;
  ports?: { userapi: number; meshapi: number };
  /** More `coordinator serve` flags (e.g. --peers). */
  args?: string[];
  /** More environment (e.g. the ConfigMap store's). */
  env?: Record<string, string>;
}): Promise<CoordinatorProcess> {
  ensureBuilt();
  const portsFile = join(opts.workDir, `ports-${process.hrtime.bigint()}.json`);
  const proc = spawn(
    process.execPath,
    [
      CLI,
      'coordinator',
      'serve',
      '--platform',
      'insecure-sim',
      '--sim-policy-hash',
      opts.policyHash,
      '--state-dir',
      opts.stateDir,
      '--listen',
      '127.0.0.1',
      '--user-port',
      String(opts.ports?.userapi ?? 0),
      '--mesh-port',
      String(opts.ports?.meshapi ?? 0),
      '--metrics-port',
      '0',
      '--ports-file',
      portsFile,
      ...(opts.args ?? []),
    ],
    {
      env: { ...process.env, CONTRAST_INSECURE_SIM_DIR: opts.simDir, ...(opts.env ?? {}) },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let log = '';
  proc.stderr!.on('data', (c: Buffer) => {
    log += c.toString();
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const deadline = Date.now() + 30_000;
  while (!existsSync(portsFile)) {
    if (proc.exitCode !== null) throw new Error(`the Coordinator exited early:\n${log}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`the Coordinator did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const ports = JSON.parse(readFileSync(portsFile, 'utf8')) as CoordinatorProcess['ports'];
  rmSync(portsFile);
  return {
    proc,
    ports,
    log: () => log,
    kill: async (signal = 'SIGKILL') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}

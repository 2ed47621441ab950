/**
 * A real Coordinator process for the limit tests: the compiled server (dist/, as the CLI runs
 * it) with a directory store and the simulated issuer, started with the limits and deadlines
 * a test chooses (`coordinator serve` has no flags for them). Its memory is read from
 * /proc/<pid>/status.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBuilt, REPO_ROOT } from '../helpers/cli.js';

export interface LimitedCoordinator {
  proc: ChildProcess;
  pid: number;
  ports: { userapi: number; meshapi: number; metrics: number };
  log(): string;
  /** VmRSS and VmHWM of the process, in MiB. */
  memory(): { rss: number; hwm: number };
  /** Reset VmHWM to the current RSS (clear_refs 5), so the next hwm is the peak from now on. */
  resetPeak(): void;
  metrics(): Promise<string>;
  alive(): boolean;
  kill(): Promise<void>;
}

export async function startLimitedCoordinator(opts: {
  stateDir: string;
  simDir: string;
  policyHash: string;
  limits: Record<string, unknown>;
}): Promise<LimitedCoordinator> {
  ensureBuilt();
  const dist = (p: string) => pathToFileURL(join(REPO_ROOT, 'dist', p)).href;
  const script = `
    const { startCoordinator } = await import(${JSON.stringify(dist('coordinator/server.js'))});
    const { DirStore } = await import(${JSON.stringify(dist('coordinator/store/dir.js'))});
    const { SimulatedIssuer, loadOrCreateSimRoot } = await import(${JSON.stringify(dist('issuers/simulated.js'))});
    const c = await startCoordinator({
      store: new DirStore(${JSON.stringify(opts.stateDir)}),
      issuer: new SimulatedIssuer(loadOrCreateSimRoot(${JSON.stringify(opts.simDir)}), Buffer.from(${JSON.stringify(opts.policyHash)}, 'hex')),
      host: '127.0.0.1', userPort: 0, meshPort: 0, metricsPort: 0,
      limits: ${JSON.stringify(opts.limits)},
    });
    process.stdout.write(JSON.stringify(c.ports) + '\\n');
  `;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, CONTRAST_INSECURE_SIM_DIR: opts.simDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  let out = '';
  proc.stderr!.on('data', (c: Buffer) => {
    log += c.toString();
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const ports = await new Promise<LimitedCoordinator['ports']>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the Coordinator did not start:\n${log}`));
    }, 60_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(JSON.parse(out.split('\n')[0]!) as LimitedCoordinator['ports']);
      }
    });
    proc.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`the Coordinator exited early:\n${log}`));
    });
  });
  const pid = proc.pid!;
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  };
  return {
    proc,
    pid,
    ports,
    log: () => log,
    memory: () => ({ rss: field('VmRSS'), hwm: field('VmHWM') }),
    resetPeak: () => writeFileSync(`/proc/${pid}/clear_refs`, '5'),
    metrics: async () => (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text(),
    alive: () => proc.exitCode === null && proc.signalCode === null,
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

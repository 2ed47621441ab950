/**
 * generate's self-check (every pod's requests against its own policy, src/policy/check.ts) on a
 * worker thread: the rules take about a third of a large run's CPU, and with them off the main
 * thread the second core checks one pod while the main thread builds the next. Small runs, and
 * places where no worker can start (src/util/worker.ts), check on the main thread: same engine,
 * same rules, same report.
 */
import type { Worker } from 'node:worker_threads';
import { evaluateRequests, type PolicyCheckReport, type SynthesizedRequest } from '../policy/index.js';
import { BugError } from '../util/errors.js';
import { startWorker } from '../util/worker.js';

/** Below this many pods, starting a worker (its own module graph and WebAssembly) costs more than it saves. */
export const WORKER_MIN_PODS = 16;
/** Pods queued for the worker at most; beyond that the main thread checks them itself (bounded memory). */
const MAX_IN_FLIGHT = 8;

export interface CheckJob {
  id: number;
  text: string;
  requests: SynthesizedRequest[];
}
export type CheckReply = { id: number; report: PolicyCheckReport } | { id: number; error: string };

export interface SelfChecker {
  check(text: string, requests: SynthesizedRequest[]): Promise<PolicyCheckReport>;
  close(): Promise<void>;
}

class InlineChecker implements SelfChecker {
  async check(text: string, requests: SynthesizedRequest[]): Promise<PolicyCheckReport> {
    return evaluateRequests(text, requests);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class WorkerChecker implements SelfChecker {
  private readonly waiting = new Map<number, { resolve: (r: PolicyCheckReport) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failed: Error | undefined;

  constructor(private readonly worker: Worker) {
    this.worker.on('message', (reply: CheckReply) => {
      const w = this.waiting.get(reply.id);
      if (!w) return;
      this.waiting.delete(reply.id);
      if ('error' in reply) w.reject(new BugError(`the self-check failed: ${reply.error}`));
      else w.resolve(reply.report);
    });
    const fail = (err: Error): void => {
      this.failed ??= new BugError(`the self-check worker stopped: ${err.message}`);
      for (const w of this.waiting.values()) w.reject(this.failed);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    // An exit with nothing waiting must still fail the checks that follow: posted to a stopped
    // worker, they would never be answered.
    this.worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  }

  /**
   * Queued on the worker while it has room; when it is behind (MAX_IN_FLIGHT pods waiting), this
   * thread checks the pod itself instead of waiting, so neither thread idles and the queue
   * stays bounded.
   */
  async check(text: string, requests: SynthesizedRequest[]): Promise<PolicyCheckReport> {
    if (this.failed) throw this.failed;
    if (this.waiting.size >= MAX_IN_FLIGHT) return evaluateRequests(text, requests);
    const id = this.nextId++;
    const done = new Promise<PolicyCheckReport>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.worker.postMessage({ id, text, requests } satisfies CheckJob);
    return done;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** A checker for a run of `pods` pods: on a worker thread when that pays and is possible. */
export function selfChecker(pods: number, useWorker: boolean | undefined): SelfChecker {
  const worker = (useWorker ?? pods >= WORKER_MIN_PODS) ? startWorker(import.meta.url, 'self-check-worker') : undefined;
  return worker ? new WorkerChecker(worker) : new InlineChecker();
}

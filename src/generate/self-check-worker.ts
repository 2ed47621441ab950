/** The worker thread of src/generate/self-check.ts: evaluates each job's requests, in order. */
import { parentPort } from 'node:worker_threads';
import { evaluateRequests } from '../policy/index.js';
import type { CheckJob, CheckReply } from './self-check.js';

parentPort!.on('message', (job: CheckJob) => {
  let reply: CheckReply;
  try {
    reply = { id: job.id, report: evaluateRequests(job.text, job.requests) };
  } catch (err) {
    reply = { id: job.id, error: (err as Error).message };
  }
  parentPort!.postMessage(reply);
});

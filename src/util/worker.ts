/**
 * Starting a worker thread from a module next to the caller: in dist/, its bundle (`<name>.cjs`,
 * made by scripts/bundle-cli.mjs), else tsc's `<name>.js` with its module graph; from src/ (the
 * tests run the sources through tsx), a worker that first registers tsx's loader in its own
 * thread, since Node 20 does not hand the parent's loader hooks to workers; in the single
 * executable, the worker's bundle from its assets (`workers/<name>.cjs`, made by
 * scripts/package-sea.mjs). Undefined where there is none of these: the caller then does the
 * work on its own thread.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { seaTextAsset } from './sea.js';

/** What a worker is started from: a file, or code to evaluate. */
export type WorkerEntry = { file: URL } | { code: string };

/**
 * Where startWorker starts the worker from. `callerUrl`: the caller's import.meta.url; `name`:
 * the worker module's file name without extension.
 */
export function workerEntry(callerUrl: string, name: string): WorkerEntry | undefined {
  const bundled = seaTextAsset(`workers/${name}.cjs`);
  if (bundled !== undefined) return { code: bundled };
  const fromSource = callerUrl.endsWith('.ts');
  const url = new URL(`./${name}.${fromSource ? 'ts' : 'js'}`, callerUrl);
  if (url.protocol !== 'file:' || !existsSync(fileURLToPath(url))) return undefined;
  if (!fromSource) {
    const bundle = new URL(`./${name}.cjs`, callerUrl);
    return { file: existsSync(fileURLToPath(bundle)) ? bundle : url };
  }
  return {
    code: `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`,
  };
}

/** A worker thread of the module `name` beside the caller (see workerEntry); undefined where there is none. */
export function startWorker(callerUrl: string, name: string): Worker | undefined {
  const entry = workerEntry(callerUrl, name);
  if (!entry) return undefined;
  return 'file' in entry ? new Worker(entry.file) : new Worker(entry.code, { eval: true });
}

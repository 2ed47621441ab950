/**
 * Starting a worker thread from a module next to the caller: its .js file in dist/; from src/
 * (the tests run the sources through tsx), a worker that first registers tsx's loader in its own
 * thread, since Node 20 does not hand the parent's loader hooks to workers; in the single
 * executable, the worker's bundle from its assets (`workers/<name>.cjs`, made by
 * scripts/package-sea.mjs). Undefined where there is none of these: the caller then does the
 * work on its own thread.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { seaTextAsset } from './sea.js';

/** `callerUrl`: the caller's import.meta.url; `name`: the worker module's file name without extension. */
export function startWorker(callerUrl: string, name: string): Worker | undefined {
  const bundled = seaTextAsset(`workers/${name}.cjs`);
  if (bundled !== undefined) return new Worker(bundled, { eval: true });
  const fromSource = callerUrl.endsWith('.ts');
  const url = new URL(`./${name}.${fromSource ? 'ts' : 'js'}`, callerUrl);
  if (url.protocol !== 'file:' || !existsSync(fileURLToPath(url))) return undefined;
  if (!fromSource) return new Worker(url);
  const load = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(load, { eval: true });
}

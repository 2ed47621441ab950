/**
 * The one transform behind every post-renderer (Helm 3 executable, Helm 4 plugin, kustomize
 * KRM function and exec plugin): rendered resources in, the same resources made confidential
 * out, and the workspace's manifest.json rewritten from what was rendered.
 *
 * It calls the `generate` pipeline unchanged. Nothing is written unless the whole run
 * succeeded; then manifest.json is replaced atomically (a concurrent reader sees the old or
 * the new file, never a mix). The last run's outcome goes to `<workspace>/render.log`,
 * because Helm 4 and `kubectl kustomize` do not show a post-renderer's standard error.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateFromInputs, type GenerateOptions, type GenerateResult } from '../generate/pipeline.js';
import { workloadCount, writeManifestOf } from '../generate/write.js';
import type { InputFile } from '../resources/inputs.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { Diagnostics } from '../util/diagnostics.js';
import { BugError, errorMessage } from '../util/errors.js';
import { warnAboutHooks } from './hooks.js';

/** The file name of the post-render log in the workspace. */
const LOG_FILE = 'render.log';

/** Annotations Helm and kustomize add for their own bookkeeping and strip from what they apply. */
const HOST_ANNOTATION =
  /^(postrenderer\.helm\.sh\/|internal\.config\.kubernetes\.io\/|config\.kubernetes\.io\/(index|path|id)$|config\.k8s\.io\/id$|kustomize\.config\.k8s\.io\/)/;

function isHostAnnotation(key: string): boolean {
  return HOST_ANNOTATION.test(key);
}

export interface PostRenderResult {
  /** One text per input, in input order. */
  texts: string[];
  result: GenerateResult;
  manifestPath: string;
  summary: string;
}

/** Transform rendered resources and record the policies in the workspace; warnings go to `diagnostics`. */
export async function postRender(
  inputs: InputFile[],
  options: GenerateOptions,
  diagnostics: Diagnostics,
): Promise<PostRenderResult> {
  const result = await generateFromInputs(inputs, { ...options, transientAnnotation: isHostAnnotation }, diagnostics);
  const texts = result.outputs.map((o) => o.text);
  inputs.forEach((input, i) => {
    // A renderer that prints nothing makes `helm upgrade` delete the whole release.
    if (input.text.trim() !== '' && texts[i]!.trim() === '')
      throw new BugError(`${input.name}: the transform produced no output`);
  });
  warnAboutHooks(result.workloads, diagnostics.warn);
  const manifestPath = writeManifestOf(result, options);
  const summary = `${workloadCount(result)}; ${manifestPath} ${result.manifestChanged ? 'updated' : 'unchanged'}`;
  return { texts, result, manifestPath, summary };
}

/** Where the log goes: $CONTRAST_RENDER_LOG, else render.log in the workspace. */
export function logPath(workspaceDir: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return env.CONTRAST_RENDER_LOG || join(workspaceDir ?? env.CONTRAST_WORKSPACE_DIR ?? '.', LOG_FILE);
}

/** Replace the log with this run's outcome. Never fails the run itself. */
export function writeLog(path: string, mode: string, lines: string[]): void {
  const text = `${new Date().toISOString()} kubectl-contrast ${mode}\n${lines.map((l) => `${l}\n`).join('')}`;
  try {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileAtomic(path, text);
  } catch {
    // The log is a convenience; a read-only workspace must not turn success into failure.
  }
}

/** The lines a failure leaves in the log and on standard error. */
export function failureLines(err: unknown): string[] {
  return [`Error: ${errorMessage(err)}`];
}

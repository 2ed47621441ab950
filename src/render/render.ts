/**
 * The one transform behind every renderer: rendered manifests in, the same manifests made
 * confidential out, and the workspace's manifest.json rewritten from what was rendered.
 *
 * It calls the `generate` pipeline unchanged. Nothing is written unless the whole render
 * succeeded; then manifest.json is replaced atomically (a concurrent reader sees the old or
 * the new file, never a mix). The last run's outcome goes to `<workspace>/render.log`,
 * because Helm 4 and `kubectl kustomize` do not show a renderer's standard error.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateFromInputs, type GenerateResult } from '../generate/pipeline.js';
import { Diagnostics, type Warning } from '../generate/diagnostics.js';
import { writeManifestOf } from '../generate/write.js';
import { generateOptionsFrom, type TransformArgs } from '../cli/generate.js';
import type { InputFile } from '../manifests/inputs.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError, errorMessage } from '../util/errors.js';
import { hookWarnings } from './hooks.js';

export const RENDER_LOG = 'render.log';

/** Annotations Helm and kustomize add for their own bookkeeping and strip from what they apply. */
const HOST_ANNOTATION = /^(postrenderer\.helm\.sh\/|internal\.config\.kubernetes\.io\/|config\.kubernetes\.io\/(index|path|id)$|config\.k8s\.io\/id$|kustomize\.config\.k8s\.io\/)/;

export function isHostAnnotation(key: string): boolean {
  return HOST_ANNOTATION.test(key);
}

export interface RenderResult {
  /** One text per input, in input order. */
  texts: string[];
  result: GenerateResult;
  warnings: Warning[];
  manifestPath: string;
  summary: string;
}

/** Transform rendered manifests and record the policies in the workspace. */
export async function renderInputs(inputs: InputFile[], args: TransformArgs): Promise<RenderResult> {
  const diagnostics = new Diagnostics();
  const result = await generateFromInputs(inputs, { ...generateOptionsFrom(args, []), transientAnnotation: isHostAnnotation }, diagnostics);
  const texts = result.outputs.map((o) => o.text);
  inputs.forEach((input, i) => {
    // A renderer that prints nothing makes `helm upgrade` delete the whole release.
    if (input.text.trim() !== '' && texts[i]!.trim() === '') throw new UserError('the transform produced no output', { file: input.name });
  });
  for (const w of hookWarnings(result.workloads)) diagnostics.warn(w.message, w.location);
  const manifestPath = writeManifestOf(result, args);
  const n = result.workloads.length;
  const summary = `${n} confidential workload${n === 1 ? '' : 's'}; ${manifestPath} ${result.manifestChanged ? 'updated' : 'unchanged'}`;
  return { texts, result, warnings: diagnostics.warnings, manifestPath, summary };
}

/** Where the render log goes: $CONTRAST_RENDER_LOG, else render.log in the workspace. */
export function renderLogPath(workspaceDir: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return env.CONTRAST_RENDER_LOG || join(workspaceDir ?? env.CONTRAST_WORKSPACE_DIR ?? '.', RENDER_LOG);
}

/** Replace the render log with this run's outcome. Never fails the render itself. */
export function writeRenderLog(path: string, mode: string, lines: string[]): void {
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

/** Writes what `generate` produced: resources (in place, to a file or stdout) and manifest.json. */
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { manifestToJson } from '../workspace/manifest.js';
import { manifestPathOf, type ManifestOptions } from './manifest-step.js';
import type { GenerateResult } from './pipeline.js';
import { ensureSettingsFile } from './policy-step.js';

export interface OutputTarget {
  /** `-o FILE`; "-" is stdout. */
  output?: string;
  /** Inputs came from stdin and no -o was given. */
  toStdout: boolean;
}

/** Concatenate several streams into one, keeping them separate documents. */
export function joinStreams(texts: string[]): string {
  return texts.filter((t) => t.trim() !== '').map((t, i) => {
    const body = t.endsWith('\n') ? t : `${t}\n`;
    // A stream that opens with `---` (after leading comments) already starts a new document.
    const opensDocument = /^(?:[ \t]*(?:#.*)?\n)*---(\s|$)/.test(body);
    return i === 0 || opensDocument ? body : `---\n${body}`;
  }).join('');
}

/** Writes manifest.json (atomically) when this run changed it; returns its path. */
export function writeManifestOf(result: GenerateResult, workspace: { 'workspace-dir': string; manifest?: string }): string {
  const manifestOptions: Pick<ManifestOptions, 'workspaceDir' | 'manifestPath'> = { workspaceDir: workspace['workspace-dir'], manifestPath: workspace.manifest };
  const manifestPath = manifestPathOf(manifestOptions as ManifestOptions);
  mkdirSync(workspace['workspace-dir'], { recursive: true });
  if (result.manifestChanged) writeOrExplain(manifestPath, manifestToJson(result.manifest));
  // The policy settings become editable after the first run, as upstream's settings.json.
  ensureSettingsFile(workspace['workspace-dir']);
  return manifestPath;
}

export function writeGenerateResult(result: GenerateResult, target: OutputTarget, workspace: { 'workspace-dir': string; manifest?: string }): string {
  const combined = () => joinStreams(result.outputs.map((o) => o.text));
  let where: string;
  if (target.output === '-' || (target.output === undefined && target.toStdout)) {
    process.stdout.write(combined());
    where = 'to standard output';
  } else if (target.output !== undefined) {
    writeOrExplain(target.output, combined());
    where = `to ${target.output}`;
  } else {
    const changed = result.outputs.filter((o) => o.changed);
    for (const o of changed) writeOrExplain(o.input.path!, o.text);
    where = `in place (${changed.length} of ${result.outputs.length} files changed)`;
  }
  const manifestPath = writeManifestOf(result, workspace);
  const n = result.workloads.length;
  return `${n} confidential workload${n === 1 ? '' : 's'} written ${where}; ${manifestPath} ${result.manifestChanged ? 'updated' : 'unchanged'}`;
}

function writeOrExplain(path: string, text: string): void {
  try {
    writeFileAtomic(path, text);
  } catch (err) {
    throw new UserError(`cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file: path });
  }
}

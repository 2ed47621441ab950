/** Writes what `generate` produced: resources (in place, to a file or stdout) and manifest.json. */
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.js';
import { writeStdout } from '../util/chunked-write.js';
import { UserError } from '../util/errors.js';
import { manifestToJson } from '../coordinator/manifest.js';
import { manifestPathOf, type ManifestOptions } from './manifest-step.js';
import type { GenerateResult } from './pipeline.js';
import { ensureSettingsFile } from './policy-step.js';

export type OutputTarget =
  /** Each changed input file is rewritten. */
  | { to: 'in-place' }
  /** All resources as one stream, to this file. */
  | { to: 'file'; path: string }
  | { to: 'stdout' };

/** Concatenate several streams into one, keeping them separate documents. */
export function joinStreams(texts: string[]): string {
  return texts
    .filter((t) => t.trim() !== '')
    .map((t, i) => {
      const body = t.endsWith('\n') ? t : `${t}\n`;
      // A stream that opens with `---` (after leading comments) already starts a new document.
      const opensDocument = /^(?:[ \t]*(?:#.*)?\n)*---(\s|$)/.test(body);
      return i === 0 || opensDocument ? body : `---\n${body}`;
    })
    .join('');
}

/** Writes manifest.json (atomically) when this run changed it; returns its path. */
export function writeManifestOf(
  result: GenerateResult,
  workspace: Pick<ManifestOptions, 'workspaceDir' | 'manifestPath'> & { settingsPath?: string },
): string {
  const manifestPath = manifestPathOf(workspace);
  mkdirSync(workspace.workspaceDir, { recursive: true });
  if (result.manifestChanged) writeOrExplain(manifestPath, manifestToJson(result.manifest));
  // The policy settings become editable after the first run, as upstream's settings.json.
  ensureSettingsFile(workspace.workspaceDir, workspace.settingsPath);
  return manifestPath;
}

/** Writes the resources and manifest.json; returns the one-line summary for the user. */
export async function writeGenerateResult(
  result: GenerateResult,
  target: OutputTarget,
  workspace: Pick<ManifestOptions, 'workspaceDir' | 'manifestPath'> & { settingsPath?: string },
): Promise<string> {
  const combined = () => joinStreams(result.outputs.map((o) => o.text));
  let where: string;
  if (target.to === 'stdout') {
    await writeStdout(combined());
    where = 'to standard output';
  } else if (target.to === 'file') {
    writeOrExplain(target.path, combined());
    where = `to ${target.path}`;
  } else {
    const changed = result.outputs.filter((o) => o.changed);
    for (const o of changed) writeOrExplain(o.input.path!, o.text);
    where = `in place (${changed.length} of ${result.outputs.length} files changed)`;
  }
  const manifestPath = writeManifestOf(result, workspace);
  return `${workloadCount(result)} written ${where}; ${manifestPath} ${result.manifestChanged ? 'updated' : 'unchanged'}`;
}

/** "1 confidential workload", "3 confidential workloads". */
export function workloadCount(result: GenerateResult): string {
  const n = result.workloads.length;
  return `${n} confidential workload${n === 1 ? '' : 's'}`;
}

function writeOrExplain(path: string, text: string): void {
  try {
    writeFileAtomic(path, text);
  } catch (err) {
    throw new UserError(`cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      file: path,
    });
  }
}

import type { Argv } from 'yargs';
import { manifestPathOf } from '../generate/manifest-step.js';
import { optionsOf, registerOptions, type WorkspaceArgs } from './options-table.js';

export type { WorkspaceArgs } from './options-table.js';

/** Flags shared by every command that reads or writes the workspace. */
export function workspaceOptions<T>(y: Argv<T>): Argv<T & WorkspaceArgs> {
  return registerOptions<T, WorkspaceArgs>(y, optionsOf(['workspace']));
}

/** The manifest.json the workspace flags name. */
export function manifestPath(argv: WorkspaceArgs): string {
  return manifestPathOf({ workspaceDir: argv['workspace-dir'], manifestPath: argv.manifest });
}

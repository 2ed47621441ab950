import type { Argv } from 'yargs';

export interface WorkspaceArgs {
  'workspace-dir': string;
  manifest?: string;
}

/** Flags shared by every command that reads or writes the workspace. */
export function workspaceOptions<T>(y: Argv<T>): Argv<T & WorkspaceArgs> {
  return y
    .option('workspace-dir', { type: 'string', default: '.', describe: 'Directory for manifest.json, keys, settings and verification output' })
    .option('manifest', { alias: 'm', type: 'string', describe: 'Manifest file (default <workspace-dir>/manifest.json)' }) as Argv<T & WorkspaceArgs>;
}

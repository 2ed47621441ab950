import type { Argv } from 'yargs';
import { optionsOf, registerOptions, type WorkspaceArgs } from './options-table.js';

export type { WorkspaceArgs } from './options-table.js';

/** Flags shared by every command that reads or writes the workspace. */
export function workspaceOptions<T>(y: Argv<T>): Argv<T & WorkspaceArgs> {
  return registerOptions<T, WorkspaceArgs>(y, optionsOf(['workspace']));
}

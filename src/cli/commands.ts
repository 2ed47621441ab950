import type { CommandModule } from 'yargs';
import { generateCommand } from './generate.js';
import { policyCommand } from './policy.js';
import { evidenceCommand } from './evidence.js';

/** Every top-level command, registered explicitly (a bundled single executable cannot scan a directory). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  generateCommand,
  policyCommand,
  evidenceCommand,
];

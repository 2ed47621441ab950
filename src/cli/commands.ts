import type { CommandModule } from 'yargs';
import { generateCommand } from './generate.js';
import { policyCommand } from './policy.js';
import { evidenceCommand } from './evidence.js';
import { helmPluginCommand, helmPostRenderCommand } from './helm-plugin.js';
import { kustomizeCommand } from './kustomize.js';
import { completeCommand } from './completion.js';
import { setCommand } from './set.js';
import { verifyCommand } from './verify.js';
import { recoverCommand } from './recover.js';
import { coordinatorCommand } from './coordinator.js';
import { initializerCommand } from './initializer.js';
import { runtimeCommand } from './runtime.js';
import { statusCommand } from './status.js';
import { portForwarderCommand } from './port-forwarder.js';

/** Every top-level command, registered explicitly (a bundled single executable cannot scan a directory). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  generateCommand,
  policyCommand,
  evidenceCommand,
  helmPostRenderCommand,
  helmPluginCommand,
  kustomizeCommand,
  completeCommand,
  setCommand,
  verifyCommand,
  recoverCommand,
  coordinatorCommand,
  initializerCommand,
  runtimeCommand,
  statusCommand,
  portForwarderCommand,
];

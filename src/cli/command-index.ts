/**
 * Every top-level command, by name, and the module that defines it. A run that names a command
 * imports only that module (cluster and Coordinator commands pull in the Kubernetes client and
 * X.509 stacks, which cost a second of start-up for every other command); `--help` and
 * completion load them all. The imports are literal so that a bundled single executable,
 * which cannot scan a directory, contains every command.
 */
import type { CommandModule } from 'yargs';

/**
 * A command with any argument type. yargs' Argv is invariant in its argument type, so `any` is
 * the one type every CommandModule<object, Args> is assignable to; yargs checks the arguments.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
type AnyCommand = CommandModule<any, any>;

export const COMMAND_LOADERS: Readonly<Record<string, () => Promise<AnyCommand>>> = {
  generate: async () => (await import('./generate.js')).generateCommand,
  policy: async () => (await import('./policy.js')).policyCommand,
  evidence: async () => (await import('./evidence.js')).evidenceCommand,
  'helm-post-render': async () => (await import('./helm-plugin.js')).helmPostRenderCommand,
  'helm-plugin': async () => (await import('./helm-plugin.js')).helmPluginCommand,
  kustomize: async () => (await import('./kustomize.js')).kustomizeCommand,
  __complete: async () => (await import('./completion.js')).completeCommand,
  set: async () => (await import('./set.js')).setCommand,
  verify: async () => (await import('./verify.js')).verifyCommand,
  recover: async () => (await import('./recover.js')).recoverCommand,
  sign: async () => (await import('./upstream.js')).signCommand,
  version: async () => (await import('./version.js')).versionCommand,
  coordinator: async () => (await import('./coordinator.js')).coordinatorCommand,
  initializer: async () => (await import('./initializer.js')).initializerCommand,
  runtime: async () => (await import('./runtime.js')).runtimeCommand,
  status: async () => (await import('./status.js')).statusCommand,
  'port-forwarder': async () => (await import('./port-forwarder.js')).portForwarderCommand,
  'service-mesh': async () => (await import('./service-mesh.js')).serviceMeshCommand,
};

/** The commands to register for these arguments: just the named one when it is known. */
export async function commandsFor(args: string[]): Promise<AnyCommand[]> {
  const loader = args[0] !== undefined ? COMMAND_LOADERS[args[0]] : undefined;
  if (loader) return [await loader()];
  return Promise.all(Object.values(COMMAND_LOADERS).map((load) => load()));
}

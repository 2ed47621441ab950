/**
 * The node side of the simulated runtime (hidden commands; docs/cluster.md): the node
 * installer's entry point, the runc wrapper's hook and the simulated attestation device.
 * Users never type them; the DaemonSet of `runtime apply` and the wrapper script run them.
 */
import type { Argv, CommandModule } from 'yargs';
import { DEFAULT_CONTAINERD_CONFIG, DEFAULT_RUNTIME_DIR } from '../runtime/paths.js';
import { isSingleExecutable } from '../util/sea.js';

/** The node paths: where the runtime goes, and containerd's configuration file. */
export interface NodePathArgs {
  'runtime-dir': string;
  'containerd-config': string;
}

/** `--runtime-dir` and `--containerd-config`, for `runtime render|apply` and the installer alike. */
export function nodePathOptions<T>(y: Argv<T>): Argv<T & NodePathArgs> {
  return y
    .option('runtime-dir', {
      type: 'string',
      default: process.env.CONTRAST_RUNTIME_DIR ?? DEFAULT_RUNTIME_DIR,
      describe: 'Where on the node the runtime is installed (env CONTRAST_RUNTIME_DIR)',
    })
    .option('containerd-config', {
      type: 'string',
      default: process.env.CONTRAST_CONTAINERD_CONFIG ?? DEFAULT_CONTAINERD_CONFIG,
      describe:
        "The node's containerd configuration file that gets the runtime handler (env CONTRAST_CONTAINERD_CONFIG)",
    }) as Argv<T & NodePathArgs>;
}

interface InstallNodeArgs extends NodePathArgs {
  platform: string;
  handler: string;
  'host-root': string;
  executable?: string;
}

const installNodeCommand: CommandModule<object, InstallNodeArgs> = {
  command: 'install-node <platform> <handler>',
  describe: false,
  builder: (y: Argv) =>
    nodePathOptions(y)
      .positional('platform', { type: 'string', demandOption: true })
      .positional('handler', { type: 'string', demandOption: true })
      .option('host-root', { type: 'string', default: '/host', describe: "Where the node's / is mounted" })
      .option('executable', {
        type: 'string',
        describe: 'The executable to install (default: this one, which must be the single executable)',
      }) as Argv<InstallNodeArgs>,
  handler: async (argv) => {
    const { installNode } = await import('../runtime/install-node.js');
    const { UserError } = await import('../util/errors.js');
    if (!argv.executable && !isSingleExecutable())
      throw new UserError(
        'install-node copies the single executable onto the node; run it from one, or pass --executable',
      );
    const result = installNode({
      platform: argv.platform,
      handler: argv.handler,
      hostRoot: argv['host-root'],
      runtimeDir: argv['runtime-dir'],
      containerdConfig: argv['containerd-config'],
      executable: argv.executable ?? process.execPath,
      log: (line) => process.stderr.write(`install-node: ${line}\n`),
    });
    process.stderr.write(
      `install-node: ${argv.handler} installed (${result.changed.length} files changed, containerd ${result.restarted.length > 0 ? 'restarted' : 'already current'})\n`,
    );
  },
};

interface SimAgentArgs {
  'state-dir': string;
  'device-state-dir': string;
  '--'?: (string | number)[];
}

const simAgentCommand: CommandModule<object, SimAgentArgs> = {
  // `sim-agent --state-dir S --device-state-dir D -- RUNC-ARGS...`: runc's line after `--`, unparsed.
  command: 'sim-agent',
  describe: false,
  builder: (y: Argv) =>
    y
      .parserConfiguration({ 'populate--': true })
      .option('state-dir', { type: 'string', demandOption: true })
      .option('device-state-dir', { type: 'string', demandOption: true }) as Argv<SimAgentArgs>,
  handler: async (argv) => {
    const { runSimAgent } = await import('../runtime/sim-agent.js');
    process.exitCode = await runSimAgent((argv['--'] ?? []).map(String), {
      stateDir: argv['state-dir'],
      deviceStateDir: argv['device-state-dir'],
    });
  },
};

interface SimDeviceArgs {
  'state-dir': string;
  'root-dir': string;
}

const simDeviceCommand: CommandModule<object, SimDeviceArgs> = {
  command: 'sim-device',
  describe: false,
  builder: (y: Argv) =>
    y
      .option('state-dir', { type: 'string', demandOption: true })
      .option('root-dir', { type: 'string', demandOption: true }) as Argv<SimDeviceArgs>,
  handler: async (argv) => {
    const { startSimDevice } = await import('../runtime/sim-device.js');
    const device = await startSimDevice({ stateDir: argv['state-dir'], rootDir: argv['root-dir'] });
    process.stderr.write(`sim-device: serving the simulated attestation device of this node (${argv['state-dir']})\n`);
    await new Promise<void>((resolve) => {
      const stop = (): void => void device.close().then(resolve);
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  },
};

export const nodeCommands = [installNodeCommand, simAgentCommand, simDeviceCommand] as CommandModule[];

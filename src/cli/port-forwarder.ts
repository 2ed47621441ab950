/** `kubectl contrast port-forwarder` (hidden): the relay inside the port-forwarder pod. */
import type { Argv, CommandModule } from 'yargs';
import { parseAddress } from '../coordinator/client.js';
import { startRelay } from '../kube/relay.js';

interface RelayArgs {
  'listen-port': number;
  target: string;
}

export const portForwarderCommand: CommandModule<object, RelayArgs> = {
  command: 'port-forwarder',
  describe: false,
  builder: (y: Argv) =>
    y
      .option('listen-port', { type: 'number', default: 1313, describe: 'Port to accept connections on' })
      .option('target', {
        type: 'string',
        default: 'coordinator:1313',
        describe: 'HOST:PORT to relay to',
      }) as Argv<RelayArgs>,
  handler: async (argv) => {
    const server = await startRelay(argv['listen-port'], parseAddress(argv.target));
    process.stderr.write(`port-forwarder: relaying :${argv['listen-port']} to ${argv.target}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => server.close(() => resolve());
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  },
};

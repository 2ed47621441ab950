import type { Argv, CommandModule } from 'yargs';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { issuerFor } from '../issuers/index.js';
import { SIM_WARNING } from '../attestation/simulated.js';
import { MESHAPI_PORT, METRICS_PORT, USERAPI_PORT, startCoordinator } from '../coordinator/server.js';
import { coordinatorDeployCommands } from './coordinator-deploy.js';

interface ServeArgs {
  'state-dir': string;
  platform: string;
  'sim-policy-hash'?: string;
  listen: string;
  'user-port': number;
  'mesh-port': number;
  'metrics-port': number;
  'ports-file'?: string;
}

const env = process.env;

const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Run the Coordinator (UserAPI, MeshAPI, probes and metrics) until SIGTERM',
  builder: (y: Argv) => y
    .option('state-dir', { type: 'string', default: env.CONTRAST_STATE_DIR ?? '/mnt/state/history', describe: 'Directory of the manifest history (env CONTRAST_STATE_DIR)' })
    .option('platform', { type: 'string', default: env.CONTRAST_PLATFORM ?? 'auto', describe: 'Evidence issuer: auto/configfs-tsm (SEV-SNP or TDX hardware) or insecure-sim (simulated, NO security) (env CONTRAST_PLATFORM)' })
    .option('sim-policy-hash', { type: 'string', default: env.CONTRAST_SIM_POLICY_HASH, describe: 'insecure-sim: the policy hash to report as host data (env CONTRAST_SIM_POLICY_HASH)' })
    .option('listen', { type: 'string', default: env.CONTRAST_LISTEN ?? '0.0.0.0', describe: 'Address to listen on' })
    .option('user-port', { type: 'number', default: USERAPI_PORT, describe: 'UserAPI port (0 = any free port)' })
    .option('mesh-port', { type: 'number', default: MESHAPI_PORT, describe: 'MeshAPI port (0 = any free port)' })
    .option('metrics-port', { type: 'number', default: METRICS_PORT, describe: 'Probes and metrics port (0 = any free port)' })
    .option('ports-file', { type: 'string', describe: 'Write the ports actually listened on as JSON to this file' }) as Argv<ServeArgs>,
  handler: async (argv) => {
    let issuer;
    try {
      issuer = issuerFor({ issuer: argv.platform, ...(argv['sim-policy-hash'] ? { simPolicyHash: argv['sim-policy-hash'] } : {}) });
    } catch (err) {
      throw new UserError((err as Error).message);
    }
    if (argv.platform.toLowerCase() === 'insecure-sim') process.stderr.write(`${SIM_WARNING}\n`);
    const running = await startCoordinator({
      // The ConfigMap store pulls in the Kubernetes client; load it only when serving.
      store: await (await import('../coordinator/store/select.js')).stateStoreFromEnv(argv['state-dir']),
      issuer,
      host: argv.listen,
      userPort: argv['user-port'],
      meshPort: argv['mesh-port'],
      metricsPort: argv['metrics-port'],
    });
    if (argv['ports-file']) writeFileAtomic(argv['ports-file'], `${JSON.stringify(running.ports)}\n`);
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.stderr.write('coordinator: shutting down\n');
        void running.close().then(resolve);
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  },
};

export const coordinatorCommand: CommandModule = {
  command: 'coordinator <command>',
  describe: 'Render or deploy the Coordinator, or run it (container entry point)',
  builder: (y: Argv) => y.command(serveCommand).command(coordinatorDeployCommands).demandCommand(1),
  handler: () => undefined,
};

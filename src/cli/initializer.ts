import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../util/errors.js';
import { issuerFor } from '../issuers/index.js';
import { runInitializer } from '../initializer/initializer.js';
import { parseAddress } from '../coordinator/client.js';
import { MESHAPI_PORT } from '../coordinator/server.js';

interface InitializerArgs {
  'coordinator-host'?: string;
  platform: string;
  'sim-policy-hash'?: string;
  'out-dir': string;
  timeout: number;
  'retry-interval': number;
}

const env = process.env;

export const initializerCommand: CommandModule<object, InitializerArgs> = {
  command: 'initializer',
  describe: 'Init-container entry point: attest to the Coordinator and write mesh certificates and the workload secret',
  builder: (y: Argv) =>
    y
      .option('coordinator-host', {
        type: 'string',
        default: env.COORDINATOR_HOST,
        describe: 'Coordinator address, HOST or HOST:PORT (MeshAPI port 7777) (env COORDINATOR_HOST)',
      })
      .option('platform', {
        type: 'string',
        default: env.CONTRAST_PLATFORM ?? 'auto',
        describe: 'Evidence issuer: auto/configfs-tsm or insecure-sim (simulated, NO security) (env CONTRAST_PLATFORM)',
      })
      .option('sim-policy-hash', {
        type: 'string',
        default: env.CONTRAST_SIM_POLICY_HASH,
        describe: 'insecure-sim: the policy hash to report (env CONTRAST_SIM_POLICY_HASH)',
      })
      .option('out-dir', {
        type: 'string',
        default: env.CONTRAST_OUT_DIR ?? '/contrast',
        describe: 'Where tls-config/ and secrets/ are written (env CONTRAST_OUT_DIR)',
      })
      .option('timeout', { type: 'number', default: 0, describe: 'Give up after this many seconds (0 = keep trying)' })
      .option('retry-interval', {
        type: 'number',
        default: 5,
        describe: 'Longest wait between attempts in seconds (backoff starts at 1 s)',
      }) as Argv<InitializerArgs>,
  handler: async (argv) => {
    if (!argv['coordinator-host']) throw new UserError('set COORDINATOR_HOST or --coordinator-host');
    const addr = parseAddress(argv['coordinator-host'], MESHAPI_PORT);
    let issuer;
    try {
      issuer = issuerFor({
        issuer: argv.platform,
        ...(argv['sim-policy-hash'] ? { simPolicyHash: argv['sim-policy-hash'] } : {}),
      });
    } catch (err) {
      throw new UserError((err as Error).message);
    }
    try {
      await runInitializer({
        host: addr.host,
        port: addr.port,
        issuer,
        outDir: argv['out-dir'],
        ...(argv.timeout > 0 ? { timeoutMs: argv.timeout * 1000 } : {}),
        retryMs: Math.min(1000, argv['retry-interval'] * 1000),
        maxRetryMs: argv['retry-interval'] * 1000,
      });
    } catch (err) {
      throw new UserError(`initializer: ${(err as Error).message}`);
    }
  },
};

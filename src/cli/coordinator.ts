import type { Argv, CommandModule } from 'yargs';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UsageError, UserError } from '../util/errors.js';
import { readManifest } from '../workspace/manifest.js';
import { coordinatorPolicyHashes } from '../coordinator/client.js';
import { issuerFor } from '../issuers/index.js';
import { SIM_WARNING } from '../attestation/simulated.js';
import { MESHAPI_PORT, METRICS_PORT, USERAPI_PORT, startCoordinator } from '../coordinator/server.js';
import { IN_CLUSTER_PEERS, parsePeers, type PeerSource } from '../coordinator/peers.js';
import { coordinatorDeployCommands } from './coordinator-deploy.js';

interface ServeArgs {
  'state-dir': string;
  platform: string;
  'sim-policy-hash'?: string;
  manifest?: string;
  listen: string;
  'user-port': number;
  'mesh-port': number;
  'metrics-port': number;
  'ports-file'?: string;
  peers?: string;
  'peer-interval': number;
}

const env = process.env;

/**
 * The host data a simulated Coordinator reports: --sim-policy-hash, or the Coordinator entry of
 * --manifest, which is what `set` and `verify` attest it against (no hash copied by hand).
 */
function simulatedPolicyHash(argv: ServeArgs): string | undefined {
  if (argv.manifest === undefined) return argv['sim-policy-hash'];
  if (argv.platform.toLowerCase() !== 'insecure-sim')
    throw new UsageError(
      '--manifest applies to --platform insecure-sim only: real hardware reports the policy hash the runtime measured',
    );
  const manifest = readManifest(argv.manifest);
  if (!manifest)
    throw new UserError(
      'no such manifest',
      { file: argv.manifest },
      { hint: "run `kubectl contrast generate` with the Coordinator's resources first" },
    );
  const hashes = coordinatorPolicyHashes(manifest);
  if (hashes.length === 0)
    throw new UserError(
      'the manifest has no Coordinator entry ("Role": "coordinator")',
      { file: argv.manifest },
      { hint: "generate the Coordinator's resources (`kubectl contrast coordinator render`) with the rest" },
    );
  const given = argv['sim-policy-hash'];
  if (given !== undefined && given !== '' && !hashes.includes(given)) {
    throw new UsageError(
      `--sim-policy-hash ${given} is not a Coordinator policy of ${argv.manifest} (${hashes.join(', ')}); give one of them or leave it out`,
    );
  }
  if (given) return given;
  if (hashes.length > 1)
    throw new UsageError(
      `${argv.manifest} has ${hashes.length} Coordinator policies (${hashes.join(', ')}); pick one with --sim-policy-hash`,
    );
  process.stderr.write(`coordinator: reporting policy hash ${hashes[0]} (the Coordinator entry of ${argv.manifest})\n`);
  return hashes[0];
}

/**
 * The replica's peers: --peers (CONTRAST_PEERS); unset, the headless Service of the rendered
 * StatefulSet when the state is in ConfigMaps (a cluster), else none; `none` turns it off.
 */
function peerSource(argv: ServeArgs): PeerSource | undefined {
  const spec =
    argv.peers ?? ((env.CONTRAST_STATE_STORE ?? '').toLowerCase() === 'configmap' ? IN_CLUSTER_PEERS : undefined);
  if (spec === undefined || spec.trim().toLowerCase() === 'none') return undefined;
  try {
    return parsePeers(spec, { meshPort: argv['mesh-port'] });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Run the Coordinator (UserAPI, MeshAPI, probes and metrics) until SIGTERM',
  builder: (y: Argv) =>
    y
      .option('state-dir', {
        type: 'string',
        default: env.CONTRAST_STATE_DIR ?? '/mnt/state/history',
        describe: 'Directory of the manifest history (env CONTRAST_STATE_DIR)',
      })
      .option('platform', {
        type: 'string',
        default: env.CONTRAST_PLATFORM ?? 'auto',
        describe:
          'Evidence issuer: auto/configfs-tsm (SEV-SNP or TDX hardware) or insecure-sim (simulated, NO security) (env CONTRAST_PLATFORM)',
      })
      .option('sim-policy-hash', {
        type: 'string',
        default: env.CONTRAST_SIM_POLICY_HASH,
        describe: 'insecure-sim: the policy hash to report as host data (env CONTRAST_SIM_POLICY_HASH)',
      })
      .option('manifest', {
        alias: 'm',
        type: 'string',
        requiresArg: true,
        describe:
          'insecure-sim: report the policy hash of the Coordinator entry ("Role": "coordinator") of this manifest.json (instead of --sim-policy-hash)',
      })
      .option('listen', { type: 'string', default: env.CONTRAST_LISTEN ?? '0.0.0.0', describe: 'Address to listen on' })
      .option('user-port', { type: 'number', default: USERAPI_PORT, describe: 'UserAPI port (0 = any free port)' })
      .option('mesh-port', { type: 'number', default: MESHAPI_PORT, describe: 'MeshAPI port (0 = any free port)' })
      .option('metrics-port', {
        type: 'number',
        default: METRICS_PORT,
        describe: 'Probes and metrics port (0 = any free port)',
      })
      .option('ports-file', {
        type: 'string',
        describe: 'Write the ports actually listened on as JSON to this file',
      })
      .option('peers', {
        type: 'string',
        default: env.CONTRAST_PEERS,
        requiresArg: true,
        describe: `Other replicas' MeshAPI for peer recovery: host:port,… or dns:NAME[:PORT] (every address of NAME); none = no peers. Default: ${IN_CLUSTER_PEERS} with the ConfigMap store, else none (env CONTRAST_PEERS)`,
      })
      .option('peer-interval', {
        type: 'number',
        default: 2,
        describe:
          'Seconds between looks at the store and, while the state is missing, between rounds of asking the peers',
      }) as Argv<ServeArgs>,
  handler: async (argv) => {
    const simPolicyHash = simulatedPolicyHash(argv);
    const peers = peerSource(argv);
    if (!(argv['peer-interval'] > 0)) throw new UsageError('--peer-interval must be more than zero seconds');
    let issuer;
    try {
      issuer = issuerFor({ issuer: argv.platform, ...(simPolicyHash ? { simPolicyHash } : {}) });
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
      ...(peers ? { peers, peerIntervalMs: argv['peer-interval'] * 1000 } : {}),
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

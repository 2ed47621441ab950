import type { Argv, CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { WORKLOAD_OWNER_KEY } from '../workspace/keys.js';
import { callUserApi } from '../coordinator/client.js';
import { decode, encode } from '../coordinator/api/proto.js';
import { SetManifestRequestSchema, SetManifestResponseSchema, type SetManifestResponse } from '../coordinator/api/messages.js';
import { seedShareDocumentToJson } from '../coordinator/seedshares.js';
import { workspaceOptions } from './workspace-options.js';
import {
  address, checkPoliciesMatchManifest, coordinatorOption, ephemeralKey, loadLocalManifest, loadPrivateKey, readResourcePolicies, workspacePath, type CoordinatorArgs,
} from './coordinator-common.js';

interface SetArgs extends CoordinatorArgs {
  paths: string[];
  'workload-owner-key': string;
  'retry-for': number;
}

export const setCommand: CommandModule<object, SetArgs> = {
  command: 'set [paths..]',
  describe: 'Attest the Coordinator and set manifest.json as its active manifest (with the policies of the given resources)',
  builder: (y: Argv) => coordinatorOption(workspaceOptions(y))
    .positional('paths', { type: 'string', array: true, default: [], describe: 'The resources written by generate (files or directories)' })
    .option('workload-owner-key', { type: 'string', default: WORKLOAD_OWNER_KEY, describe: 'Workload owner key (ECDSA P-384 PEM), relative to the workspace; authorises manifest updates as the TLS client key' })
    .option('retry-for', { type: 'number', default: 180, describe: 'Seconds to keep retrying while the Coordinator is unreachable' })
    .example('$0 set -c 127.0.0.1:1313 resources/', 'Set the manifest after deploying the resources') as unknown as Argv<SetArgs>,
  handler: async (argv) => {
    if (argv.paths.length === 0) throw new UserError('name the resources (files or directories) that `generate` wrote: their policies are sent with the manifest');
    const local = loadLocalManifest(argv);
    const policies = await readResourcePolicies(argv.paths);
    checkPoliciesMatchManifest(policies, local.manifest, local.path);
    const keyPath = workspacePath(argv, argv['workload-owner-key']);
    let clientKey;
    if (existsSync(keyPath)) {
      clientKey = loadPrivateKey(keyPath, 'ec', 'workload owner key');
    } else {
      process.stderr.write(`Note: ${keyPath} does not exist; connecting with a throw-away key (enough for a first set, not for updates)\n`);
      clientKey = ephemeralKey();
    }
    const request = encode(SetManifestRequestSchema, { Manifest: local.raw, Policies: [...policies.values()].map((p) => p.toml) });
    const { response, coordinator } = await callUserApi('SetManifest', request, {
      address: await address(argv), manifest: local.manifest, clientKey, retryForMs: argv['retry-for'] * 1000,
      onRetry: (err) => process.stderr.write(`Waiting for the Coordinator: ${err.message}\n`),
    });
    const res = decode<SetManifestResponse>(SetManifestResponseSchema, response);
    writeFileAtomic(workspacePath(argv, 'coordinator-root-ca.pem'), res.RootCA);
    writeFileAtomic(workspacePath(argv, 'mesh-ca.pem'), res.MeshCA);
    if (res.SeedSharesDoc && res.SeedSharesDoc.SeedShares.length > 0) {
      const path = workspacePath(argv, 'seed-shares.json');
      writeFileAtomic(path, seedShareDocumentToJson(res.SeedSharesDoc), { mode: 0o600 });
      process.stderr.write(`Wrote ${path}: keep it (and seedshare-owner.pem) to recover the Coordinator after a restart.\n`);
    } else if (res.SeedSharesDoc) {
      process.stderr.write('Warning: the manifest lists no seed-share owner keys; the Coordinator can never be recovered after a restart.\n');
    }
    process.stderr.write(`Attested the Coordinator (${coordinator.platform}, policy ${coordinator.policyHash.slice(0, 16)}…) and set the manifest; wrote coordinator-root-ca.pem and mesh-ca.pem.\n`);
  },
};

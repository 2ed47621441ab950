import type { Argv, CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { WORKLOAD_OWNER_KEY } from '../workspace/keys.js';
import { checkManifestReady } from '../coordinator/manifest.js';
import { checkServedHistory, rememberHistory } from './latest-transition.js';
import { callUserApi } from '../coordinator/client.js';
import { decode, encode } from '../util/protobuf.js';
import { SetManifestRequestSchema, SetManifestResponseSchema, type SeedShareDocumentMsg, type SetManifestResponse } from '../coordinator/api/messages.js';
import { seedShareDocumentToJson, seedSharesCover } from '../coordinator/seedshares.js';
import { workspaceOptions } from './workspace-options.js';
import {
  acceptHistoryOption, address, checkPoliciesMatchManifest, coordinatorOption, ephemeralKey, fetchHistory, latestTransitionPath, loadLocalManifest, loadPrivateKey,
  readResourcePolicies, workspacePath, type CoordinatorArgs, type HistoryArgs,
} from './coordinator-common.js';

interface SetArgs extends CoordinatorArgs, HistoryArgs {
  paths: string[];
  'workload-owner-key': string;
  'retry-for': number;
}

export const setCommand: CommandModule<object, SetArgs> = {
  command: 'set [paths..]',
  describe: 'Attest the Coordinator and set manifest.json as its active manifest (with the policies of the given resources)',
  builder: (y: Argv) => acceptHistoryOption(coordinatorOption(workspaceOptions(y)))
    .positional('paths', { type: 'string', array: true, default: [], describe: 'The resources written by generate (files or directories)' })
    .option('workload-owner-key', { type: 'string', default: WORKLOAD_OWNER_KEY, describe: 'Workload owner key (ECDSA P-384 PEM), relative to the workspace; authorises manifest updates as the TLS client key' })
    .option('retry-for', { type: 'number', default: 180, describe: 'Seconds to keep retrying while the Coordinator is unreachable' })
    .example('$0 set -c 127.0.0.1:1313 resources/', 'Set the manifest after deploying the resources') as Argv<SetArgs>,
  handler: async (argv) => {
    if (argv.paths.length === 0) throw new UserError('name the resources (files or directories) that `generate` wrote: their policies are sent with the manifest');
    const local = loadLocalManifest(argv);
    // The checks the Coordinator makes, here first: a clear error before anything is sent.
    checkManifestReady(local.manifest, local.path);
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
    const addr = await address(argv);
    const onRetry = (err: Error) => process.stderr.write(`Waiting for the Coordinator: ${err.message}\n`);
    const seenPath = latestTransitionPath(argv);
    // Never build on a history older than (or forked from) the one this workspace saw.
    const before = await fetchHistory(addr, local.manifest, { retryForMs: argv['retry-for'] * 1000, onRetry });
    checkServedHistory(seenPath, before?.res.Manifests ?? [], argv['accept-history']);

    const request = encode(SetManifestRequestSchema, { Manifest: local.raw, Policies: [...policies.values()].map((p) => p.toml) });
    const { response, coordinator } = await callUserApi('SetManifest', request, {
      address: addr, manifest: local.manifest, clientKey, retryForMs: argv['retry-for'] * 1000, onRetry,
    });
    const res = decode<SetManifestResponse>(SetManifestResponseSchema, response);
    writeFileAtomic(workspacePath(argv, 'coordinator-root-ca.pem'), res.RootCA);
    writeFileAtomic(workspacePath(argv, 'mesh-ca.pem'), res.MeshCA);
    const seedPath = workspacePath(argv, 'seed-shares.json');
    const writeShares = (doc: SeedShareDocumentMsg, how: string): void => {
      writeFileAtomic(seedPath, seedShareDocumentToJson(doc), { mode: 0o600 });
      process.stderr.write(`Wrote ${seedPath}${how}: keep it (and seedshare-owner.pem) to recover the Coordinator after a restart.\n`);
    };
    if (res.SeedSharesDoc && res.SeedSharesDoc.SeedShares.length > 0) writeShares(res.SeedSharesDoc, '');
    else if (local.manifest.DisableRecovery) process.stderr.write('Note: the manifest disables recovery (DisableRecovery): after a restart the Coordinator can never be recovered.\n');

    // The history now: it must still contain what this workspace saw, and our manifest.
    const after = await fetchHistory(addr, local.manifest, { retryForMs: 10_000, onRetry });
    if (!after) throw new UserError('the Coordinator accepted the manifest but serves no history afterwards; run `kubectl contrast verify`');
    checkServedHistory(seenPath, after.res.Manifests, argv['accept-history']);
    if (!after.res.Manifests.some((m) => m.equals(local.raw))) {
      throw new UserError(`the Coordinator accepted the manifest, but its history does not contain ${local.path} (a restart or another writer in between?); run \`kubectl contrast verify\``);
    }
    rememberHistory(seenPath, after.res.Manifests, argv['accept-history']);
    // A first set whose response was lost (or a workspace that never had the file): the
    // attested, ready Coordinator serves the document for its seed.
    const served = after.res.SeedSharesDoc;
    if (!existsSync(seedPath) && after.ready && served && served.SeedShares.length > 0) {
      if (!seedSharesCover(served, local.manifest.SeedshareOwnerPubKeys)) throw new UserError('the Coordinator served seed shares for other keys than SeedshareOwnerPubKeys of the manifest');
      writeShares(served, ' (it was missing; served by the Coordinator)');
    }
    process.stderr.write(`Attested the Coordinator (${coordinator.tee}, policy ${coordinator.policyHash.slice(0, 16)}…) and set the manifest; wrote coordinator-root-ca.pem and mesh-ca.pem.\n`);
  },
};

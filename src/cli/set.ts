import type { Argv, CommandModule } from 'yargs';
import { existsSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { WORKLOAD_OWNER_KEY } from '../workspace/keys.js';
import { checkManifestReady } from '../coordinator/manifest.js';
import { ephemeralClientKey, type ManifestHistory } from '../coordinator/client.js';
import type { Admission } from '../atls/validate.js';
import type { SeedShareDocumentMsg } from '../coordinator/api/messages.js';
import { seedShareDocumentToJson, seedSharesCover } from '../coordinator/seedshares.js';
import { checkServedHistory, rememberHistory } from './latest-transition.js';
import { workspaceOptions } from './workspace-options.js';
import {
  acceptHistoryOption,
  checkPoliciesMatchManifest,
  coordinatorOption,
  coordinatorSummary,
  latestTransitionPath,
  loadLocalManifest,
  loadPrivateKey,
  pinnedCoordinator,
  printResult,
  readResourcePolicies,
  resultOptions,
  withCoordinator,
  workspacePath,
  type CoordinatorArgs,
  type HistoryArgs,
} from './coordinator-common.js';
import { refuseSignedTransitions, signedTransitionOptions, type SignedTransitionArgs } from './upstream.js';
import { sha256 } from '../coordinator/crypto.js';
import { workloadOwnerKeyHex } from '../coordinator/owner-keys.js';

interface SetArgs extends CoordinatorArgs, HistoryArgs, SignedTransitionArgs {
  paths: string[];
  'workload-owner-key': string;
}

export const setCommand: CommandModule<object, SetArgs> = {
  command: 'set [paths..]',
  describe:
    'Attest the Coordinator and set manifest.json as its active manifest (with the policies of the given resources)',
  builder: (y: Argv) =>
    signedTransitionOptions(resultOptions(acceptHistoryOption(coordinatorOption(workspaceOptions(y)))))
      .positional('paths', {
        type: 'string',
        array: true,
        default: [],
        describe: 'The resources written by generate (files or directories)',
      })
      .option('workload-owner-key', {
        type: 'string',
        default: WORKLOAD_OWNER_KEY,
        requiresArg: true,
        describe:
          'Workload owner key (ECDSA P-384 PEM), relative to the workspace; authorises manifest updates as the TLS client key',
      })
      .option('retry-for', {
        type: 'number',
        default: 180,
        describe: 'Seconds to keep retrying while the Coordinator is unreachable',
      })
      .example(
        '$0 set -c 127.0.0.1:1313 resources/',
        'Set the manifest after deploying the resources',
      ) as Argv<SetArgs>,
  handler: async (argv) => {
    refuseSignedTransitions(argv);
    if (argv.paths.length === 0)
      throw new UserError(
        'name the resources (files or directories) that `generate` wrote: their policies are sent with the manifest',
      );
    const local = loadLocalManifest(argv);
    const pinned = pinnedCoordinator(argv, local);
    // The checks the Coordinator makes, here first: a clear error before anything is sent.
    checkManifestReady(local.manifest, local.path);
    const policies = await readResourcePolicies(argv.paths);
    checkPoliciesMatchManifest(policies, local.manifest, local.path);
    const keyPath = workspacePath(argv, argv['workload-owner-key']);
    let clientKey: KeyObject;
    if (existsSync(keyPath)) {
      clientKey = loadPrivateKey(keyPath, 'ec', 'workload owner key');
    } else {
      process.stderr.write(
        `Note: ${keyPath} does not exist; connecting with a throw-away key (enough for a first set, not for updates)\n`,
      );
      clientKey = ephemeralClientKey();
    }
    const seenPath = latestTransitionPath(argv);
    const seedPath = workspacePath(argv, 'seed-shares.json');
    const writeShares = (doc: SeedShareDocumentMsg, how: string): void => {
      writeFileAtomic(seedPath, seedShareDocumentToJson(doc), { mode: 0o600 });
      process.stderr.write(
        `Wrote ${seedPath}${how}: keep it (and seedshare-owner.pem) to recover the Coordinator after a restart.\n`,
      );
    };

    const rootPath = workspacePath(argv, 'coordinator-root-ca.pem');
    const meshPath = workspacePath(argv, 'mesh-ca.pem');
    const summary = (changed: boolean, coordinator: Admission, historyLength: number): Record<string, unknown> => ({
      coordinator: coordinatorSummary(coordinator),
      manifest: local.path,
      manifestHash: sha256(local.raw).toString('hex'),
      changed,
      historyLength,
      files: { coordinatorRootCA: rootPath, meshCA: meshPath, seedShares: existsSync(seedPath) ? seedPath : null },
    });

    const result = await withCoordinator(
      argv,
      local.manifest,
      async (client) => {
        // Never build on a history older than (or forked from) the one this workspace saw.
        const before = await client.getManifests();
        checkServedHistory(seenPath, before?.manifests ?? [], argv['accept-history']);
        if (before?.ready && before.manifests.at(-1)!.equals(local.raw)) {
          // Setting it again would change nothing but the mesh CA (a new one for every SetManifest).
          // The key must still be one that could set it: a wrong key is found now, not at the next change.
          const owners = local.manifest.WorkloadOwnerPubKeys;
          const mine = workloadOwnerKeyHex(createPublicKey(clientKey));
          if (owners.length > 0 && !owners.includes(mine)) {
            const digest = (hex: string) => sha256(Buffer.from(hex, 'hex')).toString('hex').slice(0, 16);
            const who = existsSync(keyPath) ? keyPath : `the throw-away key (${keyPath} does not exist)`;
            throw new UserError(
              `the Coordinator already runs ${local.path}, but ${who} is not a workload owner key of the current manifest; expected one of: ${owners.map(digest).join(', ')} (sha256 of the PKIX public key), got ${digest(mine)}`,
              {},
              {
                hint: 'use --workload-owner-key with a key listed in WorkloadOwnerPubKeys',
              },
            );
          }
          writeFileAtomic(rootPath, before.rootCA);
          writeFileAtomic(meshPath, before.meshCA);
          rememberHistory(seenPath, before.manifests, argv['accept-history']);
          writeMissingShares(before);
          process.stderr.write(
            `The Coordinator (${before.coordinator.tee}, policy ${before.coordinator.policyHash.slice(0, 16)}…) already runs ${local.path} as its active manifest: nothing to set, nothing sent. Refreshed coordinator-root-ca.pem and mesh-ca.pem.\n`,
          );
          return summary(false, before.coordinator, before.manifests.length);
        }

        const set = await client.setManifest(
          local.raw,
          [...policies.values()].map((p) => p.toml),
          clientKey,
        );
        writeFileAtomic(rootPath, set.rootCA);
        writeFileAtomic(meshPath, set.meshCA);
        if (set.seedSharesDoc) writeShares(set.seedSharesDoc, '');
        else if (local.manifest.DisableRecovery)
          process.stderr.write(
            'Note: the manifest disables recovery (DisableRecovery): after a restart the Coordinator can never be recovered.\n',
          );

        // The history now: it must still contain what this workspace saw, and our manifest.
        const after = await client.getManifests({ retryForMs: 10_000 });
        if (!after)
          throw new UserError(
            'the Coordinator accepted the manifest but serves no history afterwards; run `kubectl contrast verify`',
          );
        checkServedHistory(seenPath, after.manifests, argv['accept-history']);
        if (!after.manifests.some((m) => m.equals(local.raw))) {
          throw new UserError(
            `the Coordinator accepted the manifest, but its history does not contain ${local.path} (a restart or another writer in between?); run \`kubectl contrast verify\``,
          );
        }
        rememberHistory(seenPath, after.manifests, argv['accept-history']);
        writeMissingShares(after);
        process.stderr.write(
          `Attested the Coordinator (${set.coordinator.tee}, policy ${set.coordinator.policyHash.slice(0, 16)}…) and set the manifest; wrote coordinator-root-ca.pem and mesh-ca.pem.\n`,
        );
        return summary(true, set.coordinator, after.manifests.length);
      },
      pinned,
    );
    printResult(argv, result);

    /**
     * A first set whose response was lost (or a workspace that never had the file): the
     * attested, ready Coordinator serves the document for its seed.
     */
    function writeMissingShares(history: ManifestHistory): void {
      const served = history.seedSharesDoc;
      if (!existsSync(seedPath) && history.ready && served && served.SeedShares.length > 0) {
        if (!seedSharesCover(served, local.manifest.SeedshareOwnerPubKeys))
          throw new UserError(
            'the Coordinator served seed shares for other keys than SeedshareOwnerPubKeys of the manifest',
          );
        writeShares(served, ' (it was missing; served by the Coordinator)');
      }
    }
  },
};

import type { Argv, CommandModule } from 'yargs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { SEEDSHARE_OWNER_KEY } from '../workspace/keys.js';
import type { SeedShareDocumentMsg } from '../coordinator/api/messages.js';
import {
  decryptSeedShare,
  seedShareDocumentFromJson,
  seedShareDocumentToJson,
  type SeedShareDocument,
} from '../coordinator/seedshares.js';
import { SeedEngine } from '../coordinator/seedengine.js';
import { verifyTransitionSignature } from '../coordinator/history.js';
import { parsePemCertificates } from '../attestation/certificate.js';
import { checkServedHistory, rememberHistory } from './latest-transition.js';
import { workspaceOptions } from './workspace-options.js';
import {
  acceptHistoryOption,
  coordinatorOption,
  coordinatorSummary,
  latestTransitionPath,
  loadLocalManifest,
  loadPrivateKey,
  pinnedCoordinator,
  printResult,
  resultOptions,
  withCoordinator,
  workspacePath,
  type CoordinatorArgs,
  type HistoryArgs,
} from './coordinator-common.js';

interface RecoverArgs extends CoordinatorArgs, HistoryArgs {
  'seedshare-owner-key': string;
  seed: string;
  force: boolean;
}

function spki(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

export const recoverCommand: CommandModule<object, RecoverArgs> = {
  command: 'recover',
  describe: 'Recover a restarted Coordinator: decrypt your seed share and send the seed over attested TLS',
  builder: (y: Argv) =>
    resultOptions(acceptHistoryOption(coordinatorOption(workspaceOptions(y))))
      .option('seedshare-owner-key', {
        type: 'string',
        default: SEEDSHARE_OWNER_KEY,
        describe: 'Seed-share owner key (RSA PEM), relative to the workspace; also the TLS client key',
      })
      .option('seed', {
        type: 'string',
        default: 'seed-shares.json',
        describe:
          "Seed shares written by the first `set`, relative to the workspace; when missing, the copy in the Coordinator's store is used (and written here)",
      })
      .option('force', {
        type: 'boolean',
        default: false,
        describe: 'Recover even if peer Coordinators are recovered (accepted for compatibility; single Coordinator)',
      })
      .option('retry-for', {
        type: 'number',
        default: 0,
        describe: 'Seconds to keep retrying while the Coordinator is unreachable',
      }) as Argv<RecoverArgs>,
  handler: async (argv) => {
    const local = loadLocalManifest(argv);
    const keyPath = workspacePath(argv, argv['seedshare-owner-key']);
    const key = loadPrivateKey(keyPath, 'rsa', 'seed-share owner key');
    const myHex = createPublicKey(key).export({ type: 'pkcs1', format: 'der' }).toString('hex');
    const pinned = pinnedCoordinator(argv, local);
    const result = await withCoordinator(
      argv,
      local.manifest,
      async (client) => {
        const served = await client.getManifests();
        if (!served)
          throw new UserError(
            'the Coordinator has no history to recover (no manifest has been set yet): run `kubectl contrast set`',
          );
        const seenPath = latestTransitionPath(argv);
        checkServedHistory(seenPath, served.manifests, argv['accept-history']);
        if (served.ready)
          throw new UserError('the Coordinator is already recovered (or was never restarted); nothing to do');

        const seedPath = workspacePath(argv, argv.seed);
        let doc: SeedShareDocument;
        const fromStore = !existsSync(seedPath);
        if (!fromStore) {
          try {
            doc = seedShareDocumentFromJson(readFileSync(seedPath, 'utf8'));
          } catch (err) {
            throw new UserError(`cannot read the seed shares: ${(err as Error).message}`, { file: seedPath });
          }
        } else {
          const stored: SeedShareDocumentMsg | undefined = served.seedSharesDoc;
          if (!stored)
            throw new UserError(
              `${seedPath} does not exist and the Coordinator's store holds no usable seed-share document; pass --seed with the seed-shares.json of the first \`set\``,
            );
          doc = stored;
          process.stderr.write(
            `Note: ${seedPath} does not exist; using the seed-share document from the Coordinator's store (checked against its history before anything is sent).\n`,
          );
        }
        const share = doc.SeedShares.find((s) => s.PublicKey.toLowerCase() === myHex);
        if (!share)
          throw new UserError(
            `no seed share for the key ${keyPath} in ${fromStore ? "the Coordinator's stored seed-share document" : seedPath} (it has shares for ${doc.SeedShares.length} other key(s)); use the seed-share owner key listed in the manifest`,
          );
        let seed: Buffer;
        try {
          seed = decryptSeedShare(share, key);
        } catch {
          throw new UserError(
            `the seed share for ${keyPath} cannot be decrypted with it; the seed-shares ${fromStore ? "document in the Coordinator's store" : 'file'} may be damaged`,
            fromStore ? {} : { file: seedPath },
          );
        }
        let engine: SeedEngine;
        try {
          engine = new SeedEngine(seed, doc.salt);
        } catch (err) {
          throw new UserError(`the seed share holds no valid seed: ${(err as Error).message}`);
        }
        // The seed must have signed the history the Coordinator serves: then that history is genuine.
        const latest = served.latestTransition;
        if (!verifyTransitionSignature(latest.TransitionHash, latest.Signature, engine.transactionSigningKey)) {
          throw new UserError(
            fromStore
              ? "the seed-share document in the Coordinator's store does not belong to the history it serves (the seed does not verify its latest transition): the store was modified; recover with the seed-shares.json of the first `set` (--seed)"
              : 'the seed does not belong to this history (the signature on the latest transition does not verify with the key derived from it): use the seed share of this deployment',
          );
        }
        // A document from the store could also come with a whole history made for it: a root CA
        // this workspace already trusts must be the seed's.
        const rootPath = workspacePath(argv, 'coordinator-root-ca.pem');
        if (fromStore && existsSync(rootPath)) {
          let trusted;
          try {
            trusted = parsePemCertificates(readFileSync(rootPath), rootPath, { count: 1 })[0]!;
          } catch (err) {
            throw new UserError(`cannot read the root CA this workspace trusts: ${(err as Error).message}`, {
              file: rootPath,
            });
          }
          if (!Buffer.from(trusted.publicKey.export({ type: 'spki', format: 'der' })).equals(spki(engine.rootCAKey))) {
            throw new UserError(
              `the seed-share document in the Coordinator's store derives another root CA than ${rootPath}: its state was replaced; nothing was sent`,
            );
          }
        }
        await client.recover(seed, doc.salt, argv.force, key);
        rememberHistory(seenPath, served.manifests, argv['accept-history']);
        if (fromStore) {
          writeFileAtomic(seedPath, seedShareDocumentToJson(doc), { mode: 0o600 });
          process.stderr.write(`Wrote ${seedPath} (from the Coordinator's store, verified by this recovery).\n`);
        }
        // The Coordinator checks the store again when it recovers; make sure it recovered the history checked above.
        const after = await client.getManifests({ retryForMs: 0 });
        if (!after || !after.latestTransition.TransitionHash.equals(latest.TransitionHash)) {
          throw new UserError(
            `the Coordinator recovered, but its history changed between the check and the recovery (now ${after?.latestTransition.TransitionHash.toString('hex') ?? 'none'}, checked ${latest.TransitionHash.toString('hex')}); run \`kubectl contrast verify\` and do not trust it until the history is right`,
          );
        }
        // Recovery makes a new mesh CA: the workspace's copy would no longer verify any workload.
        const rootOut = workspacePath(argv, 'coordinator-root-ca.pem');
        const meshOut = workspacePath(argv, 'mesh-ca.pem');
        let servedRoot;
        try {
          servedRoot = parsePemCertificates(after.rootCA, 'the root CA the Coordinator serves', { count: 1 })[0]!;
        } catch (err) {
          throw new UserError(`the Coordinator recovered, but serves no readable root CA: ${(err as Error).message}`);
        }
        if (!Buffer.from(servedRoot.publicKey.export({ type: 'spki', format: 'der' })).equals(spki(engine.rootCAKey))) {
          throw new UserError(
            'the Coordinator recovered, but serves a root CA that the seed does not derive; coordinator-root-ca.pem and mesh-ca.pem were not written: run `kubectl contrast verify` and do not trust it',
          );
        }
        writeFileAtomic(rootOut, after.rootCA);
        if (after.meshCA.length > 0) writeFileAtomic(meshOut, after.meshCA);
        process.stderr.write(
          `Recovered the Coordinator; wrote coordinator-root-ca.pem and mesh-ca.pem. Its mesh CA changed: restart the workloads so they get new mesh certificates.\n`,
        );
        return {
          coordinator: coordinatorSummary(after.coordinator),
          manifest: local.path,
          historyLength: after.manifests.length,
          latestTransition: latest.TransitionHash.toString('hex'),
          files: { coordinatorRootCA: rootOut, meshCA: after.meshCA.length > 0 ? meshOut : null, seedShares: seedPath },
        };
      },
      pinned,
    );
    printResult(argv, result);
  },
};

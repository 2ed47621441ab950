import type { Argv, CommandModule } from 'yargs';
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UserError } from '../util/errors.js';
import { SEEDSHARE_OWNER_KEY } from '../workspace/keys.js';
import { callUserApi } from '../coordinator/client.js';
import { encode } from '../coordinator/api/proto.js';
import { RecoverRequestSchema } from '../coordinator/api/messages.js';
import { decryptSeedShare, seedShareDocumentFromJson } from '../coordinator/seedshares.js';
import { workspaceOptions } from './workspace-options.js';
import { address, coordinatorOption, loadLocalManifest, loadPrivateKey, workspacePath, type CoordinatorArgs } from './coordinator-common.js';

interface RecoverArgs extends CoordinatorArgs {
  'seedshare-owner-key': string;
  seed: string;
  force: boolean;
  'retry-for': number;
}

export const recoverCommand: CommandModule<object, RecoverArgs> = {
  command: 'recover',
  describe: 'Recover a restarted Coordinator: decrypt your seed share and send the seed over attested TLS',
  builder: (y: Argv) => coordinatorOption(workspaceOptions(y))
    .option('seedshare-owner-key', { type: 'string', default: SEEDSHARE_OWNER_KEY, describe: 'Seed-share owner key (RSA PEM), relative to the workspace; also the TLS client key' })
    .option('seed', { type: 'string', default: 'seed-shares.json', describe: 'Seed shares written by the first `set`, relative to the workspace' })
    .option('force', { type: 'boolean', default: false, describe: 'Recover even if peer Coordinators are recovered (accepted for compatibility; single Coordinator)' })
    .option('retry-for', { type: 'number', default: 0, describe: 'Seconds to keep retrying while the Coordinator is unreachable' }) as unknown as Argv<RecoverArgs>,
  handler: async (argv) => {
    const local = loadLocalManifest(argv);
    const keyPath = workspacePath(argv, argv['seedshare-owner-key']);
    const key = loadPrivateKey(keyPath, 'rsa', 'seed-share owner key');
    const myHex = createPublicKey(key).export({ type: 'pkcs1', format: 'der' }).toString('hex');
    const seedPath = workspacePath(argv, argv.seed);
    let doc;
    try {
      doc = seedShareDocumentFromJson(readFileSync(seedPath, 'utf8'));
    } catch (err) {
      throw new UserError(`cannot read the seed shares: ${(err as Error).message}`, { file: seedPath });
    }
    const share = doc.SeedShares.find((s) => s.PublicKey.toLowerCase() === myHex);
    if (!share) throw new UserError(`no seed share for the key ${keyPath} in ${seedPath} (it has shares for ${doc.SeedShares.length} other key(s)); use the seed-share owner key listed in the manifest`);
    let seed: Buffer;
    try {
      seed = decryptSeedShare(share, key);
    } catch {
      throw new UserError(`the seed share for ${keyPath} cannot be decrypted with it; the seed-shares file may be damaged`, { file: seedPath });
    }
    await callUserApi('Recover', encode(RecoverRequestSchema, { Seed: seed, Salt: doc.salt, Force: argv.force }), {
      address: await address(argv), manifest: local.manifest, clientKey: key, retryForMs: argv['retry-for'] * 1000,
    });
    process.stderr.write('Recovered the Coordinator. Its mesh CA changed: restart the workloads so they get new mesh certificates.\n');
  },
};

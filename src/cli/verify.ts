import type { Argv, CommandModule } from 'yargs';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { sha256 } from '../coordinator/crypto.js';
import { checkServedHistory, rememberHistory } from './latest-transition.js';
import { workspaceOptions } from './workspace-options.js';
import {
  acceptHistoryOption, coordinatorOption, latestTransitionPath, loadLocalManifest, requireHistory, withCoordinator, workspacePath, type CoordinatorArgs, type HistoryArgs,
} from './coordinator-common.js';

type VerifyArgs = CoordinatorArgs & HistoryArgs;

export const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify',
  describe: 'Attest the Coordinator, fetch its manifest history into <workspace>/verify/ and check the active manifest equals manifest.json',
  builder: (y: Argv) => acceptHistoryOption(coordinatorOption(workspaceOptions(y)))
    .option('retry-for', { type: 'number', default: 0, describe: 'Seconds to keep retrying while the Coordinator is unreachable' }) as Argv<VerifyArgs>,
  handler: async (argv) => {
    const local = loadLocalManifest(argv);
    const served = await withCoordinator(argv, local.manifest, (client) => requireHistory(client, 'GetManifests'));
    const seenPath = latestTransitionPath(argv);
    checkServedHistory(seenPath, served.manifests, argv['accept-history']);
    const dir = workspacePath(argv, 'verify');
    mkdirSync(dir, { recursive: true });
    // Outputs of an earlier run would mix with this history; remove only files this command writes.
    for (const f of readdirSync(dir)) {
      if (/^(manifest\.\d+\.json|policy\.[0-9a-f]{64}\.rego|mesh-ca\.pem|coordinator-root-ca\.pem)$/.test(f)) rmSync(join(dir, f));
    }
    if (served.rootCA.length > 0) writeFileAtomic(join(dir, 'coordinator-root-ca.pem'), served.rootCA);
    if (served.ready) writeFileAtomic(join(dir, 'mesh-ca.pem'), served.meshCA);
    else process.stderr.write('Note: the Coordinator waits for recovery (`kubectl contrast recover`): its history is served as stored, unverified until then, and it has no mesh CA yet (mesh-ca.pem not written).\n');
    served.manifests.forEach((m, i) => writeFileAtomic(join(dir, `manifest.${i}.json`), m));
    for (const p of served.policies) writeFileAtomic(join(dir, `policy.${sha256(p).toString('hex')}.rego`), p);
    // Only a ready Coordinator vouches for its history (it holds the seed that signed it).
    if (served.ready) rememberHistory(seenPath, served.manifests, argv['accept-history']);
    const active = served.manifests.at(-1)!;
    if (!active.equals(local.raw)) {
      throw new UserError(`the Coordinator's active manifest (${dir}/manifest.${served.manifests.length - 1}.json) differs from ${local.path}; compare them, and run \`kubectl contrast set\` if the local one is what should run`);
    }
    process.stderr.write(`Attested the Coordinator (${served.coordinator.tee}); its active manifest equals ${local.path}. History of ${served.manifests.length} manifest(s) written to ${dir}.\n`);
  },
};

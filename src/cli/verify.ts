import type { Argv, CommandModule } from 'yargs';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { sha256 } from '../coordinator/crypto.js';
import { checkServedHistory, rememberHistory } from './latest-transition.js';
import { workspaceOptions } from './workspace-options.js';
import {
  acceptHistoryOption,
  coordinatorOption,
  coordinatorSummary,
  latestTransitionPath,
  loadLocalManifest,
  pinnedCoordinator,
  printResult,
  requireHistory,
  resultOptions,
  withCoordinator,
  workspacePath,
  type CoordinatorArgs,
  type HistoryArgs,
} from './coordinator-common.js';

type VerifyArgs = CoordinatorArgs & HistoryArgs;

/**
 * What verify writes into <workspace>/verify/. Our names first; `initdata.<hash>.toml` and
 * `latest-transition` (the hex of the newest transition hash) are the names newer upstream
 * releases write and read (their `set --atomic` and `sign` take the latter), with the same bytes.
 */
const VERIFY_OUTPUT =
  /^(manifest\.\d+\.json|policy\.[0-9a-f]{64}\.rego|initdata\.[0-9a-f]{64}\.toml|mesh-ca\.pem|coordinator-root-ca\.pem|latest-transition)$/;

export const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify',
  describe:
    'Attest the Coordinator, fetch its manifest history into <workspace>/verify/ and check the active manifest equals manifest.json',
  builder: (y: Argv) =>
    resultOptions(acceptHistoryOption(coordinatorOption(workspaceOptions(y)))).option('retry-for', {
      type: 'number',
      default: 0,
      describe: 'Seconds to keep retrying while the Coordinator is unreachable',
    }) as Argv<VerifyArgs>,
  handler: async (argv) => {
    const local = loadLocalManifest(argv);
    const served = await withCoordinator(
      argv,
      local.manifest,
      (client) => requireHistory(client, 'GetManifests'),
      pinnedCoordinator(argv, local),
    );
    const seenPath = latestTransitionPath(argv);
    checkServedHistory(seenPath, served.manifests, argv['accept-history']);
    const dir = workspacePath(argv, 'verify');
    mkdirSync(dir, { recursive: true });
    // Outputs of an earlier run would mix with this history; remove only files this command writes.
    for (const f of readdirSync(dir)) {
      if (VERIFY_OUTPUT.test(f)) rmSync(join(dir, f));
    }
    const written: string[] = [];
    const write = (name: string, data: Uint8Array) => {
      writeFileAtomic(join(dir, name), data);
      written.push(join(dir, name));
    };
    if (served.rootCA.length > 0) write('coordinator-root-ca.pem', served.rootCA);
    if (served.ready) write('mesh-ca.pem', served.meshCA);
    else
      process.stderr.write(
        'Note: the Coordinator waits for recovery (`kubectl contrast recover`): its history is served as stored, unverified until then, and it has no mesh CA yet (mesh-ca.pem not written).\n',
      );
    served.manifests.forEach((m, i) => write(`manifest.${i}.json`, m));
    for (const p of served.policies) {
      const hash = sha256(p).toString('hex');
      write(`policy.${hash}.rego`, p);
      write(`initdata.${hash}.toml`, p);
    }
    write('latest-transition', Buffer.from(served.latestTransition.TransitionHash.toString('hex')));
    // Only a ready Coordinator vouches for its history (it holds the seed that signed it).
    if (served.ready) rememberHistory(seenPath, served.manifests, argv['accept-history']);
    const activePath = join(dir, `manifest.${served.manifests.length - 1}.json`);
    const matches = served.manifests.at(-1)!.equals(local.raw);
    printResult(argv, {
      coordinator: coordinatorSummary(served.coordinator),
      ready: served.ready,
      manifest: local.path,
      activeManifest: activePath,
      activeManifestMatches: matches,
      historyLength: served.manifests.length,
      latestTransition: served.latestTransition.TransitionHash.toString('hex'),
      directory: dir,
      files: written,
    });
    if (!matches) {
      throw new UserError(
        `the Coordinator's active manifest (${activePath}) differs from ${local.path}; compare them, and run \`kubectl contrast set\` if the local one is what should run`,
      );
    }
    process.stderr.write(
      `Attested the Coordinator (${served.coordinator.tee}); its active manifest equals ${local.path}. History of ${served.manifests.length} manifest(s) written to ${dir}.\n`,
    );
  },
};

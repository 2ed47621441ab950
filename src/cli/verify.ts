import type { Argv, CommandModule } from 'yargs';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { callUserApi } from '../coordinator/client.js';
import { decode } from '../coordinator/api/proto.js';
import { GetManifestsResponseSchema, type GetManifestsResponse } from '../coordinator/api/messages.js';
import { chainHash } from '../coordinator/history.js';
import { sha256 } from '../coordinator/crypto.js';
import { workspaceOptions } from './workspace-options.js';
import { address, coordinatorOption, ephemeralKey, loadLocalManifest, workspacePath, type CoordinatorArgs } from './coordinator-common.js';

interface VerifyArgs extends CoordinatorArgs {
  'retry-for': number;
}

export const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: 'verify',
  describe: 'Attest the Coordinator, fetch its manifest history into <workspace>/verify/ and check the active manifest equals manifest.json',
  builder: (y: Argv) => coordinatorOption(workspaceOptions(y))
    .option('retry-for', { type: 'number', default: 0, describe: 'Seconds to keep retrying while the Coordinator is unreachable' }) as unknown as Argv<VerifyArgs>,
  handler: async (argv) => {
    const local = loadLocalManifest(argv);
    const { response, coordinator } = await callUserApi('GetManifests', Buffer.alloc(0), {
      address: await address(argv), manifest: local.manifest, clientKey: ephemeralKey(), retryForMs: argv['retry-for'] * 1000,
    });
    const res = decode<GetManifestsResponse>(GetManifestsResponseSchema, response);
    if (res.Manifests.length === 0) throw new UserError('the Coordinator returned an empty history');
    const chain = chainHash(res.Manifests);
    if (!res.LatestTransition || !chain.equals(res.LatestTransition.TransitionHash)) {
      throw new UserError(`the manifests the Coordinator returned do not form its latest transition (recomputed ${chain.toString('hex')}, Coordinator says ${res.LatestTransition?.TransitionHash.toString('hex') ?? 'nothing'})`);
    }
    const dir = workspacePath(argv, 'verify');
    mkdirSync(dir, { recursive: true });
    // Outputs of an earlier run would mix with this history; remove only files this command writes.
    for (const f of readdirSync(dir)) {
      if (/^(manifest\.\d+\.json|policy\.[0-9a-f]{64}\.rego|mesh-ca\.pem)$/.test(f)) rmSync(join(dir, f));
    }
    writeFileAtomic(join(dir, 'coordinator-root-ca.pem'), res.RootCA);
    if (res.MeshCA.length > 0) writeFileAtomic(join(dir, 'mesh-ca.pem'), res.MeshCA);
    else process.stderr.write('Note: the Coordinator waits for recovery (`kubectl contrast recover`), so it has no mesh CA yet; mesh-ca.pem not written.\n');
    res.Manifests.forEach((m, i) => writeFileAtomic(join(dir, `manifest.${i}.json`), m));
    for (const p of res.Policies) writeFileAtomic(join(dir, `policy.${sha256(p).toString('hex')}.rego`), p);
    const active = res.Manifests.at(-1)!;
    if (!active.equals(local.raw)) {
      throw new UserError(`the Coordinator's active manifest (${dir}/manifest.${res.Manifests.length - 1}.json) differs from ${local.path}; compare them, and run \`kubectl contrast set\` if the local one is what should run`);
    }
    process.stderr.write(`Attested the Coordinator (${coordinator.platform}); its active manifest equals ${local.path}. History of ${res.Manifests.length} manifest(s) written to ${dir}.\n`);
  },
};

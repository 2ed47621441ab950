/**
 * Commands and flags of upstream Contrast's documentation (its v1.2 workload-deployment guide and
 * the newest CLI) that kubectl-contrast does not have in the same shape. Each one either works as
 * written or stops with a message naming what to use here instead; docs/upstream.md lists them.
 */
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../util/errors.js';

/** Upstream's newest `set` flags for signed, atomic transitions. */
export interface SignedTransitionArgs {
  atomic?: boolean;
  'latest-transition'?: string;
  signature?: string;
}

const SIGNED_TRANSITIONS = 'kubectl-contrast has no signed or atomic transitions: the workload owner key authorises a manifest in the TLS handshake (as upstream v1.2 and the gRPC path of newer releases), and `set` refuses a Coordinator history that lacks the transition this workspace saw (<workspace>/latest-transition.json; --accept-history overrides it). Run `kubectl contrast set` without';

/** Registered (hidden) so that upstream's spellings get an explanation, not "unknown argument". */
export function signedTransitionOptions<T>(y: Argv<T>): Argv<T & SignedTransitionArgs> {
  return y
    .option('atomic', { type: 'boolean', hidden: true })
    .option('latest-transition', { type: 'string', hidden: true })
    .option('signature', { alias: 's', type: 'string', hidden: true }) as Argv<T & SignedTransitionArgs>;
}

export function refuseSignedTransitions(argv: SignedTransitionArgs): void {
  const given = [argv.atomic !== undefined ? '--atomic' : '', argv['latest-transition'] !== undefined ? '--latest-transition' : '', argv.signature !== undefined ? '--signature' : ''].filter(Boolean);
  if (given.length > 0) throw new UsageError(`${SIGNED_TRANSITIONS} ${given.join(', ')} (see docs/upstream.md)`);
}

/** Upstream's `contrast sign`: the signed transition it prepares does not exist here. */
export const signCommand: CommandModule = {
  command: 'sign',
  describe: false,
  builder: (y: Argv) => y.strict(false),
  handler: () => {
    throw new UsageError(`${SIGNED_TRANSITIONS} a signature (see docs/upstream.md)`);
  },
};

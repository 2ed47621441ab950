/**
 * Commands and flags of upstream Contrast's documentation (its v1.2 workload-deployment guide and
 * the newest CLI) that kubectl-contrast does not have in the same shape. Each one either works as
 * written or stops with a message naming what to use here instead; docs/upstream.md lists them.
 */
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../util/errors.js';

/** Upstream v1.2's platform names (`--reference-values`) that name a platform of ours. */
const UPSTREAM_PLATFORMS: Readonly<Record<string, string>> = {
  'k3s-qemu-snp': 'metal-qemu-snp',
  'k3s-qemu-tdx': 'metal-qemu-tdx',
  'rke2-qemu-tdx': 'metal-qemu-tdx',
  'k3s-qemu-snp-gpu': 'metal-qemu-snp-gpu',
};

/**
 * The platform flag's value as we name it: our ids and upstream's spellings (any case), upstream
 * v1.2's bare-metal names with a note; AKS, which we do not run on, is refused with the reason.
 */
export function platformName(value: unknown): string {
  const given = String(value);
  const id = given.toLowerCase();
  if (id === 'aks-clh-snp') {
    throw new UsageError(
      "--platform aks-clh-snp: AKS with Cloud Hypervisor (Microsoft's guest image and policy rules) is not a platform of kubectl-contrast, and newer upstream releases dropped it too; for bare-metal SEV-SNP use --platform metal-qemu-snp (see docs/upstream.md)",
    );
  }
  const ours = UPSTREAM_PLATFORMS[id];
  if (ours === undefined) return id;
  process.stderr.write(
    `Note: ${given} is upstream v1.2's name of the platform kubectl-contrast calls ${ours} (bare metal, QEMU); using ${ours}.\n`,
  );
  return ours;
}

/** Upstream's `generate -p/--policy rules.rego` and `-c/--genpolicy-cache-path`, registered hidden to explain them. */
export function rulesOption<T>(y: Argv<T>): Argv<T & { policy?: string; 'genpolicy-cache-path'?: string }> {
  return y
    .option('policy', { alias: 'p', type: 'string', hidden: true })
    .option('genpolicy-cache-path', { alias: 'c', type: 'string', hidden: true }) as Argv<
    T & { policy?: string; 'genpolicy-cache-path'?: string }
  >;
}

export function refuseRulesFile(argv: { policy?: string; 'genpolicy-cache-path'?: string }): void {
  if (argv['genpolicy-cache-path'] !== undefined) {
    throw new UsageError(
      '-c/--genpolicy-cache-path: kubectl-contrast runs no genpolicy and keeps no layers-cache.json; image metadata is cached in --cache-dir (default $CONTRAST_CACHE_DIR or ~/.cache/kubectl-contrast), --no-cache skips it (see docs/upstream.md)',
    );
  }
  if (argv.policy === undefined) return;
  throw new UsageError(
    '-p/--policy: the Rego rules are part of kubectl-contrast (compiled and checked with every policy it writes), so there is no rules.rego to pass; change what the policies allow in settings.json (-s/--settings) and try a pod against its policy with `kubectl contrast policy check` (see docs/upstream.md)',
  );
}

/** Upstream's newest `set` flags for signed, atomic transitions. */
export interface SignedTransitionArgs {
  atomic?: boolean;
  'latest-transition'?: string;
  signature?: string;
}

const SIGNED_TRANSITIONS =
  'kubectl-contrast has no signed or atomic transitions: the workload owner key authorises a manifest in the TLS handshake (as upstream v1.2 and the gRPC path of newer releases), and `set` refuses a Coordinator history that lacks the transition this workspace saw (<workspace>/latest-transition.json; --accept-history overrides it). Run `kubectl contrast set` without';

/** Registered (hidden) so that upstream's spellings get an explanation, not "unknown argument". */
export function signedTransitionOptions<T>(y: Argv<T>): Argv<T & SignedTransitionArgs> {
  return y
    .option('atomic', { type: 'boolean', hidden: true })
    .option('latest-transition', { type: 'string', hidden: true })
    .option('signature', { alias: 's', type: 'string', hidden: true }) as Argv<T & SignedTransitionArgs>;
}

export function refuseSignedTransitions(argv: SignedTransitionArgs): void {
  const given = [
    argv.atomic !== undefined ? '--atomic' : '',
    argv['latest-transition'] !== undefined ? '--latest-transition' : '',
    argv.signature !== undefined ? '--signature' : '',
  ].filter(Boolean);
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

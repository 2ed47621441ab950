/**
 * The options of the transform — `generate`, the Helm post-renderer and the kustomize
 * transformer — one row each: flag, help, environment variable, kustomize function-config
 * field. Help texts, the kustomize epilog and the argument types are made from these rows;
 * test/cli/options-table.test.ts checks docs/helm-kustomize.md and README.md against them.
 */
import { delimiter } from 'node:path';
import type { Argv, Options } from 'yargs';
import { platformIds } from '../platforms/platforms.js';
import { platformName } from './upstream.js';

export type OptionGroup = 'workspace' | 'image' | 'transform';

export interface TransformOption {
  flag: string;
  /** One-letter aliases are documented (`-m, --manifest`); longer ones are kept for compatibility. */
  alias?: string;
  group: OptionGroup;
  /** string: one value; bool: true/false; list: one value per occurrence of the flag, a list in the function config. */
  kind: 'string' | 'bool' | 'list';
  describe: string;
  /** Unset: false for bool, [] for list, undefined for string. */
  default?: string | boolean;
  choices?: () => string[];
  /** Turns the given value into the canonical one before choices are checked. */
  coerce?: (value: unknown) => unknown;
  /** Environment variable of the post-renderers (a default below flags and function config). */
  env: string;
  /** The environment variable means the opposite of the flag (CONTRAST_NO_CACHE=1 → --no-cache). */
  inverted?: boolean;
  /** Separator of list values in the environment (in ConfigMap data it is always ","). */
  separator?: string;
  /** Field of the function config (`spec.<field>`, or `data.<field>` of a ConfigMap). */
  field: string;
  /** A file or directory: relative values in a function config are taken from its directory. */
  path?: boolean;
}

export const TRANSFORM_OPTIONS = [
  {
    flag: 'workspace-dir',
    group: 'workspace',
    kind: 'string',
    default: '.',
    env: 'CONTRAST_WORKSPACE_DIR',
    field: 'workspaceDir',
    path: true,
    describe: 'Directory for manifest.json, keys, settings and verification output',
  },
  {
    flag: 'manifest',
    alias: 'm',
    group: 'workspace',
    kind: 'string',
    env: 'CONTRAST_MANIFEST',
    field: 'manifest',
    path: true,
    describe: 'Manifest file (default <workspace-dir>/manifest.json)',
  },
  {
    flag: 'settings',
    alias: 's',
    group: 'transform',
    kind: 'string',
    env: 'CONTRAST_SETTINGS',
    field: 'settings',
    path: true,
    describe: 'Policy settings file (default <workspace-dir>/settings.json, created with the defaults)',
  },
  {
    flag: 'oci-layout',
    group: 'image',
    kind: 'list',
    env: 'CONTRAST_OCI_LAYOUT',
    separator: delimiter,
    field: 'ociLayouts',
    path: true,
    describe: 'OCI image layout directory to take images from before any registry (one per flag; repeat it for more)',
  },
  {
    flag: 'docker-archive',
    group: 'image',
    kind: 'list',
    env: 'CONTRAST_DOCKER_ARCHIVE',
    separator: delimiter,
    field: 'dockerArchives',
    path: true,
    describe: '`docker save` archive to take images from before any registry (one per flag; repeat it for more)',
  },
  {
    flag: 'cache-dir',
    group: 'image',
    kind: 'string',
    env: 'CONTRAST_CACHE_DIR',
    field: 'cacheDir',
    path: true,
    describe:
      'Image metadata cache (default $CONTRAST_CACHE_DIR, $XDG_CACHE_HOME/kubectl-contrast or ~/.cache/kubectl-contrast)',
  },
  {
    flag: 'cache',
    group: 'image',
    kind: 'bool',
    default: true,
    env: 'CONTRAST_NO_CACHE',
    inverted: true,
    field: 'cache',
    describe: 'Read and write the image cache (--no-cache to skip it)',
  },
  {
    flag: 'insecure-registry',
    group: 'image',
    kind: 'list',
    env: 'CONTRAST_INSECURE_REGISTRY',
    separator: ',',
    field: 'insecureRegistries',
    describe: 'Registry host[:port] to reach over plain HTTP (one per flag; repeat it for more)',
  },
  {
    flag: 'offline',
    group: 'image',
    kind: 'bool',
    env: 'CONTRAST_OFFLINE',
    field: 'offline',
    describe: 'Never contact a registry: use local sources and the cache only',
  },
  {
    flag: 'docker-config',
    group: 'image',
    kind: 'string',
    env: 'CONTRAST_DOCKER_CONFIG',
    field: 'dockerConfig',
    path: true,
    describe: 'Docker config file with registry credentials (default ~/.docker/config.json and containers auth files)',
  },
  {
    flag: 'image-platform',
    group: 'image',
    kind: 'string',
    default: 'linux/amd64',
    env: 'CONTRAST_IMAGE_PLATFORM',
    field: 'imagePlatform',
    describe: 'Platform picked from multi-platform images',
  },
  {
    flag: 'platform',
    alias: 'reference-values',
    group: 'transform',
    kind: 'string',
    choices: platformIds,
    coerce: platformName,
    env: 'CONTRAST_PLATFORM',
    field: 'platform',
    describe:
      "Platform for workloads with runtimeClassName contrast-cc (contrast-cc-<platform> selects one per workload); also upstream v1.2's names k3s-qemu-snp and k3s-qemu-tdx",
  },
  {
    flag: 'skip-initializer',
    group: 'transform',
    kind: 'bool',
    env: 'CONTRAST_SKIP_INITIALIZER',
    field: 'skipInitializer',
    describe:
      'Do not inject the Initializer (per workload: annotation contrast.edgeless.systems/skip-initializer: "true")',
  },
  {
    flag: 'skip-service-mesh',
    group: 'transform',
    kind: 'bool',
    env: 'CONTRAST_SKIP_SERVICE_MESH',
    field: 'skipServiceMesh',
    describe: 'Do not inject the service-mesh sidecar, whatever the servicemesh annotations say',
  },
  {
    flag: 'image-replacements',
    group: 'transform',
    kind: 'string',
    env: 'CONTRAST_IMAGE_REPLACEMENTS',
    field: 'imageReplacements',
    path: true,
    describe: 'File of "source=target" lines that replace container images (e.g. a mirror)',
  },
  {
    flag: 'coordinator-host',
    group: 'transform',
    kind: 'string',
    env: 'CONTRAST_COORDINATOR_HOST',
    field: 'coordinatorHost',
    describe:
      "Address the Initializer dials (default coordinator-ready.<namespace of the Coordinator in the inputs>, else coordinator-ready in the pod's own namespace)",
  },
  {
    flag: 'inject-image-store',
    group: 'transform',
    kind: 'bool',
    env: 'CONTRAST_INJECT_IMAGE_STORE',
    field: 'injectImageStore',
    describe:
      'Give every confidential workload a block volume the guest pulls images onto (size: annotation contrast.edgeless.systems/image-store-size, default 10Gi, "0": none)',
  },
  {
    flag: 'add-workload-owner-key',
    alias: 'w',
    group: 'transform',
    kind: 'list',
    env: 'CONTRAST_WORKLOAD_OWNER_KEYS',
    separator: delimiter,
    field: 'workloadOwnerKeys',
    path: true,
    describe:
      'Workload owner key (private or public PEM, ECDSA P-384) allowed to update the manifest; default <workspace>/workload-owner.pem, created once',
  },
  {
    flag: 'add-seedshare-owner-key',
    group: 'transform',
    kind: 'list',
    env: 'CONTRAST_SEEDSHARE_OWNER_KEYS',
    separator: delimiter,
    field: 'seedshareOwnerKeys',
    path: true,
    describe:
      'Seed-share owner key (RSA PEM) that can recover the Coordinator; default <workspace>/seedshare-owner.pem, created once',
  },
  {
    flag: 'disable-updates',
    alias: 'd',
    group: 'transform',
    kind: 'bool',
    env: 'CONTRAST_DISABLE_UPDATES',
    field: 'disableUpdates',
    describe: 'Write a manifest without workload owner keys: it can never be changed',
  },
  {
    flag: 'disable-recovery',
    group: 'transform',
    kind: 'bool',
    env: 'CONTRAST_DISABLE_RECOVERY',
    field: 'disableRecovery',
    describe:
      'Write a manifest without seed-share owners ("DisableRecovery": true): a restarted Coordinator can then never be recovered',
  },
] as const satisfies readonly TransformOption[];

type Row = (typeof TRANSFORM_OPTIONS)[number];
type ValueOf<R extends Row> = R extends { kind: 'bool' }
  ? boolean
  : R extends { kind: 'list' }
    ? string[]
    : R extends { default: string }
      ? string
      : string | undefined;
type ArgsOf<R extends Row> = { -readonly [O in R as O['flag']]: ValueOf<O> };

/** The parsed flags of one group (and of all of them: TransformArgs). */
export type WorkspaceArgs = ArgsOf<Extract<Row, { group: 'workspace' }>>;
export type ImageArgs = ArgsOf<Extract<Row, { group: 'image' }>>;
export type TransformArgs = ArgsOf<Row>;

export function optionsOf(groups: readonly OptionGroup[]): readonly TransformOption[] {
  return TRANSFORM_OPTIONS.filter((o) => groups.includes(o.group));
}

/** Registers the flags of these rows, with their help texts and defaults. */
export function registerOptions<T, A>(y: Argv<T>, rows: readonly TransformOption[]): Argv<T & A> {
  let out: Argv<T> = y;
  for (const o of rows) out = out.option(o.flag, yargsOption(o));
  return out as Argv<T & A>;
}

function yargsOption(o: TransformOption): Options {
  const spec: Options =
    o.kind === 'list'
      ? repeatable(o.describe)
      : { type: o.kind === 'bool' ? 'boolean' : 'string', describe: o.describe };
  if (o.alias !== undefined) spec.alias = o.alias;
  if (o.choices !== undefined) spec.choices = o.choices();
  if (o.coerce !== undefined) spec.coerce = o.coerce;
  if (o.kind === 'string') spec.requiresArg = true;
  const fallback = o.kind === 'bool' ? false : o.kind === 'list' ? [] : undefined;
  if (o.default !== undefined || fallback !== undefined) spec.default = o.default ?? fallback;
  return spec;
}

/** Every value of a repeatable flag as a list of strings (one occurrence gives one string). */
export function toList(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/**
 * A repeatable flag that takes one value per occurrence, as kubectl's and Helm's do
 * (`--oci-layout a --oci-layout b`). yargs' `array: true` would instead take every word up to
 * the next flag, so `--oci-layout DIR deployment/` swallowed the input paths.
 */
export function repeatable(describe: string, extra: Options = {}): Options {
  return { type: 'string', requiresArg: true, coerce: toList, default: [], describe, ...extra };
}

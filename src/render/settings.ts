/**
 * Where the renderers (Helm post-renderer, kustomize transformer) take their options from.
 *
 * Every option is a flag of `generate` (see transformOptions). A renderer cannot always pass
 * flags — Helm 4 plugins and kustomize exec plugins are started by the tool — so each flag
 * also has an environment variable and a field of the kustomize function config. Precedence:
 * command-line flag, then function config, then environment, then the built-in default.
 */
import { delimiter, isAbsolute, resolve } from 'node:path';
import yargs, { type Argv } from 'yargs';
import { isPlainObject } from '../manifests/patch.js';
import { transformOptions, type TransformArgs } from '../cli/generate.js';
import { UsageError } from '../util/errors.js';

type Kind = 'string' | 'bool' | 'list';

interface Setting {
  /** The yargs flag of `generate`. */
  flag: keyof TransformArgs & string;
  /** Environment variable. */
  env: string;
  /** Field of the function config (`spec.<field>`, or `data.<field>` of a ConfigMap). */
  field: string;
  kind: Kind;
  /** A file or directory: relative values in a function config are taken from its directory. */
  path?: boolean;
  /** Separator of list values in the environment and in ConfigMap data. */
  separator?: string;
  /** The environment variable means the opposite of the flag (CONTRAST_NO_CACHE=1 → --no-cache). */
  inverted?: boolean;
}

/** One row per option; docs/helm-kustomize.md lists the same table for users. */
export const SETTINGS: readonly Setting[] = [
  { flag: 'platform', env: 'CONTRAST_PLATFORM', field: 'platform', kind: 'string' },
  { flag: 'workspace-dir', env: 'CONTRAST_WORKSPACE_DIR', field: 'workspaceDir', kind: 'string', path: true },
  { flag: 'manifest', env: 'CONTRAST_MANIFEST', field: 'manifest', kind: 'string', path: true },
  { flag: 'skip-initializer', env: 'CONTRAST_SKIP_INITIALIZER', field: 'skipInitializer', kind: 'bool' },
  { flag: 'image-replacements', env: 'CONTRAST_IMAGE_REPLACEMENTS', field: 'imageReplacements', kind: 'string', path: true },
  { flag: 'coordinator-host', env: 'CONTRAST_COORDINATOR_HOST', field: 'coordinatorHost', kind: 'string' },
  { flag: 'add-workload-owner-key', env: 'CONTRAST_WORKLOAD_OWNER_KEYS', field: 'workloadOwnerKeys', kind: 'list', path: true, separator: delimiter },
  { flag: 'add-seedshare-owner-key', env: 'CONTRAST_SEEDSHARE_OWNER_KEYS', field: 'seedshareOwnerKeys', kind: 'list', path: true, separator: delimiter },
  { flag: 'disable-updates', env: 'CONTRAST_DISABLE_UPDATES', field: 'disableUpdates', kind: 'bool' },
  { flag: 'oci-layout', env: 'CONTRAST_OCI_LAYOUT', field: 'ociLayouts', kind: 'list', path: true, separator: delimiter },
  { flag: 'docker-archive', env: 'CONTRAST_DOCKER_ARCHIVE', field: 'dockerArchives', kind: 'list', path: true, separator: delimiter },
  // CONTRAST_CACHE_DIR is read by the image resolver itself.
  { flag: 'cache-dir', env: '', field: 'cacheDir', kind: 'string', path: true },
  { flag: 'cache', env: 'CONTRAST_NO_CACHE', field: 'cache', kind: 'bool', inverted: true },
  { flag: 'insecure-registry', env: 'CONTRAST_INSECURE_REGISTRY', field: 'insecureRegistries', kind: 'list', separator: ',' },
  { flag: 'offline', env: 'CONTRAST_OFFLINE', field: 'offline', kind: 'bool' },
  { flag: 'docker-config', env: 'CONTRAST_DOCKER_CONFIG', field: 'dockerConfig', kind: 'string', path: true },
  { flag: 'image-platform', env: 'CONTRAST_IMAGE_PLATFORM', field: 'imagePlatform', kind: 'string' },
];

const TRUE = /^(1|true|yes|on)$/i;
const FALSE = /^(0|false|no|off|)$/i;

function parseBool(text: string, what: string): boolean {
  if (TRUE.test(text.trim())) return true;
  if (FALSE.test(text.trim())) return false;
  throw new UsageError(`${what}: expected true or false, found "${text}"`);
}

function splitList(text: string, separator: string): string[] {
  return text.split(separator).map((s) => s.trim()).filter((s) => s !== '');
}

/** Makes the CONTRAST_* environment variables the defaults of the transform flags. */
export function withEnvDefaults<T>(y: Argv<T>, env: NodeJS.ProcessEnv = process.env): Argv<T> {
  let out = y;
  for (const s of SETTINGS) {
    const raw = s.env ? env[s.env] : undefined;
    if (raw === undefined) continue;
    let value: unknown;
    if (s.kind === 'bool') {
      const b = parseBool(raw, s.env);
      value = s.inverted ? !b : b;
    } else if (s.kind === 'list') {
      value = splitList(raw, s.separator ?? ',');
    } else {
      if (raw === '') continue;
      value = raw;
    }
    out = out.default(s.flag, value as never);
  }
  return out;
}

/** The transform flags of a command plus their environment defaults. */
export function renderOptions<T>(y: Argv<T>, env: NodeJS.ProcessEnv = process.env): Argv<T & TransformArgs> {
  return withEnvDefaults(transformOptions(y), env);
}

export interface FunctionConfigSource {
  /** The function config object (kind ContrastTransformer with `spec`, or a ConfigMap with `data`). */
  config: unknown;
  /** Relative paths in it are taken from here. */
  baseDir: string;
  /** For error messages: where the config came from. */
  origin: string;
}

/** Turns a function config into flags, so that it is validated exactly like the command line. */
export function functionConfigToArgs(source: FunctionConfigSource): string[] {
  const { config, baseDir, origin } = source;
  if (config === undefined || config === null) return [];
  if (!isPlainObject(config)) throw new UsageError(`${origin}: the function config must be a mapping`);
  let fields: Record<string, unknown>;
  let fromStrings = false;
  if (config.kind === 'ConfigMap') {
    fields = isPlainObject(config.data) ? config.data : {};
    fromStrings = true;
  } else {
    const spec = config.spec ?? {};
    if (!isPlainObject(spec)) throw new UsageError(`${origin}: spec must be a mapping`);
    fields = spec;
  }
  const known = new Map(SETTINGS.map((s) => [s.field, s]));
  const args: string[] = [];
  for (const [field, raw] of Object.entries(fields)) {
    const s = known.get(field);
    if (!s) {
      throw new UsageError(`${origin}: unknown field "${field}"; known fields: ${[...known.keys()].join(', ')}`);
    }
    if (raw === null || raw === undefined) continue;
    const where = `${origin}: field ${field}`;
    const path = (v: string) => (s.path && !isAbsolute(v) ? resolve(baseDir, v) : v);
    if (s.kind === 'bool') {
      const b = typeof raw === 'boolean' ? raw : parseBool(String(raw), where);
      args.push(`--${s.flag}=${b}`);
    } else if (s.kind === 'list') {
      let items: unknown[];
      if (Array.isArray(raw)) items = raw;
      else if (fromStrings && typeof raw === 'string') items = splitList(raw, ',');
      else throw new UsageError(`${where}: expected a list`);
      for (const item of items) {
        if (typeof item !== 'string' || item === '') throw new UsageError(`${where}: expected a list of non-empty strings`);
        args.push(`--${s.flag}=${path(item)}`);
      }
    } else {
      if (typeof raw !== 'string' && typeof raw !== 'number') throw new UsageError(`${where}: expected a string`);
      args.push(`--${s.flag}=${path(String(raw))}`);
    }
  }
  return args;
}

/**
 * The transform flags for a run that has no command line of its own: `args` (e.g. from a
 * function config) over the environment over the defaults, checked like the command line.
 */
export function parseTransformArgs(args: string[], env: NodeJS.ProcessEnv = process.env): TransformArgs {
  const parser = renderOptions(yargs(args), env)
    .strict()
    .version(false)
    .help(false)
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(msg);
    });
  const argv = parser.parseSync() as unknown as TransformArgs & { _: unknown[] };
  if (argv._.length > 0) throw new UsageError(`unexpected argument "${String(argv._[0])}"`);
  return argv;
}

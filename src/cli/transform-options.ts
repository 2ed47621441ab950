/**
 * From the transform flags (src/cli/options-table.ts) to the options of the `generate` use case,
 * for the command line and for the renderers that cannot always pass flags — Helm 4 plugins
 * and kustomize exec plugins are started by the tool — and so also read environment
 * variables and a kustomize function config. Precedence: command-line flag, then function
 * config, then environment, then the built-in default.
 */
import { isAbsolute, resolve } from 'node:path';
import yargs, { type Argv } from 'yargs';
import { UsageError } from '../util/errors.js';
import type { Warn } from '../util/diagnostics.js';
import { isPlainObject } from '../util/values.js';
import type { GenerateOptions } from '../generate/pipeline.js';
import { imageResolverFrom } from './image-options.js';
import { registerOptions, TRANSFORM_OPTIONS, type TransformArgs } from './options-table.js';

export type { TransformArgs } from './options-table.js';

/** Adds every transform flag (workspace, images, platform, keys, …) to a command. */
export function transformOptions<T>(y: Argv<T>): Argv<T & TransformArgs> {
  return registerOptions<T, TransformArgs>(y, TRANSFORM_OPTIONS).check((argv) => {
    if (argv['disable-updates'] && argv['add-workload-owner-key'].length > 0)
      throw new UsageError('--disable-updates and --add-workload-owner-key exclude each other');
    if (argv['disable-recovery'] && argv['add-seedshare-owner-key'].length > 0)
      throw new UsageError('--disable-recovery and --add-seedshare-owner-key exclude each other');
    return true;
  });
}

/** The `generate` options the transform flags stand for; image warnings go to `warn`. */
export function generateOptionsFrom(argv: TransformArgs, warn?: Warn): GenerateOptions {
  return {
    platform: argv.platform,
    skipInitializer: argv['skip-initializer'],
    skipServiceMesh: argv['skip-service-mesh'],
    imageReplacementsFile: argv['image-replacements'],
    coordinatorHost: argv['coordinator-host'],
    injectImageStore: argv['inject-image-store'],
    workspaceDir: argv['workspace-dir'],
    manifestPath: argv.manifest,
    settingsPath: argv.settings,
    workloadOwnerKeys: argv['add-workload-owner-key'],
    seedshareOwnerKeys: argv['add-seedshare-owner-key'],
    disableUpdates: argv['disable-updates'],
    disableRecovery: argv['disable-recovery'],
    imageResolver: imageResolverFrom(argv, warn),
  };
}

const TRUE = /^(1|true|yes|on)$/i;
const FALSE = /^(0|false|no|off|)$/i;

function parseBool(text: string, what: string): boolean {
  if (TRUE.test(text.trim())) return true;
  if (FALSE.test(text.trim())) return false;
  throw new UsageError(`${what}: expected true or false, found "${text}"`);
}

function splitList(text: string, separator: string): string[] {
  return text
    .split(separator)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Makes the CONTRAST_* environment variables the defaults of the transform flags. */
function withEnvDefaults<T>(y: Argv<T>, env: NodeJS.ProcessEnv): Argv<T> {
  let out = y;
  for (const o of TRANSFORM_OPTIONS) {
    const raw = env[o.env];
    if (raw === undefined) continue;
    let value: unknown;
    if (o.kind === 'bool') {
      const b = parseBool(raw, o.env);
      value = 'inverted' in o ? !b : b;
    } else if (o.kind === 'list') {
      value = splitList(raw, o.separator);
    } else {
      if (raw === '') continue;
      value = raw;
    }
    out = out.default(o.flag, value);
  }
  return out;
}

/** The transform flags of a renderer command plus their environment defaults. */
export function postRenderOptions<T>(y: Argv<T>, env: NodeJS.ProcessEnv = process.env): Argv<T & TransformArgs> {
  return withEnvDefaults(transformOptions(y), env);
}

/** For help texts: the environment variables and function config fields, in table order. */
export const ENVIRONMENT_VARIABLES: readonly string[] = TRANSFORM_OPTIONS.map((o) => o.env);
export const FUNCTION_CONFIG_FIELDS: readonly string[] = TRANSFORM_OPTIONS.map((o) => o.field);

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
  const known = new Map(TRANSFORM_OPTIONS.map((o) => [o.field as string, o]));
  const args: string[] = [];
  for (const [field, raw] of Object.entries(fields)) {
    const o = known.get(field);
    if (!o) {
      throw new UsageError(`${origin}: unknown field "${field}"; known fields: ${FUNCTION_CONFIG_FIELDS.join(', ')}`);
    }
    if (raw === null || raw === undefined) continue;
    const where = `${origin}: field ${field}`;
    const path = (v: string) => ('path' in o && !isAbsolute(v) ? resolve(baseDir, v) : v);
    if (o.kind === 'bool') {
      const b = typeof raw === 'boolean' ? raw : parseBool(String(raw), where);
      args.push(`--${o.flag}=${b}`);
    } else if (o.kind === 'list') {
      let items: unknown[];
      if (Array.isArray(raw)) items = raw;
      else if (fromStrings && typeof raw === 'string') items = splitList(raw, ',');
      else throw new UsageError(`${where}: expected a list`);
      for (const item of items) {
        if (typeof item !== 'string' || item === '')
          throw new UsageError(`${where}: expected a list of non-empty strings`);
        args.push(`--${o.flag}=${path(item)}`);
      }
    } else {
      if (typeof raw !== 'string' && typeof raw !== 'number') throw new UsageError(`${where}: expected a string`);
      args.push(`--${o.flag}=${path(String(raw))}`);
    }
  }
  return args;
}

/** The workspace a function config names, read before the config is checked, so its errors can be logged there. */
export function configuredWorkspace(config: unknown, baseDir: string): string | undefined {
  const fields = isPlainObject(config) ? (config.kind === 'ConfigMap' ? config.data : config.spec) : undefined;
  const dir = isPlainObject(fields) ? fields.workspaceDir : undefined;
  return typeof dir === 'string' && dir !== '' ? resolve(baseDir, dir) : undefined;
}

/**
 * The transform flags for a run that has no command line of its own: `args` (e.g. from a
 * function config) over the environment over the defaults, checked like the command line.
 */
export function parseTransformArgs(args: string[], env: NodeJS.ProcessEnv = process.env): TransformArgs {
  const parser = postRenderOptions(yargs(args), env)
    .strict()
    .version(false)
    .help(false)
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(msg);
    });
  const argv = parser.parseSync();
  if (argv._.length > 0) throw new UsageError(`unexpected argument "${String(argv._[0])}"`);
  return argv;
}

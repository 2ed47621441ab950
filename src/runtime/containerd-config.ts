/**
 * The containerd side of a node installation: one runtime handler of the CRI plugin, added to
 * containerd's main configuration file as a block between marker comments, so installing again
 * replaces exactly that block and nothing a person wrote.
 *
 * Why the main file and not a drop-in: containerd 1.6 replaces a plugin's whole table with an
 * imported one, so a drop-in naming a CRI runtime leaves the CRI plugin without the rest of its
 * configuration (docs/cluster.md, measured). Version 2 of the format is required: version 1
 * names plugins differently and would ignore the block silently.
 */
import { parse as parseToml } from 'smol-toml';
import { UserError } from '../util/errors.js';

export interface RuntimeHandlerConfig {
  /** The handler's name: the RuntimeClass's `handler`. */
  handler: string;
  /** The OCI runtime the runc v2 shim runs instead of runc. */
  binaryName: string;
  /** Pod annotations the CRI plugin copies into the OCI specs of the pod. */
  podAnnotations: readonly string[];
}

const CRI = 'io.containerd.grpc.v1.cri';
const beginMarker = (handler: string) => `# BEGIN kubectl-contrast runtime handler ${handler}`;
const endMarker = (handler: string) => `# END kubectl-contrast runtime handler ${handler}`;

/** TOML basic string: the handler and paths we write are checked, but quoting stays exact. */
const tomlString = (s: string): string => JSON.stringify(s);

function handlerBlock(cfg: RuntimeHandlerConfig): string {
  const table = `plugins.${tomlString(CRI)}.containerd.runtimes.${tomlString(cfg.handler)}`;
  return [
    beginMarker(cfg.handler),
    '# Written by `kubectl contrast runtime install-node`; installing again replaces this block.',
    `[${table}]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `  pod_annotations = [${cfg.podAnnotations.map(tomlString).join(', ')}]`,
    // As for Kata: a privileged container gets no host devices (the VM has none of the host's);
    // without it containerd lists every /dev node of the host, which no policy allows.
    '  privileged_without_host_devices = true',
    `[${table}.options]`,
    `  BinaryName = ${tomlString(cfg.binaryName)}`,
    endMarker(cfg.handler),
    '',
  ].join('\n');
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseConfig(text: string, file: string): Table {
  try {
    return parseToml(text) as Table;
  } catch (err) {
    throw new UserError(`not valid TOML: ${(err as Error).message}`, { file });
  }
}

function runtimesOf(config: Table): Table {
  const plugins = config.plugins;
  const cri = isTable(plugins) ? plugins[CRI] : undefined;
  const containerd = isTable(cri) ? cri.containerd : undefined;
  const runtimes = isTable(containerd) ? containerd.runtimes : undefined;
  return isTable(runtimes) ? runtimes : {};
}

/** Remove our block for `handler` (and only it); the text is unchanged when there is none. */
function withoutBlock(text: string, handler: string, file: string): string {
  const begin = text.indexOf(beginMarker(handler));
  if (begin < 0) return text;
  const endAt = text.indexOf(endMarker(handler), begin);
  if (endAt < 0)
    throw new UserError(`has the start of the kubectl-contrast block for ${handler} but not its end`, { file });
  let end = endAt + endMarker(handler).length;
  if (text[end] === '\n') end += 1;
  return text.slice(0, begin) + text.slice(end);
}

/**
 * The configuration with the handler installed. `text` is the file as it is (may be empty);
 * the result is parsed again, so a file that our block would break is refused, not written.
 */
export function withRuntimeHandler(text: string, cfg: RuntimeHandlerConfig, file: string): string {
  if (!/^[a-z0-9][a-z0-9.-]{0,62}$/.test(cfg.handler))
    throw new UserError(`runtime handler name ${JSON.stringify(cfg.handler)} is not a DNS label`);
  const base = withoutBlock(text, cfg.handler, file);
  const config = parseConfig(base, file);
  if (config.version === undefined && Object.keys(config).length > 0)
    throw new UserError(
      `no "version = 2": containerd reads it as version 1, where the CRI plugin has another name; run \`containerd config migrate\` first`,
      { file },
    );
  if (config.version !== undefined && config.version !== 2)
    throw new UserError(
      `containerd configuration version ${String(config.version)}; version 2 is needed (\`containerd config migrate\`)`,
      { file },
    );
  if (Object.hasOwn(runtimesOf(config), cfg.handler))
    throw new UserError(
      `already defines the runtime handler ${cfg.handler} outside the kubectl-contrast block; remove it first`,
      { file },
    );
  const head = config.version === undefined ? 'version = 2\n' : '';
  const sep = base.length === 0 || base.endsWith('\n\n') ? '' : base.endsWith('\n') ? '\n' : '\n\n';
  const out = `${head}${base}${sep}${handlerBlock(cfg)}`;
  const check = runtimesOf(parseConfig(out, file))[cfg.handler];
  if (!isTable(check) || check.runtime_type !== 'io.containerd.runc.v2')
    throw new UserError(`the runtime handler ${cfg.handler} did not land where containerd reads it`, { file });
  return out;
}

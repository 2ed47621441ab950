/**
 * runc's command line as containerd's runc v2 shim writes it (go-runc): global flags, the
 * subcommand, its flags, the container id last. Only what the simulated runtime's hook needs is
 * read; everything else passes through to runc untouched.
 */
import { UserError } from '../util/errors.js';

export interface RuncInvocation {
  subcommand: string;
  /** `--log`: where runc (and so the hook) writes its log; the shim reports its last error line. */
  logFile?: string;
  logFormat?: string;
  /** `create --bundle`. */
  bundle?: string;
  /** The container id: the last positional argument. */
  id?: string;
}

/** Global flags of runc that take a value (runc main.go); the boolean ones take none. */
const GLOBAL_VALUE_FLAGS = new Set(['--root', '--log', '--log-format', '--criu', '--rootless']);
/** Flags of create and delete that take a value (runc create.go, delete.go). */
const SUB_VALUE_FLAGS = new Set(['--bundle', '-b', '--console-socket', '--pid-file', '--preserve-fds']);

function splitFlag(arg: string): [string, string | undefined] {
  const eq = arg.indexOf('=');
  return eq < 0 ? [arg, undefined] : [arg.slice(0, eq), arg.slice(eq + 1)];
}

export function parseRuncArgs(argv: readonly string[]): RuncInvocation {
  const global = new Map<string, string>();
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith('-'); i++) {
    const [name, inline] = splitFlag(argv[i]!);
    if (!GLOBAL_VALUE_FLAGS.has(name)) continue;
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UserError(`runc flag ${name} has no value`);
    global.set(name, value);
  }
  const subcommand = argv[i++];
  if (subcommand === undefined) throw new UserError('no runc subcommand');
  const sub = new Map<string, string>();
  const positional: string[] = [];
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-')) {
      positional.push(arg);
      continue;
    }
    const [name, inline] = splitFlag(arg);
    if (!SUB_VALUE_FLAGS.has(name)) continue;
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UserError(`runc ${subcommand} flag ${name} has no value`);
    sub.set(name === '-b' ? '--bundle' : name, value);
  }
  const out: RuncInvocation = { subcommand };
  const log = global.get('--log');
  const logFormat = global.get('--log-format');
  const bundle = sub.get('--bundle');
  const id = positional.at(-1);
  if (log !== undefined) out.logFile = log;
  if (logFormat !== undefined) out.logFormat = logFormat;
  if (bundle !== undefined) out.bundle = bundle;
  if (id !== undefined) out.id = id;
  return out;
}

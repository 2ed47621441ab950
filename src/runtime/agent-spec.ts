/**
 * The OCI runtime spec (config.json) that containerd's CRI plugin writes into a container's
 * bundle, parsed strictly: it comes from the host, which the simulated runtime treats like Kata
 * treats it, as untrusted. Only the fields the OCI runtime spec defines for Linux are accepted;
 * a field of the wrong type, an unknown field or an oversized document is refused with the
 * path of the field, so the wrapper fails closed instead of guessing.
 */
import { UserError } from '../util/errors.js';

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  username?: string;
}

export interface OciCapabilities {
  bounding?: string[];
  effective?: string[];
  inheritable?: string[];
  permitted?: string[];
  ambient?: string[];
}

export interface OciRlimit {
  type: string;
  hard: number;
  soft: number;
}

export interface OciProcess {
  terminal?: boolean;
  consoleSize?: { height: number; width: number };
  user: OciUser;
  args?: string[];
  env?: string[];
  cwd: string;
  capabilities?: OciCapabilities;
  rlimits?: OciRlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
}

export interface OciNamespace {
  type: string;
  path?: string;
}

export interface OciDevice {
  type: string;
  path: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface OciLinux {
  uidMappings?: unknown[];
  gidMappings?: unknown[];
  sysctl?: Record<string, string>;
  resources?: Record<string, unknown>;
  cgroupsPath?: string;
  namespaces?: OciNamespace[];
  devices?: OciDevice[];
  seccomp?: Record<string, unknown>;
  rootfsPropagation?: string;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  mountLabel?: string;
  intelRdt?: Record<string, unknown>;
}

export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts?: OciMount[];
  hooks?: Record<string, unknown>;
  annotations?: Record<string, string>;
  linux: OciLinux;
}

/** Bounds: a CRI spec is a few KB; service-link variables of a big namespace reach tens of KB. */
export const MAX_SPEC_BYTES = 4 * 1024 * 1024;
const MAX_LIST = 65536;
const MAX_STRING = 1024 * 1024;
const MAX_DEPTH = 16;

type Check = (v: unknown, field: string) => void;

class SpecError extends UserError {}

function fail(field: string, what: string, file: string): never {
  throw new SpecError(what, { file, field });
}

function parser(file: string) {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const str: Check = (v, f) => {
    if (typeof v !== 'string') fail(f, 'must be a string', file);
    if (v.length > MAX_STRING) fail(f, `is longer than ${MAX_STRING} characters`, file);
  };
  const bool: Check = (v, f) => {
    if (typeof v !== 'boolean') fail(f, 'must be true or false', file);
  };
  const int =
    (min: number, max: number): Check =>
    (v, f) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
        fail(f, `must be an integer from ${min} to ${max}`, file);
    };
  const u32 = int(0, 0xffffffff);
  const i64 = int(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const list =
    (each: Check): Check =>
    (v, f) => {
      if (!Array.isArray(v)) fail(f, 'must be a list', file);
      if (v.length > MAX_LIST) fail(f, `has more than ${MAX_LIST} entries`, file);
      v.forEach((x, i) => each(x, `${f}[${i}]`));
    };
  const strMap: Check = (v, f) => {
    if (!isObj(v)) fail(f, 'must be an object of strings', file);
    const keys = Object.keys(v);
    if (keys.length > MAX_LIST) fail(f, `has more than ${MAX_LIST} entries`, file);
    for (const k of keys) str(v[k], `${f}.${k}`);
  };
  /** JSON the spec allows but the agent request carries opaquely (resources, seccomp, hooks). */
  const anyJson: Check = (v, f) => {
    const walk = (x: unknown, depth: number, at: string): void => {
      if (depth > MAX_DEPTH) fail(at, `nests deeper than ${MAX_DEPTH} levels`, file);
      if (Array.isArray(x)) {
        if (x.length > MAX_LIST) fail(at, `has more than ${MAX_LIST} entries`, file);
        x.forEach((y, i) => walk(y, depth + 1, `${at}[${i}]`));
      } else if (isObj(x)) for (const [k, y] of Object.entries(x)) walk(y, depth + 1, `${at}.${k}`);
      else if (typeof x === 'string') str(x, at);
    };
    if (!isObj(v)) fail(f, 'must be an object', file);
    walk(v, 0, f);
  };
  const object =
    (fields: Record<string, Check>, required: string[] = []): Check =>
    (v, f) => {
      if (!isObj(v)) fail(f || '(top level)', 'must be a JSON object', file);
      for (const k of required) if (!(k in v)) fail(f ? `${f}.${k}` : k, 'is missing', file);
      for (const [k, x] of Object.entries(v)) {
        const at = f ? `${f}.${k}` : k;
        const check = Object.hasOwn(fields, k) ? fields[k] : undefined;
        if (!check) fail(at, 'is not a field of the OCI runtime spec that this runtime accepts', file);
        check(x, at);
      }
    };
  const strings = list(str);
  const u32s = list(u32);
  const caps = object({
    bounding: strings,
    effective: strings,
    inheritable: strings,
    permitted: strings,
    ambient: strings,
  });
  const spec = object(
    {
      ociVersion: str,
      process: object(
        {
          terminal: bool,
          consoleSize: object({ height: u32, width: u32 }, ['height', 'width']),
          user: object({ uid: u32, gid: u32, umask: u32, additionalGids: u32s, username: str }, ['uid', 'gid']),
          args: strings,
          env: strings,
          cwd: str,
          capabilities: caps,
          rlimits: list(object({ type: str, hard: i64, soft: i64 }, ['type', 'hard', 'soft'])),
          noNewPrivileges: bool,
          apparmorProfile: str,
          oomScoreAdj: int(-1000, 1000),
          selinuxLabel: str,
        },
        ['user', 'cwd'],
      ),
      root: object({ path: str, readonly: bool }, ['path']),
      hostname: str,
      domainname: str,
      mounts: list(object({ destination: str, type: str, source: str, options: strings }, ['destination'])),
      hooks: anyJson,
      annotations: strMap,
      linux: object({
        uidMappings: list(anyJson),
        gidMappings: list(anyJson),
        sysctl: strMap,
        resources: anyJson,
        cgroupsPath: str,
        namespaces: list(object({ type: str, path: str }, ['type'])),
        devices: list(
          object({ type: str, path: str, major: i64, minor: i64, fileMode: u32, uid: u32, gid: u32 }, ['type', 'path']),
        ),
        seccomp: anyJson,
        rootfsPropagation: str,
        maskedPaths: strings,
        readonlyPaths: strings,
        mountLabel: str,
        intelRdt: anyJson,
      }),
    },
    ['ociVersion', 'process', 'root', 'linux'],
  );
  return spec;
}

/**
 * Parse config.json bytes: exactly one JSON object of the OCI runtime spec, UTF-8, at most
 * MAX_SPEC_BYTES. `file` names the source in errors.
 */
export function parseOciSpec(bytes: Uint8Array | string, file = 'config.json'): OciSpec {
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (size > MAX_SPEC_BYTES) fail('(top level)', `is ${size} bytes, more than ${MAX_SPEC_BYTES}`, file);
  let text: string;
  try {
    text = typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    fail('(top level)', 'is not UTF-8', file);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    fail('(top level)', `is not one JSON document (${(err as Error).message})`, file);
  }
  parser(file)(value, '');
  return value as OciSpec;
}

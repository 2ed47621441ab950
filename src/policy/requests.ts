/**
 * Agent requests as the policy sees them. The Kata agent deserialises each request into its
 * protobuf structs (every field has a default, unknown fields are dropped) and hands the
 * serde JSON to the policy. normaliseRequest does the same for requests written by hand, so
 * a test or a user's request file may omit fields and still be evaluated like the agent would.
 */

type Kind = 'str' | 'bool' | 'num' | 'arr' | 'map' | 'opaque' | 'nullable' | `msg:${string}` | `arr:${string}`;
type Schema = Record<string, Kind>;

const S: Record<string, Schema> = {
  Spec: {
    Version: 'str',
    Process: 'msg:Process',
    Root: 'msg:Root',
    Hostname: 'str',
    Mounts: 'arr:Mount',
    Hooks: 'opaque',
    Annotations: 'map',
    Linux: 'msg:Linux',
    Solaris: 'opaque',
    Windows: 'opaque',
  },
  Process: {
    Terminal: 'bool',
    ConsoleSize: 'opaque',
    User: 'msg:User',
    Args: 'arr',
    Env: 'arr',
    Cwd: 'str',
    Capabilities: 'msg:LinuxCapabilities',
    Rlimits: 'arr',
    NoNewPrivileges: 'bool',
    ApparmorProfile: 'str',
    OOMScoreAdj: 'num',
    SelinuxLabel: 'str',
  },
  User: { UID: 'num', GID: 'num', AdditionalGids: 'arr', Username: 'str' },
  LinuxCapabilities: { Bounding: 'arr', Effective: 'arr', Inheritable: 'arr', Permitted: 'arr', Ambient: 'arr' },
  Root: { Path: 'str', Readonly: 'bool' },
  Mount: { destination: 'str', source: 'str', type_: 'str', options: 'arr' },
  Linux: {
    UIDMappings: 'arr',
    GIDMappings: 'arr',
    Sysctl: 'map',
    Resources: 'msg:LinuxResources',
    CgroupsPath: 'str',
    Namespaces: 'arr:LinuxNamespace',
    Devices: 'arr:LinuxDevice',
    Seccomp: 'opaque',
    RootfsPropagation: 'str',
    MaskedPaths: 'arr',
    ReadonlyPaths: 'arr',
    MountLabel: 'str',
    IntelRdt: 'opaque',
  },
  LinuxResources: {
    Devices: 'arr',
    Memory: 'opaque',
    CPU: 'opaque',
    Pids: 'opaque',
    BlockIO: 'opaque',
    HugepageLimits: 'arr',
    Network: 'opaque',
  },
  LinuxNamespace: { Type: 'str', Path: 'str' },
  LinuxDevice: { Path: 'str', Type: 'str', Major: 'num', Minor: 'num', FileMode: 'num', UID: 'num', GID: 'num' },
  Storage: {
    driver: 'str',
    driver_options: 'arr',
    source: 'str',
    fstype: 'str',
    options: 'arr',
    mount_point: 'str',
    fs_group: 'msg:FSGroup',
    shared: 'bool',
  },
  FSGroup: { group_id: 'num', group_change_policy: 'num' },
  Device: { id: 'str', type_: 'str', vm_path: 'str', container_path: 'str', options: 'arr' },
  StringUser: { uid: 'str', gid: 'str', additionalGids: 'arr' },
  SharedMount: { name: 'str', src_ctr: 'str', src_path: 'str', dst_ctr: 'str', dst_path: 'str' },
  KernelModule: { name: 'str', parameters: 'arr' },
  IPAddress: { family: 'num', address: 'str', mask: 'str' },
  Interface: {
    device: 'str',
    name: 'str',
    IPAddresses: 'arr:IPAddress',
    mtu: 'num',
    hwAddr: 'str',
    devicePath: 'str',
    type_: 'str',
    raw_flags: 'num',
  },
  Route: {
    dest: 'str',
    gateway: 'str',
    device: 'str',
    source: 'str',
    scope: 'num',
    family: 'num',
    flags: 'num',
    mtu: 'num',
  },
  Routes: { Routes: 'arr:Route' },
  ARPNeighbor: { toIPAddress: 'msg:IPAddress', device: 'str', lladdr: 'str', state: 'num', flags: 'num' },
  ARPNeighbors: { ARPNeighbors: 'arr:ARPNeighbor' },

  CreateContainerRequest: {
    container_id: 'str',
    exec_id: 'str',
    string_user: 'msg:StringUser',
    devices: 'arr:Device',
    storages: 'arr:Storage',
    OCI: 'msg:Spec',
    sandbox_pidns: 'bool',
    shared_mounts: 'arr:SharedMount',
    stdin_port: 'num',
    stdout_port: 'num',
    stderr_port: 'num',
  },
  ExecProcessRequest: {
    container_id: 'str',
    exec_id: 'str',
    string_user: 'msg:StringUser',
    process: 'msg:Process',
    stdin_port: 'num',
    stdout_port: 'num',
    stderr_port: 'num',
  },
  CreateSandboxRequest: {
    hostname: 'str',
    dns: 'arr',
    storages: 'arr:Storage',
    sandbox_pidns: 'bool',
    sandbox_id: 'str',
    guest_hook_path: 'str',
    kernel_modules: 'arr:KernelModule',
  },
  CopyFileRequest: {
    path: 'str',
    file_type: 'str',
    symlink_target: 'nullable',
    file_size: 'num',
    file_mode: 'num',
    dir_mode: 'num',
    uid: 'num',
    gid: 'num',
    offset: 'num',
  },
  RemoveContainerRequest: { container_id: 'str', timeout: 'num' },
  ReadStreamRequest: { container_id: 'str', exec_id: 'str', len: 'num' },
  WriteStreamRequest: { container_id: 'str', exec_id: 'str', data: 'arr' },
  CloseStdinRequest: { container_id: 'str', exec_id: 'str' },
  SignalProcessRequest: { container_id: 'str', exec_id: 'str', signal: 'num' },
  WaitProcessRequest: { container_id: 'str', exec_id: 'str' },
  StartContainerRequest: { container_id: 'str' },
  UpdateInterfaceRequest: { interface: 'msg:Interface' },
  UpdateRoutesRequest: { routes: 'msg:Routes' },
  AddARPNeighborsRequest: { neighbors: 'msg:ARPNeighbors' },
  SetPolicyRequest: { policy: 'str' },
  GetDiagnosticDataRequest: { log_type: 'str', container_id: 'str' },
};

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Normaliser = (value: unknown) => unknown;

/** A function per schema kind, made once: normalising then costs no lookups of the schema. */
function fieldNormaliser(kind: Kind): Normaliser {
  switch (kind) {
    case 'str':
      return (v) => (typeof v === 'string' ? v : '');
    case 'bool':
      return (v) => (typeof v === 'boolean' ? v : false);
    case 'num':
      return (v) => (typeof v === 'number' ? v : 0);
    case 'arr':
      return (v) => (Array.isArray(v) ? v : []);
    case 'map':
      return (v) => (isObj(v) ? v : {});
    case 'opaque':
    case 'nullable':
      return (v) => (v === undefined ? null : v);
    default: {
      const [how, name] = kind.split(':');
      const message = messageNormaliser(name);
      if (how === 'msg') return (v) => (isObj(v) ? message(v) : null);
      return (v) => (Array.isArray(v) ? v.map(message) : []);
    }
  }
}

const messageNormalisers = new Map<string, (value: unknown) => Record<string, unknown>>();

/** The fields of a message in schema order, each with its default when missing or mistyped. */
function messageNormaliser(name: string): (value: unknown) => Record<string, unknown> {
  const known = messageNormalisers.get(name);
  if (known) return known;
  const names = Object.keys(S[name]);
  const norms = names.map((field) => fieldNormaliser(S[name][field]));
  const normalise = (value: unknown): Record<string, unknown> => {
    const src = isObj(value) ? value : {};
    const out: Record<string, unknown> = {};
    for (let i = 0; i < names.length; i++) out[names[i]] = norms[i](src[names[i]]);
    return out;
  };
  messageNormalisers.set(name, normalise);
  return normalise;
}

const S_IFMT = 0o170000;
const FILE_TYPES: Record<number, string> = { 0o100000: 'Regular', 0o040000: 'Directory', 0o120000: 'Symlink' };

/**
 * The agent evaluates CopyFileRequest in a pre-processed form (file type instead of mode
 * bits, the symlink target instead of the data). Accept the protobuf form as well.
 */
function copyFileForm(value: unknown): unknown {
  if (!isObj(value) || typeof value.file_type === 'string') return value;
  const mode = typeof value.file_mode === 'number' ? value.file_mode : 0;
  const fileType = FILE_TYPES[mode & S_IFMT] ?? 'Unknown';
  let target: string | null = null;
  if (fileType === 'Symlink' && Array.isArray(value.data))
    target = Buffer.from(value.data as number[]).toString('utf8');
  else if (fileType === 'Symlink' && typeof value.data === 'string')
    target = Buffer.from(value.data, 'base64').toString('utf8');
  const rest: Record<string, unknown> = { ...value };
  delete rest.data;
  return { ...rest, file_type: fileType, symlink_target: target };
}

/** Fill defaults and drop unknown fields like the agent; requests without a schema pass as they are. */
export function normaliseRequest(name: string, request: unknown): unknown {
  const schema = S[name];
  if (!schema) return request ?? {};
  return messageNormaliser(name)(name === 'CopyFileRequest' ? copyFileForm(request) : request);
}

/**
 * The agent requests the Kata runtime (containerd-shim-kata-v2) sends for the OCI specs that
 * containerd's CRI plugin produces, in the confidential-containers configuration upstream
 * Contrast uses: no shared filesystem (files are copied in with CopyFileRequest), images pulled
 * in the guest, guest seccomp and SELinux off, VFIO in guest-kernel mode. The simulated runtime
 * evaluates these requests against the pod's policy before it lets runc start a container.
 *
 * Every rewrite follows the Kata source named next to it (docs/policy.md, "What the simulated
 * runtime sends"). Host facts (files, groups, filesystems) come from a HostView.
 */
import { randomBytes } from 'node:crypto';
import { UserError } from '../util/errors.js';
import { fsHost, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type HostEntry, type HostView } from './agent-host.js';
import type { OciMount, OciSpec } from './agent-spec.js';

export { parseOciSpec, type OciSpec } from './agent-spec.js';
export type { HostView } from './agent-host.js';

export type AgentRequestName =
  'CreateSandboxRequest' | 'CopyFileRequest' | 'CreateContainerRequest' | 'StartContainerRequest';

export interface AgentRequest {
  name: AgentRequestName;
  body: Record<string, unknown>;
}

/** Which container of which pod: what the runtime knows besides the spec. Plain JSON. */
export interface ContainerTarget {
  /** The pod's sandbox id (io.kubernetes.cri.sandbox-id); for the pause container, its own id. */
  sandboxId: string;
  /** The id runc is given. */
  containerId: string;
  /**
   * The bundle directory, which Kata records as io.katacontainers.pkg.oci.bundle_path
   * (oci.ContainerConfig). Default: where containerd with its default state directory puts it,
   * `/run/containerd/io.containerd.runtime.v2.task/k8s.io/<container id>`.
   */
  bundlePath?: string;
  /** Bytes of the sandbox's /dev/shm (sandboxInfo); default 64 MiB, what containerd gives every sandbox. */
  shmSize?: number;
  /** 8 random bytes in hex for a shared file's name (fs_share_linux.go ShareFile); crypto by default. */
  random16?: () => string;
}

/** The sandbox facts its containers' requests use, from the sandbox's spec. */
export interface SandboxInfo {
  sandboxId: string;
  shmSize: number;
}

export const CONTAINER_TYPE = 'io.kubernetes.cri.container-type';
export const SANDBOX_ID = 'io.kubernetes.cri.sandbox-id';
const IMAGE_NAME = 'io.kubernetes.cri.image-name';
const BUNDLE_PATH = 'io.katacontainers.pkg.oci.bundle_path';
const KATA_CONTAINER_TYPE = 'io.katacontainers.pkg.oci.container_type';

// kata_agent.go: guest directories.
const GUEST_SHARED = '/run/kata-containers/shared/containers';
const GUEST_SANDBOX = '/run/kata-containers/sandbox';
const GUEST_SHM = `${GUEST_SANDBOX}/shm`;
const GUEST_EPHEMERAL = `${GUEST_SANDBOX}/ephemeral`;
/** vc.DefaultShmSize: 64 MiB. */
const DEFAULT_SHM = 65536 * 1024;
/** kata_agent.go maxHostnameLen. */
const MAX_HOSTNAME = 64;
/** kata_agent.go grpcMaxDataSize: CopyFile sends files in parts of this size. */
const COPY_CHUNK = 1024 * 1024;
/** uint32(os.FileMode(0750) | os.ModeDir): Go's directory bit is 1<<31, not S_IFDIR. */
const DIR_MODE = (0x80000000 + 0o750) >>> 0;
/** virtcontainers K8sEmptyDir: the kubelet directory of emptyDir volumes. */
const K8S_EMPTY_DIR = 'kubernetes.io~empty-dir';
/** What containerd's CRI plugin gives sandboxes and containers as ids. */
export const CONTAINER_ID = /^[0-9a-f]{64}$/;
/** containerd's default state directory for the k8s.io namespace's task bundles. */
const DEFAULT_BUNDLES = '/run/containerd/io.containerd.runtime.v2.task/k8s.io';

export type ContainerKind = 'sandbox' | 'container';

function fail(field: string, what: string): never {
  throw new UserError(what, { file: 'config.json', field });
}

/** Which of the pod's specs this is, from the CRI annotation (oci.ContainerType). */
export function containerKind(spec: OciSpec): ContainerKind {
  const t = spec.annotations?.[CONTAINER_TYPE];
  if (t === 'sandbox' || t === 'container') return t;
  return fail(`annotations.${CONTAINER_TYPE}`, `must be "sandbox" or "container", found ${JSON.stringify(t)}`);
}

/** The pod's sandbox id from a spec of the pod (the CRI annotation), checked. */
export function sandboxIdOf(spec: OciSpec): string {
  const id = spec.annotations?.[SANDBOX_ID];
  if (typeof id !== 'string' || !CONTAINER_ID.test(id))
    fail(`annotations.${SANDBOX_ID}`, 'must be the 64-hex-digit id containerd gives a sandbox');
  return id;
}

const base = (p: string): string => {
  const parts = p.split('/').filter(Boolean);
  return parts.length ? parts[parts.length - 1] : '/';
};

/** filepath.Clean for absolute paths, enough for the prefix tests below. */
function clean(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

/** oci.getShmSize: a bind of /dev/shm from elsewhere has the size of its filesystem, else 64 MiB. */
function shmSize(spec: OciSpec, host: HostView): number {
  const m = (spec.mounts ?? []).find((x) => x.destination === '/dev/shm');
  if (!m) return 0;
  if (m.type === 'bind' && m.source && m.source !== '/dev/shm') return host.filesystemSize(m.source);
  return DEFAULT_SHM;
}

/** The sandbox facts every container of the pod needs, from the sandbox's spec. */
export function sandboxInfo(spec: OciSpec, host: HostView = fsHost()): SandboxInfo {
  if (containerKind(spec) !== 'sandbox') fail(`annotations.${CONTAINER_TYPE}`, 'is not the sandbox spec');
  return { sandboxId: sandboxIdOf(spec), shmSize: shmSize(spec, host) };
}

/**
 * CreateSandboxRequest (kata_agent.go startSandbox): the spec's hostname cut to 64 characters,
 * the lines of the resolv.conf the sandbox spec mounts (getDNS), the shm storage
 * (setupStorages), no PID namespace sharing (oci.SandboxConfig sets none), no hooks or modules.
 */
export function sandboxRequest(spec: OciSpec, host: HostView = fsHost()): AgentRequest {
  const info = sandboxInfo(spec, host);
  const resolv = (spec.mounts ?? []).find((m) => m.destination === '/etc/resolv.conf');
  const dns = resolv?.source ? host.readText(resolv.source).split('\n') : [];
  const storages =
    info.shmSize > 0
      ? [
          storage({
            driver: 'ephemeral',
            source: 'shm',
            fstype: 'tmpfs',
            options: ['noexec', 'nosuid', 'nodev', 'mode=1777', `size=${info.shmSize}`],
            mount_point: GUEST_SHM,
          }),
        ]
      : [];
  return {
    name: 'CreateSandboxRequest',
    body: {
      hostname: (spec.hostname ?? '').slice(0, MAX_HOSTNAME),
      dns,
      storages,
      sandbox_pidns: false,
      sandbox_id: info.sandboxId,
      guest_hook_path: '',
      kernel_modules: [],
    },
  };
}

function storage(s: Partial<Record<string, unknown>>): Record<string, unknown> {
  return {
    driver: '',
    driver_options: [],
    source: '',
    fstype: '',
    options: [],
    mount_point: '',
    fs_group: null,
    shared: false,
    ...s,
  };
}

/** Go's json.Marshal: keys of a map sorted, and <, >, & and the JS line separators escaped. */
function goJson(value: Record<string, string>): string {
  const sorted = Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify(sorted).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

interface Mount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

function ociMount(m: OciMount): Mount {
  return { destination: m.destination, type: m.type ?? '', source: m.source ?? '', options: [...(m.options ?? [])] };
}

/** vc isEmptyDir: the volume directory kubelet makes for an emptyDir. */
function isEmptyDir(source: string): boolean {
  const parts = source.split('/');
  return parts.length > 1 && parts[parts.length - 2] === K8S_EMPTY_DIR;
}

/** CopyFileRequests for one shared file or directory (kata_agent.go copyFile), in WalkDir order. */
function copyRequests(entries: HostEntry[], guestPath: string): AgentRequest[] {
  const out: AgentRequest[] = [];
  for (const e of entries) {
    const type = e.mode & S_IFMT;
    const req = {
      path: guestPath + e.rel,
      dir_mode: DIR_MODE,
      file_mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      file_size: type === S_IFREG ? e.size : 0,
      offset: 0,
    };
    if (type === S_IFLNK) {
      out.push({ name: 'CopyFileRequest', body: { ...req, data: [...Buffer.from(e.target ?? '')] } });
    } else if (type === S_IFREG && e.size > 0) {
      // The file goes in parts; the policy sees each part's metadata, the data is not part of the decision.
      for (let offset = 0; offset < e.size; offset += COPY_CHUNK)
        out.push({ name: 'CopyFileRequest', body: { ...req, offset } });
    } else {
      out.push({ name: 'CopyFileRequest', body: req });
    }
  }
  return out;
}

const copyable = (mode: number): boolean => [S_IFREG, S_IFDIR, S_IFLNK].includes(mode & S_IFMT);

/** The Spec of the agent protocol (oci.proto) for an OCI spec, after kata_agent.go constrainGRPCSpec. */
function grpcSpec(spec: OciSpec, mounts: Mount[], annotations: Record<string, string>, rootPath: string) {
  const p = spec.process;
  const linux = spec.linux;
  const r = (linux.resources ?? {}) as Record<string, unknown>;
  const obj = (v: unknown): Record<string, unknown> | null =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
  const mem = obj(r.memory);
  const cpu = obj(r.cpu);
  // Hugepage limits are kept as the runtime converts them; device, pids, block I/O and network
  // limits are dropped (constrainGRPCSpec), so are the CPU and memory node sets.
  const resources = {
    Devices: [],
    Memory: mem && {
      Limit: num(mem.limit),
      Reservation: num(mem.reservation),
      Swap: num(mem.swap),
      Kernel: num(mem.kernel),
      KernelTCP: num(mem.kernelTCP),
      Swappiness: num(mem.swappiness),
      DisableOOMKiller: mem.disableOOMKiller === true,
    },
    CPU: cpu && {
      Shares: num(cpu.shares),
      Quota: num(cpu.quota),
      Period: num(cpu.period),
      RealtimeRuntime: num(cpu.realtimeRuntime),
      RealtimePeriod: num(cpu.realtimePeriod),
      Cpus: '',
      Mems: '',
    },
    Pids: null,
    BlockIO: null,
    HugepageLimits: (Array.isArray(r.hugepageLimits) ? r.hugepageLimits : []).map((h) => ({
      Pagesize: String(obj(h)?.pageSize ?? ''),
      Limit: num(obj(h)?.limit),
    })),
    Network: null,
  };
  // Network and cgroup namespaces are the host's business; the others get no path (constrainGRPCSpec).
  const namespaces = (linux.namespaces ?? [])
    .filter((n) => n.type !== 'network' && n.type !== 'cgroup')
    .map((n) => ({ Type: n.type, Path: '' }));
  // VFIO character devices are handled by the guest kernel (vfio_mode guest-kernel: stripVfio).
  const devices = (linux.devices ?? [])
    .filter((d) => !(d.type === 'c' && d.path.startsWith('/dev/vfio/')))
    .map((d) => ({
      Path: d.path,
      Type: d.type,
      Major: d.major ?? 0,
      Minor: d.minor ?? 0,
      FileMode: d.fileMode ?? 0,
      UID: d.uid ?? 0,
      GID: d.gid ?? 0,
    }));
  const caps = p.capabilities;
  return {
    Version: spec.ociVersion,
    Process: {
      Terminal: p.terminal === true,
      ConsoleSize: p.consoleSize ? { Height: p.consoleSize.height, Width: p.consoleSize.width } : null,
      User: {
        UID: p.user.uid,
        GID: p.user.gid,
        AdditionalGids: [...(p.user.additionalGids ?? [])],
        Username: p.user.username ?? '',
      },
      Args: [...(p.args ?? [])],
      Env: [...(p.env ?? [])],
      Cwd: p.cwd,
      Capabilities: caps
        ? {
            Bounding: [...(caps.bounding ?? [])],
            Effective: [...(caps.effective ?? [])],
            Inheritable: [...(caps.inheritable ?? [])],
            Permitted: [...(caps.permitted ?? [])],
            Ambient: [...(caps.ambient ?? [])],
          }
        : null,
      Rlimits: (p.rlimits ?? []).map((l) => ({ Type: l.type, Hard: l.hard, Soft: l.soft })),
      NoNewPrivileges: p.noNewPrivileges === true,
      ApparmorProfile: p.apparmorProfile ?? '',
      OOMScoreAdj: p.oomScoreAdj ?? 0,
      // disable_guest_selinux (the default): the label is dropped, so is the mount label.
      SelinuxLabel: '',
    },
    Root: { Path: rootPath, Readonly: spec.root.readonly === true },
    Hostname: spec.hostname ?? '',
    Mounts: mounts.map((m) => ({ destination: m.destination, source: m.source, type_: m.type, options: m.options })),
    Hooks: null,
    Annotations: annotations,
    Linux: {
      UIDMappings: [...(linux.uidMappings ?? [])],
      GIDMappings: [...(linux.gidMappings ?? [])],
      Sysctl: { ...(linux.sysctl ?? {}) },
      Resources: resources,
      CgroupsPath: linux.cgroupsPath ?? '',
      Namespaces: namespaces,
      Devices: devices,
      // disable_guest_seccomp (the default in the confidential configurations).
      Seccomp: null,
      RootfsPropagation: linux.rootfsPropagation ?? '',
      MaskedPaths: [...(linux.maskedPaths ?? [])],
      ReadonlyPaths: [...(linux.readonlyPaths ?? [])],
      MountLabel: p.selinuxLabel ? '' : (linux.mountLabel ?? ''),
      IntelRdt: linux.intelRdt ?? null,
    },
    Solaris: null,
    Windows: null,
  };
}

/**
 * The requests the runtime sends to create and start one container of the pod (the pause
 * container for the sandbox spec), in order: a CopyFileRequest for every file it copies in,
 * CreateContainerRequest, StartContainerRequest (kata_agent.go createContainer, startContainer;
 * container.go mountSharedDirMounts; fs_share_linux.go ShareFile).
 */
export function containerRequests(spec: OciSpec, target: ContainerTarget, host: HostView = fsHost()): AgentRequest[] {
  const kind = containerKind(spec);
  const cid = target.containerId;
  const sid = target.sandboxId;
  if (!CONTAINER_ID.test(cid)) throw new UserError(`container id ${JSON.stringify(cid)} is not 64 hex digits`);
  if (sandboxIdOf(spec) !== sid)
    fail(`annotations.${SANDBOX_ID}`, `names sandbox ${sandboxIdOf(spec)}, not this pod's sandbox ${sid}`);
  if (kind === 'sandbox' && cid !== sid)
    throw new UserError(`the sandbox container must have the sandbox id ${sid}, not ${cid}`);
  const shm = target.shmSize ?? DEFAULT_SHM;
  const bundlePath = target.bundlePath ?? `${DEFAULT_BUNDLES}/${cid}`;
  const random16 = target.random16 ?? (() => randomBytes(8).toString('hex'));

  // oci.ContainerConfig: the runtime's own annotations go into the spec's annotation map.
  const annotations: Record<string, string> = Object.fromEntries([
    ...Object.entries(spec.annotations ?? {}),
    [BUNDLE_PATH, bundlePath],
    [KATA_CONTAINER_TYPE, kind === 'sandbox' ? 'pod_sandbox' : 'pod_container'],
  ]);

  // katautils.SetEphemeralStorageType: emptyDirs become guest tmpfs (medium Memory) or guest directories.
  const mounts = (spec.mounts ?? []).map(ociMount);
  for (const m of mounts) if (isEmptyDir(m.source)) m.type = host.volume(m.source).tmpfs ? 'ephemeral' : 'local';

  // Root filesystem pulled in the guest (handleVirtualVolumeStorageObject, handleImageGuestPullBlockVolume).
  const rootPath = `/run/kata-containers/${cid}/rootfs`;
  const image = kind === 'sandbox' ? 'pause' : annotations[IMAGE_NAME];
  if (!image) fail(`annotations.${IMAGE_NAME}`, 'is missing: the runtime pulls the image named there');
  const storages: Record<string, unknown>[] = [
    storage({
      driver: 'image_guest_pull',
      driver_options: [`image_guest_pull={"metadata":${goJson(annotations)}}`],
      source: image,
      fstype: 'overlay',
      mount_point: rootPath,
    }),
  ];

  // container.go mountSharedDirMounts + fs_share_linux.go ShareFile without filesystem sharing.
  const copies: AgentRequest[] = [];
  const guestSources = new Map<string, string>();
  const ignoredSources = new Set<string>();
  for (const m of mounts) {
    const src = clean(m.source);
    if (src === '/proc' || src.startsWith('/proc/') || src === '/sys' || src.startsWith('/sys/')) continue;
    if (m.type !== 'bind' || m.destination === '/dev/shm') continue;
    const dest = clean(m.destination);
    if (dest === '/dev' || (dest.startsWith('/dev/') && host.isDeviceOrDir(dest))) continue;
    let entries: HostEntry[];
    try {
      entries = host.walk(m.source);
    } catch (err) {
      // Kata's WalkDir fails the container the same way; the wrapper must not start it.
      throw new UserError(`cannot copy ${m.source} into the guest: ${(err as Error).message}`, {
        file: 'config.json',
        field: `mounts[${m.destination}]`,
      });
    }
    if (entries.length === 0 || !copyable(entries[0].mode)) {
      ignoredSources.add(m.source);
      continue;
    }
    const guestPath = `${GUEST_SHARED}/${cid}-${random16()}-${base(m.destination)}`;
    copies.push(
      ...copyRequests(
        entries.filter((e) => copyable(e.mode)),
        guestPath,
      ),
    );
    guestSources.set(m.destination, guestPath);
  }

  // kata_agent.go handleShm: the container's /dev/shm is the sandbox's.
  for (const m of mounts) {
    if (m.destination !== '/dev/shm' || m.type === 'ephemeral') continue;
    if (shm > 0) Object.assign(m, { type: 'bind', options: ['rbind'], source: GUEST_SHM });
    else
      Object.assign(m, {
        type: 'tmpfs',
        source: 'shm',
        options: ['noexec', 'nosuid', 'nodev', 'mode=1777', `size=${DEFAULT_SHM}`],
      });
  }
  // handleEphemeralStorage: a tmpfs in the guest, with the group kubelet gave the volume.
  for (const m of mounts) {
    if (m.type !== 'ephemeral') continue;
    const { gid } = host.volume(m.source);
    m.source = `${GUEST_EPHEMERAL}/${base(m.source)}`;
    m.type = 'bind';
    storages.push(
      storage({
        driver: 'ephemeral',
        source: 'tmpfs',
        fstype: 'tmpfs',
        options: gid !== 0 ? [`fsgid=${gid}`] : [],
        mount_point: m.source,
      }),
    );
  }
  // handleLocalStorage: a directory in the guest below the sandbox's shared root.
  for (const m of mounts) {
    if (m.type !== 'local') continue;
    const { gid } = host.volume(m.source);
    m.source = `${GUEST_SHARED}/${sid}/rootfs/local/${base(m.source)}`;
    storages.push(
      storage({
        driver: 'local',
        source: 'local',
        fstype: 'local',
        options: ['mode=0777', ...(gid !== 0 ? [`fsgid=${gid}`] : [])],
        mount_point: m.source,
      }),
    );
  }
  // replaceOCIMountSource, removeIgnoredOCIMount.
  for (const m of mounts) {
    const g = guestSources.get(m.destination);
    if (g !== undefined) m.source = g;
  }
  const kept = mounts.filter((m) => !ignoredSources.has(m.source));

  const oci = grpcSpec(spec, kept, annotations, rootPath);
  // handlePidNamespace: the PID namespace is dropped; a path means the sandbox's is shared.
  const pid = oci.Linux.Namespaces.findIndex((n) => n.Type === 'pid');
  const sharedPid = pid >= 0 && (spec.linux.namespaces ?? []).some((n) => n.type === 'pid' && !!n.path);
  if (pid >= 0) oci.Linux.Namespaces.splice(pid, 1);

  return [
    ...copies,
    {
      name: 'CreateContainerRequest',
      body: {
        container_id: cid,
        exec_id: cid,
        string_user: null,
        devices: [],
        storages,
        OCI: oci,
        sandbox_pidns: sharedPid,
        shared_mounts: [],
        stdin_port: 0,
        stdout_port: 0,
        stderr_port: 0,
      },
    },
    { name: 'StartContainerRequest', body: { container_id: cid } },
  ];
}

/**
 * Platform settings for policy generation: one editable JSON file (`settings.json` in the
 * workspace). Everything that depends on the node's runtime (paths the Kata runtime uses,
 * default capabilities, which optional agent requests are allowed) lives here, so adapting to
 * a platform means editing data, not code.
 *
 * SETTINGS is the one table of the fields: default, check and meaning of each. The defaults,
 * the validation of a file from disk and the field table of docs/policy.md all come from it
 * (a test compares the documentation with the table).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import { sampleRegex } from './regex-sample.js';
import type { Mount, Storage } from './types.js';

export const SETTINGS_FILE = 'settings.json';
/** 2: guest-pull paths, shared-file prefixes, emptyDir backings, cgroup extras, VFIO devices. */
export const SETTINGS_VERSION = 2;

export interface ContainerTemplate {
  /**
   * Mounts the runtime adds to every container of this kind. Sources are templates like
   * annotation values; `$(sfpath)` stands for any of `sharedFilesPaths`.
   */
  mounts: Mount[];
  /**
   * Annotations. A value is a template (text with `$(bundle-id)`, `$(sandbox-id)`,
   * `$(sandbox-name)`, `$(sandbox-namespace)` and at most one of `$(uuid)`, `$(random16)`,
   * `$(dns)`, `$(ip)`, `$(ips)`, `$(digits)`, `$(any)`) or, when it starts with `^`, a regex.
   */
  annotations: Record<string, string>;
  sysctls: Record<string, string>;
  maskedPaths: string[];
  readonlyPaths: string[];
}

export type EmptyDirType = 'local' | 'block-encrypted' | 'block-plain';
export const EMPTY_DIR_TYPES: readonly EmptyDirType[] = ['local', 'block-encrypted', 'block-plain'];

export interface VfioSettings {
  /** Container path prefix of VFIO devices; the runtime appends the device number. */
  devicePath: string;
  /** Device type the runtime sends for a GPU (`vfio-pci-gk` when the guest kernel owns it). */
  deviceType: string;
  /** `resources.limits` keys whose sum is the number of GPUs of a container. */
  resourceKeys: string[];
  /** Annotation key prefix of CDI devices; the device number follows it. */
  cdiAnnotationPrefix: string;
  /** Anchored regex of CDI annotation values (the device the guest's CDI spec resolves). */
  cdiValueRegex: string;
  /** Anchored regex of each option of a VFIO device (host PCI address = guest PCI path). */
  pciOptionRegex: string;
}

export interface PolicySettings {
  version: number;
  /** OCI runtime-spec version the runtime puts into every container spec. */
  ociVersion: string;
  /** Root filesystem of a guest-pulled container (`$(bundle-id)` is the container id). */
  rootfsPath: string;
  /** Directories the runtime shares files of a container in; mount sources may use any (first one in samples). */
  sharedFilesPaths: string[];
  /** Where sandbox-wide storages (shm, ephemeral) live inside the guest. */
  sandboxPath: string;
  /** Where block storages are mounted inside the guest (`<path>/<base64url of the device>`). */
  blockStoragePath: string;
  /** The source of the guest-pull storage of the pause container (the runtime sends "pause"). */
  pauseImageSource: string;
  /** Backing of disk emptyDir volumes. */
  emptyDirType: EmptyDirType;
  /** cgroup mount options a host may add beyond the runtime's defaults. */
  cgroupMountExtrasAllowed: string[];
  /** hostPath volumes break the isolation of a confidential pod; off unless enabled here. */
  hostPath: { allowed: boolean; forbiddenPrefixes: string[] };
  defaultCaps: string[];
  privilegedCaps: string[];
  pauseContainer: ContainerTemplate;
  otherContainer: ContainerTemplate;
  /** Storages expected in CreateSandboxRequest. */
  sandboxStorages: Storage[];
  /** GPUs passed through with VFIO. */
  vfio: VfioSettings;
  requestDefaults: {
    /**
     * Extra environment variables the runtime may add, as anchored regexes over `NAME=value`
     * (`$(svc_name)`, `$(ip_p)`, `$(ipv4_a)`, `$(dns_label)` are expanded). Kubernetes
     * service-link variables are recognised by the rules without a regex.
     */
    allowEnvRegex: string[];
    /** Regexes (over the whole path) of files the runtime may copy into the guest; `$(sfpath)` is any shared-files path. */
    copyFileRegex: string[];
    /** Regexes of the paths where the runtime may create symlinks (only below the top-level entry). */
    copyFileSymlinkRegex: string[];
    /** Commands (exact argv) anyone may exec in any container, e.g. for debugging. Empty is the secure default. */
    execAllowedCommands: string[][];
    /** Regexes over the space-joined argv of allowed exec commands. */
    execRegex: string[];
    /** Reading container stdout/stderr (needed by `kubectl logs`). */
    readStream: boolean;
    writeStream: boolean;
    closeStdin: boolean;
    updateEphemeralMounts: boolean;
    getDiagnosticData: boolean;
    updateInterface: { allowRawFlags: number; forbiddenNames: string[]; forbiddenHwAddrs: string[] };
    updateRoutes: { forbiddenDeviceNames: string[]; forbiddenSourceRegex: string[] };
    addArpNeighbors: { forbiddenDeviceNames: string[]; forbiddenCidrsRegex: string[]; allowedStates: number[] };
  };
  /** Regex building blocks used by allowEnvRegex. */
  patterns: { ipv4: string; port: string; serviceName: string; dnsLabel: string };
}

const DEFAULT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/**
 * Every capability of Linux 6.x, the set a privileged container gets, in the order of their
 * numbers (include/uapi/linux/capability.h): `ALL_CAPS[n]` is capability n.
 */
export const ALL_CAPS: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

const MASKED = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/sys/firmware',
  '/proc/scsi',
];
const READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
const SYSCTLS = { 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' };
/** A file the runtime shares with one container: `<shared dir>/<container id>-<16 random>-<name>`. */
const SHARED = '$(sfpath)/$(bundle-id)-$(random16)-';

type Check = (value: unknown, field: string, fail: (field: string, what: string) => never) => void;

interface SettingField<K extends keyof PolicySettings> {
  key: K;
  /** What the field means, as docs/policy.md shows it. */
  doc: string;
  value: () => PolicySettings[K];
  check?: Check;
}

const kindOf = (x: unknown) => (Array.isArray(x) ? 'array' : x === null ? 'null' : typeof x);
const stringList: Check = (v, field, fail) => {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(field, 'expected a list of strings');
};
const nonEmptyStringList: Check = (v, field, fail) => {
  stringList(v, field, fail);
  if ((v as unknown[]).length === 0) fail(field, 'must name at least one directory');
};
const absolutePath: Check = (v, field, fail) => {
  if (typeof v !== 'string' || !v.startsWith('/')) fail(field, 'expected an absolute path');
};

/**
 * A container template's annotations and mount sources are strings; the ones that are regexes
 * (starting with `^`) must be readable by the self-check's sampler (src/policy/regex-sample.ts):
 * a settings.json with `^[a-z` made `generate` loop for ever.
 */
const containerTemplate: Check = (v, field, fail) => {
  const t = v as Partial<Record<keyof ContainerTemplate, unknown>>;
  const pattern = (value: unknown, at: string): void => {
    if (typeof value !== 'string') return fail(at, 'expected a string');
    if (!value.startsWith('^')) return;
    try {
      sampleRegex(value);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      fail(at, err.message);
    }
  };
  if (typeof t.annotations !== 'object' || t.annotations === null || Array.isArray(t.annotations))
    return fail(`${field}.annotations`, 'expected an object');
  for (const [k, a] of Object.entries(t.annotations)) pattern(a, `${field}.annotations[${JSON.stringify(k)}]`);
  if (!Array.isArray(t.mounts)) return fail(`${field}.mounts`, 'expected a list of mounts');
  t.mounts.forEach((m: unknown, i) => {
    if (typeof m !== 'object' || m === null) return fail(`${field}.mounts[${i}]`, 'expected a mount object');
    pattern((m as { source?: unknown }).source, `${field}.mounts[${i}].source`);
  });
};

function field<K extends keyof PolicySettings>(f: SettingField<K>): SettingField<K> {
  return f;
}

/** The settings, field by field. Order is the order of settings.json and of the docs table. */
export const SETTINGS = [
  field({
    key: 'version',
    doc: 'format version (2); a file of another version is rejected',
    value: () => SETTINGS_VERSION,
  }),
  field({ key: 'ociVersion', doc: 'OCI spec version the runtime puts in container specs', value: () => '1.1.0' }),
  field({
    key: 'rootfsPath',
    doc: 'root filesystem of a container whose image the guest pulls (`$(bundle-id)` is the container id)',
    value: () => '/run/kata-containers/$(bundle-id)/rootfs',
    check: (v, f, fail) => {
      absolutePath(v, f, fail);
      if (!String(v).includes('$(bundle-id)')) fail(f, 'must contain $(bundle-id)');
    },
  }),
  field({
    key: 'sharedFilesPaths',
    doc: 'guest directories the runtime shares container files in (hosts, resolv.conf, ConfigMaps, emptyDir directories); `$(sfpath)` in templates is any of them',
    value: () => ['/run/kata-containers/shared/containers', '/run/kata-containers/shared/containers/passthrough'],
    check: (v, f, fail) => {
      nonEmptyStringList(v, f, fail);
      (v as string[]).forEach((p, i) => absolutePath(p, `${f}[${i}]`, fail));
    },
  }),
  field({
    key: 'sandboxPath',
    doc: 'guest directory of sandbox storages (shm, memory emptyDirs)',
    value: () => '/run/kata-containers/sandbox',
    check: absolutePath,
  }),
  field({
    key: 'blockStoragePath',
    doc: 'guest directory where block storages are mounted (`<dir>/<base64url of the device address>`)',
    value: () => '/run/kata-containers/sandbox/storage',
    check: absolutePath,
  }),
  field({
    key: 'pauseImageSource',
    doc: 'guest-pull source the runtime sends for the pause container (the guest image ships it)',
    value: () => 'pause',
  }),
  field({
    key: 'emptyDirType',
    doc: 'backing of disk `emptyDir` volumes: `local` (a guest directory), `block-encrypted` or `block-plain` (a block device per volume)',
    value: () => 'local' as EmptyDirType,
    check: (v, f, fail) => {
      if (!EMPTY_DIR_TYPES.includes(v as EmptyDirType)) fail(f, `must be one of ${EMPTY_DIR_TYPES.join(', ')}`);
    },
  }),
  field({
    key: 'cgroupMountExtrasAllowed',
    doc: 'options a host may add to the `/sys/fs/cgroup` mount (systemd hosts: `nsdelegate`, `memory_recursiveprot`)',
    value: () => ['nsdelegate', 'memory_recursiveprot'],
    check: stringList,
  }),
  field({
    key: 'hostPath',
    doc: '`allowed`: whether `hostPath` volumes may be used; `forbiddenPrefixes`: where never',
    value: () => ({ allowed: false, forbiddenPrefixes: ['/dev/', '/sys/', '/proc/', '/run/kata-containers/'] }),
  }),
  field({
    key: 'defaultCaps',
    doc: 'capability set of ordinary containers',
    value: () => [...DEFAULT_CAPS],
    check: stringList,
  }),
  field({
    key: 'privilegedCaps',
    doc: 'capability set of privileged containers',
    value: () => [...ALL_CAPS],
    check: stringList,
  }),
  field({
    key: 'pauseContainer',
    doc: 'mounts, annotations, sysctls, masked and read-only paths the runtime gives the pause container (values are templates)',
    check: containerTemplate,
    value: () => ({
      mounts: [
        { destination: '/dev/shm', source: '/run/kata-containers/sandbox/shm', type_: 'bind', options: ['rbind'] },
        {
          destination: '/etc/resolv.conf',
          source: `${SHARED}resolv.conf`,
          type_: 'bind',
          options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'],
        },
      ],
      annotations: {
        'io.kubernetes.cri.container-type': 'sandbox',
        'io.katacontainers.pkg.oci.container_type': 'pod_sandbox',
        'io.kubernetes.cri.sandbox-id': '$(bundle-id)',
        'io.kubernetes.cri.sandbox-log-directory': '/var/log/pods/$(sandbox-namespace)_$(sandbox-name)_$(uuid)',
        'io.katacontainers.pkg.oci.bundle_path': '/run/containerd/io.containerd.runtime.v2.task/k8s.io/$(bundle-id)',
        'nerdctl/network-namespace': '/var/run/netns/cni-$(uuid)',
      },
      sysctls: { ...SYSCTLS },
      maskedPaths: [...MASKED],
      readonlyPaths: [...READONLY],
    }),
  }),
  field({
    key: 'otherContainer',
    doc: 'the same for every other container',
    check: containerTemplate,
    value: () => ({
      mounts: [
        { destination: '/etc/hosts', source: `${SHARED}hosts`, type_: 'bind', options: ['rbind', 'rprivate', 'rw'] },
        {
          destination: '/dev/termination-log',
          source: `${SHARED}termination-log`,
          type_: 'bind',
          options: ['rbind', 'rprivate', 'rw'],
        },
        {
          destination: '/etc/hostname',
          source: `${SHARED}hostname`,
          type_: 'bind',
          options: ['rbind', 'rprivate', 'rw'],
        },
        {
          destination: '/etc/resolv.conf',
          source: `${SHARED}resolv.conf`,
          type_: 'bind',
          options: ['rbind', 'rprivate', 'rw'],
        },
        { destination: '/dev/shm', source: '/run/kata-containers/sandbox/shm', type_: 'bind', options: ['rbind'] },
        {
          destination: '/var/run/secrets/kubernetes.io/serviceaccount',
          source: `${SHARED}serviceaccount`,
          type_: 'bind',
          options: ['rbind', 'rprivate', 'ro'],
        },
      ],
      annotations: {
        'io.kubernetes.cri.container-type': 'container',
        'io.katacontainers.pkg.oci.container_type': 'pod_container',
        'io.kubernetes.cri.sandbox-id': '$(sandbox-id)',
        'io.katacontainers.pkg.oci.bundle_path': '/run/containerd/io.containerd.runtime.v2.task/k8s.io/$(bundle-id)',
      },
      sysctls: { ...SYSCTLS },
      maskedPaths: [...MASKED],
      readonlyPaths: [...READONLY],
    }),
  }),
  field({
    key: 'sandboxStorages',
    doc: 'storages expected in `CreateSandboxRequest`',
    value: () => [
      {
        driver: 'ephemeral',
        driver_options: [],
        source: 'shm',
        fstype: 'tmpfs',
        options: ['noexec', 'nosuid', 'nodev', 'mode=1777', 'size=67108864'],
        mount_point: '/run/kata-containers/sandbox/shm',
        fs_group: null,
        shared: false,
      },
    ],
  }),
  field({
    key: 'vfio',
    doc: 'GPUs passed through with VFIO: `devicePath` (prefix, the number follows), `deviceType`, `resourceKeys` (`resources.limits` keys counted as GPUs), `cdiAnnotationPrefix`, `cdiValueRegex`, `pciOptionRegex`',
    value: () => ({
      devicePath: '/dev/vfio/devices/vfio',
      deviceType: 'vfio-pci-gk',
      resourceKeys: ['nvidia.com/pgpu'],
      cdiAnnotationPrefix: 'cdi.k8s.io/vfio',
      cdiValueRegex: '^nvidia\\.com/(gpu|pgpu)=[0-9]+$',
      pciOptionRegex: '^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[01][0-9a-fA-F]\\.[0-7]=[0-9a-fA-F]{2}/[0-9a-fA-F]{2}$',
    }),
  }),
  field({
    key: 'requestDefaults',
    doc: 'per-request switches and limits (below)',
    value: () => ({
      allowEnvRegex: [],
      copyFileRegex: ['^$(sfpath)/[a-f0-9]{64}-[a-z0-9]{16}-[^/]+(/.*)?$'],
      copyFileSymlinkRegex: ['^$(sfpath)/[a-f0-9]{64}-[a-z0-9]{16}-[^/]+/.+$'],
      execAllowedCommands: [],
      execRegex: [],
      readStream: true,
      writeStream: false,
      closeStdin: false,
      updateEphemeralMounts: false,
      getDiagnosticData: false,
      updateInterface: { allowRawFlags: 128, forbiddenNames: ['lo'], forbiddenHwAddrs: ['00:00:00:00:00:00'] },
      updateRoutes: {
        forbiddenDeviceNames: ['lo'],
        forbiddenSourceRegex: ['^(?:0{0,4}:){0,7}0{0,3}1$', '^127\\.(?:[0-9]{1,3}\\.){2}[0-9]{1,3}$'],
      },
      addArpNeighbors: {
        forbiddenDeviceNames: ['lo'],
        forbiddenCidrsRegex: ['^127\\.(?:[0-9]{1,3}\\.){2}[0-9]{1,3}$', '^(?:0{0,4}:){0,7}0{0,3}1$'],
        // NUD_REACHABLE and NUD_PERMANENT: the states the runtime copies from the host's neighbours.
        allowedStates: [2, 128],
      },
    }),
  }),
  field({
    key: 'patterns',
    doc: 'regex building blocks for `allowEnvRegex` (`$(svc_name)`, `$(ip_p)`, `$(ipv4_a)`, `$(dns_label)`)',
    value: () => ({
      ipv4: '((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])',
      port: '[0-9]{1,5}',
      serviceName: '[A-Z][A-Z0-9_]*',
      dnsLabel: '[a-zA-Z0-9_.-]+',
    }),
  }),
] as const;

/** The fields of `requestDefaults`, for the docs table. */
export const REQUEST_DEFAULT_DOCS: Record<keyof PolicySettings['requestDefaults'], string> = {
  allowEnvRegex: 'extra `NAME=value` regexes the runtime may add',
  copyFileRegex: 'where `CopyFileRequest` may write (`$(sfpath)`: any shared-files path)',
  copyFileSymlinkRegex: 'where `CopyFileRequest` may create symlinks (below a top-level entry only)',
  execAllowedCommands: "commands that may be exec'd in every container (empty: only probes and hooks)",
  execRegex: 'regexes of such commands',
  readStream: 'allow `ReadStreamRequest` (`kubectl logs`)',
  writeStream: 'allow `WriteStreamRequest`',
  closeStdin: 'allow `CloseStdinRequest`',
  updateEphemeralMounts: 'allow `UpdateEphemeralMountsRequest`',
  getDiagnosticData: 'allow `GetDiagnosticDataRequest`',
  updateInterface: 'interface limits: allowed raw flags, forbidden names and MAC addresses',
  updateRoutes: 'route limits: forbidden devices and source regexes',
  addArpNeighbors:
    'ARP limits: forbidden devices and address regexes, allowed neighbour states (2 REACHABLE, 128 PERMANENT)',
};

export function defaultSettings(): PolicySettings {
  const out: Record<string, unknown> = {};
  for (const f of SETTINGS) out[f.key] = f.value();
  return out as unknown as PolicySettings;
}

/** Check a settings object read from disk; throws UserError naming the first bad field. */
export function validateSettings(value: unknown, file = SETTINGS_FILE): PolicySettings {
  const fail = (field: string, what: string): never => {
    throw new UserError(`${what}; fix or delete the file to get the defaults back`, { file, field });
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail('(top level)', 'settings must be a JSON object');
  const s = value as Record<string, unknown>;
  if (s.version !== SETTINGS_VERSION) {
    fail(
      'version',
      `settings version must be ${SETTINGS_VERSION} (this file is version ${JSON.stringify(s.version)}, from another release)`,
    );
  }
  const known = new Set<string>(SETTINGS.map((f) => f.key));
  for (const key of Object.keys(s)) if (!known.has(key)) fail(key, 'unknown setting');
  for (const f of SETTINGS) {
    if (!(f.key in s)) fail(f.key, 'missing setting');
    const def = f.value();
    if (kindOf(s[f.key]) !== kindOf(def)) fail(f.key, `expected ${kindOf(def)}, found ${kindOf(s[f.key])}`);
    (f as SettingField<keyof PolicySettings>).check?.(s[f.key], f.key, fail);
  }
  return s as unknown as PolicySettings;
}

/** Read `<workspace>/settings.json`, creating it with the defaults on first run. */
export function loadOrCreateSettings(workspaceDir: string): PolicySettings {
  const path = join(workspaceDir, SETTINGS_FILE);
  if (!existsSync(path)) {
    mkdirSync(workspaceDir, { recursive: true });
    const settings = defaultSettings();
    try {
      writeFileAtomic(path, `${JSON.stringify(settings, null, 2)}\n`, { exclusive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Someone else created it first: read theirs.
      return loadOrCreateSettings(workspaceDir);
    }
    return settings;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UserError(`not valid JSON (${(err as Error).message})`, { file: path });
  }
  return validateSettings(parsed, path);
}

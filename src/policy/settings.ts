/**
 * Platform settings for policy generation: one editable JSON file (`settings.json` in the
 * workspace). Everything that depends on the node's runtime (paths the Kata runtime uses,
 * default capabilities, which optional agent requests are allowed) lives here, so adapting to
 * a platform means editing data, not code.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UserError } from '../util/errors.js';
import type { Mount, Storage } from './types.js';

export const SETTINGS_FILE = 'settings.json';
export const SETTINGS_VERSION = 1;

export interface ContainerTemplate {
  /** Mounts the runtime adds to every container of this kind (sources are templates like annotation values). */
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

export interface PolicySettings {
  version: number;
  /** OCI runtime-spec version the runtime puts into every container spec. */
  ociVersion: string;
  /** Where the Kata runtime places container bundles inside the guest. */
  containerPath: string;
  /** Where sandbox-wide storages (shm, ephemeral) live inside the guest. */
  sandboxPath: string;
  /** The source of the guest-pull storage of the pause container (the guest image ships it). */
  pauseImageSource: string;
  /** emptyDir volumes: `local` (guest-local directory) is the only backing supported so far. */
  emptyDirType: 'local';
  /** hostPath volumes break the isolation of a confidential pod; off unless enabled here. */
  hostPath: { allowed: boolean; forbiddenPrefixes: string[] };
  defaultCaps: string[];
  privilegedCaps: string[];
  pauseContainer: ContainerTemplate;
  otherContainer: ContainerTemplate;
  /** Storages expected in CreateSandboxRequest. */
  sandboxStorages: Storage[];
  requestDefaults: {
    /**
     * Extra environment variables the runtime may add, as anchored regexes over `NAME=value`
     * (`$(svc_name)`, `$(ip_p)`, `$(ipv4_a)`, `$(dns_label)` are expanded). Kubernetes
     * service-link variables are recognised by the rules without a regex.
     */
    allowEnvRegex: string[];
    /** Regexes (over the whole path) of files the runtime may copy into the guest. */
    copyFileRegex: string[];
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
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Every capability of Linux 6.x, the set a privileged container gets. */
const ALL_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

const MASKED = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
];
const READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
const SYSCTLS = { 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' };
const SHARED = '$(cpath)/$(bundle-id)-$(random16)-';

export function defaultSettings(): PolicySettings {
  return {
    version: SETTINGS_VERSION,
    ociVersion: '1.1.0',
    containerPath: '/run/kata-containers/shared/containers',
    sandboxPath: '/run/kata-containers/sandbox',
    pauseImageSource: 'pause',
    emptyDirType: 'local',
    hostPath: { allowed: false, forbiddenPrefixes: ['/dev/', '/sys/', '/proc/', '/run/kata-containers/'] },
    defaultCaps: [...DEFAULT_CAPS],
    privilegedCaps: [...ALL_CAPS],
    pauseContainer: {
      mounts: [
        { destination: '/dev/shm', source: '/run/kata-containers/sandbox/shm', type_: 'bind', options: ['rbind'] },
        { destination: '/etc/resolv.conf', source: `${SHARED}resolv.conf`, type_: 'bind', options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
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
    },
    otherContainer: {
      mounts: [
        { destination: '/etc/hosts', source: `${SHARED}hosts`, type_: 'bind', options: ['rbind', 'rprivate', 'rw'] },
        { destination: '/dev/termination-log', source: `${SHARED}termination-log`, type_: 'bind', options: ['rbind', 'rprivate', 'rw'] },
        { destination: '/etc/hostname', source: `${SHARED}hostname`, type_: 'bind', options: ['rbind', 'rprivate', 'rw'] },
        { destination: '/etc/resolv.conf', source: `${SHARED}resolv.conf`, type_: 'bind', options: ['rbind', 'rprivate', 'rw'] },
        { destination: '/dev/shm', source: '/run/kata-containers/sandbox/shm', type_: 'bind', options: ['rbind'] },
        { destination: '/var/run/secrets/kubernetes.io/serviceaccount', source: `${SHARED}serviceaccount`, type_: 'bind', options: ['rbind', 'rprivate', 'ro'] },
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
    },
    sandboxStorages: [
      {
        driver: 'ephemeral', driver_options: [], source: 'shm', fstype: 'tmpfs',
        options: ['noexec', 'nosuid', 'nodev', 'mode=1777', 'size=67108864'],
        mount_point: '/run/kata-containers/sandbox/shm', fs_group: null, shared: false,
      },
    ],
    requestDefaults: {
      allowEnvRegex: [],
      copyFileRegex: ['^$(cpath)/[a-f0-9]{64}-[a-z0-9]{16}-[^/]+(/.*)?$'],
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
        allowedStates: [128],
      },
    },
    patterns: {
      ipv4: '((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])',
      port: '[0-9]{1,5}',
      serviceName: '[A-Z][A-Z0-9_]*',
      dnsLabel: '[a-zA-Z0-9_.-]+',
    },
  };
}

/** Check a settings object read from disk; throws UserError naming the first bad field. */
export function validateSettings(value: unknown, file = SETTINGS_FILE): PolicySettings {
  const fail = (field: string, what: string): never => {
    throw new UserError(`${what}; fix or delete the file to get the defaults back`, { file, field });
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('(top level)', 'settings must be a JSON object');
  const s = value as Record<string, unknown>;
  if (s.version !== SETTINGS_VERSION) fail('version', `settings version must be ${SETTINGS_VERSION}`);
  const defaults = defaultSettings() as unknown as Record<string, unknown>;
  for (const [key, def] of Object.entries(defaults)) {
    if (!(key in s)) fail(key, 'missing setting');
    const got = s[key];
    const kind = (x: unknown) => (Array.isArray(x) ? 'array' : x === null ? 'null' : typeof x);
    if (kind(got) !== kind(def)) fail(key, `expected ${kind(def)}, found ${kind(got)}`);
  }
  if (s.emptyDirType !== 'local') fail('emptyDirType', 'only "local" is supported');
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

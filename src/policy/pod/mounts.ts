/**
 * Mounts and storages of a container, as the Kata runtime hands them to the agent:
 * containerd's default mounts, the runtime's own files (hosts, resolv.conf, …), the pod's
 * volumes and the image's VOLUMEs.
 *
 * Volume shapes (docs/policy.md, "Volumes", names the Kata sources):
 * * files the runtime shares with one container: `$(sfpath)/<id>-<16 random>-<mount name>`;
 * * disk emptyDir, `local`: `$(sfpath)/<sandbox id>/rootfs/local/<volume>` with a `local` storage;
 * * disk emptyDir, block: a bind of `<blockStoragePath>/<base64url of the device>` with a block storage;
 * * memory emptyDir: `<sandboxPath>/ephemeral/<volume>` with an `ephemeral` tmpfs storage.
 */
import { arr, int, obj, str, type ContainerInput, type Obj, type PodContext } from './context.js';
import type { ContainerTemplate, PolicySettings } from '../settings.js';
import type { Mount, Storage } from '../types.js';

/** `$(sfpath)`: any of the settings' shared-files paths. */
export const SHARED_DIR = '$(sfpath)';
/** Policy storage driver and source of a block device, and its mount point. */
export const BLOCK_DRIVER = '$(block)';
export const BLOCK_DEVICE = '$(block-device)';
export const BLOCK_MOUNT = '$(block-mount)';
/** Mount source: the mount point of a block storage of the same request. */
export const BLOCK_STORAGE_SOURCE = '$(block-storage)';

export interface MountsResult {
  mounts: Mount[];
  storages: Storage[];
  /** Destination → index (into storages) of the block storage a mount binds, for samples. */
  blockMounts: Record<string, number>;
}

export function sharedFile(name: string): string {
  return `${SHARED_DIR}/$(bundle-id)-$(random16)-${name}`;
}

/** The mounts containerd puts into every OCI spec (containerd `WithDefaultMounts`, CRI). */
export function containerdMounts(pod: PodContext, ci: ContainerInput): Mount[] {
  const sysRw = ci.privileged || (ci.pause && pod.privilegedAny) ? 'rw' : 'ro';
  const m: Mount[] = [
    { destination: '/proc', source: 'proc', type_: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      source: 'tmpfs',
      type_: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      source: 'devpts',
      type_: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/mqueue', source: 'mqueue', type_: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', source: 'sysfs', type_: 'sysfs', options: ['nosuid', 'noexec', 'nodev', sysRw] },
  ];
  if (!ci.pause)
    m.push({
      destination: '/sys/fs/cgroup',
      source: 'cgroup',
      type_: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', ci.privileged ? 'rw' : 'ro'],
    });
  return m;
}

/** The runtime's own files (settings), adjusted to the container as kubelet does. */
function templateMounts(
  pod: PodContext,
  ci: ContainerInput,
  template: ContainerTemplate,
  readOnlyRoot: boolean,
): Mount[] {
  const declared = new Set(arr(ci.c.volumeMounts).map((m) => str(obj(m)?.mountPath)));
  const out: Mount[] = [];
  for (const t of template.mounts) {
    const m: Mount = { ...t, options: [...t.options] };
    if (!ci.pause) {
      if (m.destination === '/dev/termination-log') m.destination = str(ci.c.terminationMessagePath) ?? m.destination;
      if (
        m.destination === '/var/run/secrets/kubernetes.io/serviceaccount' &&
        pod.spec.automountServiceAccountToken === false
      )
        continue;
      if ((m.destination === '/etc/hostname' || m.destination === '/etc/resolv.conf') && readOnlyRoot) {
        m.options = m.options.map((o) => (o === 'rw' ? 'ro' : o));
      }
    }
    if (declared.has(m.destination)) continue;
    out.push(m);
  }
  return out;
}

function pushUnique(list: Storage[], s: Storage): number {
  const key = JSON.stringify(s);
  const at = list.findIndex((x) => JSON.stringify(x) === key);
  if (at >= 0) return at;
  list.push(s);
  return list.length - 1;
}

/** A volume of the pod, or a claim template of the workload (a PVC by another name). */
function findVolume(pod: PodContext, name: string): { vol: Obj; field: string } | undefined {
  const volumes = arr(pod.spec.volumes).map((v) => obj(v) ?? {});
  const i = volumes.findIndex((v) => v.name === name);
  if (i >= 0) return { vol: volumes[i], field: `volumes[${i}]` };
  if ((pod.input.claimTemplates ?? []).includes(name))
    return { vol: { name, persistentVolumeClaim: { claimName: name } }, field: 'volumeClaimTemplates' };
  return undefined;
}

function volumeMounts(pod: PodContext, ci: ContainerInput, out: MountsResult): void {
  const s = pod.s;
  const fsGroup = int(pod.podSecurityContext.fsGroup);
  const fsGroupChange = pod.podSecurityContext.fsGroupChangePolicy === 'OnRootMismatch' ? 1 : 0;
  arr(ci.c.volumeMounts).forEach((raw, i) => {
    const vm = obj(raw) ?? {};
    const field = `${ci.path}.volumeMounts[${i}]`;
    const name = str(vm.name) ?? '';
    const dest = str(vm.mountPath) ?? '';
    if (!dest.startsWith('/')) pod.fail('mountPath must be an absolute path', `${field}.mountPath`);
    if (vm.subPath || vm.subPathExpr)
      pod.fail('subPath mounts are not supported in confidential pods; mount the whole volume', `${field}.subPath`);
    const found = findVolume(pod, name);
    if (!found)
      pod.fail(
        `no volume named ${JSON.stringify(name)} in the pod${pod.input.claimTemplates?.length ? ' or its volumeClaimTemplates' : ''}`,
        `${field}.name`,
      );
    const { vol, field: vfield } = found;
    const propagation =
      vm.mountPropagation === 'Bidirectional'
        ? 'rshared'
        : vm.mountPropagation === 'HostToContainer'
          ? 'rslave'
          : 'rprivate';
    const rw = vm.readOnly === true ? 'ro' : 'rw';
    const base = dest.split('/').filter(Boolean).pop() ?? '';
    const shared = sharedFile(base);
    const emptyDir = obj(vol.emptyDir);
    if (emptyDir && emptyDir.medium === 'Memory') {
      // kata_agent.go handleEphemeralStorage: tmpfs in the guest, fsgid when the host dir has a group.
      const path = `${s.sandboxPath}/ephemeral/${name}`;
      out.mounts.push({ destination: dest, source: path, type_: 'bind', options: ['rbind', propagation, rw] });
      pushUnique(out.storages, {
        driver: 'ephemeral',
        driver_options: [],
        source: 'tmpfs',
        fstype: 'tmpfs',
        options: fsGroup !== undefined && fsGroup > 0 ? [`fsgid=${fsGroup}`] : [],
        mount_point: path,
        fs_group: null,
        shared: false,
      });
    } else if (emptyDir && s.emptyDirType === 'local') {
      // kata_agent.go handleLocalStorage: <shared>/<sandbox id>/<rootfs suffix>/local/<volume>.
      const path = `${SHARED_DIR}/$(sandbox-id)/rootfs/local/${name}`;
      out.mounts.push({ destination: dest, source: path, type_: 'local', options: ['rbind', propagation, rw] });
      pushUnique(out.storages, {
        driver: 'local',
        driver_options: [],
        source: 'local',
        fstype: 'local',
        options: ['mode=0777', ...(fsGroup !== undefined && fsGroup > 0 ? [`fsgid=${fsGroup}`] : [])],
        mount_point: path,
        fs_group: null,
        shared: false,
      });
    } else if (emptyDir) {
      // A block device per volume, formatted (and with block-encrypted: encrypted with an ephemeral key) by the agent.
      const encrypted = s.emptyDirType === 'block-encrypted';
      const at = pushUnique(out.storages, {
        driver: BLOCK_DRIVER,
        driver_options: encrypted ? ['encryption_key=ephemeral', 'create_filesystem'] : ['create_filesystem'],
        source: `${BLOCK_DEVICE}:${name}`,
        fstype: 'ext4',
        options: encrypted ? [] : ['discard'],
        mount_point: BLOCK_MOUNT,
        fs_group:
          fsGroup !== undefined && fsGroup > 0 ? { group_id: fsGroup, group_change_policy: fsGroupChange } : null,
        shared: true,
      });
      out.mounts.push({
        destination: dest,
        source: BLOCK_STORAGE_SOURCE,
        type_: 'bind',
        options: ['rbind', propagation, rw],
      });
      out.blockMounts[dest] = at;
    } else if (obj(vol.configMap) || obj(vol.secret) || obj(vol.projected) || obj(vol.downwardAPI)) {
      out.mounts.push({ destination: dest, source: shared, type_: 'bind', options: ['rbind', propagation, 'ro'] });
    } else if (obj(vol.persistentVolumeClaim) || obj(vol.ephemeral)) {
      const ro = vm.readOnly === true || obj(vol.persistentVolumeClaim)?.readOnly === true ? 'ro' : 'rw';
      out.mounts.push({ destination: dest, source: shared, type_: 'bind', options: ['rbind', propagation, ro] });
    } else if (obj(vol.hostPath)) {
      const hostPath = str(obj(vol.hostPath)?.path) ?? '';
      if (!s.hostPath.allowed) {
        pod.fail(
          'hostPath volumes give the host control over files inside the confidential pod; set hostPath.allowed in settings.json to permit them',
          `${vfield}.hostPath`,
        );
      }
      const bad = s.hostPath.forbiddenPrefixes.find((p) => hostPath === p.replace(/\/$/, '') || hostPath.startsWith(p));
      if (bad) pod.fail(`hostPath ${hostPath} is under ${bad}, which settings.json forbids`, `${vfield}.hostPath.path`);
      out.mounts.push({ destination: dest, source: shared, type_: 'bind', options: ['rbind', propagation, rw] });
    } else {
      const type = Object.keys(vol).find((k) => k !== 'name') ?? '(none)';
      pod.fail(
        `volume type ${type} is not supported in confidential pods (supported: emptyDir, configMap, secret, projected, downwardAPI, persistentVolumeClaim, ephemeral, hostPath, volumeClaimTemplates)`,
        vfield,
      );
    }
  });
}

/** The image's VOLUMEs the pod does not mount itself: shared directories of the container. */
function imageVolumes(ci: ContainerInput, mounts: Mount[]): void {
  const have = new Set(mounts.map((m) => m.destination));
  for (const v of Object.keys(ci.image.config.Volumes ?? {}).sort()) {
    const dest = v.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
    if (have.has(dest)) continue;
    have.add(dest);
    const base = dest.split('/').filter(Boolean).pop() ?? '';
    mounts.push({ destination: dest, source: sharedFile(base), type_: 'bind', options: ['rbind', 'rprivate', 'rw'] });
  }
}

export function mountsPolicy(
  pod: PodContext,
  ci: ContainerInput,
  template: ContainerTemplate,
  readOnlyRoot: boolean,
): MountsResult {
  const out: MountsResult = { mounts: containerdMounts(pod, ci), storages: [], blockMounts: {} };
  out.mounts.push(...templateMounts(pod, ci, template, readOnlyRoot));
  if (!ci.pause) {
    volumeMounts(pod, ci, out);
    imageVolumes(ci, out.mounts);
  }
  const seen = new Set<string>();
  for (const m of out.mounts) {
    if (seen.has(m.destination)) pod.fail(`two mounts at ${m.destination}`, `${ci.path}.volumeMounts`);
    seen.add(m.destination);
  }
  return out;
}

/** Values of one request: the ids the runtime would use and a filler for templates. */
export interface SampleIds {
  containerId: string;
  /** Turns a policy template into the concrete value of this request. */
  fill: (pattern: string) => string;
}

/**
 * The mounts and storages a runtime sends for the policy's mounts and storages: templates
 * filled in, block storages given device addresses (`01`, `02`, … on virtio-blk) and mounted
 * at their base64url mount points.
 */
export function mountsSample(
  s: PolicySettings,
  mounts: Mount[],
  storages: Storage[],
  blockMounts: Record<string, number>,
  ids: SampleIds,
): { mounts: Mount[]; storages: Storage[] } {
  const concrete = storages.map((st, i) => {
    if (st.driver !== BLOCK_DRIVER)
      return { ...st, source: ids.fill(st.source), mount_point: ids.fill(st.mount_point) };
    const source = (i + 1).toString(16).padStart(2, '0');
    return { ...st, driver: 'blk', source, mount_point: `${s.blockStoragePath}/${base64urlPadded(source)}` };
  });
  return {
    mounts: mounts.map((m) => ({
      ...m,
      source: m.source === BLOCK_STORAGE_SOURCE ? concrete[blockMounts[m.destination]].mount_point : ids.fill(m.source),
    })),
    storages: concrete,
  };
}

/** Go's base64.URLEncoding (with padding), which the runtime names block mount points with. */
export function base64urlPadded(text: string): string {
  return Buffer.from(text).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

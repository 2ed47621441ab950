/**
 * Devices of a container: block devices of `volumeDevices` (raw block PersistentVolumeClaims,
 * generic ephemeral volumes, iSCSI, claim templates) and GPUs passed through with VFIO.
 */
import type { PolicySettings } from '../settings.js';
import type { ContainerPolicy } from '../types.js';
import { arr, obj, str, type ContainerInput, type Obj, type PodContext } from './context.js';

export interface DevicesPolicy {
  devices: { container_path: string }[];
  linuxDevices: { Type: string; Path: string }[];
  gpus: number;
}

function deviceVolumeOk(pod: PodContext, name: string): boolean {
  if ((pod.input.claimTemplates ?? []).includes(name)) return true;
  const vol = arr(pod.spec.volumes)
    .map((v) => obj(v) ?? {})
    .find((v) => v.name === name);
  return (
    vol !== undefined &&
    (obj(vol.persistentVolumeClaim) !== undefined || obj(vol.ephemeral) !== undefined || obj(vol.iscsi) !== undefined)
  );
}

/** The number of GPUs: the sum of the container's limits of the settings' GPU resources. */
function gpuCount(pod: PodContext, ci: ContainerInput): number {
  const limits = obj(obj(ci.c.resources)?.limits) ?? {};
  let n = 0;
  for (const key of pod.s.vfio.resourceKeys) {
    const raw = limits[key];
    if (raw === undefined) continue;
    const v = typeof raw === 'number' ? raw : Number(String(raw));
    if (!Number.isInteger(v) || v < 0)
      pod.fail(`${key} must be a whole number of devices`, `${ci.path}.resources.limits["${key}"]`);
    n += v;
  }
  return n;
}

export function devicesPolicy(pod: PodContext, ci: ContainerInput): DevicesPolicy {
  if (ci.pause) return { devices: [], linuxDevices: [], gpus: 0 };
  const paths: string[] = [];
  arr(ci.c.volumeDevices).forEach((raw, i) => {
    const d = obj(raw) ?? {};
    const field = `${ci.path}.volumeDevices[${i}]`;
    const path = str(d.devicePath) ?? '';
    const name = str(d.name) ?? '';
    if (!path.startsWith('/dev/')) pod.fail('devicePath must be a path below /dev/', `${field}.devicePath`);
    if (path.startsWith(pod.s.vfio.devicePath))
      pod.fail(`${pod.s.vfio.devicePath}* is reserved for VFIO devices`, `${field}.devicePath`);
    if (!deviceVolumeOk(pod, name))
      pod.fail(
        `no block volume named ${JSON.stringify(name)} (a persistentVolumeClaim, ephemeral or iscsi volume, or a volumeClaimTemplate)`,
        `${field}.name`,
      );
    paths.push(path);
  });
  return {
    devices: paths.map((container_path) => ({ container_path })),
    linuxDevices: paths.map((Path) => ({ Type: '', Path })),
    gpus: gpuCount(pod, ci),
  };
}

/** Devices as a runtime sends them: block devices by container path; GPUs hot-plugged with CDI annotations. */
export function devicesSample(
  s: PolicySettings,
  policy: ContainerPolicy,
): { devices: Obj[]; linuxDevices: Obj[]; annotations: Record<string, string> } {
  const devices: Obj[] = policy.devices.map((d, i) => ({
    id: `${(i + 10).toString(16)}/00`,
    type_: 'blk',
    vm_path: `/dev/vd${String.fromCharCode(98 + i)}`,
    container_path: d.container_path,
    options: [],
  }));
  const annotations: Record<string, string> = {};
  for (let n = 0; n < policy.gpus; n++) {
    devices.push({
      id: `vfio${n}`,
      type_: s.vfio.deviceType,
      vm_path: '',
      container_path: `${s.vfio.devicePath}${n}`,
      options: [`0000:4${n}:00.0=0${n + 2}/00`],
    });
    annotations[`${s.vfio.cdiAnnotationPrefix}${n}`] = `nvidia.com/pgpu=${n}`;
  }
  const linuxDevices = policy.OCI.Linux.Devices.map((d) => ({
    Path: d.Path,
    Type: 'b',
    Major: 8,
    Minor: 0,
    FileMode: 0o660,
    UID: 0,
    GID: 0,
  }));
  return { devices, linuxDevices, annotations };
}

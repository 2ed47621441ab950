/**
 * Persistent storage of confidential pods, with the semantics of upstream Contrast's annotations
 * (edgelesssys/contrast internal/kuberesource/mutators.go):
 *
 * * `contrast.edgeless.systems/secure-pv: "<device>:<mount>"`: the Initializer opens the block
 *   device of volume (or claim template) `<device>` as a LUKS volume keyed by the workload
 *   secret and mounts it on the emptyDir `<mount>` (created, memory-backed, when missing), which
 *   the workload containers mount themselves. The Initializer then needs the device at
 *   /dev/csi0, the mount at /state with Bidirectional propagation, privileges, and keeps running
 *   (restartPolicy Always) with a startup probe on /done.
 * * `contrast.edgeless.systems/image-store-size: "<size>"` with `--inject-image-store`: a
 *   generic ephemeral block volume `image-store` of that size (default 10Gi, "0" disables)
 *   attached by a `contrast-image-store` holder container, so the guest pulls images onto a disk
 *   instead of into memory.
 */
import { UserError } from '../util/errors.js';
import { ANNOTATIONS } from './annotations.js';
import { INITIALIZER_NAME } from './initializer.js';
import { listField, upsertByName, upsertFirst, type Obj } from './pod.js';

export const CRYPTSETUP_DEVICE = '/dev/csi0';
const CRYPTSETUP_MOUNT = '/state';
const IMAGE_STORE_VOLUME = 'image-store';
const IMAGE_STORE_HOLDER = 'contrast-image-store';
const IMAGE_STORE_DEVICE = '/dev/image_store';
const DEFAULT_IMAGE_STORE_SIZE = '10Gi';

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Configure the Initializer for the secure-pv annotation (when present). */
export function applySecurePv(
  spec: Obj,
  annotations: Record<string, string>,
  claimTemplates: readonly string[],
  metaField: string,
  specField: string,
): void {
  const value = annotations[ANNOTATIONS.securePv];
  if (value === undefined) return;
  const field = `${metaField}.annotations["${ANNOTATIONS.securePv}"]`;
  const parts = value.split(':');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw new UserError(`must be "<device volume>:<mount volume>", found "${value}"`, { field });
  }
  const [device, mount] = parts as [string, string];
  const volumes = listField(spec, 'volumes', `${specField}.volumes`);
  const deviceVolume = volumes.find((v) => v.name === device);
  if (deviceVolume) {
    if (!isObj(deviceVolume.persistentVolumeClaim) && !isObj(deviceVolume.iscsi)) {
      throw new UserError(
        `volume "${device}" must reference a persistentVolumeClaim or an iSCSI device to hold the encrypted volume`,
        { field: `${specField}.volumes[${volumes.indexOf(deviceVolume)}]` },
      );
    }
  } else if (!claimTemplates.includes(device)) {
    throw new UserError(`device "${device}" is neither a volume of the pod nor a volumeClaimTemplate`, { field });
  }
  const mountIndex = volumes.findIndex((v) => v.name === mount);
  if (mountIndex >= 0) {
    const other = Object.keys(volumes[mountIndex]!).filter((k) => k !== 'name');
    if (!isObj(volumes[mountIndex]!.emptyDir) || other.length !== 1) {
      throw new UserError(`volume "${mount}" receives the decrypted device and must be an emptyDir`, {
        field: `${specField}.volumes[${mountIndex}]`,
      });
    }
  } else {
    spec.volumes = [...volumes, { name: mount, emptyDir: { medium: 'Memory' } }];
  }
  const inits = listField(spec, 'initContainers', `${specField}.initContainers`);
  const initializer = inits.find((c) => c.name === INITIALIZER_NAME);
  if (!initializer)
    throw new UserError('secure-pv needs the Initializer', { field }, { hint: 'remove skip-initializer' });
  const env = listField(initializer, 'env', `${specField}.initContainers[0].env`);
  initializer.env = upsertByName(env, { name: 'CRYPTSETUP_DEVICE', value: CRYPTSETUP_DEVICE });
  initializer.volumeDevices = upsertByName(
    listField(initializer, 'volumeDevices', `${specField}.initContainers[0].volumeDevices`),
    { name: device, devicePath: CRYPTSETUP_DEVICE },
  );
  initializer.volumeMounts = upsertByName(
    listField(initializer, 'volumeMounts', `${specField}.initContainers[0].volumeMounts`),
    { name: mount, mountPath: CRYPTSETUP_MOUNT, mountPropagation: 'Bidirectional' },
  );
  initializer.securityContext = { privileged: true };
  initializer.resources = { requests: { memory: '100Mi' }, limits: { memory: '100Mi' } };
  initializer.startupProbe = {
    exec: { command: ['/bin/test', '-f', '/done'] },
    failureThreshold: 20,
    periodSeconds: 5,
  };
  initializer.restartPolicy = 'Always';
}

/** The image store size of a workload, or undefined when it gets none. */
export function imageStoreSize(
  annotations: Record<string, string>,
  inject: boolean,
  metaField: string,
): string | undefined {
  const value = annotations[ANNOTATIONS.imageStoreSize];
  if (value !== undefined && !/^(0|[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?)$/.test(value)) {
    throw new UserError(`must be a Kubernetes quantity such as 10Gi, or "0" for no image store; found "${value}"`, {
      field: `${metaField}.annotations["${ANNOTATIONS.imageStoreSize}"]`,
    });
  }
  if (!inject || value === '0') return undefined;
  return value ?? DEFAULT_IMAGE_STORE_SIZE;
}

/** Add the image store volume and its holder container (idempotent). */
export function addImageStore(spec: Obj, size: string, holderImage: string, specField: string): void {
  const holder: Obj = {
    name: IMAGE_STORE_HOLDER,
    image: holderImage,
    command: ['/bin/sh', '-c', 'sleep inf'],
    restartPolicy: 'Always',
    securityContext: { privileged: true },
    resources: { requests: { memory: '50Mi' }, limits: { memory: '50Mi' } },
    volumeDevices: [{ name: IMAGE_STORE_VOLUME, devicePath: IMAGE_STORE_DEVICE }],
  };
  // First, before the Initializer: upstream starts the holder before everything else.
  spec.initContainers = upsertFirst(listField(spec, 'initContainers', `${specField}.initContainers`), holder);
  const volume = {
    name: IMAGE_STORE_VOLUME,
    ephemeral: {
      volumeClaimTemplate: {
        spec: { volumeMode: 'Block', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } } },
      },
    },
  };
  spec.volumes = upsertByName(listField(spec, 'volumes', `${specField}.volumes`), volume);
}

/**
 * The Initializer: the first init container of every confidential pod. It attests the pod to
 * the Coordinator and writes the mesh certificates and workload secret into the shared,
 * memory-backed `contrast-secrets` volume that every container mounts at /contrast.
 */
import { UserError } from '../util/errors.js';
import { listField, upsertByName, upsertFirst, type Obj } from './pod.js';

export const INITIALIZER_NAME = 'contrast-initializer';
const SECRETS_VOLUME = 'contrast-secrets';
const SECRETS_MOUNT_PATH = '/contrast';

export interface InitializerOptions {
  image: string;
  coordinatorHost: string;
  /** True when no service mesh sidecar removes the VM's default-deny firewall rule. */
  serviceMeshDisabled: boolean;
}

function initializerContainer(opts: InitializerOptions): Obj {
  const env: Obj[] = [{ name: 'COORDINATOR_HOST', value: opts.coordinatorHost }];
  if (opts.serviceMeshDisabled) env.push({ name: 'CONTRAST_SERVICE_MESH_DISABLED', value: 'true' });
  return {
    name: INITIALIZER_NAME,
    image: opts.image,
    env,
    // Upstream's Go Initializer gets 50Mi; ours runs on Node, which was OOM-killed at 50Mi on the
    // local node (docs/generate.md has the measured peak).
    resources: { requests: { memory: '128Mi' }, limits: { memory: '128Mi' } },
    securityContext: { capabilities: { add: ['NET_ADMIN'] } },
    volumeMounts: [secretsMount()],
  };
}

export function secretsMount(): Obj {
  return { name: SECRETS_VOLUME, mountPath: SECRETS_MOUNT_PATH };
}

/** Ensure the `contrast-secrets` volume exists as a memory-backed emptyDir. */
function ensureSecretsVolume(spec: Obj, fieldPrefix: string): void {
  const volumes = listField(spec, 'volumes', `${fieldPrefix}.volumes`);
  const index = volumes.findIndex((v) => v.name === SECRETS_VOLUME);
  if (index >= 0) {
    const existing = volumes[index]!;
    const other = Object.keys(existing).filter((k) => k !== 'name' && k !== 'emptyDir');
    if (other.length > 0 || !('emptyDir' in existing)) {
      throw new UserError(
        `volume "${SECRETS_VOLUME}" is reserved for Contrast and must be an emptyDir (found ${other.join(', ') || 'no source'})`,
        { field: `${fieldPrefix}.volumes[${index}]` },
      );
    }
  }
  spec.volumes = upsertByName(volumes, { name: SECRETS_VOLUME, emptyDir: { medium: 'Memory' } });
}

/** Mount /contrast into every container and init container (replacing an older mount). */
export function mountSecretsEverywhere(spec: Obj, fieldPrefix: string): void {
  for (const key of ['initContainers', 'containers'] as const) {
    if (spec[key] === undefined) continue;
    const containers = listField(spec, key, `${fieldPrefix}.${key}`);
    containers.forEach((c, i) => {
      const field = `${fieldPrefix}.${key}[${i}].volumeMounts`;
      const mounts = listField(c, 'volumeMounts', field);
      const clash = mounts.findIndex((m) => m.mountPath === SECRETS_MOUNT_PATH && m.name !== SECRETS_VOLUME);
      if (clash >= 0) {
        throw new UserError(`${SECRETS_MOUNT_PATH} is reserved for the Contrast secrets volume`, {
          field: `${field}[${clash}].mountPath`,
        });
      }
      c.volumeMounts = upsertByName(mounts, secretsMount());
    });
  }
}

export function addInitializer(spec: Obj, opts: InitializerOptions, fieldPrefix: string): void {
  const inits = listField(spec, 'initContainers', `${fieldPrefix}.initContainers`);
  spec.initContainers = upsertFirst(inits, initializerContainer(opts));
  ensureSecretsVolume(spec, fieldPrefix);
}

/**
 * Rewrites the pod template of one confidential workload: runtime class, Initializer,
 * service-mesh sidecar and image replacements. Pure: works on a plain copy of the template.
 */
import { UserError, type InputLocation } from '../util/errors.js';
import { fieldPath } from '../workloads/kinds.js';
import type { PodTemplate } from '../workloads/resource.js';
import { runtimeHandler, type Platform } from '../platforms/platforms.js';
import { replaceImage, type ImageReplacements } from '../platforms/images.js';
import { ANNOTATIONS, COORDINATOR_ROLE } from './annotations.js';
import { addInitializer, mountSecretsEverywhere, INITIALIZER_NAME } from './initializer.js';
import { applyServiceMesh, meshConfigFrom } from './service-mesh.js';
import { addImageStore, applySecurePv, imageStoreSize } from './storage.js';
import { annotationsOf, listField, type Obj } from './pod.js';

export interface WorkloadTransformOptions {
  platform: Platform;
  skipInitializer: boolean;
  /** No service-mesh sidecar, whatever the annotations say (upstream v1.2 `--skip-service-mesh`). */
  skipServiceMesh?: boolean;
  coordinatorHost: string;
  images: { initializer: string; serviceMesh: string };
  replacements: ImageReplacements;
  /** Give every workload an image store (upstream `--inject-image-store`; annotation image-store-size). */
  injectImageStore?: boolean;
  /** The workload's StatefulSet volumeClaimTemplates (for secure-pv devices). */
  claimTemplates?: readonly string[];
}

export interface TransformedTemplate {
  metadata: Obj;
  spec: Obj;
}

export function isCoordinatorTemplate(metadata: Obj, metadataField = 'metadata'): boolean {
  return annotationsOf(metadata, metadataField)[ANNOTATIONS.podRole] === COORDINATOR_ROLE;
}

export function transformPodTemplate(
  template: PodTemplate,
  opts: WorkloadTransformOptions,
  location: InputLocation,
): TransformedTemplate {
  const metadata = structuredClone(template.metadata);
  const spec = structuredClone(template.spec);
  const prefix = fieldPath(template.path);
  const metaField = prefix ? `${prefix}.metadata` : 'metadata';
  const specField = prefix ? `${prefix}.spec` : 'spec';
  try {
    const annotations = annotationsOf(metadata, metaField);
    const isCoordinator = annotations[ANNOTATIONS.podRole] === COORDINATOR_ROLE;
    spec.runtimeClassName = runtimeHandler(opts.platform);

    const skipValue = annotations[ANNOTATIONS.skipInitializer];
    if (skipValue !== undefined && skipValue !== 'true' && skipValue !== 'false') {
      throw new UserError(`must be "true" or "false", found "${skipValue}"`, {
        field: `${metaField}.annotations["${ANNOTATIONS.skipInitializer}"]`,
      });
    }
    const withInitializer = !isCoordinator && !opts.skipInitializer && skipValue !== 'true';
    const mesh = opts.skipServiceMesh === true ? undefined : meshConfigFrom(annotations, metaField);
    if (mesh && !withInitializer) {
      throw new UserError(
        'the service mesh needs the Initializer for its certificates',
        { field: `${metaField}.annotations` },
        { hint: 'remove skip-initializer or the servicemesh annotations' },
      );
    }
    if (withInitializer) {
      addInitializer(
        spec,
        {
          image: replaceImage(opts.images.initializer, opts.replacements),
          coordinatorHost: opts.coordinatorHost,
          serviceMeshDisabled: mesh === undefined,
        },
        specField,
      );
    } else if (Array.isArray(spec.initContainers)) {
      // The Initializer may be left over from an earlier run with different settings.
      spec.initContainers = (spec.initContainers as Obj[]).filter((c) => c.name !== INITIALIZER_NAME);
    }
    if (withInitializer) applySecurePv(spec, annotations, opts.claimTemplates ?? [], metaField, specField);
    else if (annotations[ANNOTATIONS.securePv] !== undefined) {
      throw new UserError(
        'secure-pv needs the Initializer to open the encrypted volume',
        { field: `${metaField}.annotations["${ANNOTATIONS.securePv}"]` },
        { hint: 'remove skip-initializer' },
      );
    }
    applyServiceMesh(spec, replaceImage(opts.images.serviceMesh, opts.replacements), mesh, specField);
    if (withInitializer) mountSecretsEverywhere(spec, specField);
    const storeSize = imageStoreSize(annotations, opts.injectImageStore === true, metaField);
    if (storeSize !== undefined && !isCoordinator)
      addImageStore(spec, storeSize, replaceImage(opts.images.initializer, opts.replacements), specField);
    replaceWorkloadImages(spec, opts.replacements, specField);
    return { metadata, spec };
  } catch (err) {
    if (err instanceof UserError) throw err.withLocation(location);
    throw err;
  }
}

function replaceWorkloadImages(spec: Obj, replacements: ImageReplacements, specField: string): void {
  for (const key of ['initContainers', 'containers'] as const) {
    if (spec[key] === undefined) continue;
    listField(spec, key, `${specField}.${key}`).forEach((c, i) => {
      if (typeof c.image !== 'string' || c.image === '') {
        throw new UserError('container has no image', { field: `${specField}.${key}[${i}].image` });
      }
      c.image = replaceImage(c.image, replacements);
    });
  }
}

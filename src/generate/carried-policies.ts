/**
 * The policies resources carry: the initdata annotation that `generate` put on each pod
 * template. The one way every reader (`policy`, `set`, `status`) finds them.
 */
import { UserError } from '../util/errors.js';
import { isPlainObject } from '../util/values.js';
import { decodeInitDataAnnotation, INITDATA_ANNOTATION, type DecodedInitData } from '../policy/initdata.js';
import { fieldPath } from '../workloads/kinds.js';
import {
  podTemplateOf,
  workloadRef,
  type PodTemplate,
  type Resource,
  type WorkloadRef,
} from '../workloads/resource.js';

export interface CarriedPolicy {
  resource: Resource;
  template: PodTemplate;
  ref: WorkloadRef;
  /** base64(gzip(initdata TOML)), as the annotation holds it. */
  annotation: string;
}

/** The initdata annotation of a pod template's metadata, if it has one. */
export function carriedAnnotation(templateMetadata: unknown): string | undefined {
  const annotations = isPlainObject(templateMetadata) ? templateMetadata.annotations : undefined;
  const value = isPlainObject(annotations) ? annotations[INITDATA_ANNOTATION] : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** Every workload among `resources` whose pod template carries a policy, in order. */
export function carriedPolicies(resources: readonly Resource[]): CarriedPolicy[] {
  return resources.flatMap((resource) => {
    const template = podTemplateOf(resource);
    const annotation = template && carriedAnnotation(template.metadata);
    return template && annotation !== undefined ? [{ resource, template, ref: workloadRef(resource), annotation }] : [];
  });
}

/** The initdata of a carried policy; a damaged annotation is an error naming the resource. */
export function decodeCarried(p: CarriedPolicy): DecodedInitData {
  try {
    return decodeInitDataAnnotation(p.annotation);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    const field = fieldPath([...p.resource.path, ...p.template.path, 'metadata', 'annotations']);
    throw new UserError(
      `the policy annotation cannot be read: ${err.reason}`,
      { ...p.resource.location, field: `${field}["${INITDATA_ANNOTATION}"]` },
      { cause: err },
    );
  }
}

/** "Deployment shop/web": how the policy commands name a workload. */
export function workloadName(ref: WorkloadRef): string {
  return `${ref.kind} ${ref.namespace}/${ref.name}`;
}

/** The carried policies of the workload `KIND/NAME` (or just `NAME`). */
export function selectWorkload(policies: readonly CarriedPolicy[], selector: string): CarriedPolicy[] {
  const [kind, name] = selector.includes('/') ? (selector.split('/', 2) as [string, string]) : [undefined, selector];
  return policies.filter(
    (p) => p.ref.name === name && (kind === undefined || p.ref.kind.toLowerCase() === kind.toLowerCase()),
  );
}

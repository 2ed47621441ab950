/**
 * A Kubernetes resource found in an input stream, with enough context to name it in errors.
 * Items of a `kind: List` are resources of their own, reached through `path`.
 */
import { UserError, type InputLocation } from '../util/errors.js';
import { isPlainObject } from '../util/values.js';
import { fieldPath, workloadKind } from './kinds.js';

export type KubeObject = Record<string, unknown>;

export interface Resource {
  /** The plain object (a copy that transforms may edit). */
  object: KubeObject;
  /** Path of this object inside its document (empty, or ['items', i] for List items). */
  path: (string | number)[];
  location: InputLocation;
}

export interface WorkloadRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
}

/** Kubernetes caps List nesting far lower; deeper input is hostile. */
const MAX_LIST_DEPTH = 8;

/**
 * The resources of one document: the object itself, or the items of a List (recursively).
 * A mapping without `kind` is rejected: Kubernetes could not apply it either.
 */
export function resourcesOf(
  value: unknown,
  location: InputLocation,
  path: (string | number)[] = [],
  depth = 0,
): Resource[] {
  if (value === null || value === undefined) return [];
  if (!isPlainObject(value)) {
    throw new UserError(`expected a Kubernetes resource (a mapping), found ${describeType(value)}`, {
      ...location,
      field: fieldPath(path) || undefined,
    });
  }
  const kind = value.kind;
  const meta = isPlainObject(value.metadata) ? value.metadata : {};
  const named: InputLocation = {
    ...location,
    kind: typeof kind === 'string' ? kind : undefined,
    name: typeof meta.name === 'string' ? meta.name : undefined,
    namespace: typeof meta.namespace === 'string' ? meta.namespace : undefined,
  };
  if (typeof kind !== 'string' || kind === '') {
    throw new UserError('resource has no kind', { ...named, field: fieldPath([...path, 'kind']) });
  }
  if (kind === 'List' || (kind.endsWith('List') && Array.isArray(value.items))) {
    if (depth >= MAX_LIST_DEPTH) throw new UserError(`List nesting deeper than ${MAX_LIST_DEPTH}`, named);
    const items = value.items;
    if (items === undefined || items === null) return [];
    if (!Array.isArray(items))
      throw new UserError('items of a List must be a sequence', { ...named, field: fieldPath([...path, 'items']) });
    return items.flatMap((item, i) => resourcesOf(item, location, [...path, 'items', i], depth + 1));
  }
  return [{ object: value, path, location: named }];
}

function describeType(v: unknown): string {
  if (Array.isArray(v)) return 'a sequence';
  return `a ${typeof v} (${JSON.stringify(v)?.slice(0, 40)})`;
}

export interface PodTemplate {
  /** Path from the resource to the pod template (metadata + spec). */
  path: readonly string[];
  metadata: KubeObject;
  spec: KubeObject;
}

/** The pod template of a workload, or undefined for other kinds. */
export function podTemplateOf(resource: Resource): PodTemplate | undefined {
  const path = workloadKind(resource.object.kind)?.templatePath;
  if (!path) return undefined;
  let node: unknown = resource.object;
  for (let i = 0; i < path.length; i++) {
    if (!isPlainObject(node)) return undefined;
    node = node[path[i]!];
  }
  if (!isPlainObject(node)) return undefined;
  const spec = node.spec;
  if (!isPlainObject(spec)) return undefined;
  if (node.metadata !== undefined && node.metadata !== null && !isPlainObject(node.metadata)) {
    throw new UserError('metadata must be a mapping', {
      ...resource.location,
      field: fieldPath([...path, 'metadata']),
    });
  }
  return { path, metadata: (node.metadata as KubeObject | undefined) ?? {}, spec };
}

export function workloadRef(resource: Resource): WorkloadRef {
  const meta = (resource.object.metadata ?? {}) as KubeObject;
  return {
    apiVersion: String(resource.object.apiVersion ?? 'v1'),
    kind: String(resource.object.kind),
    name: String(meta.name ?? ''),
    namespace: typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default',
  };
}

/**
 * Names of the workload's PersistentVolumeClaim templates (a StatefulSet's
 * `volumeClaimTemplates`): each becomes a claim per pod that containers mount (volumeMounts) or
 * attach (volumeDevices) by that name.
 */
export function claimTemplateNames(object: KubeObject): string[] {
  const path = workloadKind(object.kind)?.claimTemplatesPath;
  if (!path) return [];
  let templates: unknown = object;
  for (const key of path) templates = isPlainObject(templates) ? templates[key] : undefined;
  if (!Array.isArray(templates)) return [];
  return templates.flatMap((t) =>
    isPlainObject(t) && isPlainObject(t.metadata) && typeof t.metadata.name === 'string' ? [t.metadata.name] : [],
  );
}

/** Small helpers for editing a plain pod spec. */
import { UserError } from '../util/errors.js';
import { isPlainObject } from '../util/values.js';

export type Obj = Record<string, unknown>;

/** The list at `spec[key]`, created when missing. Anything but a list is an error. */
export function listField(spec: Obj, key: string, field: string): Obj[] {
  const value = spec[key];
  if (value === undefined || value === null) {
    const created: Obj[] = [];
    spec[key] = created;
    return created;
  }
  if (!Array.isArray(value)) throw new UserError(`expected a list`, { field });
  value.forEach((item, i) => {
    if (!isPlainObject(item)) throw new UserError('expected a mapping', { field: `${field}[${i}]` });
  });
  return value as Obj[];
}

/**
 * Annotations of a metadata object. Kubernetes only accepts string values, so an unquoted
 * `true` or `8080` is an error here too instead of a surprise at apply time.
 */
export function annotationsOf(metadata: Obj, metadataField = 'metadata'): Record<string, string> {
  const a = metadata.annotations;
  if (a === undefined || a === null) return {};
  if (!isPlainObject(a))
    throw new UserError('annotations must be a mapping', { field: `${metadataField}.annotations` });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a)) {
    if (typeof v !== 'string') {
      throw new UserError(`annotation value must be a string; quote it: "${String(v)}"`, {
        field: `${metadataField}.annotations["${k}"]`,
      });
    }
    out[k] = v;
  }
  return out;
}

export function setAnnotation(metadata: Obj, key: string, value: string): void {
  if (!isPlainObject(metadata.annotations)) metadata.annotations = {};
  (metadata.annotations as Obj)[key] = value;
}

/** Put `item` first in the list, replacing an older copy with the same name. */
export function upsertFirst(list: Obj[], item: Obj): Obj[] {
  return [item, ...list.filter((c) => c.name !== item.name)];
}

/** Replace the item with the same name where it is, or append it. */
export function upsertByName(list: Obj[], item: Obj): Obj[] {
  const i = list.findIndex((c) => c.name === item.name);
  if (i < 0) return [...list, item];
  const copy = [...list];
  copy[i] = item;
  return copy;
}

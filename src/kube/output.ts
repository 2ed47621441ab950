/** Printing objects the way kubectl does: a YAML stream, or JSON (a v1 List for several objects). */
import { stringify } from 'yaml';
import type { KubernetesObject } from '@kubernetes/client-node';
import { UsageError } from '../util/errors.js';
import { isPlainObject } from '../util/values.js';
import { parseValues } from '../resources/stream.js';

export type ObjectFormat = 'yaml' | 'json';

export function formatObjects(objects: readonly KubernetesObject[], format: ObjectFormat = 'yaml'): string {
  if (format === 'json') {
    const value = objects.length === 1 ? objects[0] : { apiVersion: 'v1', kind: 'List', items: objects, metadata: {} };
    return `${JSON.stringify(value, null, 2)}\n`;
  }
  // YAML 1.1 so that strings such as "on" or "0755" are quoted and keep their meaning in Kubernetes.
  return objects.map((o) => `---\n${stringify(o, { version: '1.1', lineWidth: 0 })}`).join('');
}

/** The objects of a YAML stream (empty documents left out), read as Kubernetes reads them. */
export function parseObjects(text: string, name = 'resources'): KubernetesObject[] {
  // Fields are not checked here: the API server judges the objects.
  return parseValues(name, text).filter((v): v is KubernetesObject => isPlainObject(v));
}

export function formatValue(value: unknown, format: ObjectFormat): string {
  return format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : stringify(value, { version: '1.1', lineWidth: 0 });
}

export function objectFormat(output: string | undefined): ObjectFormat {
  if (output === undefined || output === 'yaml') return 'yaml';
  if (output === 'json') return 'json';
  throw new UsageError(`unsupported --output "${output}": use yaml or json`);
}

import type { WorkloadRef } from '../workloads/resource.js';

/** Upstream default: `<group|core>/<version>/<kind>/<namespace>/<name>`. */
export function defaultWorkloadSecretId(ref: WorkloadRef): string {
  const [group, version] = ref.apiVersion.includes('/')
    ? (ref.apiVersion.split('/', 2) as [string, string])
    : ['core', ref.apiVersion];
  return `${group}/${version}/${ref.kind}/${ref.namespace}/${ref.name}`;
}

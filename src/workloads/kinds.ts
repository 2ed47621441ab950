/**
 * The workload kinds Contrast handles: one row per kind, and everything that depends on the
 * kind is read from its row — where `generate` finds the pod template, which names the pods
 * get (for the policy), and what `status` lists. `List` items are visited one by one.
 */

/** The characters Kubernetes uses for generated name suffixes. */
export const GENERATED_SUFFIX = '[bcdfghjklmnpqrstvwxz2456789]+';

export interface WorkloadKind {
  kind: string;
  /** Group/version the kind is served under (what `status` lists). */
  apiVersion: string;
  /** Path from the resource to its pod template (`metadata` + `spec`); [] for a Pod. */
  templatePath: readonly string[];
  /**
   * How its controller names the pods: the workload name followed by `regex` (one example:
   * `sample`). Undefined for a Pod, whose name (or generateName) is its own.
   */
  podSuffix?: { regex: string; sample: string };
  /** Where the kind lists PersistentVolumeClaim templates its pods mount by name. */
  claimTemplatesPath?: readonly string[];
  /** Other workloads create objects of this kind; `status` shows those as their owner. */
  createdByControllers?: boolean;
}

const oneSuffix = { regex: `-${GENERATED_SUFFIX}`, sample: '-b7x4z' };

export const WORKLOAD_KINDS: readonly WorkloadKind[] = [
  { kind: 'Pod', apiVersion: 'v1', templatePath: [], createdByControllers: true },
  {
    kind: 'Deployment',
    apiVersion: 'apps/v1',
    templatePath: ['spec', 'template'],
    podSuffix: { regex: `-${GENERATED_SUFFIX}-${GENERATED_SUFFIX}`, sample: '-5d8f7b9c4-x2k9q' },
  },
  {
    kind: 'StatefulSet',
    apiVersion: 'apps/v1',
    templatePath: ['spec', 'template'],
    podSuffix: { regex: '-[0-9]+', sample: '-0' },
    claimTemplatesPath: ['spec', 'volumeClaimTemplates'],
  },
  { kind: 'DaemonSet', apiVersion: 'apps/v1', templatePath: ['spec', 'template'], podSuffix: oneSuffix },
  {
    kind: 'ReplicaSet',
    apiVersion: 'apps/v1',
    templatePath: ['spec', 'template'],
    podSuffix: oneSuffix,
    createdByControllers: true,
  },
  { kind: 'ReplicationController', apiVersion: 'v1', templatePath: ['spec', 'template'], podSuffix: oneSuffix },
  {
    kind: 'Job',
    apiVersion: 'batch/v1',
    templatePath: ['spec', 'template'],
    podSuffix: { regex: `(-[0-9]+)?-${GENERATED_SUFFIX}`, sample: '-q8m2d' },
    createdByControllers: true,
  },
  {
    kind: 'CronJob',
    apiVersion: 'batch/v1',
    templatePath: ['spec', 'jobTemplate', 'spec', 'template'],
    podSuffix: { regex: `-[0-9]+(-[0-9]+)?-${GENERATED_SUFFIX}`, sample: '-29012345-k4t9w' },
  },
];

const BY_KIND = new Map(WORKLOAD_KINDS.map((k) => [k.kind, k]));

/** The row of a workload kind, or undefined for every other kind. */
export function workloadKind(kind: unknown): WorkloadKind | undefined {
  return typeof kind === 'string' ? BY_KIND.get(kind) : undefined;
}

/** Dotted form of a path for error messages: `spec.template.spec.containers[0].image`. */
export function fieldPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

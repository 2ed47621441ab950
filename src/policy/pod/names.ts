/** Where the pod spec is inside a workload, and the names its pods get. */
import { UserError } from '../../util/errors.js';
import { escapeRegex } from '../values.js';
import type { PodPolicyInput } from './context.js';

/** The characters Kubernetes uses for generated name suffixes. */
const SUFFIX = '[bcdfghjklmnpqrstvwxz2456789]+';

/** Dotted path of the pod spec inside the workload, for error messages. */
export function podSpecPath(kind: string): string {
  if (kind === 'Pod') return 'spec';
  if (kind === 'CronJob') return 'spec.jobTemplate.spec.template.spec';
  return 'spec.template.spec';
}

/** Regex body of the names the pods of this workload get, plus one example. */
export function podNamePattern(input: Pick<PodPolicyInput, 'workload' | 'podMetadata'>): { regex: string; sample: string } {
  const { kind, name } = input.workload;
  const n = escapeRegex(name);
  switch (kind) {
    case 'Pod': {
      const meta = input.podMetadata;
      if (meta.name) return { regex: escapeRegex(meta.name), sample: meta.name };
      if (meta.generateName) return { regex: `${escapeRegex(meta.generateName)}${SUFFIX}`, sample: `${meta.generateName}x7k2q` };
      return { regex: n, sample: name };
    }
    case 'Deployment': return { regex: `${n}-${SUFFIX}-${SUFFIX}`, sample: `${name}-5d8f7b9c4-x2k9q` };
    case 'DaemonSet': case 'ReplicaSet': case 'ReplicationController':
      return { regex: `${n}-${SUFFIX}`, sample: `${name}-b7x4z` };
    case 'StatefulSet': return { regex: `${n}-[0-9]+`, sample: `${name}-0` };
    case 'Job': return { regex: `${n}(-[0-9]+)?-${SUFFIX}`, sample: `${name}-q8m2d` };
    case 'CronJob': return { regex: `${n}-[0-9]+(-[0-9]+)?-${SUFFIX}`, sample: `${name}-29012345-k4t9w` };
    default:
      throw new UserError(`${kind} is not a workload kind that gets a policy`, { field: 'kind' });
  }
}

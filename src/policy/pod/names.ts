/** Where the pod spec is inside a workload, and the names its pods get (src/workloads/kinds.ts). */
import { UserError } from '../../util/errors.js';
import { fieldPath, GENERATED_SUFFIX, workloadKind } from '../../workloads/kinds.js';
import { escapeRegex } from '../values.js';
import type { PodPolicyInput } from './context.js';

/** Dotted path of the pod spec inside the workload, for error messages. */
export function podSpecPath(kind: string): string {
  return fieldPath([...(workloadKind(kind)?.templatePath ?? ['spec', 'template']), 'spec']);
}

/** Regex body of the names the pods of this workload get, plus one example. */
export function podNamePattern(input: Pick<PodPolicyInput, 'workload' | 'podMetadata'>): {
  regex: string;
  sample: string;
} {
  const { kind, name } = input.workload;
  const row = workloadKind(kind);
  if (!row) throw new UserError(`${kind} is not a workload kind that gets a policy`, { field: 'kind' });
  if (row.podSuffix)
    return { regex: `${escapeRegex(name)}${row.podSuffix.regex}`, sample: `${name}${row.podSuffix.sample}` };
  const meta = input.podMetadata;
  if (meta.name) return { regex: escapeRegex(meta.name), sample: meta.name };
  if (meta.generateName)
    return { regex: `${escapeRegex(meta.generateName)}${GENERATED_SUFFIX}`, sample: `${meta.generateName}x7k2q` };
  return { regex: escapeRegex(name), sample: name };
}

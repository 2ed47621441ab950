/**
 * Policy data per pod: for the pause container and every (init) container, what the Kata
 * runtime will send in CreateContainerRequest, derived from the pod spec, the image configs
 * and the platform settings. The concerns live in src/policy/pod/ (process, env, security,
 * mounts and storages, devices, sandbox); this module puts them together.
 */
import type { PolicyData } from './types.js';
import { throwAll } from '../util/errors.js';
import { arr, obj, PodContext, str, type PodPolicyInput } from './pod/context.js';
import { containerPolicy, type ContainerSample } from './pod/container.js';
import { podWidePolicy } from './pod/sandbox.js';

export type { PodPolicyInput } from './pod/context.js';
export { podNamePattern, podSpecPath } from './pod/names.js';

/** Concrete values a real runtime would send, used by `policy check` to synthesize requests. */
export interface PodSamples {
  podName: string;
  namespace: string;
  containers: ContainerSample[];
}

export type BuiltPod = { data: PolicyData; samples: PodSamples };

export function buildPod(input: PodPolicyInput): BuiltPod {
  const pod: PodContext = new PodContext(input);
  const spec = pod.spec;
  if (spec.hostPID === true || spec.hostIPC === true) {
    pod.fail('hostPID and hostIPC cannot be used in a confidential pod', spec.hostPID === true ? 'hostPID' : 'hostIPC');
  }
  const results = [containerPolicy(pod, {}, '', true)];
  const names = new Set<string>();
  for (const list of ['initContainers', 'containers'] as const) {
    arr(spec[list]).forEach((raw, i) => {
      const c = obj(raw);
      const cpath = `${list}[${i}]`;
      if (!c) pod.fail('container must be an object', cpath);
      const name = str(c.name);
      if (!name) pod.fail('container has no name', `${cpath}.name`);
      if (names.has(name)) pod.fail(`two containers named ${name}`, `${cpath}.name`);
      names.add(name);
      results.push(containerPolicy(pod, c, cpath, false));
    });
  }
  if (names.size === 0) pod.fail('pod has no containers', 'containers');
  throwAll(pod.problems);
  const data: PolicyData = { containers: results.map((r) => r.policy), ...podWidePolicy(pod) };
  return {
    data,
    samples: {
      podName: pod.dyn.podNameSample,
      namespace: pod.ns ?? 'default',
      containers: results.map((r) => r.sample),
    },
  };
}

export function buildPolicyData(input: PodPolicyInput): PolicyData {
  return buildPod(input).data;
}

/**
 * Computes the agent policy text of one confidential pod.
 * Placeholder rule set until the policy engine is wired in; the initdata encoding, hashing and
 * manifest wiring around it are the real ones.
 */
import type { WorkloadRef } from '../workloads/resource.js';

export interface PolicyStepInput {
  workload: WorkloadRef;
  podMetadata: Record<string, unknown>;
  podSpec: Record<string, unknown>;
}

const PLACEHOLDER_RULES = `package agent_policy

default CreateContainerRequest := false
default CreateSandboxRequest := false
default ExecProcessRequest := false
`;

export function policyTextFor(input: PolicyStepInput): string {
  const data = { workload: input.workload, containers: containerImages(input.podSpec) };
  return `${PLACEHOLDER_RULES}\npolicy_data := ${JSON.stringify(data, null, 2)}`;
}

function containerImages(spec: Record<string, unknown>): string[] {
  const all = [...(spec.initContainers as { image?: string }[] ?? []), ...(spec.containers as { image?: string }[] ?? [])];
  return all.map((c) => String(c.image));
}

/**
 * Computes the agent policy of each confidential pod with the policy engine, and checks that
 * the policy admits the pod it was made for before anything is written.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, type InputLocation } from '../util/errors.js';
import { buildPod, checkPolicy, defaultSettings, loadOrCreateSettings, policyTextFor as renderPolicyText, type BuiltPod, type PodPolicyInput, type PolicySettings } from '../policy/index.js';
import type { ResolvedImage } from '../images/types.js';
import type { KubeObject, WorkloadRef } from '../workloads/resource.js';

export const SETTINGS_FILE = 'settings.json';

/** The workspace's settings.json when it exists; the defaults otherwise (created on write). */
export function readSettings(workspaceDir: string): PolicySettings {
  return existsSync(join(workspaceDir, SETTINGS_FILE)) ? loadOrCreateSettings(workspaceDir) : defaultSettings();
}

export function ensureSettingsFile(workspaceDir: string): void {
  loadOrCreateSettings(workspaceDir);
}

export interface PolicyContext {
  image: (reference: string) => ResolvedImage;
  pauseImage: ResolvedImage;
  configMaps: KubeObject[];
  secrets: KubeObject[];
  settings: PolicySettings;
}

/** The policy input of one workload; `claimTemplates` are its StatefulSet volumeClaimTemplates. */
export function policyInput(workload: WorkloadRef, metadata: KubeObject, spec: KubeObject, ctx: PolicyContext, claimTemplates: string[] = []): PodPolicyInput {
  return { workload, podMetadata: metadata as PodPolicyInput['podMetadata'], podSpec: spec, claimTemplates, ...ctx };
}

/** The pod's policy data (built once: the text and the self-check both come from it) and text. */
export function buildPodPolicy(input: PodPolicyInput, location: InputLocation): { pod: BuiltPod; text: string } {
  try {
    const pod = buildPod(input);
    return { pod, text: renderPolicyText(pod.data) };
  } catch (err) {
    throw err instanceof UserError ? err.withLocation(location) : err;
  }
}

/** Fails when the policy would block its own pod: a bug in the engine or a pod it cannot express. */
export async function checkOwnPolicy(policyText: string, input: PodPolicyInput, pod: BuiltPod, location: InputLocation): Promise<void> {
  const report = await checkPolicy(policyText, input, pod);
  const denied = report.entries.find((e) => !e.allowed);
  if (denied) {
    const who = denied.container ? `container "${denied.container}"` : 'the sandbox';
    throw new UserError(`the generated policy would block its own pod: ${denied.request} for ${who} (${denied.description}) is denied: ${denied.reason ?? denied.failures.join('; ')}. Please report this with \`kubectl contrast policy check\` output.`, location);
  }
}

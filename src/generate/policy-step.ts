/**
 * Computes the agent policy of each confidential pod with the policy engine, and checks that
 * the policy admits the pod it was made for before anything is written.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BugError, UserError, describeLocation, locate, type InputLocation } from '../util/errors.js';
import { readUserText } from '../util/files.js';
import { validateSettings } from '../policy/settings.js';
import {
  buildPod,
  defaultSettings,
  loadOrCreateSettings,
  policyTextFor,
  type BuiltPod,
  type PodPolicyInput,
  type PolicyCheckReport,
  type PolicySettings,
} from '../policy/index.js';
import type { ResolvedImage } from '../images/types.js';
import {
  claimTemplateNames,
  type KubeObject,
  type PodTemplate,
  type Resource,
  type WorkloadRef,
} from '../workloads/resource.js';
import { isPlainObject } from '../util/values.js';

export const SETTINGS_FILE = 'settings.json';

/**
 * The settings file the user named (it must exist), else the workspace's settings.json when it
 * exists, else the defaults (then created on write).
 */
export function readSettings(workspaceDir: string, settingsPath?: string): PolicySettings {
  if (settingsPath !== undefined) {
    const text = readUserText(settingsPath, 'the policy settings (--settings)');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new UserError(`not valid JSON (${(err as Error).message})`, { file: settingsPath });
    }
    return validateSettings(parsed, settingsPath);
  }
  return existsSync(join(workspaceDir, SETTINGS_FILE)) ? loadOrCreateSettings(workspaceDir) : defaultSettings();
}

/** The workspace's settings.json with the defaults, unless the user keeps the settings elsewhere. */
export function ensureSettingsFile(workspaceDir: string, settingsPath?: string): void {
  if (settingsPath === undefined) loadOrCreateSettings(workspaceDir);
}

/** What every pod's policy input shares: images, the ConfigMaps and Secrets around it, settings. */
export interface PolicyContext {
  image: (reference: string) => ResolvedImage;
  pauseImage: ResolvedImage;
  configMaps: KubeObject[];
  secrets: KubeObject[];
  settings: PolicySettings;
}

export function policyContext(
  sources: { configMaps: KubeObject[]; secrets: KubeObject[] },
  image: (reference: string) => ResolvedImage,
  pauseImage: string,
  settings: PolicySettings,
): PolicyContext {
  return { image, pauseImage: image(pauseImage), configMaps: sources.configMaps, secrets: sources.secrets, settings };
}

const CONFIG_MAP_REFS = new Set(['configMapKeyRef', 'configMapRef']);
const SECRET_REFS = new Set(['secretKeyRef', 'secretRef']);

/**
 * The names of the ConfigMaps and Secrets pod specs can refer to (env `valueFrom` and
 * `envFrom`, wherever they are: a superset of what the policy reads). The policy finds its
 * sources by name, so a context of just these finds the same ones as one of every source.
 */
export function envSourceNames(specs: readonly unknown[]): { configMaps: Set<string>; secrets: Set<string> } {
  const out = { configMaps: new Set<string>(), secrets: new Set<string>() };
  const visit = (node: unknown, depth: number): void => {
    if (depth > 64 || typeof node !== 'object' || node === null) return;
    if (Array.isArray(node)) {
      for (const v of node) visit(v, depth + 1);
      return;
    }
    for (const [key, value] of Object.entries(node)) {
      const set = CONFIG_MAP_REFS.has(key) ? out.configMaps : SECRET_REFS.has(key) ? out.secrets : undefined;
      if (set && isPlainObject(value)) set.add(typeof value.name === 'string' ? value.name : '');
      visit(value, depth + 1);
    }
  };
  for (const spec of specs) visit(spec, 0);
  return out;
}

/** The policy input of one workload's pod template (metadata and spec as the pod gets them). */
export function policyInput(
  workload: WorkloadRef,
  resource: Resource,
  template: Pick<PodTemplate, 'metadata' | 'spec'>,
  ctx: PolicyContext,
): PodPolicyInput {
  return {
    workload,
    podMetadata: template.metadata as PodPolicyInput['podMetadata'],
    podSpec: template.spec,
    claimTemplates: claimTemplateNames(resource.object),
    ...ctx,
  };
}

/** The pod's policy data (built once: the text and the self-check both come from it) and text. */
export function buildPodPolicy(input: PodPolicyInput, location: InputLocation): { pod: BuiltPod; text: string } {
  try {
    const pod = buildPod(input);
    return { pod, text: policyTextFor(pod.data) };
  } catch (err) {
    throw locate(err, location);
  }
}

/** The error when the policy blocks its own pod (the engine and the rules disagree), else undefined. */
export function ownPolicyDenial(report: PolicyCheckReport, location: InputLocation): BugError | undefined {
  const denied = report.entries.find((e) => !e.allowed);
  if (!denied) return undefined;
  const who = denied.container ? `container "${denied.container}"` : 'the sandbox';
  return new BugError(
    `${describeLocation(location)}: the generated policy would block its own pod: ${denied.request} for ${who} (${denied.description}) is denied: ${denied.reason ?? denied.failures.join('; ')}; \`kubectl contrast policy check\` shows every request`,
  );
}

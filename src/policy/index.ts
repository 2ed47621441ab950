/** Public surface of the policy engine. */
import { buildPolicyData, type PodPolicyInput } from './data.js';
import { policyTextFor } from './text.js';

export { buildPod, buildPolicyData, podNamePattern, type BuiltPod, type PodPolicyInput } from './data.js';
export {
  checkPolicy,
  evaluateRequests,
  synthesizeRequests,
  type PolicyCheckEntry,
  type PolicyCheckReport,
  type SynthesizedRequest,
} from './check.js';
export { PolicyEngine, type EvalResult, type JsonPatchOp } from './engine.js';
export { defaultSettings, loadOrCreateSettings, type PolicySettings } from './settings.js';
export { normaliseRequest } from './requests.js';
export { rulesText, splitPolicyText, policyTextFor } from './text.js';
export type { PolicyData, ContainerPolicy } from './types.js';

/** The policy text for the initdata: rules.rego + "\npolicy_data := " + pretty JSON. */
export function buildPolicyText(input: PodPolicyInput): string {
  return policyTextFor(buildPolicyData(input));
}

/** The policy text: our rules followed by `policy_data := <JSON>`, as the agent receives it. */
import { readFileSync } from 'node:fs';
import { UserError } from '../util/errors.js';
import type { PolicyData } from './types.js';

/** Between the rules and the policy data (its last occurrence in a policy text). */
export const POLICY_DATA_SEPARATOR = '\npolicy_data := ';
let rules: string | undefined;

/** The text of src/policy/rules.rego. */
export function rulesText(): string {
  rules ??= readFileSync(new URL('./rules.rego', import.meta.url), 'utf8');
  return rules;
}

export function policyTextFor(data: PolicyData): string {
  return `${rulesText()}${POLICY_DATA_SEPARATOR}${JSON.stringify(data, null, 2)}`;
}

/** Split a policy text into its rules and its policy_data. */
export function splitPolicyText(text: string): { rules: string; data: unknown } {
  const at = text.lastIndexOf(POLICY_DATA_SEPARATOR);
  if (at < 0) throw new UserError('the policy has no `policy_data := …` part');
  const rulesPart = text.slice(0, at);
  const json = text.slice(at + POLICY_DATA_SEPARATOR.length);
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    throw new UserError(
      `policy_data is not JSON (${(err as Error).message}); only JSON-shaped policy_data can be evaluated`,
    );
  }
  return { rules: rulesPart, data };
}

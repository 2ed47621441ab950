# Used only when compiling rules.rego to WebAssembly. In the policy text the agent runs,
# policy_data is a rule in the same module; for the compiled evaluator it comes from the
# data document instead, so one compiled module serves every pod.
package agent_policy

policy_data := data.policy_data

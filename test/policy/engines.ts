/**
 * The Rego engines besides our WebAssembly module: opa (Go interpreter) and regorus (the engine
 * inside the Kata agent). Every recorded evaluation is replayed through both, on the policy text
 * exactly as the agent receives it (rules plus `policy_data := …` in one module, no data shim),
 * with one process per policy and engine: the cases go in as data and a comprehension evaluates
 * each with its own input and state. Both engines are required; a missing one fails the test.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Evaluation {
  /** The complete policy text (rules + policy_data). */
  policy: string;
  state: Record<string, unknown>;
  name: string;
  /** The request after normalisation (as the agent deserialises it). */
  input: unknown;
  allowed: boolean;
  ops: unknown[];
  label: string;
}

const BIN = new URL('../../tools/bin/', import.meta.url).pathname;

export function enginePath(name: 'opa' | 'regorus'): string {
  const local = join(BIN, name);
  if (!existsSync(local))
    throw new Error(`tools/bin/${name} is missing: run scripts/setup.sh (it builds ${name} into tools/bin)`);
  return local;
}

// (Binding the case fields to variables first: `with input as c.input` inside the comprehension
// does not take effect in opa 1.22.)
const QUERY =
  '{k: r | c := data.cases[k]; x := c.input; s := c.state; r := data.agent_policy[c.name] with input as x with data.pstate as s}';

type Engine = { name: 'opa' | 'regorus'; run: (policy: string, cases: string) => string };

const ENGINES: Engine[] = [
  {
    name: 'opa',
    run: (policy, cases) =>
      execFileSync(enginePath('opa'), ['eval', '-f', 'json', '-d', policy, '-d', cases, QUERY], {
        encoding: 'utf8',
        maxBuffer: 512 * 1024 * 1024,
      }),
  },
  // --v0 and --non-strict: the agent's regorus parses Rego v0 (rules.rego keeps the future
  // imports for it) and turns builtin errors into undefined values (src/agent/policy/src/policy.rs).
  {
    name: 'regorus',
    run: (policy, cases) =>
      execFileSync(enginePath('regorus'), ['eval', '--v0', '--non-strict', '-d', policy, '-d', cases, QUERY], {
        encoding: 'utf8',
        maxBuffer: 512 * 1024 * 1024,
      }),
  },
];

function decision(r: unknown): { allowed: boolean; ops: unknown[] } {
  if (r === true) return { allowed: true, ops: [] };
  if (typeof r === 'object' && r !== null && (r as { allowed?: unknown }).allowed === true) {
    const ops = (r as { ops?: unknown }).ops;
    return { allowed: true, ops: Array.isArray(ops) ? ops : [] };
  }
  return { allowed: false, ops: [] };
}

/** Evaluations where an engine decides differently (or returns other state operations). */
export function crossCheck(evaluations: Evaluation[]): { disagreements: string[]; counts: Record<string, number> } {
  const dir = mkdtempSync(join(tmpdir(), 'policy-engines-'));
  const disagreements: string[] = [];
  const counts: Record<string, number> = { opa: 0, regorus: 0 };
  try {
    const byPolicy = new Map<string, Evaluation[]>();
    for (const e of evaluations) byPolicy.set(e.policy, [...(byPolicy.get(e.policy) ?? []), e]);
    let n = 0;
    for (const [policy, cases] of byPolicy) {
      const policyFile = join(dir, `policy${n}.rego`);
      const casesFile = join(dir, `cases${n}.json`);
      n += 1;
      writeFileSync(policyFile, policy);
      writeFileSync(
        casesFile,
        JSON.stringify({
          cases: Object.fromEntries(cases.map((c, i) => [String(i), { name: c.name, input: c.input, state: c.state }])),
        }),
      );
      for (const engine of ENGINES) {
        let out: string;
        try {
          out = engine.run(policyFile, casesFile);
        } catch (err) {
          const e = err as { stderr?: string; stdout?: string };
          throw new Error(
            `${engine.name} failed on ${cases[0].label}: ${String(e.stderr ?? e.stdout ?? err).slice(0, 2000)}`,
            { cause: err },
          );
        }
        const rows = JSON.parse(out).result[0].expressions[0].value as Record<string, unknown>;
        cases.forEach((c, i) => {
          counts[engine.name] += 1;
          const got = decision(rows[String(i)]);
          if (got.allowed !== c.allowed)
            disagreements.push(
              `${c.label} (${c.name}): wasm ${c.allowed ? 'allows' : 'denies'}, ${engine.name} ${got.allowed ? 'allows' : 'denies'}`,
            );
          else if (JSON.stringify(got.ops) !== JSON.stringify(c.ops))
            disagreements.push(
              `${c.label} (${c.name}): state operations differ, wasm ${JSON.stringify(c.ops)}, ${engine.name} ${JSON.stringify(got.ops)}`,
            );
        });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { disagreements, counts };
}

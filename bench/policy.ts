/**
 * Benchmark (not a test): agent-policy evaluations per second on one core through the
 * compiled WebAssembly, for the CreateContainerRequest of a realistic container (9 env
 * sources, 6 volumes, probes) with the state of a started pod. Also times `opa eval` on the
 * same policy text and input when opa is installed, for a ratio. JSON on stdout.
 *
 *   node --import=tsx bench/policy.ts [--seconds S]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPolicyData, buildPolicyText, PolicyEngine, synthesizeRequests } from '../src/policy/index.js';
import { deploymentInput } from '../test/policy/fixtures.js';

const seconds = (() => {
  const i = process.argv.indexOf('--seconds');
  return i >= 0 ? Number(process.argv[i + 1]) : 3;
})();
const TARGET = 5000;

const input = deploymentInput();
const data = buildPolicyData(input);
const requests = synthesizeRequests(input);
const pause = requests.find((r) => r.request === 'CreateContainerRequest' && r.container === '')!;
const web = requests.find((r) => r.request === 'CreateContainerRequest' && r.container === 'web')!;
const tampered = structuredClone(web.body) as { OCI: { Process: { Args: string[] } } };
tampered.OCI.Process.Args = ['/bin/sh'];

const engine = PolicyEngine.forData(data);
engine.evaluate('CreateContainerRequest', pause.body);
const started = engine.pstate;

function measure(name: string, once: () => void) {
  for (let i = 0; i < 200; i++) once();
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let n = 0;
  while (performance.now() < deadline) {
    once();
    n++;
  }
  const perSecond = n / ((performance.now() - start) / 1000);
  return { name, evaluations: n, perSecond: Math.round(perSecond), microsecondsEach: Math.round(1e6 / perSecond) };
}

// The first evaluation adds the container id to the state; later ones see it and return no
// operations, so the state (and the data in the wasm heap) stays the same between iterations.
engine.evaluate('CreateContainerRequest', web.body);
const allowed = measure('CreateContainerRequest allowed (wasm)', () => {
  const r = engine.evaluate('CreateContainerRequest', web.body);
  if (!r.allowed) throw new Error(r.reason ?? 'denied');
});
// With a state update every time: the agent's JSON patch plus reloading data into the module.
const withState = measure('CreateContainerRequest allowed, state reset each time (wasm + setData)', () => {
  engine.setState(started);
  const r = engine.evaluate('CreateContainerRequest', web.body);
  if (!r.allowed) throw new Error(r.reason ?? 'denied');
});
const denied = measure('CreateContainerRequest denied, with reason (wasm)', () => {
  const r = engine.evaluate('CreateContainerRequest', tampered);
  if (r.allowed) throw new Error('allowed');
});

// The floor: a rule that reads nothing, with the same input. DestroySandboxRequest has no
// request schema, so the whole CreateContainerRequest JSON is copied into the module and parsed.
const transfer = measure('input transfer only (trivial rule, same input size)', () => {
  engine.evaluate('DestroySandboxRequest', web.body);
});

let opa: Record<string, unknown> | null = null;
const opaBin = fileURLToPath(new URL('../tools/bin/opa', import.meta.url));
if (existsSync(opaBin)) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-opa-'));
  try {
    writeFileSync(join(dir, 'policy.rego'), buildPolicyText(input));
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ pstate: started }));
    writeFileSync(join(dir, 'input.json'), JSON.stringify(web.body));
    const out = execFileSync(opaBin, ['bench', '--count', '1', '--format', 'json', '-d', join(dir, 'policy.rego'), '-d', join(dir, 'state.json'),
      '-i', join(dir, 'input.json'), 'data.agent_policy.CreateContainerRequest'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const b = JSON.parse(out) as { N: number; T: number };
    const nsPerOp = b.T / b.N;
    opa = { name: 'opa bench (Go topdown, same policy text and input)', perSecond: Math.round(1e9 / nsPerOp), microsecondsEach: Math.round(nsPerOp / 1000) };
  } catch (err) {
    opa = { error: (err as Error).message.split('\n')[0] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const result = {
  benchmark: 'policy evaluation',
  target: { createContainerPerSecond: TARGET },
  results: [allowed, withState, denied, transfer, ...(opa ? [opa] : [])],
  inputBytes: JSON.stringify(web.body).length,
  meetsTarget: allowed.perSecond >= TARGET,
  ratioWasmToOpa: opa && typeof opa.perSecond === 'number' ? Number((allowed.perSecond / (opa.perSecond as number)).toFixed(2)) : null,
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);

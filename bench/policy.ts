/**
 * Benchmark (not a test): agent-policy evaluations per second on one core through the
 * compiled WebAssembly, for the CreateContainerRequest of a realistic container (9 env
 * sources, 6 volumes, probes) with the state of a started pod. Also times `opa eval` on the
 * same policy text and input when opa is installed, and regorus (the Kata agent's engine), for
 * ratios. Rates per CPU-second are the figure to compare (wall-clock rates suffer from load).
 * JSON on stdout.
 *
 *   node --import=tsx bench/policy.ts [--seconds S]
 */
import { execFileSync, spawnSync } from 'node:child_process';
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

/** Wall-clock rate, and the rate per CPU-second of this process (one core; robust on a loaded machine). */
function measure(name: string, once: () => void) {
  for (let i = 0; i < 200; i++) once();
  const cpu = process.cpuUsage();
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let n = 0;
  while (performance.now() < deadline) {
    once();
    n++;
  }
  const perSecond = n / ((performance.now() - start) / 1000);
  const used = process.cpuUsage(cpu);
  const perCpuSecond = n / ((used.user + used.system) / 1e6);
  return {
    name,
    evaluations: n,
    perSecond: Math.round(perSecond),
    perCpuSecond: Math.round(perCpuSecond),
    microsecondsEach: Math.round(1e6 / perCpuSecond),
  };
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
    const out = execFileSync(
      opaBin,
      [
        'bench',
        '--count',
        '1',
        '--format',
        'json',
        '-d',
        join(dir, 'policy.rego'),
        '-d',
        join(dir, 'state.json'),
        '-i',
        join(dir, 'input.json'),
        'data.agent_policy.CreateContainerRequest',
      ],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    const b = JSON.parse(out) as { N: number; T: number };
    const nsPerOp = b.T / b.N;
    opa = {
      name: 'opa bench (Go topdown, same policy text and input)',
      perSecond: Math.round(1e9 / nsPerOp),
      microsecondsEach: Math.round(nsPerOp / 1000),
    };
  } catch (err) {
    opa = { error: (err as Error).message.split('\n')[0] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// regorus (the Kata agent's engine) has no bench mode: one process evaluates the request N
// times (`with input.bench_iteration as i` defeats its rule cache), minus a process that loads
// the same files and answers `true`; CPU time from /usr/bin/time where present, else wall.
let regorus: Record<string, unknown> | null = null;
const regorusBin = fileURLToPath(new URL('../tools/bin/regorus', import.meta.url));
if (existsSync(regorusBin)) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-regorus-'));
  try {
    writeFileSync(join(dir, 'policy.rego'), buildPolicyText(input));
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ pstate: started }));
    writeFileSync(join(dir, 'input.json'), JSON.stringify(web.body));
    const N = 200;
    const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
    const run = (query: string): { seconds: number; out: string } => {
      const args = [
        'eval',
        '-d',
        join(dir, 'policy.rego'),
        '-d',
        join(dir, 'state.json'),
        '-i',
        join(dir, 'input.json'),
        query,
      ];
      const t = performance.now();
      const r = timeBin
        ? spawnSync(timeBin, ['-f', '__CPU__ %U %S', regorusBin, ...args], { encoding: 'utf8' })
        : spawnSync(regorusBin, args, { encoding: 'utf8' });
      const wall = (performance.now() - t) / 1000;
      if (r.status !== 0) throw new Error(`regorus failed: ${r.stderr}`);
      const m = /__CPU__ ([\d.]+) ([\d.]+)/.exec(r.stderr ?? '');
      return { seconds: m ? Number(m[1]) + Number(m[2]) : wall, out: r.stdout };
    };
    const many = run(
      `count([r | some i in numbers.range(1, ${N}); r := data.agent_policy.CreateContainerRequest with input.bench_iteration as i; r.allowed == true])`,
    );
    if (!/"value":\s*200\b/.test(many.out)) throw new Error(`regorus did not allow the request ${N} times`);
    const load = run('true');
    const each = Math.max((many.seconds - load.seconds) / N, 1e-6);
    regorus = {
      name: `regorus CLI, ${N} evaluations in one process minus loading (${timeBin ? 'CPU' : 'wall'} time)`,
      perCpuSecond: Math.round(1 / each),
      microsecondsEach: Math.round(each * 1e6),
    };
  } catch (err) {
    regorus = { error: (err as Error).message.split('\n')[0] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const result = {
  benchmark: 'policy evaluation',
  goalPerCpuSecond: TARGET,
  inputBytes: JSON.stringify(web.body).length,
  policyDataBytes: JSON.stringify(data).length,
  allowed,
  allowedStateReset: withState,
  denied,
  transferOnly: transfer,
  ...(opa ? { opa } : {}),
  ...(regorus ? { regorus } : {}),
  meetsGoal: allowed.perCpuSecond >= TARGET,
  ratioWasmToOpa:
    opa && typeof opa.perSecond === 'number'
      ? Number((allowed.perSecond / (opa.perSecond as number)).toFixed(2))
      : null,
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);

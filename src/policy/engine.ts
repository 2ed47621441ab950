/**
 * Evaluation of agent requests through OPA WebAssembly, the way the Kata agent evaluates
 * them: query data.agent_policy.<RequestName>, treat a boolean as the decision and an object
 * as {allowed, ops}, and apply the JSON-patch ops to data.pstate before the next request.
 *
 * rules.rego is compiled once (scripts/build-policy-wasm.sh) together with a shim that
 * defines policy_data from the data document; the per-pod policy_data and the state are
 * passed with setData.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as opaWasm from '@open-policy-agent/opa-wasm';
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { UserError } from '../util/errors.js';
import { normaliseRequest } from './requests.js';
import { rulesText, splitPolicyText } from './text.js';

export interface JsonPatchOp {
  op: string;
  path: string;
  value?: unknown;
}

export interface EvalResult {
  allowed: boolean;
  entrypoint: string;
  ops: JsonPatchOp[];
  /** Why the request was denied (first failed check); null when allowed. */
  reason: string | null;
  /** Every failed check, in the order the rules list them. */
  failures: string[];
}

const WASM_URL = new URL('./wasm/policy.wasm', import.meta.url);
const SHIM_URL = new URL('./wasm/data-shim.rego', import.meta.url);
const ENTRYPOINTS_URL = new URL('./wasm/entrypoints.txt', import.meta.url);

/** A compiled WebAssembly module (the DOM lib with WebAssembly types is not in our tsconfig). */
type WasmModule = object;
const Wasm = (globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => WasmModule } }).WebAssembly;
// The ESM entry re-exports only loadPolicy by name; the synchronous loader hangs off the default export.
const load = (opaWasm as unknown as { default: { loadPolicySync: unknown } }).default.loadPolicySync as (
  module: WasmModule,
  memory: { initial: number },
) => LoadedPolicy;

let builtinModule: WasmModule | undefined;
const foreignModules = new Map<string, WasmModule>();

/**
 * Instances of our compiled rules returned by dispose(), reused by the next engine: a new
 * instance costs a fresh 4 MiB memory and its garbage, which dominated `generate` on many pods.
 * setData resets the instance's heap, so a reused instance carries nothing over.
 */
const idleInstances: LoadedPolicy[] = [];
const MAX_IDLE = 4;

function instanceOf(module: WasmModule): LoadedPolicy {
  if (module === builtinModule) {
    const idle = idleInstances.pop();
    if (idle) return idle;
  }
  return load(module, { initial: 64 });
}

function ourModule(): WasmModule {
  builtinModule ??= new Wasm.Module(readFileSync(WASM_URL));
  return builtinModule;
}

function findOpa(): string | undefined {
  const local = fileURLToPath(new URL('../../tools/bin/opa', import.meta.url));
  if (existsSync(local)) return local;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'opa'))) return join(dir, 'opa');
  }
  return undefined;
}

/** Compile rules that differ from ours with the opa binary (cached per rules text). */
function compileForeignRules(rules: string): WasmModule {
  const cached = foreignModules.get(rules);
  if (cached) return cached;
  const opa = findOpa();
  if (!opa) {
    throw new UserError(
      "the policy's rules differ from the rules this version of kubectl-contrast ships, and compiling them needs `opa` on PATH (https://www.openpolicyagent.org/docs/latest/#running-opa)",
    );
  }
  const names = readFileSync(ENTRYPOINTS_URL, 'utf8')
    .split('\n')
    .filter(Boolean)
    .filter((n) => new RegExp(`^(default\\s+)?${n}\\b`, 'm').test(rules));
  const dir = mkdtempSync(join(tmpdir(), 'contrast-rego-'));
  try {
    writeFileSync(join(dir, 'rules.rego'), rules);
    writeFileSync(join(dir, 'shim.rego'), readFileSync(SHIM_URL));
    const args = [
      'build',
      '-t',
      'wasm',
      ...names.flatMap((n) => ['-e', `agent_policy/${n}`]),
      '-o',
      join(dir, 'b.tar.gz'),
      join(dir, 'rules.rego'),
      join(dir, 'shim.rego'),
    ];
    try {
      execFileSync(opa, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
      throw new UserError(
        `opa could not compile the policy's rules: ${stderr.trim().split('\n').slice(0, 5).join('\n')}`,
      );
    }
    execFileSync('tar', ['-xzf', join(dir, 'b.tar.gz'), '-C', dir, '/policy.wasm'], { stdio: 'ignore' });
    const module = new Wasm.Module(readFileSync(join(dir, 'policy.wasm')));
    foreignModules.set(rules, module);
    return module;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function applyOps(state: Record<string, unknown>, ops: JsonPatchOp[]): Record<string, unknown> {
  const next = { ...state };
  for (const op of ops) {
    if (!op.path.startsWith('/pstate/')) throw new Error(`policy returned an operation outside /pstate: ${op.path}`);
    const key = op.path.slice('/pstate/'.length).replace(/~1/g, '/').replace(/~0/g, '~');
    if (op.op === 'add' || op.op === 'replace') next[key] = op.value;
    else if (op.op === 'remove') {
      if (!(key in next)) throw new Error(`policy removes unknown state key ${key}`);
      delete next[key];
    } else throw new Error(`unsupported JSON-patch operation ${op.op}`);
  }
  return next;
}

/**
 * The parts of the SDK's LoadedPolicy that replacing the state in place and evaluating without
 * copies need (ABI 1.x exports; opa_eval from ABI 1.2 on).
 */
interface PolicyInternals {
  wasmInstance: {
    exports: {
      opa_malloc(n: number): number;
      opa_json_parse(addr: number, len: number): number;
      opa_heap_ptr_get(): number;
      opa_heap_ptr_set(ptr: number): void;
      opa_value_add_path(base: number, path: number, value: number): number;
      opa_eval?(
        ctx: number,
        entrypoint: number,
        data: number,
        input: number,
        inputLen: number,
        heap: number,
        format: number,
      ): number;
    };
  };
  mem: { buffer: ArrayBuffer; grow(pages: number): number };
  minorVersion: number;
  entrypoints: Record<string, number>;
  dataAddr: number;
  dataHeapPtr: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const PAGE = 64 * 1024;

/**
 * A request as JSON text in the module's memory, above the data (where opa_eval expects its
 * input), and where the evaluation's heap starts. No input (a falsy request, as in the SDK): 0, 0.
 */
interface LoadedInput {
  addr: number;
  len: number;
  heap: number;
}

/** Past this much heap of replaced states, the next state change reloads all data (and frees them). */
const MAX_STATE_HEAP = 1024 * 1024;
const PSTATE_PATH = new TextEncoder().encode('["pstate"]');

/** A policy ready for evaluation, holding the agent's state between requests. */
export class PolicyEngine {
  private state: Record<string, unknown>;
  private readonly entrypoints: Set<string>;
  private disposed = false;
  /** Heap pointer right after setData loaded policy_data (and the first state). */
  private dataEnd = 0;

  private constructor(
    private readonly policy: LoadedPolicy,
    private readonly policyData: unknown,
    state: Record<string, unknown>,
    private readonly builtin: boolean,
  ) {
    this.entrypoints = new Set(Object.keys(policy.entrypoints as Record<string, number>));
    this.state = state;
    this.reloadData();
  }

  private reloadData(): void {
    this.policy.setData({ policy_data: this.policyData, pstate: this.state });
    this.dataEnd = (this.policy as unknown as PolicyInternals).dataHeapPtr;
  }

  /** Copy a JSON text into the module and parse it there; 0 when it does not parse. */
  private static loadJson(p: PolicyInternals, bytes: Uint8Array): number {
    const raw = p.wasmInstance.exports.opa_malloc(bytes.byteLength);
    new Uint8Array(p.mem.buffer).set(bytes, raw);
    return p.wasmInstance.exports.opa_json_parse(raw, bytes.byteLength);
  }

  /** An engine for our rules with the given policy data. */
  static forData(policyData: unknown, state: Record<string, unknown> = {}): PolicyEngine {
    return new PolicyEngine(instanceOf(ourModule()), policyData, state, true);
  }

  /** An engine for a complete policy text (rules + `policy_data := …`). */
  static forPolicyText(text: string, state: Record<string, unknown> = {}): PolicyEngine {
    const { rules, data } = splitPolicyText(text);
    const module = rules === rulesText() ? ourModule() : compileForeignRules(rules);
    return new PolicyEngine(instanceOf(module), data, state, module === builtinModule);
  }

  /** Hand the instance back for reuse; the engine must not be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.builtin && idleInstances.length < MAX_IDLE) idleInstances.push(this.policy);
  }

  get pstate(): Record<string, unknown> {
    return this.state;
  }

  /**
   * Replace data.pstate. Instead of re-loading policy_data (tens of KB, after every state
   * change of a pod's requests), the new state is parsed above the live data and put in place
   * with opa_value_add_path, which frees the old one; evaluations start above it. Every
   * MAX_STATE_HEAP bytes of replaced states, everything is reloaded from the start.
   */
  setState(state: Record<string, unknown>): void {
    this.state = state;
    const p = this.policy as unknown as PolicyInternals;
    const ex = p.wasmInstance.exports;
    if (p.dataHeapPtr - this.dataEnd > MAX_STATE_HEAP) return this.reloadData();
    ex.opa_heap_ptr_set(p.dataHeapPtr);
    const value = PolicyEngine.loadJson(p, new TextEncoder().encode(JSON.stringify(state)));
    const path = PolicyEngine.loadJson(p, PSTATE_PATH);
    if (value === 0 || path === 0 || ex.opa_value_add_path(p.dataAddr, path, value) !== 0) return this.reloadData();
    p.dataHeapPtr = ex.opa_heap_ptr_get();
  }

  /**
   * Copy the request's JSON into the module once, right above the data: opa_eval parses it there
   * and allocates above it, so the explanation of a denial evaluates the same bytes again. (The
   * SDK's evaluate makes an encoder and a second copy per call, and the explanation paid for a
   * second serialisation.)
   */
  private loadInput(input: unknown): LoadedInput {
    const p = this.policy as unknown as PolicyInternals;
    if (!input) return { addr: 0, len: 0, heap: p.dataHeapPtr };
    const text = JSON.stringify(input);
    const addr = p.dataHeapPtr;
    const max = text.length * 3;
    const missing = addr + max - p.mem.buffer.byteLength;
    if (missing > 0) p.mem.grow(Math.ceil(missing / PAGE));
    const { written } = encoder.encodeInto(text, new Uint8Array(p.mem.buffer, addr, max));
    return { addr, len: written, heap: addr + written };
  }

  /** The result set of one entry point for a loaded input (ABI 1.2's opa_eval, else the SDK). */
  private run(entrypoint: string, input: unknown, loaded: LoadedInput | undefined): { result: unknown }[] {
    const p = this.policy as unknown as PolicyInternals;
    const ex = p.wasmInstance.exports;
    if (!loaded || !ex.opa_eval || p.minorVersion < 2)
      return this.policy.evaluate(input, entrypoint) as { result: unknown }[];
    const at = ex.opa_eval(0, p.entrypoints[entrypoint], p.dataAddr, loaded.addr, loaded.len, loaded.heap, 0);
    const mem = new Uint8Array(p.mem.buffer);
    const end = mem.indexOf(0, at);
    return JSON.parse(decoder.decode(mem.subarray(at, end))) as { result: unknown }[];
  }

  /** Evaluate one request; when allowed, its state operations are applied like the agent does. */
  evaluate(requestName: string, request: unknown): EvalResult {
    const entrypoint = `agent_policy/${requestName}`;
    if (!this.entrypoints.has(entrypoint)) {
      const reason = `the policy has no rule for ${requestName}, so the agent rejects it`;
      return { allowed: false, entrypoint, ops: [], reason, failures: [reason] };
    }
    const input = normaliseRequest(requestName, request);
    let allowed = false;
    let ops: JsonPatchOp[] = [];
    let error: string | undefined;
    let loaded: LoadedInput | undefined;
    try {
      loaded = this.loadInput(input);
      const rs = this.run(entrypoint, input, loaded);
      const result = rs.length > 0 ? rs[0].result : undefined;
      if (typeof result === 'boolean') allowed = result;
      else if (typeof result === 'object' && result !== null) {
        const r = result as { allowed?: unknown; ops?: unknown };
        allowed = r.allowed === true;
        if (allowed && Array.isArray(r.ops)) ops = r.ops as JsonPatchOp[];
      } else {
        error = `${requestName} is undefined in the policy (the agent treats that as an error)`;
      }
    } catch (err) {
      error = `evaluation failed: ${(err as Error).message}`;
      allowed = false;
    }
    if (allowed) {
      if (ops.length > 0) {
        try {
          this.setState(applyOps(this.state, ops));
        } catch (err) {
          const reason = `the state update failed: ${(err as Error).message}`;
          return { allowed: false, entrypoint, ops, reason, failures: [reason] };
        }
      }
      return { allowed: true, entrypoint, ops, reason: null, failures: [] };
    }
    const failures = error ? [error] : this.explain(requestName, input, loaded);
    return {
      allowed: false,
      entrypoint,
      ops: [],
      reason: failures[0] ?? `${requestName} is not allowed by this policy`,
      failures,
    };
  }

  private explain(requestName: string, input: unknown, loaded: LoadedInput | undefined): string[] {
    const entrypoint = `agent_policy/explain_${requestName}`;
    if (!this.entrypoints.has(entrypoint)) return [`${requestName} is not allowed by this policy`];
    try {
      const rs = this.run(entrypoint, input, loaded);
      const r = rs[0]?.result;
      if (Array.isArray(r) && r.length > 0) return r.map(String);
    } catch {
      // fall through
    }
    return [`${requestName} is not allowed by this policy`];
  }
}

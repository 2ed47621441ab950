/**
 * `kubectl contrast policy …`: look at, check, evaluate and compare agent policies.
 *   show    the policy of resources in files/stdin      decode  an annotation value
 *   check   synthesize the runtime's requests for each pod and evaluate them
 *   eval    evaluate one agent request                   diff    compare two policies
 * The engine (OPA WebAssembly) is loaded only by the subcommands that evaluate.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { imageOptions, imageResolverFrom, type ImageArgs } from './image-options.js';
import { readInputs, readStdin, type InputFile } from '../resources/inputs.js';
import { readUserText } from '../util/files.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { UsageError, UserError, type InputLocation } from '../util/errors.js';
import {
  decodeInitDataAnnotation,
  INITDATA_ANNOTATION,
  parseInitDataToml,
  POLICY_KEY,
  type DecodedInitData,
} from '../policy/initdata.js';
import { splitPolicyText } from '../policy/text.js';
import { carriedPolicies, decodeCarried, selectWorkload, workloadName } from '../generate/carried-policies.js';
import { allResources, parseInput } from '../generate/read-step.js';

type Json = Record<string, unknown>;

/** A policy found in some input, with its origin. */
interface FoundPolicy {
  /** "Deployment shop/web", "annotation", a file name … */
  origin: string;
  location: InputLocation;
  text: string;
  toml?: string;
  hash?: string;
}

async function readSource(spec: string): Promise<InputFile> {
  return spec === '-' ? readStdin() : { name: spec, path: spec, text: readUserText(spec, 'the file') };
}

function fromInitData(decoded: DecodedInitData, origin: string, location: InputLocation): FoundPolicy {
  const text = decoded.init.data[POLICY_KEY];
  if (text === undefined) throw new UserError(`initdata has no ${POLICY_KEY}`, location);
  return { origin, location, text, toml: decoded.toml, hash: decoded.hash };
}

/** Policies of the workloads in YAML inputs (those carrying the initdata annotation), optionally one `KIND/NAME`. */
function policiesIn(files: InputFile[], selector: string | undefined): FoundPolicy[] {
  const carried = carriedPolicies(allResources(files.map(parseInput)));
  return (selector === undefined ? carried : selectWorkload(carried, selector)).map((p) =>
    fromInitData(decodeCarried(p), workloadName(p.ref), p.resource.location),
  );
}

/**
 * Read a policy given as Rego text, initdata TOML, the base64 annotation value, or YAML
 * containing exactly one resource with a policy (or the one `--resource` names).
 */
async function readPolicy(spec: string, resource?: string): Promise<FoundPolicy> {
  const source = await readSource(spec);
  const { name, text } = source;
  const trimmed = text.trim();
  const location = { file: name };
  if (/^version\s*=/.test(trimmed) && /^\[data\]/m.test(trimmed)) {
    const init = parseInitDataToml(text);
    const policy = init.data[POLICY_KEY];
    if (policy === undefined) throw new UserError(`initdata has no ${POLICY_KEY}`, location);
    return {
      origin: name,
      location,
      text: policy,
      toml: text,
      hash: createHash(init.algorithm).update(text).digest('hex'),
    };
  }
  if (trimmed.includes('\npolicy_data := ') || /^\s*package\s+agent_policy\b/m.test(trimmed)) {
    return { origin: name, location, text: trimmed.endsWith('}') ? text.replace(/\s+$/, '') : text };
  }
  if (/^[A-Za-z0-9+/=\s]+$/.test(trimmed) && !trimmed.includes(':'))
    return fromInitData(decodeInitDataAnnotation(trimmed), name, location);
  const found = policiesIn([source], resource);
  if (found.length === 0)
    throw new UserError(
      `no policy found${resource ? ` for ${resource}` : ''} (expected Rego, initdata TOML, an annotation value, or resources with the ${INITDATA_ANNOTATION} annotation)`,
      location,
    );
  if (found.length > 1)
    throw new UsageError(
      `${name} holds ${found.length} policies (${found.map((f) => f.origin).join(', ')}); choose one with --resource KIND/NAME`,
    );
  return found[0]!;
}

function printPolicy(p: FoundPolicy, part: string, output: string, many: boolean): void {
  const { rules, data } = splitPolicyText(p.text);
  if (output === 'json') {
    process.stdout.write(`${JSON.stringify({ origin: p.origin, hash: p.hash ?? null, policy_data: data }, null, 2)}\n`);
    return;
  }
  if (output === 'toml') {
    if (!p.toml) throw new UserError('no initdata TOML for this policy (it was given as Rego text)', p.location);
    process.stdout.write(p.toml);
    return;
  }
  if (many) process.stdout.write(`# ${p.origin}${p.hash ? ` (policy hash ${p.hash})` : ''}\n`);
  if (part === 'rules') process.stdout.write(`${rules}`);
  else if (part === 'data') process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  else process.stdout.write(`${p.text}\n`);
}

/** An agent request file: its message name and body (upstream test cases wrap it as {type, request}). */
async function readRequest(
  spec: string,
  explicitType: string | undefined,
): Promise<{ name: string; request: unknown }> {
  const src = await readSource(spec);
  const body = parseJson(src.text, 'request', src.name);
  const raw =
    explicitType ?? (typeof body.kind === 'string' ? body.kind : typeof body.type === 'string' ? body.type : undefined);
  if (!raw)
    throw new UsageError(
      'cannot tell the request type: pass --request-type (e.g. CreateContainerRequest) or give the JSON a "type" field',
    );
  // Upstream test cases name requests by their short type ("CreateContainer").
  const name = raw.endsWith('Request') || raw.startsWith('MemAgent') ? raw : `${raw}Request`;
  return { name, request: typeof body.request === 'object' && body.request !== null ? body.request : body };
}

/** The agent state (data.pstate) of earlier requests; none when `path` is unset or missing. */
function readState(path: string | undefined): Json {
  return path !== undefined && existsSync(path) ? parseJson(readUserText(path, 'the state'), 'state', path) : {};
}

function parseJson(text: string, what: string, file: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch (err) {
    throw new UserError(`${what} is not JSON: ${(err as Error).message}`, { file });
  }
}

interface ShowArgs {
  paths: string[];
  part: string;
  output: string;
  resource?: string;
}
interface DecodeArgs {
  value?: string;
  part: string;
  output: string;
}
interface EvalArgs {
  policy: string;
  request: string;
  state?: string;
  'save-state': boolean;
  'request-type'?: string;
  resource?: string;
  output: string;
}
interface DiffArgs {
  a: string;
  b?: string;
  output: string;
  'resource-a'?: string;
  'resource-b'?: string;
  request?: string;
  'request-type'?: string;
  state?: string;
}
interface CheckArgs extends ImageArgs {
  paths: string[];
  output: string;
  'pause-image'?: string;
  'workspace-dir': string;
}

const outputOption = <T>(y: Argv<T>, choices: string[], def: string) =>
  y.option('output', { alias: 'o', type: 'string', choices, default: def, describe: 'Output format' });

const show: CommandModule<object, ShowArgs> = {
  command: 'show [paths..]',
  describe: 'Print the policy of every resource in YAML files or standard input',
  builder: (y) =>
    outputOption(y, ['text', 'json', 'toml'], 'text')
      .positional('paths', {
        type: 'string',
        array: true,
        default: [],
        describe: 'YAML files or directories; "-" or nothing for standard input',
      })
      .option('part', {
        type: 'string',
        choices: ['all', 'rules', 'data'],
        default: 'all',
        describe: 'Which part of the policy text to print',
      })
      .option('resource', { type: 'string', describe: 'Only this resource (KIND/NAME or NAME)' }),
  handler: async (argv) => {
    const found = policiesIn(await readInputs(argv.paths), argv.resource);
    if (found.length === 0) throw new UserError(`no resource with a policy (annotation ${INITDATA_ANNOTATION}) found`);
    for (const p of found) printPolicy(p, argv.part, argv.output, found.length > 1);
  },
};

const decode: CommandModule<object, DecodeArgs> = {
  command: 'decode [value]',
  describe: 'Decode an initdata annotation value (base64 of gzip of TOML) and print its policy',
  builder: (y) =>
    outputOption(y, ['text', 'json', 'toml'], 'text')
      .positional('value', {
        type: 'string',
        describe: 'The annotation value, a file holding it, or "-"/nothing for standard input',
      })
      .option('part', {
        type: 'string',
        choices: ['all', 'rules', 'data'],
        default: 'all',
        describe: 'Which part of the policy text to print',
      }),
  handler: async (argv) => {
    const v = argv.value === undefined || argv.value === '' ? '-' : argv.value;
    const value = v === '-' || existsSync(v) ? (await readSource(v)).text : v;
    printPolicy(fromInitData(decodeInitDataAnnotation(value.trim()), 'annotation', {}), argv.part, argv.output, false);
  },
};

const evalCmd: CommandModule<object, EvalArgs> = {
  command: 'eval',
  describe: 'Evaluate one agent request against a policy, like the Kata agent does',
  builder: (y) =>
    outputOption(y, ['json', 'text'], 'json')
      .option('policy', {
        type: 'string',
        nargs: 1,
        demandOption: true,
        describe: 'Policy: Rego text, initdata TOML, annotation value or a manifest with the resource ("-" for stdin)',
      })
      .option('request', {
        type: 'string',
        nargs: 1,
        demandOption: true,
        describe: 'Agent request JSON ("-" for stdin); missing fields get the agent\'s defaults',
      })
      .option('request-type', {
        type: 'string',
        describe: 'Request message name, e.g. CreateContainerRequest (default: the JSON\'s "type" field)',
      })
      .option('state', {
        type: 'string',
        describe: 'JSON file with the agent state (data.pstate) from earlier requests',
      })
      .option('save-state', {
        type: 'boolean',
        default: false,
        describe: 'Write the state after this request back to --state',
      })
      .option('resource', { type: 'string', describe: 'Which resource of a manifest holds the policy (KIND/NAME)' })
      .check((a) => {
        if (a.policy === '-' && a.request === '-')
          throw new UsageError('--policy and --request cannot both be standard input');
        if (a['save-state'] && !a.state) throw new UsageError('--save-state needs --state');
        return true;
      }),
  handler: async (argv) => {
    const { PolicyEngine } = await import('../policy/engine.js');
    const policy = await readPolicy(argv.policy, argv.resource);
    const { name, request } = await readRequest(argv.request, argv['request-type']);
    const engine = PolicyEngine.forPolicyText(policy.text, readState(argv.state));
    const res = engine.evaluate(name, request);
    if (argv.output === 'json') {
      process.stdout.write(
        `${JSON.stringify({ allowed: res.allowed, entrypoint: res.entrypoint, ops: res.ops, reason: res.reason }, null, 2)}\n`,
      );
    } else {
      process.stdout.write(
        res.allowed
          ? `allowed${res.ops.length ? ` (state: ${res.ops.map((o) => `${o.op} ${o.path}`).join(', ')})` : ''}\n`
          : `denied: ${res.failures.join('; ')}\n`,
      );
    }
    if (argv['save-state'] && argv.state) writeFileAtomic(argv.state, `${JSON.stringify(engine.pstate, null, 2)}\n`);
    if (!res.allowed) process.exitCode = 1;
  },
};

const diff: CommandModule<object, DiffArgs> = {
  command: 'diff <a> [b]',
  describe:
    'Describe what changed from policy A to policy B, or (--request) which fields of an agent request policy A does not allow (exit 0: same / allowed, 1: different / denied)',
  builder: (y) =>
    outputOption(y, ['text', 'json'], 'text')
      .positional('a', { type: 'string', demandOption: true, describe: 'Old policy (same forms as eval --policy)' })
      .positional('b', { type: 'string', describe: 'New policy' })
      .option('resource-a', { type: 'string', describe: 'Resource holding policy A in a manifest' })
      .option('resource-b', { type: 'string', describe: 'Resource holding policy B in a manifest' })
      .option('request', {
        type: 'string',
        nargs: 1,
        describe: 'Instead of policy B: an agent request JSON to explain against policy A',
      })
      .option('request-type', { type: 'string', describe: 'Request message name (default: the JSON\'s "type" field)' })
      .option('state', { type: 'string', describe: 'JSON file with the agent state (data.pstate) the request meets' })
      .check((a) => {
        if ((a.b === undefined) === (a.request === undefined))
          throw new UsageError('give policy B or --request, not both');
        return true;
      }),
  handler: async (argv) => {
    const [{ PolicyEngine }, { diffPolicies, explainRequest }] = await Promise.all([
      import('../policy/engine.js'),
      import('../policy/diff.js'),
    ]);
    const a = await readPolicy(argv.a, argv['resource-a']);
    const sa = splitPolicyText(a.text);
    if (argv.request !== undefined) {
      const { name, request } = await readRequest(argv.request, argv['request-type']);
      const state =
        argv.state === undefined ? {} : parseJson(readUserText(argv.state, 'the state'), 'state', argv.state);
      const decision = PolicyEngine.forPolicyText(a.text, state).evaluate(name, request);
      const fields = explainRequest(sa.data as never, name, request, state);
      if (argv.output === 'json')
        process.stdout.write(
          `${JSON.stringify({ allowed: decision.allowed, failures: decision.failures, fields }, null, 2)}\n`,
        );
      else {
        process.stdout.write(
          decision.allowed ? `${name} is allowed\n` : `${name} is denied: ${decision.failures.join('; ')}\n`,
        );
        for (const f of fields) process.stdout.write(`  ${f.field}: ${f.message}\n`);
      }
      if (!decision.allowed) process.exitCode = 1;
      return;
    }
    const b = await readPolicy(argv.b!, argv['resource-b']);
    const sb = splitPolicyText(b.text);
    const changes = diffPolicies(sa.rules, sa.data as never, sb.rules, sb.data as never);
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify(changes, null, 2)}\n`);
    else if (changes.length === 0) process.stderr.write('The policies are the same.\n');
    else for (const c of changes) process.stdout.write(`${c.container ? `${c.container}: ` : ''}${c.change}\n`);
    if (changes.length > 0) process.exitCode = 1;
  },
};

const check: CommandModule<object, CheckArgs> = {
  command: 'check [paths..]',
  describe: "Check that each pod's policy allows the requests its runtime will send (sandbox, containers, probes)",
  builder: (y) =>
    imageOptions(outputOption(y, ['text', 'json'], 'text'))
      .positional('paths', {
        type: 'string',
        array: true,
        default: [],
        describe: 'YAML files or directories with generated resources; "-" or nothing for standard input',
      })
      .option('workspace-dir', {
        type: 'string',
        default: '.',
        describe: 'Directory with settings.json (created with the defaults if missing)',
      })
      .option('pause-image', {
        type: 'string',
        describe: 'Pause image the policies were generated with (default: the one this release injects)',
      }),
  handler: async (argv) => {
    const [{ checkCarriedPolicies }, { loadOrCreateSettings }, { INJECTED_IMAGES }] = await Promise.all([
      import('../generate/check.js'),
      import('../policy/settings.js'),
      import('../platforms/images.js'),
    ]);
    const reports = await checkCarriedPolicies(await readInputs(argv.paths), {
      imageResolver: imageResolverFrom(argv),
      settings: loadOrCreateSettings(argv['workspace-dir']),
      pauseImage: argv['pause-image'] ?? INJECTED_IMAGES.pause,
    });
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
    else {
      for (const rep of reports) {
        process.stdout.write(`${rep.resource}: ${rep.allowed ? 'ok' : 'DENIED'}\n`);
        for (const e of rep.entries)
          process.stdout.write(
            `  ${e.allowed ? 'allow' : 'DENY '}  ${e.description}${e.allowed ? '' : `: ${e.reason}`}\n`,
          );
      }
    }
    if (reports.some((r) => !r.allowed)) process.exitCode = 1;
  },
};

export const policyCommand: CommandModule = {
  command: 'policy <command>',
  describe: 'Show, check, evaluate and compare agent policies',
  builder: (y: Argv) =>
    y
      .command(show)
      .command(decode)
      .command(check)
      .command(evalCmd)
      .command(diff)
      .demandCommand(1, 'Name a policy command: show, decode, check, eval or diff.'),
  handler: () => undefined,
};

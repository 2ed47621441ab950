/**
 * The agent-request corpus (test/policy/corpus/, see its README): one directory per kind of
 * pod with the pod YAML, the requests Kata's runtime sends for it (written from the request
 * shapes of Kata's sources, each naming where its shape comes from), and mutated copies that
 * must be denied. One runner for all of them, in the manner of kustomize's frameworktestutil:
 *
 * 1. `generate` (in process, with the corpus images) turns pod.yaml into the confidential
 *    workload; its self-check must pass.
 * 2. The requests are evaluated in order on one engine, as the agent receives them (the state
 *    carries over); each decision must be the expected one, a denial for the expected reason.
 * 3. Every mutation is evaluated against the state its original request saw: it must be denied
 *    for its reason, and `policy diff --request` must name the field it changed.
 * 4. Every decision is replayed through opa and regorus (the agent's engine); all must agree.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { generateFromInputs } from '../../src/generate/pipeline.js';
import type { ImageResolverLike, ResolvedImage } from '../../src/images/types.js';
import { INJECTED_IMAGES } from '../../src/platforms/images.js';
import { explainRequest } from '../../src/policy/diff.js';
import { decodeInitDataAnnotation, INITDATA_ANNOTATION } from '../../src/policy/initdata.js';
import {
  defaultSettings,
  normaliseRequest,
  PolicyEngine,
  splitPolicyText,
  type PolicyData,
} from '../../src/policy/index.js';
import { YAML_PARSE_OPTIONS } from '../../src/resources/stream.js';
import { tempDir } from '../helpers/tmp.js';
import { crossCheck, type Evaluation } from './engines.js';

type Json = Record<string, unknown>;
const CORPUS = new URL('./corpus/', import.meta.url).pathname;

/** Patch operations: RFC 6902 add/remove/replace, plus edit/drop of the list element that matches. */
interface PatchOp {
  op: 'add' | 'remove' | 'replace' | 'edit' | 'drop';
  path: string;
  value?: unknown;
  /** edit/drop: the fields the list element has (exactly one element for edit, at least one for drop). */
  match?: Json;
}

interface CorpusRequest {
  name: string;
  kind: string;
  allowed: boolean;
  /** Where the shape of this request comes from (Kata source path or recorded test case). */
  source: string;
  /** A shape of _shapes/ to start from, or the complete request. */
  shape?: string;
  request?: Json;
  vars?: Record<string, string>;
  patch?: PatchOp[];
  /** For denied requests: a regex of the reason the policy gives. */
  reason?: string;
}

interface Mutation {
  name: string;
  /** The allowed request this one changes. */
  of: string;
  patch: PatchOp[];
  reason: string;
  /** The request field `policy diff --request` must name (a prefix of its path). */
  field: string;
}

interface CaseFile {
  description: string;
  /** Top-level settings.json fields that differ from the defaults. */
  settings?: Json;
  generate?: { injectImageStore?: boolean; skipInitializer?: boolean };
  /** KIND/NAME of the workload the requests go to (default: the only one). */
  workload?: string;
  vars: Record<string, string>;
  requests: CorpusRequest[];
  mutations?: Mutation[];
}

function shape(name: string): Json {
  return JSON.parse(readFileSync(join(CORPUS, '_shapes', `${name}.json`), 'utf8')) as Json;
}

/** Variables may name other variables (`"image": "{{initializer}}"`). */
function resolveVars(vars: Record<string, string>, where: string): Record<string, string> {
  const out = { ...vars };
  for (let round = 0; round < 4; round++) {
    for (const [k, v] of Object.entries(out)) out[k] = substitute(v, out, where, false) as string;
  }
  return out;
}

function substitute(value: unknown, vars: Record<string, string>, where: string, strict = true): unknown {
  if (typeof value === 'string') {
    if (!strict) return value.replace(/\{\{([a-z0-9_-]+)\}\}/gi, (all, k: string) => vars[k] ?? all);
    return value.replace(/\{\{([a-z0-9_-]+)\}\}/gi, (_, k: string) => {
      if (!(k in vars)) throw new Error(`${where}: no value for {{${k}}}`);
      return vars[k]!;
    });
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars, where, strict));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        substitute(k, vars, where, strict) as string,
        substitute(v, vars, where, strict),
      ]),
    );
  }
  return value;
}

function parentOf(doc: unknown, path: string, where: string): { parent: Json | unknown[]; key: string } {
  const parts = path
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let node: unknown = doc;
  for (const p of parts.slice(0, -1)) {
    node = Array.isArray(node) ? node[Number(p)] : (node as Json | undefined)?.[p];
    if (typeof node !== 'object' || node === null) throw new Error(`${where}: ${path} does not exist`);
  }
  return { parent: node as Json | unknown[], key: parts[parts.length - 1]! };
}

function get(doc: unknown, path: string, where: string): unknown {
  if (path === '') return doc;
  const { parent, key } = parentOf(doc, path, where);
  const v = Array.isArray(parent) ? parent[Number(key)] : parent[key];
  if (v === undefined) throw new Error(`${where}: ${path} does not exist`);
  return v;
}

function matches(item: unknown, match: Json): boolean {
  return (
    typeof item === 'object' &&
    item !== null &&
    Object.entries(match).every(([k, v]) => JSON.stringify((item as Json)[k]) === JSON.stringify(v))
  );
}

export function applyPatch(doc: Json, ops: PatchOp[], where: string): Json {
  const out = structuredClone(doc);
  for (const op of ops) {
    const w = `${where} ${op.op} ${op.path}`;
    if (op.op === 'edit' || op.op === 'drop') {
      const list = get(out, op.path, w);
      if (!Array.isArray(list) || !op.match) throw new Error(`${w}: needs a list and "match"`);
      const hits = list.filter((x) => matches(x, op.match!));
      if (op.op === 'edit') {
        if (hits.length !== 1) throw new Error(`${w}: ${hits.length} elements match ${JSON.stringify(op.match)}`);
        Object.assign(hits[0] as Json, op.value as Json);
      } else {
        if (hits.length === 0) throw new Error(`${w}: nothing matches ${JSON.stringify(op.match)}`);
        const keep = list.filter((x) => !hits.includes(x));
        list.splice(0, list.length, ...keep);
      }
      continue;
    }
    const { parent, key } = parentOf(out, op.path, w);
    if (Array.isArray(parent)) {
      const i = key === '-' ? parent.length : Number(key);
      if (op.op === 'add') parent.splice(i, 0, structuredClone(op.value));
      else if (op.op === 'remove') parent.splice(i, 1);
      else parent[i] = structuredClone(op.value);
    } else if (op.op === 'remove') {
      if (!(key in parent)) throw new Error(`${w}: no such key`);
      delete parent[key];
    } else {
      if (op.op === 'replace' && !(key in parent)) throw new Error(`${w}: no such key (use add)`);
      parent[key] = structuredClone(op.value);
    }
  }
  return out;
}

function materialize(r: CorpusRequest, vars: Record<string, string>, where: string): Json {
  const base = r.request ?? (r.shape ? shape(r.shape) : undefined);
  if (!base) throw new Error(`${where}: needs "shape" or "request"`);
  const all = resolveVars({ ...vars, ...r.vars }, where);
  return substitute(applyPatch(base as Json, (r.patch ?? []) as PatchOp[], where), all, where) as Json;
}

/** The corpus images (images.json) plus the images generate injects, under their real references. */
function corpusResolver(): ImageResolverLike {
  const list = JSON.parse(readFileSync(join(CORPUS, 'images.json'), 'utf8')) as (ResolvedImage & {
    injected?: keyof typeof INJECTED_IMAGES;
  })[];
  const byRef = new Map<string, ResolvedImage>();
  for (const image of list) {
    if (image.injected) {
      const ref = INJECTED_IMAGES[image.injected];
      const digest = ref.split('@')[1]!;
      byRef.set(ref, { ...image, reference: ref, pinned: ref, manifestDigest: digest });
    } else {
      byRef.set(image.reference, image);
      byRef.set(image.pinned, image);
    }
  }
  return {
    async resolve(reference: string) {
      const found = byRef.get(reference);
      if (!found) throw new Error(`image ${reference} is not in test/policy/corpus/images.json`);
      return found;
    },
  };
}

function policyOf(yamlText: string, workload: string | undefined, where: string): string {
  const found: { id: string; text: string }[] = [];
  for (const doc of parseAllDocuments(yamlText, YAML_PARSE_OPTIONS)) {
    const o = doc.toJS() as Json | null;
    if (!o || typeof o !== 'object') continue;
    const meta = (o.metadata ?? {}) as Json;
    const spec = (o.spec ?? {}) as Json;
    const template =
      o.kind === 'Pod'
        ? o
        : o.kind === 'CronJob'
          ? (((spec.jobTemplate as Json).spec as Json).template as Json)
          : (spec.template as Json | undefined);
    const annotation = ((template?.metadata as Json | undefined)?.annotations as Json | undefined)?.[
      INITDATA_ANNOTATION
    ];
    if (typeof annotation === 'string')
      found.push({
        id: `${String(o.kind)}/${String(meta.name)}`,
        text: decodeInitDataAnnotation(annotation).init.data['policy.rego'] as string,
      });
  }
  const chosen = workload ? found.filter((f) => f.id === workload) : found;
  if (chosen.length !== 1)
    throw new Error(
      `${where}: ${chosen.length} workloads with a policy (${found.map((f) => f.id).join(', ')}); name one with "workload"`,
    );
  return chosen[0]!.text;
}

const cases = readdirSync(CORPUS, { withFileTypes: true })
  .filter((d) => d.isDirectory() && !d.name.startsWith('_'))
  .map((d) => d.name)
  .sort();
const evaluations: Evaluation[] = [];
const tally = { requests: 0, allowed: 0, denied: 0, kinds: new Set<string>(), pods: 0 };
let keys: { workspace: string } | undefined;

describe('agent request corpus (test/policy/corpus)', function () {
  this.timeout(300_000);
  before(() => {
    keys = { workspace: tempDir('kc-corpus-') };
  });

  for (const name of cases) {
    describe(name, () => {
      const dir = join(CORPUS, name);
      const file = JSON.parse(readFileSync(join(dir, 'requests.json'), 'utf8')) as CaseFile;
      // {{initializer}}: the Initializer reference generate injects (from the image lock).
      file.vars = { initializer: INJECTED_IMAGES.initializer, ...file.vars };
      let policy = '';
      let data: PolicyData;
      const before = new Map<string, { state: Record<string, unknown>; request: Json }>();

      it(`generate accepts pod.yaml (${file.description})`, async () => {
        const settings = { ...defaultSettings(), ...(file.settings ?? {}) };
        writeFileSync(join(keys!.workspace, 'settings.json'), JSON.stringify(settings, null, 2));
        const text = readFileSync(join(dir, 'pod.yaml'), 'utf8');
        const result = await generateFromInputs([{ name: `${name}/pod.yaml`, text }], {
          platform: 'metal-qemu-snp',
          skipInitializer: file.generate?.skipInitializer ?? false,
          workspaceDir: keys!.workspace,
          disableUpdates: true,
          imageResolver: corpusResolver(),
          injectImageStore: file.generate?.injectImageStore,
        });
        policy = policyOf(result.outputs[0]!.text, file.workload, name);
        data = splitPolicyText(policy).data as PolicyData;
        tally.pods += 1;
      });

      it('decides every request as Kata does', () => {
        assert.ok(policy, 'no policy (generate failed)');
        const engine = PolicyEngine.forPolicyText(policy);
        try {
          for (const r of file.requests) {
            const where = `${name}: ${r.name}`;
            assert.ok(r.source, `${where}: says where its shape comes from`);
            const request = materialize(r, file.vars, where);
            const state = structuredClone(engine.pstate);
            before.set(r.name, { state, request });
            const res = engine.evaluate(r.kind, request);
            evaluations.push({
              policy,
              state,
              name: r.kind,
              input: normaliseRequest(r.kind, request),
              allowed: res.allowed,
              ops: res.ops,
              label: where,
            });
            tally.requests += 1;
            tally.kinds.add(r.kind);
            if (res.allowed) tally.allowed += 1;
            else tally.denied += 1;
            assert.equal(
              res.allowed,
              r.allowed,
              `${where}: ${res.allowed ? 'allowed' : `denied (${res.failures.join('; ')})`}, expected ${r.allowed ? 'allowed' : 'denied'}`,
            );
            const fields = explainRequest(data, r.kind, request, state);
            if (!r.allowed) {
              assert.ok(r.reason, `${where}: a denied request names its reason`);
              assert.match(res.failures.join('; '), new RegExp(r.reason), `${where}: denied for another reason`);
              if (!['SetPolicyRequest', 'UpdateContainerRequest'].includes(r.kind))
                assert.ok(fields.length > 0, `${where}: policy diff --request names no field`);
            } else {
              assert.deepEqual(fields, [], `${where}: policy diff --request finds differences in an allowed request`);
            }
          }
        } finally {
          engine.dispose();
        }
      });

      for (const m of file.mutations ?? []) {
        it(`denies the mutation: ${m.name}`, () => {
          const where = `${name}: ${m.name}`;
          const base = before.get(m.of);
          assert.ok(base, `${where}: no request named ${m.of} (or it was not evaluated)`);
          const original = file.requests.find((r) => r.name === m.of)!;
          const request = substitute(
            applyPatch(base.request, m.patch, where),
            resolveVars({ ...file.vars, ...original.vars }, where),
            where,
          ) as Json;
          const baseKind = original.kind;
          const engine = PolicyEngine.forPolicyText(policy, structuredClone(base.state));
          try {
            const res = engine.evaluate(baseKind, request);
            evaluations.push({
              policy,
              state: base.state,
              name: baseKind,
              input: normaliseRequest(baseKind, request),
              allowed: res.allowed,
              ops: res.ops,
              label: where,
            });
            tally.requests += 1;
            tally.kinds.add(baseKind);
            if (res.allowed) tally.allowed += 1;
            else tally.denied += 1;
            assert.equal(res.allowed, false, `${where}: the mutated request was allowed`);
            assert.match(res.failures.join('; '), new RegExp(m.reason), `${where}: denied for another reason`);
            const diffs = explainRequest(data, baseKind, request, base.state);
            assert.ok(
              diffs.some((d) => d.field.startsWith(m.field)),
              `${where}: policy diff --request names ${m.field}; it names ${JSON.stringify(diffs.map((d) => d.field))}`,
            );
          } finally {
            engine.dispose();
          }
        });
      }
    });
  }

  describe('the corpus as a whole', () => {
    it('covers every kind of request with allowed and denied cases', () => {
      assert.ok(tally.requests >= 100, `only ${tally.requests} requests`);
      assert.ok(tally.allowed >= 30 && tally.denied >= 30, `${tally.allowed} allowed, ${tally.denied} denied`);
      for (const k of [
        'CreateSandboxRequest',
        'CreateContainerRequest',
        'ExecProcessRequest',
        'CopyFileRequest',
        'UpdateInterfaceRequest',
        'UpdateRoutesRequest',
        'AddARPNeighborsRequest',
      ]) {
        assert.ok(tally.kinds.has(k), `no ${k} in the corpus`);
      }
    });

    it("opa and regorus (the agent's engine) decide every corpus request like the WebAssembly module", () => {
      assert.equal(evaluations.length, tally.requests);
      const { disagreements, counts } = crossCheck(evaluations);
      assert.deepEqual(disagreements, []);
      assert.equal(counts.regorus, evaluations.length);
      assert.equal(counts.opa, evaluations.length);
    });
  });
});

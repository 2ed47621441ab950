/**
 * `generate`: read resources, rewrite every confidential workload, compute its policy, and
 * produce the new resources plus `manifest.json`. Everything is computed in memory first;
 * files are written (atomically, src/generate/write.ts) only when the whole run succeeded.
 */
import { UserError, locate, throwAll } from '../util/errors.js';
import { Diagnostics, type Warn } from '../util/diagnostics.js';
import { isPlainObject } from '../util/values.js';
import { readInputs, type InputFile } from '../resources/inputs.js';
import { serializeStream, type ParsedStream, type StreamDocument } from '../resources/stream.js';
import { applyAt } from '../resources/patch.js';
import {
  claimTemplateNames,
  podTemplateOf,
  workloadRef,
  type Resource,
  type WorkloadRef,
} from '../workloads/resource.js';
import { fieldPath, workloadKind, WORKLOAD_KINDS } from '../workloads/kinds.js';
import { parseRuntimeClassName, platformIds, requirePlatform, type Platform } from '../platforms/platforms.js';
import { INJECTED_IMAGES, loadImageReplacements, replaceImage, type ImageReplacements } from '../platforms/images.js';
import { isCoordinatorTemplate, transformPodTemplate, type TransformedTemplate } from '../transforms/workload.js';
import { ANNOTATIONS, POD_TEMPLATE_ANNOTATIONS } from '../transforms/annotations.js';
import { annotationsOf, setAnnotation } from '../transforms/pod.js';
import { encodePolicyInBackground, INITDATA_ANNOTATION } from '../policy/initdata.js';
import type { ImageResolverLike } from '../images/types.js';
import type { Manifest, PolicyEntry } from '../coordinator/manifest.js';
import { defaultWorkloadSecretId } from './workload-secret.js';
import { allResources, contrastRuntimeClassField, envSourcesNamed, parseInput, type ParsedInput } from './read-step.js';
import {
  buildPodPolicy,
  envSourceNames,
  ownPolicyDenial,
  policyContext,
  policyInput,
  readSettings,
} from './policy-step.js';
import { imageLookup, imagesOf, pinImages, resolveImages } from './image-step.js';
import { buildManifest, type ManifestOptions } from './manifest-step.js';
import { selfChecker, type SelfChecker } from './self-check.js';
import { synthesizeRequests } from '../policy/index.js';

/** What `generate` does; every field says what happens when it is unset. */
export interface GenerateOptions extends ManifestOptions {
  /** Platform for workloads that ask for plain `contrast-cc`. Unset: such a workload is an error. */
  platform?: string;
  /** No Initializer in any workload. Unset: false (per workload: annotation skip-initializer). */
  skipInitializer?: boolean;
  /** No service-mesh sidecar in any workload, whatever its annotations say. Unset: false. */
  skipServiceMesh?: boolean;
  /** The policy settings file. Unset: `<workspaceDir>/settings.json`, the defaults while it does not exist. */
  settingsPath?: string;
  /** File of `source=target` lines that replace images. Unset: images as written. */
  imageReplacementsFile?: string;
  /** Address the Initializer dials. Unset: `coordinator-ready.<namespace of the Coordinator in the inputs>`, else `coordinator-ready` (the pod's own namespace), with a warning where that is a guess. */
  coordinatorHost?: string;
  /** Resolves workload images to digests, configs and passwd/group for the policies. */
  imageResolver: ImageResolverLike;
  /**
   * Annotations that the tool running us adds and removes again (Helm's post-render file name,
   * kustomize's bookkeeping): they never reach the pod, so they stay out of its policy.
   * Unset: every annotation counts.
   */
  transientAnnotation?: (key: string) => boolean;
  /** Give every confidential workload an image store (annotation image-store-size: size, "0": none). Unset: false. */
  injectImageStore?: boolean;
  /** Run the self-check on a worker thread (src/generate/self-check.ts). Unset: from WORKER_MIN_PODS pods on, where a worker can start. */
  selfCheckWorker?: boolean;
}

/** A confidential workload as found in the input, before anything is changed. */
interface FoundWorkload {
  resource: Resource;
  stream: ParsedStream;
  documentIndex: number;
  ref: WorkloadRef;
  platform: Platform;
  isCoordinator: boolean;
  templatePath: readonly string[];
}

/** A confidential workload with its rewritten pod template. */
export interface TransformedWorkload extends FoundWorkload {
  template: TransformedTemplate;
}

/** A confidential workload with its policy attached. */
export interface ConfidentialWorkload extends TransformedWorkload {
  policyHash: string;
}

export interface GenerateResult {
  /** One entry per input, with the new text (unchanged inputs have `changed: false`). */
  outputs: { input: InputFile; text: string; changed: boolean }[];
  manifest: Manifest;
  manifestChanged: boolean;
  workloads: ConfidentialWorkload[];
  diagnostics: Diagnostics;
}

/** `generate` over files, directories or "-" (standard input). */
export async function generate(
  paths: string[],
  options: GenerateOptions,
  diagnostics = new Diagnostics(),
): Promise<GenerateResult> {
  const inputs = await readInputs(paths, diagnostics.warn);
  refuseEmptyInput(inputs, paths);
  return generateFromInputs(inputs, options, diagnostics);
}

/** Only comments, blank lines and document markers. */
const NO_DOCUMENTS = /^(?:[ \t]*(?:#.*|---|\.\.\.)?[ \t]*(?:\r?\n|$))*$/;

/**
 * Nothing to read is a mistake (a forgotten pipe, a wrong directory), not a deployment without
 * workloads: manifest.json would be rewritten with no policies. The post-renderers refuse an
 * empty stream for the same reason.
 */
function refuseEmptyInput(inputs: InputFile[], paths: string[]): void {
  if (inputs.length === 0) {
    throw new UserError(
      `no *.yaml or *.yml files found in ${paths.join(', ')}: nothing to transform, nothing written`,
      {},
      { hint: 'name the files or directories that hold the resources' },
    );
  }
  const stdin = inputs.find((i) => i.path === undefined);
  if (stdin && NO_DOCUMENTS.test(stdin.text)) {
    throw new UserError(
      'standard input is empty: nothing to transform, nothing written',
      { file: stdin.name },
      {
        hint: 'pipe the resources in (`helm template my-app ./chart | kubectl contrast generate -`) or name files and directories',
      },
    );
  }
}

export async function generateFromInputs(
  inputs: InputFile[],
  options: GenerateOptions,
  diagnostics = new Diagnostics(),
): Promise<GenerateResult> {
  const defaultPlatform = options.platform === undefined ? undefined : requirePlatform(options.platform);
  const replacements = loadImageReplacements(options.imageReplacementsFile);
  const parsed = inputs.map(parseInput);

  const found = findConfidentialWorkloads(parsed, defaultPlatform);
  warnMisplacedAnnotations(parsed, diagnostics.warn);
  warnUnknownKindTemplates(parsed, diagnostics.warn);
  const coordinatorHost =
    options.coordinatorHost ??
    defaultCoordinatorHost(found, options.skipInitializer === true ? () => undefined : diagnostics.warn);

  const transformed = found.map((w): TransformedWorkload => ({
    ...w,
    template: transformPodTemplate(
      podTemplateOf(w.resource)!,
      {
        platform: w.platform,
        skipInitializer: options.skipInitializer === true,
        skipServiceMesh: options.skipServiceMesh === true,
        coordinatorHost,
        images: { initializer: INJECTED_IMAGES.initializer, serviceMesh: INJECTED_IMAGES.serviceMesh },
        replacements,
        injectImageStore: options.injectImageStore === true,
        claimTemplates: claimTemplateNames(w.resource.object),
      },
      w.resource.location,
    ),
  }));

  const { workloads, policies } =
    transformed.length === 0
      ? { workloads: [], policies: {} }
      : await attachPolicies(parsed, transformed, options, replacements, diagnostics.warn);

  const { manifest, changed: manifestChanged } = buildManifest(
    options,
    policies,
    workloads.map((w) => w.platform),
    diagnostics.warn,
  );
  const outputs = parsed.map((p) => {
    const text = serializeStream(p.stream);
    return { input: p.input, text, changed: text !== p.input.text };
  });
  return { outputs, manifest, manifestChanged, workloads, diagnostics };
}

/** Resolve and pin the images, then compute, check and attach each workload's policy. */
async function attachPolicies(
  parsed: ParsedInput[],
  transformed: TransformedWorkload[],
  options: GenerateOptions,
  replacements: ImageReplacements,
  warn: Warn,
): Promise<{ workloads: ConfidentialWorkload[]; policies: Record<string, PolicyEntry> }> {
  // Started first: the worker's start overlaps resolving the images.
  const checker = selfChecker(transformed.length, options.selfCheckWorker);
  try {
    return await policiesOf(parsed, transformed, options, replacements, warn, checker);
  } finally {
    await checker.close();
  }
}

/** attachPolicies with its self-checker, which the caller closes. */
async function policiesOf(
  parsed: ParsedInput[],
  transformed: TransformedWorkload[],
  options: GenerateOptions,
  replacements: ImageReplacements,
  warn: Warn,
  checker: SelfChecker,
): Promise<{ workloads: ConfidentialWorkload[]; policies: Record<string, PolicyEntry> }> {
  const pauseRef = replaceImage(INJECTED_IMAGES.pause, replacements);
  const images = await resolveImages(options.imageResolver, [
    pauseRef,
    ...transformed.flatMap((w) => imagesOf(w.template.spec)),
  ]);
  for (const w of transformed) pinImages(w.template.spec, images);

  const ctx = policyContext(
    envSourcesNamed(parsed, envSourceNames(transformed.map((w) => w.template.spec))),
    imageLookup(images),
    pauseRef,
    readSettings(options.workspaceDir, options.settingsPath),
  );
  const policies: Record<string, PolicyEntry> = {};
  const workloads = [];
  // Every workload's problems at once (a chart's securityContexts are fixed in one pass).
  const problems: UserError[] = [];
  // The initdata annotations, gzipped in the background (see encodePolicyInBackground).
  const pending: { w: TransformedWorkload; annotation: Promise<string> }[] = [];
  // The self-checks, in workload order, each settled to its error (none: the pod is admitted).
  const checks: Promise<Error | undefined>[] = [];
  for (const w of transformed) {
    const input = policyInput(
      w.ref,
      w.resource,
      { metadata: withoutAnnotations(w.template.metadata, options.transientAnnotation), spec: w.template.spec },
      ctx,
    );
    let built;
    try {
      built = buildPodPolicy(input, w.resource.location);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      problems.push(err);
      continue;
    }
    if (problems.length > 0) continue;
    const { pod, text } = built;
    const location = w.resource.location;
    checks.push(
      checker.check(text, synthesizeRequests(input, pod)).then(
        (report) => ownPolicyDenial(report, location),
        (err: Error) => err,
      ),
    );
    const encoded = encodePolicyInBackground(text);
    pending.push({ w, annotation: encoded.annotation });
    // Let finished gzip jobs hand back their result (and free their zlib state).
    await new Promise<void>((resolve) => setImmediate(resolve));
    const existing = policies[encoded.hash];
    const entry = manifestEntry(w);
    if (existing && existing.WorkloadSecretID !== entry.WorkloadSecretID) {
      // Two workloads with byte-identical policies share one manifest entry; upstream does the same.
      warn(
        `has the same policy as workload secret ID ${existing.WorkloadSecretID}; they share a manifest entry`,
        w.resource.location,
      );
    }
    policies[encoded.hash] = existing ? mergeEntries(existing, entry) : entry;
    workloads.push({ ...w, policyHash: encoded.hash });
  }
  const denial = (await Promise.all(checks)).find((e) => e !== undefined);
  if (denial) throw denial;
  const annotations = await Promise.all(pending.map((p) => p.annotation));
  throwAll(problems, 'workloads need changes');
  // A document is settled (serialised, its tree let go) once its last workload is written back.
  const left = new Map<StreamDocument, number>();
  for (const { w } of pending) {
    const doc = documentOf(w);
    left.set(doc, (left.get(doc) ?? 0) + 1);
  }
  pending.forEach(({ w }, i) => {
    setAnnotation(w.template.metadata, INITDATA_ANNOTATION, annotations[i]!);
    writeBack(w);
    const doc = documentOf(w);
    const n = left.get(doc)! - 1;
    left.set(doc, n);
    if (n === 0) doc.settle();
  });
  return { workloads, policies };
}

function withoutAnnotations(
  metadata: Record<string, unknown>,
  drop: ((key: string) => boolean) | undefined,
): Record<string, unknown> {
  if (!drop || !isPlainObject(metadata.annotations)) return metadata;
  const annotations = Object.fromEntries(Object.entries(metadata.annotations).filter(([k]) => !drop(k)));
  return { ...metadata, annotations };
}

function findConfidentialWorkloads(parsed: ParsedInput[], defaultPlatform: Platform | undefined): FoundWorkload[] {
  const found: FoundWorkload[] = [];
  for (const p of parsed) {
    for (const { documentIndex, resource } of p.resources) {
      const template = podTemplateOf(resource);
      if (!template) continue;
      const meaning = parseRuntimeClassName(template.spec.runtimeClassName);
      const field = fieldPath([...resource.path, ...template.path, 'spec', 'runtimeClassName']);
      let platform: Platform;
      switch (meaning.type) {
        case 'not-confidential':
          continue;
        case 'unknown':
          throw new UserError(meaning.reason, { ...resource.location, field });
        case 'generic':
          if (!defaultPlatform) {
            throw new UserError(
              `runtimeClassName "contrast-cc" needs a platform: pass --platform (one of ${platformIds().join(', ')}) or use contrast-cc-<platform>`,
              { ...resource.location, field },
            );
          }
          platform = defaultPlatform;
          break;
        default:
          platform = meaning.platform;
      }
      let isCoordinator: boolean;
      try {
        isCoordinator = isCoordinatorTemplate(
          template.metadata,
          fieldPath([...resource.path, ...template.path, 'metadata']),
        );
      } catch (err) {
        throw locate(err, resource.location);
      }
      found.push({
        resource,
        stream: p.stream,
        documentIndex,
        ref: workloadRef(resource),
        platform,
        isCoordinator,
        templatePath: template.path,
      });
    }
  }
  checkDuplicateWorkloads(found);
  return found;
}

function checkDuplicateWorkloads(workloads: FoundWorkload[]): void {
  const seen = new Map<string, FoundWorkload>();
  for (const w of workloads) {
    const key = `${w.ref.kind}/${w.ref.namespace}/${w.ref.name}`;
    const other = seen.get(key);
    if (other) {
      throw new UserError(
        `the same workload is defined twice (also in ${other.resource.location.file}, document ${other.resource.location.document})`,
        w.resource.location,
      );
    }
    seen.set(key, w);
  }
}

/** Upstream reads Contrast annotations only from the pod template; say so instead of ignoring them. */
function warnMisplacedAnnotations(parsed: ParsedInput[], warn: Warn): void {
  for (const resource of allResources(parsed)) {
    const template = podTemplateOf(resource);
    if (!template || template.path.length === 0) continue;
    const meta = resource.object.metadata;
    if (!isPlainObject(meta)) continue;
    let top: Record<string, string>;
    let inTemplate: Record<string, string>;
    try {
      top = annotationsOf(meta);
      inTemplate = annotationsOf(template.metadata, fieldPath([...template.path, 'metadata']));
    } catch (err) {
      throw locate(err, resource.location);
    }
    for (const key of POD_TEMPLATE_ANNOTATIONS) {
      if (key in top && !(key in inTemplate)) {
        warn(
          `annotation ${key} is on the ${String(resource.object.kind)} metadata and has no effect; move it to ${fieldPath([...template.path, 'metadata', 'annotations'])}`,
          resource.location,
        );
      }
    }
  }
}

/** The namespace written in the resource itself; undefined when `kubectl apply -n` / `helm -n` decides. */
function writtenNamespace(w: FoundWorkload): string | undefined {
  const meta = w.resource.object.metadata;
  return isPlainObject(meta) && typeof meta.namespace === 'string' && meta.namespace !== ''
    ? meta.namespace
    : undefined;
}

/**
 * What the Initializers dial. The Coordinator's namespace when the input has the Coordinator
 * with one (as upstream); otherwise the short name, which resolves in the pod's own namespace,
 * where `kubectl apply -n`, `helm install -n` or `kustomize` put the workloads and (usually) the
 * Coordinator. Upstream falls back to coordinator-ready.default, which breaks every release
 * installed elsewhere. Where the short name is a guess, a warning says so.
 */
function defaultCoordinatorHost(workloads: FoundWorkload[], warn: Warn): string {
  const coordinator = workloads.find((w) => w.isCoordinator);
  const coordinatorNamespace = coordinator ? writtenNamespace(coordinator) : undefined;
  if (coordinatorNamespace !== undefined) return `coordinator-ready.${coordinatorNamespace}`;
  const others = workloads.filter((w) => !w.isCoordinator);
  const namespaces = [...new Set(others.map(writtenNamespace).filter((n): n is string => n !== undefined))].sort();
  if (others.length > 0 && !coordinator) {
    const where =
      namespaces.length > 0
        ? ` (${namespaces.join(', ')}${others.some((w) => writtenNamespace(w) === undefined) ? ', and the namespace they are applied to' : ''})`
        : '';
    warn(
      `no Coordinator among the inputs: the Initializers dial coordinator-ready in their own namespace${where}; if the Coordinator runs in another namespace, pass --coordinator-host coordinator-ready.<its namespace>`,
    );
  } else if (coordinator && namespaces.length > 0) {
    warn(
      `the Coordinator has no namespace, so the Initializers dial coordinator-ready in their own namespace, but workloads name namespace(s) ${namespaces.join(', ')}: give the Coordinator its namespace (metadata.namespace) or pass --coordinator-host coordinator-ready.<its namespace>`,
      coordinator.resource.location,
    );
  }
  return 'coordinator-ready';
}

/**
 * A pod template with a Contrast runtime class in a kind we do not transform (an Argo Rollout,
 * a Knative Service, …) is left as it is, and its pods would not start (there is no RuntimeClass
 * `contrast-cc`): say so instead of passing it through silently.
 */
function warnUnknownKindTemplates(parsed: ParsedInput[], warn: Warn): void {
  for (const resource of allResources(parsed)) {
    if (podTemplateOf(resource) !== undefined || workloadKind(resource.object.kind) !== undefined) continue;
    const found = contrastRuntimeClassField(resource.object, [], 0);
    if (found === undefined) continue;
    const kind = String(resource.object.kind);
    const hint =
      kind === 'Rollout'
        ? 'point the Rollout at a Deployment (spec.workloadRef), which generate transforms'
        : 'put the pod template into a Deployment, StatefulSet, DaemonSet, Job or another kind generate transforms';
    warn(
      `${kind} is not a workload kind kubectl-contrast transforms (${WORKLOAD_KINDS.map((k) => k.kind).join(', ')}), so its pod template with runtimeClassName "${found.value}" at ${fieldPath(found.path)} is left as it is: no Initializer, no policy, and no RuntimeClass of that name for its pods; ${hint}`,
      resource.location,
    );
  }
}

function manifestEntry(w: TransformedWorkload): PolicyEntry {
  const custom = annotationsOf(w.template.metadata)[ANNOTATIONS.workloadSecretId];
  const entry: PolicyEntry = { SANs: [w.ref.name, '*'], WorkloadSecretID: custom || defaultWorkloadSecretId(w.ref) };
  if (w.isCoordinator) entry.Role = 'coordinator';
  return entry;
}

function mergeEntries(a: PolicyEntry, b: PolicyEntry): PolicyEntry {
  return { ...a, SANs: [...new Set([...a.SANs, ...b.SANs])] };
}

function documentOf(w: TransformedWorkload): StreamDocument {
  return w.stream.documents[w.documentIndex - 1]!;
}

/** Put the transformed pod template back into the document's syntax tree. */
function writeBack(w: TransformedWorkload): void {
  const doc = documentOf(w);
  const base = [...w.resource.path, ...w.templatePath];
  const changedMeta = applyAt(doc.doc, [...base, 'metadata'], w.template.metadata);
  const changedSpec = applyAt(doc.doc, [...base, 'spec'], w.template.spec);
  if (changedMeta || changedSpec) doc.changed = true;
}

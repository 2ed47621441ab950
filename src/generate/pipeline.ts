/**
 * `generate`: read manifests, rewrite every confidential workload, compute its policy, and
 * produce the new manifests plus `manifest.json`. Everything is computed in memory first;
 * files are written (atomically) only when the whole run succeeded.
 */
import { UserError, type InputLocation } from '../util/errors.js';
import { readInputs, type InputFile } from '../manifests/inputs.js';
import { documentValue, parseStream, serializeStream, type ParsedStream } from '../manifests/stream.js';
import { applyAt, isPlainObject } from '../manifests/patch.js';
import { claimTemplateNames, podTemplateOf, resourcesOf, workloadRef, type Resource, type WorkloadRef } from '../workloads/resource.js';
import { fieldPath } from '../workloads/kinds.js';
import { parseRuntimeClassName, platformIds, requirePlatform, type Platform } from '../platforms/platforms.js';
import { INJECTED_IMAGES, loadImageReplacements, type ImageReplacements } from '../platforms/images.js';
import { isCoordinatorTemplate, transformPodTemplate, type TransformedTemplate } from '../transforms/workload.js';
import { ANNOTATIONS, POD_TEMPLATE_ANNOTATIONS } from '../transforms/annotations.js';
import { annotationsOf, setAnnotation } from '../transforms/pod.js';
import { encodePolicy, INITDATA_ANNOTATION } from '../policy/initdata.js';
import { Diagnostics } from './diagnostics.js';
import { defaultWorkloadSecretId } from './workload-secret.js';
import { buildPodPolicy, checkOwnPolicy, policyInput, readSettings, type PolicyContext } from './policy-step.js';
import { imageLookup, imagesOf, pinImages, resolveImages } from './image-step.js';
import type { ImageResolverLike } from '../images/types.js';
import { replaceImage } from '../platforms/images.js';
import { buildManifest, type ManifestOptions } from './manifest-step.js';
import type { Manifest, PolicyEntry } from '../workspace/manifest.js';

export interface GenerateOptions extends ManifestOptions {
  inputs: string[];
  /** Platform for workloads that ask for plain `contrast-cc`. */
  platform?: string;
  skipInitializer: boolean;
  imageReplacementsFile?: string;
  /** Overrides `coordinator-ready.<namespace of the Coordinator>`. */
  coordinatorHost?: string;
  /** Resolves workload images to digests, configs and passwd/group for the policies. */
  imageResolver: ImageResolverLike;
  /**
   * Annotations that the tool running us adds and removes again (Helm's post-render file name,
   * kustomize's bookkeeping): they never reach the pod, so they stay out of its policy.
   */
  transientAnnotation?: (key: string) => boolean;
  /** Give every confidential workload an image store (annotation image-store-size: size, "0": none). */
  injectImageStore?: boolean;
}

export interface ConfidentialWorkload {
  resource: Resource;
  stream: ParsedStream;
  documentIndex: number;
  ref: WorkloadRef;
  platform: Platform;
  isCoordinator: boolean;
  template: TransformedTemplate;
  templatePath: readonly string[];
  policyHash?: string;
}

export interface GenerateResult {
  /** One entry per input, with the new text (unchanged inputs have `changed: false`). */
  outputs: { input: InputFile; text: string; changed: boolean }[];
  manifest: Manifest;
  manifestChanged: boolean;
  workloads: ConfidentialWorkload[];
  diagnostics: Diagnostics;
}

interface ParsedInput {
  input: InputFile;
  stream: ParsedStream;
  resources: { documentIndex: number; resource: Resource }[];
}

export async function generate(options: GenerateOptions, diagnostics = new Diagnostics()): Promise<GenerateResult> {
  const inputs = await readInputs(options.inputs);
  return generateFromInputs(inputs, options, diagnostics);
}

export async function generateFromInputs(inputs: InputFile[], options: GenerateOptions, diagnostics = new Diagnostics()): Promise<GenerateResult> {
  const defaultPlatform = options.platform === undefined ? undefined : requirePlatform(options.platform);
  const replacements = loadImageReplacements(options.imageReplacementsFile);
  const parsed = inputs.map(parseInput);

  const workloads = findConfidentialWorkloads(parsed, defaultPlatform);
  warnMisplacedAnnotations(parsed, diagnostics);
  const coordinatorHost = options.coordinatorHost ?? defaultCoordinatorHost(workloads);

  for (const w of workloads) {
    const template = podTemplateOf(w.resource)!;
    w.template = transformPodTemplate(template, {
      platform: w.platform,
      skipInitializer: options.skipInitializer,
      coordinatorHost,
      images: { initializer: INJECTED_IMAGES.initializer, serviceMesh: INJECTED_IMAGES.serviceMesh },
      replacements,
      injectImageStore: options.injectImageStore,
      claimTemplates: claimTemplateNames(w.resource.object),
    }, w.resource.location);
  }

  const policies = workloads.length === 0 ? {} : await computePolicies(parsed, workloads, options, replacements, diagnostics);

  const { manifest, changed: manifestChanged } = buildManifest(options, policies, workloads.map((w) => w.platform), diagnostics);
  const outputs = parsed.map((p) => {
    const text = serializeStream(p.stream);
    return { input: p.input, text, changed: text !== p.input.text };
  });
  return { outputs, manifest, manifestChanged, workloads, diagnostics };
}

/** Resolve and pin the images, then compute, check and attach each workload's policy. */
async function computePolicies(parsed: ParsedInput[], workloads: ConfidentialWorkload[], options: GenerateOptions, replacements: ImageReplacements, diagnostics: Diagnostics): Promise<Record<string, PolicyEntry>> {
  const pauseRef = replaceImage(INJECTED_IMAGES.pause, replacements);
  const images = await resolveImages(options.imageResolver, [pauseRef, ...workloads.flatMap((w) => imagesOf(w.template.spec))]);
  for (const w of workloads) {
    try {
      pinImages(w.template.spec, images);
    } catch (err) {
      throw err instanceof UserError ? err.withLocation(w.resource.location) : err;
    }
  }

  const lookup = imageLookup(images);
  const ctx: PolicyContext = {
    image: lookup,
    pauseImage: lookup(pauseRef),
    configMaps: objectsOfKind(parsed, 'ConfigMap'),
    secrets: objectsOfKind(parsed, 'Secret'),
    settings: readSettings(options.workspaceDir),
  };
  const policies: Record<string, PolicyEntry> = {};
  for (const w of workloads) {
    const input = policyInput(w.ref, withoutAnnotations(w.template.metadata, options.transientAnnotation), w.template.spec, ctx, claimTemplateNames(w.resource.object));
    const { pod, text } = buildPodPolicy(input, w.resource.location);
    await checkOwnPolicy(text, input, pod, w.resource.location);
    const encoded = encodePolicy(text);
    setAnnotation(w.template.metadata, INITDATA_ANNOTATION, encoded.annotation);
    w.policyHash = encoded.hash;
    const existing = policies[encoded.hash];
    const entry = manifestEntry(w);
    if (existing && existing.WorkloadSecretID !== entry.WorkloadSecretID) {
      // Two workloads with byte-identical policies share one manifest entry; upstream does the same.
      diagnostics.warn(`has the same policy as workload secret ID ${existing.WorkloadSecretID}; they share a manifest entry`, w.resource.location);
    }
    policies[encoded.hash] = existing ? mergeEntries(existing, entry) : entry;
    writeBack(w);
  }

  return policies;
}

function withoutAnnotations(metadata: Record<string, unknown>, drop: ((key: string) => boolean) | undefined): Record<string, unknown> {
  if (!drop || !isPlainObject(metadata.annotations)) return metadata;
  const annotations = Object.fromEntries(Object.entries(metadata.annotations).filter(([k]) => !drop(k)));
  return { ...metadata, annotations };
}

function objectsOfKind(parsed: ParsedInput[], kind: string): Record<string, unknown>[] {
  return parsed.flatMap((p) => p.resources.filter((r) => r.resource.object.kind === kind).map((r) => r.resource.object));
}

function parseInput(input: InputFile): ParsedInput {
  const stream = parseStream(input.name, input.text);
  const resources = stream.documents.flatMap((d) => {
    const location: InputLocation = { file: input.name, document: d.index };
    const value = documentValue(d.doc, { file: input.name, document: d.index });
    return resourcesOf(value, location).map((resource) => ({ documentIndex: d.index, resource }));
  });
  return { input, stream, resources };
}

function findConfidentialWorkloads(parsed: ParsedInput[], defaultPlatform: Platform | undefined): ConfidentialWorkload[] {
  const found: ConfidentialWorkload[] = [];
  for (const p of parsed) {
    for (const { documentIndex, resource } of p.resources) {
      const template = podTemplateOf(resource);
      if (!template) continue;
      const meaning = parseRuntimeClassName(template.spec.runtimeClassName);
      const field = fieldPath([...resource.path, ...template.path, 'spec', 'runtimeClassName']);
      let platform: Platform;
      switch (meaning.type) {
        case 'not-confidential': continue;
        case 'unknown': throw new UserError(meaning.reason, { ...resource.location, field });
        case 'generic':
          if (!defaultPlatform) {
            throw new UserError(`runtimeClassName "contrast-cc" needs a platform: pass --platform (one of ${platformIds().join(', ')}) or use contrast-cc-<platform>`, { ...resource.location, field });
          }
          platform = defaultPlatform;
          break;
        default:
          platform = meaning.platform;
      }
      let isCoordinator: boolean;
      try {
        isCoordinator = isCoordinatorTemplate(template.metadata, fieldPath([...resource.path, ...template.path, 'metadata']));
      } catch (err) {
        throw err instanceof UserError ? err.withLocation(resource.location) : err;
      }
      found.push({
        resource, stream: p.stream, documentIndex, ref: workloadRef(resource), platform, isCoordinator,
        template: undefined as unknown as TransformedTemplate, templatePath: template.path,
      });
    }
  }
  checkDuplicateWorkloads(found);
  return found;
}

function checkDuplicateWorkloads(workloads: ConfidentialWorkload[]): void {
  const seen = new Map<string, ConfidentialWorkload>();
  for (const w of workloads) {
    const key = `${w.ref.kind}/${w.ref.namespace}/${w.ref.name}`;
    const other = seen.get(key);
    if (other) {
      throw new UserError(`the same workload is defined twice (also in ${other.resource.location.file}, document ${other.resource.location.document})`, w.resource.location);
    }
    seen.set(key, w);
  }
}

/** Upstream reads Contrast annotations only from the pod template; say so instead of ignoring them. */
function warnMisplacedAnnotations(parsed: ParsedInput[], diagnostics: Diagnostics): void {
  for (const p of parsed) {
    for (const { resource } of p.resources) {
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
        throw err instanceof UserError ? err.withLocation(resource.location) : err;
      }
      for (const key of POD_TEMPLATE_ANNOTATIONS) {
        if (key in top && !(key in inTemplate)) {
          diagnostics.warn(`annotation ${key} is on the ${String(resource.object.kind)} metadata and has no effect; move it to ${fieldPath([...template.path, 'metadata', 'annotations'])}`, resource.location);
        }
      }
    }
  }
}

function defaultCoordinatorHost(workloads: ConfidentialWorkload[]): string {
  const coordinator = workloads.find((w) => w.isCoordinator);
  return `coordinator-ready.${coordinator?.ref.namespace ?? 'default'}`;
}

function manifestEntry(w: ConfidentialWorkload): PolicyEntry {
  const custom = annotationsOf(w.template.metadata)[ANNOTATIONS.workloadSecretId];
  const entry: PolicyEntry = { SANs: [w.ref.name, '*'], WorkloadSecretID: custom || defaultWorkloadSecretId(w.ref) };
  if (w.isCoordinator) entry.Role = 'coordinator';
  return entry;
}

function mergeEntries(a: PolicyEntry, b: PolicyEntry): PolicyEntry {
  return { ...a, SANs: [...new Set([...a.SANs, ...b.SANs])] };
}

/** Put the transformed pod template back into the document's syntax tree. */
function writeBack(w: ConfidentialWorkload): void {
  const doc = w.stream.documents[w.documentIndex - 1]!;
  const base = [...w.resource.path, ...w.templatePath];
  const changedMeta = applyAt(doc.doc, [...base, 'metadata'], w.template.metadata);
  const changedSpec = applyAt(doc.doc, [...base, 'spec'], w.template.spec);
  if (changedMeta || changedSpec) doc.changed = true;
}

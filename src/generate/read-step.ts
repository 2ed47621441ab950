/**
 * Parses each input into its editable YAML stream and the resources `generate` works on. A
 * stream can be far larger than what is done with it (a chart of thousands of ConfigMaps), so
 * only the workloads stay in memory as values, and only the confidential ones as syntax trees;
 * ConfigMaps and Secrets are read again from their document when a pod refers to them.
 */
import type { InputFile } from '../resources/inputs.js';
import { parseStream, type ParsedStream, type StreamDocument } from '../resources/stream.js';
import { parseRuntimeClassName } from '../platforms/platforms.js';
import { isPlainObject } from '../util/values.js';
import { workloadKind } from '../workloads/kinds.js';
import { podTemplateOf, resourcesOf, type KubeObject, type Resource } from '../workloads/resource.js';

/** Where a ConfigMap or Secret is, to read its value when a pod refers to it by name. */
interface EnvSourceRef {
  kind: 'ConfigMap' | 'Secret';
  name: unknown;
  documentIndex: number;
  path: string;
}

export interface ParsedInput {
  input: InputFile;
  stream: ParsedStream;
  /** Workloads (kinds with a pod template) and other resources that name a Contrast runtime class. */
  resources: { documentIndex: number; resource: Resource }[];
  envSources: EnvSourceRef[];
}

export function parseInput(input: InputFile): ParsedInput {
  const resources: ParsedInput['resources'] = [];
  const envSources: EnvSourceRef[] = [];
  const stream = parseStream(input.name, input.text, (d) => {
    let keepTree = false;
    for (const resource of resourcesOfDocument(input.name, d)) {
      const kind = resource.object.kind;
      if (kind === 'ConfigMap' || kind === 'Secret') {
        const meta = resource.object.metadata;
        const name = isPlainObject(meta) ? meta.name : undefined;
        envSources.push({ kind, name, documentIndex: d.index, path: resource.path.join('.') });
      } else if (workloadKind(kind) !== undefined) {
        resources.push({ documentIndex: d.index, resource });
        keepTree ||= mayBeEdited(resource);
      } else if (contrastRuntimeClassField(resource.object, [], 0) !== undefined) {
        resources.push({ documentIndex: d.index, resource });
      }
    }
    return keepTree;
  });
  return { input, stream, resources, envSources };
}

function resourcesOfDocument(file: string, d: StreamDocument): Resource[] {
  const location = { file, document: d.index };
  return resourcesOf(d.value(), location);
}

/** A workload that asks for a Contrast runtime class (or whose template is odd: it is looked at again). */
function mayBeEdited(resource: Resource): boolean {
  try {
    const template = podTemplateOf(resource);
    return template !== undefined && parseRuntimeClassName(template.spec.runtimeClassName).type !== 'not-confidential';
  } catch {
    return true;
  }
}

/** Every workload (and resource naming a Contrast runtime class) of the inputs, in order. */
export function allResources(parsed: readonly ParsedInput[]): Resource[] {
  return parsed.flatMap((p) => p.resources.map((r) => r.resource));
}

/** The ConfigMaps and Secrets of the inputs with one of these names, in stream order. */
export function envSourcesNamed(
  parsed: readonly ParsedInput[],
  names: { configMaps: ReadonlySet<string>; secrets: ReadonlySet<string> },
): { configMaps: KubeObject[]; secrets: KubeObject[] } {
  const out = { configMaps: [] as KubeObject[], secrets: [] as KubeObject[] };
  for (const p of parsed) {
    let cached: { index: number; resources: Resource[] } | undefined;
    for (const ref of p.envSources) {
      const wanted = ref.kind === 'ConfigMap' ? names.configMaps : names.secrets;
      if (typeof ref.name !== 'string' || !wanted.has(ref.name)) continue;
      if (cached?.index !== ref.documentIndex) {
        const d = p.stream.documents[ref.documentIndex - 1]!;
        cached = { index: ref.documentIndex, resources: resourcesOfDocument(p.input.name, d) };
      }
      const resource = cached.resources.find((r) => r.path.join('.') === ref.path)!;
      (ref.kind === 'ConfigMap' ? out.configMaps : out.secrets).push(resource.object);
    }
  }
  return out;
}

/** The first `runtimeClassName` that asks for a Contrast runtime, depth-first (bounded). */
export function contrastRuntimeClassField(
  node: unknown,
  path: (string | number)[],
  depth: number,
): { path: (string | number)[]; value: string } | undefined {
  if (depth > 40) return undefined;
  const entries: [string | number, unknown][] = Array.isArray(node)
    ? node.map((v, i) => [i, v])
    : isPlainObject(node)
      ? Object.entries(node)
      : [];
  for (const [key, value] of entries) {
    if (
      key === 'runtimeClassName' &&
      typeof value === 'string' &&
      parseRuntimeClassName(value).type !== 'not-confidential'
    )
      return { path: [...path, key], value };
    const deeper =
      typeof value === 'object' && value !== null
        ? contrastRuntimeClassField(value, [...path, key], depth + 1)
        : undefined;
    if (deeper) return deeper;
  }
  return undefined;
}

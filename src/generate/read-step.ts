/** Parses each input into its editable YAML stream and the resources it holds. */
import type { InputFile } from '../resources/inputs.js';
import { documentValue, parseStream, type ParsedStream } from '../resources/stream.js';
import { resourcesOf, type KubeObject, type Resource } from '../workloads/resource.js';

export interface ParsedInput {
  input: InputFile;
  stream: ParsedStream;
  resources: { documentIndex: number; resource: Resource }[];
}

export function parseInput(input: InputFile): ParsedInput {
  const stream = parseStream(input.name, input.text);
  const resources = stream.documents.flatMap((d) => {
    const location = { file: input.name, document: d.index };
    return resourcesOf(documentValue(d.doc, location), location).map((resource) => ({
      documentIndex: d.index,
      resource,
    }));
  });
  return { input, stream, resources };
}

/** Every resource of the inputs, in order. */
export function allResources(parsed: readonly ParsedInput[]): Resource[] {
  return parsed.flatMap((p) => p.resources.map((r) => r.resource));
}

export function objectsOfKind(resources: readonly Resource[], kind: string): KubeObject[] {
  return resources.filter((r) => r.object.kind === kind).map((r) => r.object);
}

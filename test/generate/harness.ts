/** In-process `generate` for unit tests, with one shared workspace (RSA key generation is slow). */
import { parseAllDocuments } from 'yaml';
import { YAML_PARSE_OPTIONS } from '../../src/resources/stream.js';
import { generateFromInputs, type GenerateOptions, type GenerateResult } from '../../src/generate/pipeline.js';
import { tempDir } from '../helpers/tmp.js';
import { testResolver } from '../helpers/images.js';

let sharedWorkspace: string | undefined;
export function workspace(): string {
  sharedWorkspace ??= tempDir('kc-ws-');
  return sharedWorkspace;
}

export async function gen(
  text: string,
  options: Partial<GenerateOptions> = {},
  name = 'input.yaml',
): Promise<GenerateResult> {
  return generateFromInputs([{ name, path: name, text }], {
    platform: 'metal-qemu-snp',
    workspaceDir: workspace(),
    imageResolver: testResolver(),
    ...options,
  });
}

export async function genText(text: string, options: Partial<GenerateOptions> = {}): Promise<string> {
  return (await gen(text, options)).outputs[0]!.text;
}

/** Plain values of every document, read as Kubernetes reads them (YAML 1.1). */
export function docs(text: string): any[] {
  return parseAllDocuments(text, YAML_PARSE_OPTIONS).map((d) => d.toJS());
}

/**
 * The container images that kubectl-contrast injects or deploys, pinned by digest for this
 * release. `--image-replacements FILE` can point any of them (and any workload image) elsewhere,
 * e.g. to a mirror.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../util/errors.js';

export const INJECTED_IMAGES = {
  initializer: 'ghcr.io/kubectl-contrast/initializer:v0.1.0',
  serviceMesh: 'ghcr.io/kubectl-contrast/service-mesh-proxy:v0.1.0',
  pause: 'ghcr.io/kubectl-contrast/pause:3.10',
  coordinator: 'ghcr.io/kubectl-contrast/coordinator:v0.1.0',
  nodeInstaller: 'ghcr.io/kubectl-contrast/node-installer:v0.1.0',
} as const;

export type ImageReplacements = ReadonlyMap<string, string>;

/**
 * Parse an image-replacements file: one `source=target` per line, `#` starts a comment
 * (the format upstream Contrast uses).
 */
export function parseImageReplacements(text: string, file: string): Map<string, string> {
  const map = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const eq = line.indexOf('=');
    const from = line.slice(0, eq).trim();
    const to = line.slice(eq + 1).trim();
    if (eq <= 0 || from === '' || to === '' || /\s/.test(from) || /\s/.test(to)) {
      throw new UserError(`line ${i + 1}: expected "source=target", found "${raw.trim()}"`, { file });
    }
    if (map.has(from)) throw new UserError(`line ${i + 1}: "${from}" is replaced twice`, { file });
    map.set(from, to);
  });
  return map;
}

export function loadImageReplacements(file: string | undefined): Map<string, string> {
  if (file === undefined) return new Map();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read image replacements: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { file });
  }
  return parseImageReplacements(text, file);
}

export function replaceImage(image: string, replacements: ImageReplacements): string {
  return replacements.get(image) ?? image;
}

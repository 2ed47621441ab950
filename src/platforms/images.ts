/**
 * The container images that kubectl-contrast injects or deploys, pinned by digest for this
 * release (the digests are those of the images in samples/images, which a test keeps in sync).
 * `--image-replacements FILE` can point any of them (and any workload image) elsewhere, e.g. to
 * a mirror.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../util/errors.js';

export const INJECTED_IMAGES = {
  initializer: 'ghcr.io/kubectl-contrast/initializer:v0.1.0@sha256:c3a5ed298c3f53364d06aabdc67a9ea925ef08fb9378d1ac4e8d5a2f6114b993',
  serviceMesh: 'ghcr.io/kubectl-contrast/service-mesh-proxy:v0.1.0@sha256:bc93fc75d8a07d2c2a3a024e614757cae2e222da841d8195ff7e760325b1cbe3',
  pause: 'ghcr.io/kubectl-contrast/pause:3.10@sha256:374506106f199c53cea0a366626d0ea6401d9dc8be68544f0ddd44748558e1dd',
  coordinator: 'ghcr.io/kubectl-contrast/coordinator:v0.1.0@sha256:c7f834dd7bf2addba9fa70a38979bdbedd5f883415a5c0c564c72bb5ccdf3bb3',
  nodeInstaller: 'ghcr.io/kubectl-contrast/node-installer:v0.1.0',
} as const;

export type ImageReplacements = ReadonlyMap<string, string>;

/**
 * Parse an image-replacements file: one `source=target` per line, `#` starts a comment
 * (the format upstream Contrast uses).
 */
function parseImageReplacements(text: string, file: string): Map<string, string> {
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

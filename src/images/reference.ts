/**
 * Image references: parsing and normalisation the way Docker reads them, so that
 * `nginx`, `library/nginx:latest` and `docker.io/library/nginx:latest` all name one image.
 */

export const DOCKER_HUB = 'docker.io';

/** A parsed, normalised image reference. */
export interface ImageReference {
  /** Registry host (with port when given), lower-case; `docker.io` for Docker Hub. */
  registry: string;
  /** Repository path inside the registry, e.g. `library/nginx`. */
  repository: string;
  /** The tag; `latest` when neither tag nor digest was given. */
  tag?: string;
  /** The digest when the reference is pinned (`…@sha256:…`). */
  digest?: string;
  /** The text the reference was parsed from. */
  original: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const OTHER_DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/;

/** An image reference that cannot be parsed (named so it does not shadow the global ReferenceError). */
export class ImageReferenceError extends Error {
  constructor(
    readonly reference: string,
    reason: string,
  ) {
    super(`invalid image reference "${reference}": ${reason}`);
    this.name = 'ImageReferenceError';
  }
}

/**
 * Parse and normalise an image reference.
 * `nginx` → docker.io/library/nginx:latest; `name:tag@sha256:…` keeps both tag and digest.
 */
export function parseImageReference(ref: string): ImageReference {
  const original = ref;
  if (ref.length === 0) throw new ImageReferenceError(ref, 'empty');
  if (ref !== ref.trim()) throw new ImageReferenceError(ref, 'contains surrounding whitespace');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) {
      if (OTHER_DIGEST.test(digest))
        throw new ImageReferenceError(ref, `unsupported digest algorithm in "${digest}" (only sha256 is supported)`);
      throw new ImageReferenceError(ref, `malformed digest "${digest}"`);
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ImageReferenceError(ref, `malformed tag "${tag}"`);
  }
  if (rest.length === 0) throw new ImageReferenceError(ref, 'missing repository name');

  let registry = DOCKER_HUB;
  let repository = rest;
  const firstSlash = rest.indexOf('/');
  if (firstSlash >= 0) {
    const first = rest.slice(0, firstSlash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      if (!HOST.test(first)) throw new ImageReferenceError(ref, `malformed registry host "${first}"`);
      registry = first.toLowerCase();
      repository = rest.slice(firstSlash + 1);
    }
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  for (const component of repository.split('/')) {
    if (!COMPONENT.test(component)) {
      throw new ImageReferenceError(
        ref,
        `repository component "${component}" must be lower-case letters, digits and separators (. _ __ -)`,
      );
    }
  }
  if (registry.length + 1 + repository.length > 255)
    throw new ImageReferenceError(ref, 'name longer than 255 characters');
  if (tag === undefined && digest === undefined) tag = 'latest';
  const out: ImageReference = { registry, repository, original };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** `registry/repository`, the name without tag or digest. */
function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The canonical text of a reference: `registry/repository[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  let out = repositoryName(ref);
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/**
 * The canonical reference pinned by a manifest digest, keeping the tag for readability:
 * `docker.io/library/nginx:1.27@sha256:…`. Accepts a parsed reference or reference text.
 */
export function pinnedReference(ref: ImageReference | string, manifestDigest: string): string {
  const parsed = typeof ref === 'string' ? parseImageReference(ref) : ref;
  if (!DIGEST.test(manifestDigest)) throw new ImageReferenceError(manifestDigest, 'not a sha256 digest');
  const tag = parsed.tag !== undefined ? `:${parsed.tag}` : '';
  return `${repositoryName(parsed)}${tag}@${manifestDigest}`;
}

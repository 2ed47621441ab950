/**
 * The container images that kubectl-contrast injects or deploys. Their references come from the
 * image lock (image-lock.json next to this module), which `npm run images` writes from the very
 * images it builds (docs/images.md): nothing here is typed by hand. CONTRAST_IMAGE_LOCK names
 * another lock file (the tests use the lock of the sample stand-ins in samples/images).
 * `--image-replacements FILE` can point any of them (and any workload image) elsewhere, e.g. to
 * a mirror; a `PREFIX/*=PREFIX/*` line moves all of them to a private registry at once.
 */
import { readFileSync } from 'node:fs';
import { parseImageReference } from '../images/reference.js';
import { UserError } from '../util/errors.js';

/** What each injected or deployed image is for; the keys of the image lock. */
export const IMAGE_KEYS = [
  'coordinator',
  'initializer',
  'serviceMesh',
  'portForwarder',
  'nodeInstaller',
  'pause',
] as const;
export type ImageKey = (typeof IMAGE_KEYS)[number];
export type ImageLock = Readonly<Record<ImageKey, string>>;

const LOCK_FILE = 'image-lock.json';

/** Parse an image lock strictly: exactly the keys above, each a reference with its digest. */
export function parseImageLock(text: string, file: string): ImageLock {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UserError(`the image lock is not JSON: ${(err as Error).message}`, { file });
  }
  const images = (doc as { images?: unknown } | null)?.images;
  if (
    typeof doc !== 'object' ||
    doc === null ||
    Array.isArray(doc) ||
    typeof images !== 'object' ||
    images === null ||
    Array.isArray(images)
  ) {
    throw new UserError('the image lock must be an object with an "images" object', { file });
  }
  const lock: Partial<Record<ImageKey, string>> = {};
  for (const key of Object.keys(images)) {
    if (!(IMAGE_KEYS as readonly string[]).includes(key))
      throw new UserError(`images.${key}: not an image kubectl-contrast uses (${IMAGE_KEYS.join(', ')})`, { file });
  }
  for (const key of IMAGE_KEYS) {
    const ref = (images as Record<string, unknown>)[key];
    if (typeof ref !== 'string') throw new UserError(`images.${key}: missing, or not a string`, { file });
    let parsed;
    try {
      parsed = parseImageReference(ref);
    } catch (err) {
      throw new UserError(`images.${key}: ${(err as Error).message}`, { file });
    }
    if (parsed.digest === undefined || parsed.tag === undefined)
      throw new UserError(`images.${key}: "${ref}" must carry a tag and a digest`, { file });
    lock[key] = ref;
  }
  return lock as ImageLock;
}

function loadImageLock(): ImageLock {
  const override = process.env['CONTRAST_IMAGE_LOCK'];
  const url = override ? undefined : new URL(`./${LOCK_FILE}`, import.meta.url);
  const file = override ?? `${LOCK_FILE} of kubectl-contrast`;
  let text: string;
  try {
    text = readFileSync(url ?? override!, 'utf8');
  } catch (err) {
    throw new UserError(
      `cannot read the image lock: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { file },
    );
  }
  return parseImageLock(text, file);
}

let lock: ImageLock | undefined;

/** The image references of this release (read once, on first use). */
export const INJECTED_IMAGES: ImageLock = new Proxy({} as ImageLock, {
  get: (_t, key) => (lock ??= loadImageLock())[key as ImageKey],
  ownKeys: () => [...IMAGE_KEYS],
  getOwnPropertyDescriptor: (_t, key) =>
    (IMAGE_KEYS as readonly (string | symbol)[]).includes(key)
      ? { enumerable: true, configurable: true, value: (lock ??= loadImageLock())[key as ImageKey] }
      : undefined,
});

/** Where our single executable is in every image of ours that runs it (scripts/images/spec.ts). */
export const IMAGE_EXECUTABLE = '/usr/bin/kubectl-contrast';

export type ImageReplacements = ReadonlyMap<string, string>;

/**
 * Parse an image-replacements file: one `source=target` per line, `#` starts a comment
 * (the format upstream Contrast uses). Our addition: `a/b/*=c/d/*` replaces the prefix `a/b/` of
 * every image below it (the digest stays, so the mirror must hold the same images).
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
    const body = (side: string): string => (side.endsWith('/*') ? side.slice(0, -1) : side);
    if (
      from.endsWith('/*') !== to.endsWith('/*') ||
      body(from).includes('*') ||
      body(to).includes('*') ||
      from === '/*' ||
      to === '/*'
    ) {
      throw new UserError(
        `line ${i + 1}: a prefix replacement is "registry/path/*=other/path/*" (a * only at the end of both sides), found "${raw.trim()}"`,
        { file },
      );
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
    throw new UserError(
      `cannot read image replacements: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { file },
    );
  }
  return parseImageReplacements(text, file);
}

export function replaceImage(image: string, replacements: ImageReplacements): string {
  const exact = replacements.get(image);
  if (exact !== undefined) return exact;
  // The longest matching prefix wins, so a narrower rule overrides a registry-wide one.
  let best: [string, string] | undefined;
  for (const [from, to] of replacements) {
    if (
      from.endsWith('/*') &&
      image.startsWith(from.slice(0, -1)) &&
      (best === undefined || from.length > best[0].length)
    )
      best = [from, to];
  }
  return best ? best[1].slice(0, -1) + image.slice(best[0].length - 1) : image;
}

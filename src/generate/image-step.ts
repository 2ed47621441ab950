/**
 * Resolves every image of the confidential workloads (plus the pause image the runtime adds)
 * in one deduplicated, parallel batch, and pins container images to their manifest digests.
 */
import { BugError } from '../util/errors.js';
import type { ImageResolverLike, ResolvedImage } from '../images/types.js';
import type { Obj } from '../transforms/pod.js';

/** Images referenced by a pod spec (init containers first, as the runtime starts them). */
export function imagesOf(spec: Obj): string[] {
  const out: string[] = [];
  for (const key of ['initContainers', 'containers'] as const) {
    const list = spec[key];
    if (Array.isArray(list)) for (const c of list as Obj[]) if (typeof c.image === 'string') out.push(c.image);
  }
  return out;
}

export interface BatchResolver {
  resolveAll(refs: readonly string[]): Promise<Map<string, ResolvedImage>>;
}

export async function resolveImages(
  resolver: ImageResolverLike & Partial<BatchResolver>,
  refs: string[],
): Promise<Map<string, ResolvedImage>> {
  const unique = [...new Set(refs)];
  if (resolver.resolveAll) return resolver.resolveAll(unique);
  const entries = await Promise.all(unique.map(async (r) => [r, await resolver.resolve(r)] as const));
  return new Map(entries);
}

/** Replace every container image with its digest-pinned form. */
export function pinImages(spec: Obj, images: ReadonlyMap<string, ResolvedImage>): void {
  for (const key of ['initContainers', 'containers'] as const) {
    const list = spec[key];
    if (!Array.isArray(list)) continue;
    for (const c of list as Obj[]) {
      const resolved = typeof c.image === 'string' ? images.get(c.image) : undefined;
      if (!resolved) throw new BugError(`image ${String(c.image)} was not resolved`);
      c.image = resolved.pinned;
    }
  }
}

/** Lookup by the reference as written or by its pinned form (after pinImages). */
export function imageLookup(images: ReadonlyMap<string, ResolvedImage>): (reference: string) => ResolvedImage {
  const byPinned = new Map<string, ResolvedImage>();
  for (const r of images.values()) byPinned.set(r.pinned, r);
  return (reference) => {
    const found = images.get(reference) ?? byPinned.get(reference);
    if (!found) throw new BugError(`image ${reference} was not resolved`);
    return found;
  };
}

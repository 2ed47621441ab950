/**
 * OCI image layout directories (`oci-layout`, `index.json`, `blobs/sha256/…`) as an image
 * source. An image is found by the name annotation of its index.json entry, written either
 * as a full reference (`ghcr.io/x/y:1.0`) or as a bare tag (`1.0`, what `skopeo copy
 * … oci:DIR:1.0` writes), or by digest for pinned references.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DirectoryBlobs, MAX_DOCUMENT, type BlobReader } from './blobs.js';
import { parseManifestDocument, type Descriptor } from './image-manifest.js';
import { parseImageReference, type ImageReference } from './reference.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

const BARE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface LayoutMatch {
  descriptor: Descriptor;
  /** How the entry was matched. */
  by: 'name' | 'digest' | 'tag';
  layout: ImageIndexSource;
}

/** An OCI index plus the blobs it points to: a layout directory, or one inside an archive. */
export interface ImageIndexSource {
  readonly description: string;
  readonly blobs: BlobReader;
  readonly entries: Descriptor[];
}

export async function readLayoutIndex(indexBytes: Buffer, where: string): Promise<Descriptor[]> {
  if (indexBytes.length > MAX_DOCUMENT) throw new Error(`${where}: index.json is too large`);
  let doc;
  try {
    doc = parseManifestDocument(indexBytes);
  } catch (err) {
    throw new Error(`${where}: index.json: ${(err as Error).message}`, { cause: err });
  }
  if (doc.kind !== 'index') throw new Error(`${where}: index.json is not an image index`);
  return doc.manifests;
}

export class OciLayoutDirectory implements ImageIndexSource {
  readonly description: string;
  readonly blobs: DirectoryBlobs;
  private constructor(
    readonly dir: string,
    readonly entries: Descriptor[],
  ) {
    this.description = `OCI layout ${dir}`;
    this.blobs = new DirectoryBlobs(dir, this.description);
  }

  static async open(dir: string): Promise<OciLayoutDirectory> {
    const abs = resolve(dir);
    const where = `OCI layout ${dir}`;
    let marker: string;
    try {
      marker = await readFile(join(abs, 'oci-layout'), 'utf8');
    } catch (err) {
      throw new Error(
        `${where}: not an OCI image layout (no readable oci-layout file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        { cause: err },
      );
    }
    let version: unknown;
    try {
      version = (JSON.parse(marker) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      throw new Error(`${where}: oci-layout is not valid JSON`);
    }
    if (version !== '1.0.0') throw new Error(`${where}: unsupported imageLayoutVersion ${JSON.stringify(version)}`);
    const indexBytes = await readFile(join(abs, 'index.json')).catch((err: Error) => {
      throw new Error(`${where}: cannot read index.json: ${err.message}`);
    });
    return new OciLayoutDirectory(dir, await readLayoutIndex(indexBytes, where));
  }
}

function entryNames(d: Descriptor): string[] {
  const out: string[] = [];
  for (const key of [REF_NAME, CONTAINERD_NAME]) {
    const v = d.annotations?.[key];
    if (typeof v === 'string' && v.length > 0) out.push(v);
  }
  return out;
}

function nameMatches(name: string, ref: ImageReference): 'name' | 'tag' | undefined {
  if (BARE_TAG.test(name) && !name.includes(':')) {
    return ref.tag !== undefined && ref.tag === name ? 'tag' : undefined;
  }
  let parsed: ImageReference;
  try {
    parsed = parseImageReference(name);
  } catch {
    return undefined;
  }
  if (parsed.registry !== ref.registry || parsed.repository !== ref.repository) return undefined;
  if (ref.tag !== undefined && parsed.tag !== ref.tag) return undefined;
  if (ref.tag === undefined && ref.digest === undefined) return undefined;
  return 'name';
}

/**
 * Find `ref` in a set of index sources. A full-name match wins over a digest match, which
 * wins over a bare-tag match; a bare tag that matches several entries is ambiguous.
 * For a digest-pinned reference only entries with that digest (or, for name matches,
 * indexes that may contain it) are returned.
 */
export function findInLayouts(sources: readonly ImageIndexSource[], ref: ImageReference): LayoutMatch | undefined {
  const byName: LayoutMatch[] = [];
  const byDigest: LayoutMatch[] = [];
  const byTag: LayoutMatch[] = [];
  for (const layout of sources) {
    for (const d of layout.entries) {
      if (ref.digest !== undefined && d.digest === ref.digest) byDigest.push({ descriptor: d, by: 'digest', layout });
      for (const n of entryNames(d)) {
        const how = nameMatches(n, ref);
        if (how === undefined) continue;
        if (ref.digest !== undefined && d.digest !== ref.digest && !isIndexType(d.mediaType)) continue;
        (how === 'name' ? byName : byTag).push({ descriptor: d, by: how, layout });
        break;
      }
    }
  }
  if (ref.digest !== undefined) {
    const exact = [...byName, ...byDigest].find((m) => m.descriptor.digest === ref.digest);
    if (exact) return exact;
  }
  if (byName.length > 0) return byName[0];
  if (byDigest.length > 0) return byDigest[0];
  if (byTag.length > 1) {
    const where = [...new Set(byTag.map((m) => m.layout.description))].join(', ');
    const distinct = new Set(byTag.map((m) => m.descriptor.digest));
    if (distinct.size > 1) {
      throw new Error(
        `the bare tag "${ref.tag}" names ${byTag.length} different images in ${where}; annotate the entries with full references (${REF_NAME})`,
      );
    }
  }
  return byTag[0];
}

function isIndexType(mt: string): boolean {
  return mt.includes('index') || mt.includes('manifest.list');
}

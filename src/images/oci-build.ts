/**
 * Building small OCI images deterministically: tar layers, configs, manifests, indexes and
 * OCI image layout directories. Used by the sample-image builder, the tests and the
 * benchmark; not by `generate`. Same input → same bytes (fixed mtimes and owners, entries
 * sorted, gzip with fixed settings and no timestamp).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { MediaType, sha256Digest, type Descriptor, type ImagePlatform } from './image-manifest.js';
import type { ImageConfig } from './types.js';

/** 2025-01-01T00:00:00Z, the mtime of every entry and the `created` time of every image. */
const FIXED_EPOCH = 1735689600;

export type LayerEntry =
  | { path: string; type?: 'file'; content: string | Buffer; mode?: number; uid?: number; gid?: number }
  | { path: string; type: 'dir'; mode?: number }
  | { path: string; type: 'symlink' | 'hardlink'; target: string };

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function tarHeader(
  name: string,
  typeflag: string,
  size: number,
  mode: number,
  uid: number,
  gid: number,
  linkname = '',
): Buffer {
  const h = Buffer.alloc(512);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 154);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new Error(`tar path too long: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  h.write(base, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 'ascii');
  h.write(octal(uid, 8), 108, 'ascii');
  h.write(octal(gid, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(FIXED_EPOCH, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(typeflag, 156, 'ascii');
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/**
 * An uncompressed tar of the entries, sorted by path, with parent directories added.
 * `keepOrder` keeps the given order (to test scanners against unusual orderings).
 */
export function buildTar(entries: LayerEntry[], keepOrder = false): Buffer {
  const all = new Map<string, LayerEntry>();
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!all.has(dir) && !keepOrder) all.set(dir, { path: dir, type: 'dir' });
    }
    all.set(e.path, e);
  }
  const list = keepOrder ? entries : [...all.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const chunks: Buffer[] = [];
  for (const e of list) {
    if (e.type === 'dir') {
      chunks.push(tarHeader(`${e.path}/`, '5', 0, e.mode ?? 0o755, 0, 0));
    } else if (e.type === 'symlink' || e.type === 'hardlink') {
      chunks.push(tarHeader(e.path, e.type === 'symlink' ? '2' : '1', 0, 0o777, 0, 0, e.target));
    } else if ('content' in e) {
      const data = typeof e.content === 'string' ? Buffer.from(e.content, 'utf8') : e.content;
      chunks.push(tarHeader(e.path, '0', data.length, e.mode ?? 0o644, e.uid ?? 0, e.gid ?? 0));
      chunks.push(data);
      const pad = (512 - (data.length % 512)) % 512;
      if (pad) chunks.push(Buffer.alloc(pad));
    }
  }
  chunks.push(Buffer.alloc(1024));
  return Buffer.concat(chunks);
}

export interface BuiltLayer {
  blob: Buffer;
  descriptor: Descriptor;
  diffId: string;
}

/** A layer blob: gzip (default, level 9) or uncompressed. */
export function buildLayer(tarBytes: Buffer, compression: 'gzip' | 'none' = 'gzip', level = 9): BuiltLayer {
  const blob = compression === 'gzip' ? gzipSync(tarBytes, { level }) : tarBytes;
  return {
    blob,
    diffId: sha256Digest(tarBytes),
    descriptor: {
      mediaType: compression === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayerTar,
      digest: sha256Digest(blob),
      size: blob.length,
    },
  };
}

export interface ImageSpec {
  layers: BuiltLayer[];
  config: ImageConfig & { Labels?: Record<string, string>; ExposedPorts?: Record<string, object>; StopSignal?: string };
  platform?: ImagePlatform;
  /** Annotations on the manifest itself. */
  annotations?: Record<string, string>;
}

export interface BuiltImage {
  manifest: Buffer;
  descriptor: Descriptor;
  config: Buffer;
  configDescriptor: Descriptor;
  blobs: Map<string, Buffer>;
}

export function buildImage(spec: ImageSpec): BuiltImage {
  const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
  const configDoc: Record<string, unknown> = {
    created: new Date(FIXED_EPOCH * 1000).toISOString(),
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config: spec.config,
    rootfs: { type: 'layers', diff_ids: spec.layers.map((l) => l.diffId) },
  };
  const config = Buffer.from(JSON.stringify(configDoc));
  const configDescriptor: Descriptor = {
    mediaType: MediaType.ociConfig,
    digest: sha256Digest(config),
    size: config.length,
  };
  const manifestDoc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDescriptor,
    layers: spec.layers.map((l) => l.descriptor),
  };
  if (spec.annotations) manifestDoc['annotations'] = spec.annotations;
  const manifest = Buffer.from(JSON.stringify(manifestDoc));
  const blobs = new Map<string, Buffer>();
  for (const l of spec.layers) blobs.set(l.descriptor.digest, l.blob);
  blobs.set(configDescriptor.digest, config);
  const descriptor: Descriptor = {
    mediaType: MediaType.ociManifest,
    digest: sha256Digest(manifest),
    size: manifest.length,
  };
  blobs.set(descriptor.digest, manifest);
  return { manifest, descriptor, config, configDescriptor, blobs };
}

/** A multi-platform index over images built with their platforms. */
export function buildIndex(images: { image: BuiltImage; platform: ImagePlatform }[]): {
  index: Buffer;
  descriptor: Descriptor;
  blobs: Map<string, Buffer>;
} {
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: images.map(({ image, platform }) => ({ ...image.descriptor, platform })),
  };
  const index = Buffer.from(JSON.stringify(doc));
  const blobs = new Map<string, Buffer>();
  for (const { image } of images) for (const [d, b] of image.blobs) blobs.set(d, b);
  const descriptor: Descriptor = { mediaType: MediaType.ociIndex, digest: sha256Digest(index), size: index.length };
  blobs.set(descriptor.digest, index);
  return { index, descriptor, blobs };
}

/** Collects images and writes an OCI image layout directory. */
export class OciLayoutWriter {
  private readonly blobs = new Map<string, Buffer>();
  private readonly entries: Descriptor[] = [];

  add(descriptor: Descriptor, blobs: Map<string, Buffer>, refName?: string): this {
    for (const [d, b] of blobs) this.blobs.set(d, b);
    const entry: Descriptor = { ...descriptor };
    if (refName !== undefined) entry.annotations = { 'org.opencontainers.image.ref.name': refName };
    this.entries.push(entry);
    return this;
  }

  /** The index.json document. */
  index(): Buffer {
    return Buffer.from(
      `${JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: this.entries }, null, 2)}\n`,
    );
  }

  /** Write the layout, replacing `dir` entirely when `clean` is set. */
  write(dir: string, clean = false): void {
    if (clean) rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}\n');
    for (const digest of [...this.blobs.keys()].sort()) {
      writeFileSync(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), this.blobs.get(digest)!);
    }
    writeFileSync(join(dir, 'index.json'), this.index());
  }
}

/**
 * OCI / Docker manifest and index documents: media types, parsing with validation,
 * and platform selection in multi-platform indexes.
 */
import { createHash } from 'node:crypto';

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerTar: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/** The Accept header for manifest requests: every manifest and index type we read. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
].join(', ');

export interface ImagePlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: ImagePlatform & { 'os.version'?: string; 'os.features'?: string[] };
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
}

export function sha256Digest(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export const DEFAULT_IMAGE_PLATFORM: ImagePlatform = { os: 'linux', architecture: 'amd64' };

export function formatImagePlatform(p: ImagePlatform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Parse `os/arch[/variant]`. */
export function parseImagePlatform(text: string): ImagePlatform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p.length === 0)) {
    throw new Error(`invalid platform "${text}": expected os/architecture[/variant]`);
  }
  const p: ImagePlatform = { os: parts[0]!, architecture: parts[1]! };
  if (parts[2] !== undefined) p.variant = parts[2];
  return p;
}

function isDescriptor(value: unknown): value is Descriptor {
  if (typeof value !== 'object' || value === null) return false;
  const d = value as Record<string, unknown>;
  return (
    typeof d['digest'] === 'string' &&
    /^sha256:[a-f0-9]{64}$/.test(d['digest'] as string) &&
    typeof d['size'] === 'number' &&
    Number.isSafeInteger(d['size']) &&
    (d['size'] as number) >= 0
  );
}

/**
 * Parse a manifest or an index. `hintedType` is the media type the source announced
 * (Content-Type or the parent descriptor), used when the document has no mediaType field.
 */
export function parseManifestDocument(bytes: Uint8Array, hintedType?: string): ImageManifest | ImageIndex {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new Error(`manifest is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('manifest is not a JSON object');
  const m = doc as Record<string, unknown>;
  if (m['schemaVersion'] === 1)
    throw new Error('Docker schema 1 manifests are not supported (push the image again with a current client)');
  const mediaType = typeof m['mediaType'] === 'string' ? m['mediaType'] : (hintedType ?? '');
  const looksLikeIndex = Array.isArray(m['manifests']);
  if (
    mediaType === MediaType.ociIndex ||
    mediaType === MediaType.dockerManifestList ||
    (looksLikeIndex && !m['config'])
  ) {
    const manifests = m['manifests'];
    if (!Array.isArray(manifests)) throw new Error('index has no "manifests" array');
    for (const d of manifests) if (!isDescriptor(d)) throw new Error('index contains a malformed descriptor');
    return { kind: 'index', mediaType: mediaType || MediaType.ociIndex, manifests: manifests as Descriptor[] };
  }
  const config = m['config'];
  const layers = m['layers'];
  if (!isDescriptor(config)) throw new Error('manifest has no valid "config" descriptor');
  if (!Array.isArray(layers)) throw new Error('manifest has no "layers" array');
  for (const d of layers) if (!isDescriptor(d)) throw new Error('manifest contains a malformed layer descriptor');
  return { kind: 'manifest', mediaType: mediaType || MediaType.ociManifest, config, layers: layers as Descriptor[] };
}

function normaliseArch(p: ImagePlatform): ImagePlatform {
  let { architecture, variant } = p;
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64';
  if (architecture === 'aarch64') architecture = 'arm64';
  if (architecture === 'arm64' && (variant === undefined || variant === '8')) variant = 'v8';
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  const out: ImagePlatform = { os: p.os, architecture };
  if (variant !== undefined) out.variant = variant;
  return out;
}

/**
 * Choose the manifest for `want` in an index. Attestation manifests (unknown/unknown) are
 * never chosen. When `want` has no variant, the first entry matching os+architecture wins.
 */
export function selectPlatform(index: ImageIndex, want: ImagePlatform): Descriptor | undefined {
  const w = normaliseArch(want);
  const candidates = index.manifests.filter((d) => {
    if (!d.platform) return false;
    if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') return false;
    const p = normaliseArch(d.platform);
    return p.os === w.os && p.architecture === w.architecture;
  });
  if (want.variant !== undefined) return candidates.find((d) => normaliseArch(d.platform!).variant === w.variant);
  return candidates.find((d) => normaliseArch(d.platform!).variant === w.variant) ?? candidates[0];
}

/** The platforms an index offers, for error messages. */
export function listPlatforms(index: ImageIndex): string[] {
  return index.manifests.filter((d) => d.platform).map((d) => formatImagePlatform(d.platform!));
}

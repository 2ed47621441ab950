/**
 * Image resolution for `generate`: reference → pinned digest, the config fields the policy
 * needs, and the final /etc/passwd and /etc/group. Sources, per reference, in this order:
 * OCI layout directories and docker save archives given by the user, the on-disk cache
 * (digest-pinned references, or every reference when offline), then the registry.
 */
import { CredentialStore } from './auth.js';
import { descriptorRef, type BlobReader, type BlobRef } from './blobs.js';
import { defaultCacheDir, ImageCache } from './cache.js';
import { DockerArchive } from './docker-archive.js';
import { Limiter, OncePerKey, sleep } from './limit.js';
import {
  DEFAULT_IMAGE_PLATFORM,
  formatImagePlatform,
  listPlatforms,
  parseManifestDocument,
  selectPlatform,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type ImagePlatform,
} from './image-manifest.js';
import { findInLayouts, OciLayoutDirectory, type ImageIndexSource } from './oci-layout.js';
import { Progress } from './progress.js';
import {
  formatReference,
  ImageReferenceError,
  parseImageReference,
  pinnedReference,
  type ImageReference,
} from './reference.js';
import {
  isTransient,
  RegistryClient,
  RegistryError,
  RegistryUnreachableError,
  type RegistryRepository,
  type RetryPolicy,
} from './registry.js';
import { findPasswdAndGroup, sharedLayerScans } from './rootfs.js';
import type { ImageConfig, ImageResolverLike, ResolvedImage } from './types.js';
import { UserError, errorMessage } from '../util/errors.js';
import { warnOnStderr } from '../util/diagnostics.js';

export type { ImageConfig, ImageResolverLike, ResolvedImage } from './types.js';
export { parseImageReference, pinnedReference, formatReference, type ImageReference } from './reference.js';
export { defaultCacheDir } from './cache.js';
export { parseImagePlatform, formatImagePlatform, type ImagePlatform } from './image-manifest.js';

export interface ImageResolverOptions {
  /** Persistent cache directory; default `defaultCacheDir()`. `false` disables the disk cache. */
  cacheDir?: string | false;
  /** Registries (host[:port]) reached over plain HTTP. */
  insecureRegistries?: string[];
  /** OCI image layout directories searched before any registry. */
  ociLayouts?: string[];
  /** `docker save` archives searched before any registry. */
  dockerArchives?: string[];
  /** Never use the network: resolve from local sources and the cache only. */
  offline?: boolean;
  /** Docker config file with registry credentials (default: Docker and containers auth files). */
  dockerConfigPath?: string;
  /** Platform (os/architecture) chosen from multi-platform indexes (default linux/amd64, what the Kata VM runs). */
  platform?: ImagePlatform;
  /** Images resolved at the same time (default 8). */
  concurrency?: number;
  /** Progress on stderr when it is a TTY (default true). */
  progress?: boolean;
  /** Retry policy for transient registry errors. */
  retry?: Partial<RetryPolicy>;
  /** Fail (and retry) a layer download that delivers no data for this long, ms (default 60000). */
  stallTimeoutMs?: number;
  /** Where warnings go (default stderr). */
  warn?: (message: string) => void;
}

/** Pieces needed to build a ResolvedImage once the top-level manifest is known. */
interface Top {
  reader: ManifestReader;
  digest: string;
  mediaType?: string;
  bytes?: Buffer;
  /** Where the image came from, for messages. */
  source: string;
}

interface ManifestReader extends BlobReader {
  readManifest(ref: BlobRef, signal?: AbortSignal): Promise<Buffer>;
}

interface ResolvedCore {
  manifestDigest: string;
  indexDigest?: string;
  configDigest: string;
  config: ImageConfig;
  passwd?: string;
  group?: string;
}

const CONFIG_FIELDS = ['Entrypoint', 'Cmd', 'Env', 'User', 'WorkingDir', 'Volumes'] as const;

/** Pick the fields the policy uses from an image config blob. */
export function extractImageConfig(doc: unknown): ImageConfig {
  if (typeof doc !== 'object' || doc === null) throw new Error('image config is not a JSON object');
  const c = (doc as { config?: unknown }).config;
  const out: ImageConfig = {};
  if (typeof c !== 'object' || c === null) return out;
  const cfg = c as Record<string, unknown>;
  const strings = (v: unknown, field: string): string[] | null => {
    if (v === null) return null;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))
      throw new Error(`image config field ${field} is not a list of strings`);
    return v as string[];
  };
  for (const field of CONFIG_FIELDS) {
    const v = cfg[field];
    if (v === undefined) continue;
    switch (field) {
      case 'Entrypoint':
      case 'Cmd':
      case 'Env':
        out[field] = strings(v, field);
        break;
      case 'User':
      case 'WorkingDir':
        if (typeof v !== 'string') throw new Error(`image config field ${field} is not a string`);
        out[field] = v;
        break;
      case 'Volumes':
        if (v !== null && (typeof v !== 'object' || Array.isArray(v)))
          throw new Error('image config field Volumes is not an object');
        out.Volumes = v as Record<string, object> | null;
        break;
    }
  }
  return out;
}

/** A reader that answers from the cache first and stores what it fetched. */
class CachingReader implements ManifestReader {
  readonly description: string;
  constructor(
    private readonly cache: ImageCache | undefined,
    private readonly remote: RegistryRepository | undefined,
    what: string,
  ) {
    this.description = remote?.description ?? what;
  }
  private async cached(ref: BlobRef, fetch: (r: RegistryRepository) => Promise<Buffer>): Promise<Buffer> {
    const hit = await this.cache?.getBlob(ref.digest);
    if (hit) return hit;
    if (!this.remote) throw new Error(`${ref.digest} is not in the image cache and the network is not used (offline)`);
    const data = await fetch(this.remote);
    this.cache?.putBlob(data, ref.digest);
    return data;
  }
  readManifest(ref: BlobRef, signal?: AbortSignal): Promise<Buffer> {
    return this.cached(ref, (r) => r.readManifest(ref, signal));
  }
  readBlob(ref: BlobRef, signal?: AbortSignal): Promise<Buffer> {
    return this.cached(ref, (r) => r.readBlob(ref, signal));
  }
  openBlob(ref: BlobRef, signal?: AbortSignal) {
    if (!this.remote)
      return Promise.reject(new Error(`layer ${ref.digest} is needed but the network is not used (offline)`));
    return this.remote.openBlob(ref, signal);
  }
}

/** A local index source's blobs, where manifests are ordinary blobs. */
class LocalReader implements ManifestReader {
  readonly description: string;
  constructor(private readonly blobs: BlobReader) {
    this.description = blobs.description;
  }
  readManifest(ref: BlobRef, signal?: AbortSignal): Promise<Buffer> {
    return this.blobs.readBlob(ref, signal);
  }
  readBlob(ref: BlobRef, signal?: AbortSignal): Promise<Buffer> {
    return this.blobs.readBlob(ref, signal);
  }
  openBlob(ref: BlobRef, signal?: AbortSignal) {
    return this.blobs.openBlob(ref, signal);
  }
}

export class ImageResolver implements ImageResolverLike {
  readonly cache: ImageCache | undefined;
  readonly registry: RegistryClient;
  private readonly platform: ImagePlatform;
  private readonly limiter: Limiter;
  private readonly byReference = new OncePerKey<ResolvedImage>();
  private readonly byManifest = new OncePerKey<ResolvedCore>();
  private readonly byConfig = new OncePerKey<{ passwd?: string; group?: string }>();
  /** Layer scans shared between images with common layers (failures are not kept). */
  private readonly byLayer = sharedLayerScans();
  private localSources: Promise<ImageIndexSource[]> | undefined;
  private readonly progress: Progress;
  private readonly warn: (message: string) => void;
  private credentials: CredentialStore | undefined;
  /** Work done so far: images whose layers were scanned, layers opened, compressed bytes read. */
  readonly stats = { imagesScanned: 0, layersScanned: 0, bytesRead: 0 };

  constructor(private readonly options: ImageResolverOptions = {}) {
    this.warn = options.warn ?? warnOnStderr;
    const dir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
    this.cache = dir === false ? undefined : new ImageCache(dir, this.warn);
    this.platform = options.platform ?? DEFAULT_IMAGE_PLATFORM;
    this.limiter = new Limiter(options.concurrency ?? 8);
    this.progress = new Progress(options.progress !== false && process.stderr.isTTY === true);
    const clientOptions: ConstructorParameters<typeof RegistryClient>[0] = {
      insecureRegistries: options.insecureRegistries ?? [],
      // Read the Docker config only when a registry asks for credentials.
      credentials: {
        get: (registry: string) => {
          this.credentials ??= new CredentialStore(options.dockerConfigPath);
          return this.credentials.get(registry);
        },
      },
    };
    if (options.retry) clientOptions.retry = options.retry;
    if (options.stallTimeoutMs !== undefined) clientOptions.stallTimeoutMs = options.stallTimeoutMs;
    this.registry = new RegistryClient(clientOptions);
  }

  /** Resolve one reference. Errors are UserErrors naming the image. */
  resolve(reference: string): Promise<ResolvedImage> {
    let parsed: ImageReference;
    try {
      parsed = parseImageReference(reference);
    } catch (err) {
      const msg = err instanceof ImageReferenceError ? err.message : errorMessage(err);
      return Promise.reject(new UserError(msg));
    }
    const key = formatReference(parsed);
    return this.byReference
      .get(key, () => this.limiter.run((handOff) => this.resolveParsed(parsed, handOff)))
      .then((r) => ({ ...r, reference }));
  }

  /** Resolve many references in parallel; the map is keyed by the references as given. */
  async resolveAll(refs: readonly string[]): Promise<Map<string, ResolvedImage>> {
    const unique = [...new Set(refs)];
    const settled = await Promise.allSettled(unique.map((r) => this.resolve(r)));
    this.progress.done();
    const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
    const messages = [...new Set(failures.map(errorMessage))];
    const offlineMisses = unique.filter(
      (_r, i) =>
        settled[i]!.status === 'rejected' &&
        (settled[i] as PromiseRejectedResult).reason?.cause instanceof OfflineMissError,
    );
    const hint = offlineMisses.length > 0 ? offlineHint(offlineMisses) : undefined;
    if (messages.length === 1 && hint === undefined) throw failures[0];
    if (messages.length >= 1) {
      const head =
        messages.length === 1
          ? messages[0]!
          : `${messages.length} images could not be resolved:\n${messages.map((m) => `  - ${m}`).join('\n')}`;
      throw new UserError(hint === undefined ? head : `${head}\n${hint}`);
    }
    const out = new Map<string, ResolvedImage>();
    unique.forEach((r, i) => out.set(r, (settled[i] as PromiseFulfilledResult<ResolvedImage>).value));
    return out;
  }

  private loadLocalSources(): Promise<ImageIndexSource[]> {
    this.localSources ??= (async () => {
      const out: ImageIndexSource[] = [];
      for (const dir of this.options.ociLayouts ?? []) {
        try {
          out.push(await OciLayoutDirectory.open(dir));
        } catch (err) {
          throw new UserError(errorMessage(err));
        }
      }
      for (const file of this.options.dockerArchives ?? []) {
        try {
          out.push(await DockerArchive.open(file, this.warn));
        } catch (err) {
          throw new UserError(errorMessage(err));
        }
      }
      return out;
    })();
    return this.localSources;
  }

  /** `handOff`: gives the resolver's slot to the next image (the layer scan calls it in its tail). */
  private async resolveParsed(ref: ImageReference, handOff: () => void): Promise<ResolvedImage> {
    const name = formatReference(ref);
    try {
      const top = await this.findTop(ref);
      const core = await this.byManifest.get(top.digest, () => this.resolveTop(top, ref, handOff));
      const pinned = pinnedReference(ref, ref.digest ?? core.manifestDigest);
      const out: ResolvedImage = {
        reference: ref.original,
        pinned,
        manifestDigest: core.manifestDigest,
        configDigest: core.configDigest,
        config: core.config,
      };
      if (core.indexDigest !== undefined) out.indexDigest = core.indexDigest;
      if (core.passwd !== undefined) out.passwd = core.passwd;
      if (core.group !== undefined) out.group = core.group;
      out.source = top.source;
      return out;
    } catch (err) {
      throw new UserError(`image ${name}: ${errorMessage(err)}`, {}, { cause: err });
    }
  }

  /** Find where the image's top-level manifest or index comes from. */
  private async findTop(ref: ImageReference): Promise<Top> {
    const local = findInLayouts(await this.loadLocalSources(), ref);
    if (local) {
      const reader = new LocalReader(local.layout.blobs);
      const top: Top = {
        reader,
        digest: local.descriptor.digest,
        mediaType: local.descriptor.mediaType,
        source: local.layout.description,
      };
      if (ref.digest === undefined || ref.digest === local.descriptor.digest) return top;
      // A name match on an index: the pinned digest must be one of its manifests.
      const index = parseManifestDocument(
        await reader.readManifest(descriptorRef(local.descriptor)),
        local.descriptor.mediaType,
      );
      const child = index.kind === 'index' ? index.manifests.find((d) => d.digest === ref.digest) : undefined;
      if (child) return { reader, digest: child.digest, mediaType: child.mediaType, source: local.layout.description };
    }
    const offline = this.options.offline === true;
    const remote = offline ? undefined : this.registry.repository(ref);
    const reader = new CachingReader(this.cache, remote, 'image cache');
    if (ref.digest !== undefined) {
      const cached = await this.cache?.getBlob(ref.digest);
      if (cached) return { reader, digest: ref.digest, bytes: cached, source: 'image cache' };
      if (!remote) throw new OfflineMissError(`not in the image cache and --offline is set (${ref.digest})`);
      return { reader, digest: ref.digest, source: remote.description };
    }
    const tag = ref.tag!;
    const record = await this.cache?.getTag(ref);
    if (!remote) {
      if (!record) throw new OfflineMissError(`tag ${tag} is not in the image cache and --offline is set`);
      return { reader, digest: record.digest, mediaType: record.mediaType, source: 'image cache' };
    }
    try {
      if (record && (await this.cache?.getBlob(record.digest))) {
        // A cheap HEAD tells whether the tag still points where it did.
        const head = await remote.headManifest(tag);
        if (head?.digest === record.digest)
          return { reader, digest: record.digest, mediaType: record.mediaType, source: remote.description };
      }
      const m = await remote.getManifest(tag);
      this.cache?.putBlob(m.bytes, m.digest);
      this.cache?.putTag(ref, m.digest, m.mediaType);
      return { reader, digest: m.digest, mediaType: m.mediaType, bytes: m.bytes, source: remote.description };
    } catch (err) {
      if (err instanceof RegistryUnreachableError && record) {
        this.warn(`${formatReference(ref)}: ${err.message}; using the cached digest ${record.digest} for tag ${tag}`);
        return {
          reader: new CachingReader(this.cache, undefined, 'image cache'),
          digest: record.digest,
          mediaType: record.mediaType,
          source: 'image cache',
        };
      }
      if (err instanceof RegistryError && err.status === 404) {
        throw new Error(`not found: ${ref.registry} has no manifest for ${ref.repository}:${tag}`, { cause: err });
      }
      throw err;
    }
  }

  private async resolveTop(top: Top, ref: ImageReference, handOff: () => void): Promise<ResolvedCore> {
    const bytes = top.bytes ?? (await top.reader.readManifest({ digest: top.digest }));
    const doc = parseManifestDocument(bytes, top.mediaType);
    let manifest: ImageManifest;
    let manifestDigest = top.digest;
    let indexDigest: string | undefined;
    if (doc.kind === 'index') {
      indexDigest = top.digest;
      const chosen = this.choosePlatform(doc, ref);
      manifestDigest = chosen.digest;
      const inner = parseManifestDocument(await top.reader.readManifest(descriptorRef(chosen)), chosen.mediaType);
      if (inner.kind !== 'manifest')
        throw new Error(`the ${formatImagePlatform(this.platform)} entry of index ${top.digest} is itself an index`);
      manifest = inner;
    } else {
      manifest = doc;
    }
    const configDigest = manifest.config.digest;
    // The layer scan is keyed by the config's digest, not its content: both downloads start at once.
    const [configBytes, rootfs] = await Promise.all([
      top.reader.readBlob(descriptorRef(manifest.config)),
      this.byConfig.get(configDigest, () =>
        this.scanRootfs(top, manifest, configDigest, formatReference(ref), handOff),
      ),
    ]);
    let configDoc: unknown;
    try {
      configDoc = JSON.parse(configBytes.toString('utf8'));
    } catch {
      throw new Error(`config blob ${manifest.config.digest} is not valid JSON`);
    }
    const config = extractImageConfig(configDoc);
    const out: ResolvedCore = { manifestDigest, configDigest, config, ...rootfs };
    if (indexDigest !== undefined) out.indexDigest = indexDigest;
    return out;
  }

  private choosePlatform(index: ImageIndex, ref: ImageReference): Descriptor {
    const chosen = selectPlatform(index, this.platform);
    if (!chosen) {
      const offered = listPlatforms(index);
      throw new Error(
        `no ${formatImagePlatform(this.platform)} image in the index for ${formatReference(ref)} (offers: ${offered.length ? offered.join(', ') : 'no platforms'})`,
      );
    }
    return chosen;
  }

  private async scanRootfs(
    top: Top,
    manifest: ImageManifest,
    configDigest: string,
    name: string,
    handOff: () => void,
  ): Promise<{ passwd?: string; group?: string }> {
    const cached = await this.cache?.getRootfs(configDigest);
    if (cached) return cached;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.scanRootfsOnce(top, manifest, configDigest, name, handOff);
      } catch (err) {
        // A download that broke off mid-layer starts over (layers are not kept).
        if (!isTransient(err) || attempt >= this.registry.retry.attempts) throw err;
        this.warn(`${name}: ${errorMessage(err)}; retrying`);
        await sleep(this.registry.delay(attempt));
      }
    }
  }

  private async scanRootfsOnce(
    top: Top,
    manifest: ImageManifest,
    configDigest: string,
    name: string,
    handOff: () => void,
  ): Promise<{ passwd?: string; group?: string }> {
    const total = manifest.layers.reduce((n, l) => n + l.size, 0);
    const task = this.progress.start(name, total);
    try {
      const result = await findPasswdAndGroup(
        manifest.layers.length,
        (i) => {
          const layer = manifest.layers[i]!;
          return {
            digest: layer.digest,
            mediaType: layer.mediaType,
            size: layer.size,
            open: () => top.reader.openBlob(descriptorRef(layer)),
          };
        },
        { onBytes: (n) => task.advance(n), memo: this.byLayer, onTail: handOff },
      );
      for (const note of result.notes) this.warn(`${name}: ${note}`);
      this.stats.imagesScanned++;
      this.stats.layersScanned += result.layersScanned;
      this.stats.bytesRead += result.bytesRead;
      const out: { passwd?: string; group?: string } = {};
      if (result.passwd !== undefined) out.passwd = result.passwd;
      if (result.group !== undefined) out.group = result.group;
      this.cache?.putRootfs(configDigest, out);
      return out;
    } finally {
      task.finish();
    }
  }
}

/** An image that --offline leaves without a source: the message gets the ways to provide it. */
class OfflineMissError extends Error {}

/** What to do about images missing offline: local sources, and how to fill one with skopeo. */
export function offlineHint(references: readonly string[]): string {
  const ref = parseImageReference(references[0]!);
  const name = `${ref.registry}/${ref.repository}`;
  // skopeo takes a tag or a digest, not both; the layout entry is named as the workload writes it.
  const from = ref.digest !== undefined ? `${name}@${ref.digest}` : `${name}:${ref.tag ?? 'latest'}`;
  const entry = ref.tag !== undefined ? `${name}:${ref.tag}` : from;
  return [
    'Without network access, give the images as local sources, or fill the cache once online:',
    '  --oci-layout DIR        an OCI image layout, e.g. filled on a machine with network access by',
    `                          skopeo copy docker://${from} oci:DIR:${entry}`,
    '                          (one skopeo copy per image; repeat --oci-layout for more layouts)',
    '  --docker-archive FILE   a `docker save` archive (docker save -o FILE IMAGE…)',
    '  or run once without --offline (or with --cache-dir pointing at a copied cache): the image cache keeps what it resolved',
  ].join('\n');
}

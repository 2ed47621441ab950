/**
 * The persistent image cache. Everything is keyed by digest and verified on read, so a
 * cache entry can never change what a digest means:
 *
 *   <cacheDir>/images/v1/blobs/sha256/<hex>      manifests, indexes and configs (raw bytes)
 *   <cacheDir>/images/v1/rootfs/<config hex>.json  {passwd?, group?} found in the layers
 *   <cacheDir>/images/v1/tags/<sha256 of name:tag>.json  last digest seen for a tag
 *
 * Tag records are only a fallback for offline runs; online, a tag is always asked again.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { warnOnStderr } from '../util/diagnostics.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { DirectoryBlobs } from './blobs.js';
import { sha256Digest } from './image-manifest.js';
import { formatReference, type ImageReference } from './reference.js';

/** `$CONTRAST_CACHE_DIR`, else `$XDG_CACHE_HOME/kubectl-contrast`, else `~/.cache/kubectl-contrast`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['CONTRAST_CACHE_DIR']) return env['CONTRAST_CACHE_DIR'];
  if (env['XDG_CACHE_HOME']) return join(env['XDG_CACHE_HOME'], 'kubectl-contrast');
  return join(homedir(), '.cache', 'kubectl-contrast');
}

export interface TagRecord {
  reference: string;
  digest: string;
  mediaType: string;
}

export interface RootfsRecord {
  passwd?: string;
  group?: string;
}

const hex = (digest: string): string => digest.slice('sha256:'.length);

export class ImageCache {
  readonly root: string;
  readonly blobs: DirectoryBlobs;
  constructor(
    readonly cacheDir: string,
    private readonly warn: (message: string) => void = warnOnStderr,
  ) {
    this.root = join(cacheDir, 'images', 'v1');
    this.blobs = new DirectoryBlobs(this.root, `image cache ${this.root}`);
  }

  private write(path: string, data: string | Buffer): void {
    try {
      mkdirSync(dirname(path), { recursive: true });
      writeFileAtomic(path, data);
    } catch (err) {
      // A cache that cannot be written only costs time on the next run.
      if (!this.warned) {
        this.warned = true;
        this.warn(`cannot write the image cache in ${this.root}: ${(err as Error).message}`);
      }
    }
  }
  private warned = false;

  /** A verified blob from the cache, or undefined (a corrupt entry is treated as missing). */
  async getBlob(digest: string): Promise<Buffer | undefined> {
    try {
      return await this.blobs.readBlob({ digest });
    } catch {
      return undefined;
    }
  }

  putBlob(data: Buffer, digest = sha256Digest(data)): void {
    if (sha256Digest(data) !== digest) throw new Error(`refusing to cache ${digest}: content does not match`);
    this.write(this.blobs.path(digest), data);
  }

  private tagPath(ref: ImageReference): string {
    const key = formatReference({ ...ref, digest: undefined } as ImageReference);
    return join(this.root, 'tags', `${createHash('sha256').update(key).digest('hex')}.json`);
  }

  async getTag(ref: ImageReference): Promise<TagRecord | undefined> {
    try {
      const rec = JSON.parse(await readFile(this.tagPath(ref), 'utf8')) as TagRecord;
      const key = formatReference({ ...ref, digest: undefined } as ImageReference);
      if (rec.reference !== key || typeof rec.digest !== 'string' || typeof rec.mediaType !== 'string')
        return undefined;
      return rec;
    } catch {
      return undefined;
    }
  }

  putTag(ref: ImageReference, digest: string, mediaType: string): void {
    const reference = formatReference({ ...ref, digest: undefined } as ImageReference);
    const rec: TagRecord = { reference, digest, mediaType };
    this.write(this.tagPath(ref), `${JSON.stringify(rec, null, 2)}\n`);
  }

  private rootfsPath(configDigest: string): string {
    return join(this.root, 'rootfs', `${hex(configDigest)}.json`);
  }

  async getRootfs(configDigest: string): Promise<RootfsRecord | undefined> {
    try {
      const rec = JSON.parse(await readFile(this.rootfsPath(configDigest), 'utf8')) as Record<string, unknown>;
      if (rec['config'] !== configDigest) return undefined;
      const out: RootfsRecord = {};
      if (typeof rec['passwd'] === 'string') out.passwd = rec['passwd'];
      if (typeof rec['group'] === 'string') out.group = rec['group'];
      return out;
    } catch {
      return undefined;
    }
  }

  putRootfs(configDigest: string, rec: RootfsRecord): void {
    const body: Record<string, unknown> = { config: configDigest };
    if (rec.passwd !== undefined) body['passwd'] = rec.passwd;
    if (rec.group !== undefined) body['group'] = rec.group;
    this.write(this.rootfsPath(configDigest), `${JSON.stringify(body, null, 2)}\n`);
  }
}

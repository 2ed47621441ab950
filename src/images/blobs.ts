/**
 * Content-addressed blob access shared by every image source (registry, OCI layout
 * directory, docker save archive). Whole reads are verified against their digest.
 */
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { sha256Digest, type Descriptor } from './image-manifest.js';

export interface BlobRef {
  digest: string;
  size?: number;
  mediaType?: string;
}

export interface BlobReader {
  /** Where the blobs come from, for messages (`registry ghcr.io`, `OCI layout ./images`). */
  readonly description: string;
  /** Read a whole (small) blob and verify its digest. */
  readBlob(ref: BlobRef, signal?: AbortSignal): Promise<Buffer>;
  /** Stream a (large) blob; the caller checks the digest if it reads to the end. */
  openBlob(ref: BlobRef, signal?: AbortSignal): Promise<Readable>;
}

export class DigestMismatchError extends Error {
  constructor(expected: string, actual: string, where: string) {
    super(`${where}: content of ${expected} has digest ${actual} (corrupt or tampered data)`);
    this.name = 'DigestMismatchError';
  }
}

export class BlobNotFoundError extends Error {
  constructor(
    readonly digest: string,
    where: string,
  ) {
    super(`${where}: blob ${digest} not found`);
    this.name = 'BlobNotFoundError';
  }
}

/** Largest manifest, index or config we read into memory. */
export const MAX_DOCUMENT = 8 * 1024 * 1024;

export function verifyBlob(data: Buffer, ref: BlobRef, where: string): Buffer {
  const actual = sha256Digest(data);
  if (actual !== ref.digest) throw new DigestMismatchError(ref.digest, actual, where);
  if (ref.size !== undefined && ref.size !== data.length) {
    throw new Error(`${where}: blob ${ref.digest} has ${data.length} bytes, descriptor says ${ref.size}`);
  }
  return data;
}

function digestHex(digest: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new Error(`unsupported digest "${digest}"`);
  return m[1]!;
}

/** Blobs in a directory laid out as `blobs/sha256/<hex>` (OCI image layout, our cache). */
export class DirectoryBlobs implements BlobReader {
  constructor(
    readonly root: string,
    readonly description: string,
  ) {}

  path(digest: string): string {
    return join(this.root, 'blobs', 'sha256', digestHex(digest));
  }

  async has(digest: string): Promise<boolean> {
    try {
      return (await stat(this.path(digest))).isFile();
    } catch {
      return false;
    }
  }

  async readBlob(ref: BlobRef): Promise<Buffer> {
    let data: Buffer;
    try {
      const st = await stat(this.path(ref.digest));
      if (st.size > MAX_DOCUMENT)
        throw new Error(
          `${this.description}: blob ${ref.digest} is too large (${st.size} bytes) for a manifest or config`,
        );
      data = await readFile(this.path(ref.digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(ref.digest, this.description);
      throw err;
    }
    return verifyBlob(data, ref, this.description);
  }

  async openBlob(ref: BlobRef): Promise<Readable> {
    const path = this.path(ref.digest);
    // Open first so that a missing blob is reported here, not as a stream error.
    const handle = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new BlobNotFoundError(ref.digest, this.description);
      throw err;
    });
    return createReadStream(path, { fd: handle, highWaterMark: 256 * 1024 });
  }
}

export function descriptorRef(d: Descriptor): BlobRef {
  return { digest: d.digest, size: d.size, mediaType: d.mediaType };
}

/**
 * `docker save` archives as an image source. The tar is indexed once (headers only, file
 * data is skipped with seeks) and blobs are then read in place, never extracted.
 *
 * Two archive shapes exist:
 * - Docker 25 and later write an OCI image layout inside the tar (`oci-layout`,
 *   `index.json`, `blobs/sha256/…`): it is read like a layout directory, with the real
 *   registry digests.
 * - Older Docker writes only `manifest.json` (`Config`, `RepoTags`, `Layers` pointing to
 *   uncompressed `…/layer.tar` files). There is no registry manifest in such an archive, so
 *   a Docker schema 2 manifest is synthesised from the config and the uncompressed layers
 *   (whose digests are the config's diff_ids). Its digest is only meaningful for images that
 *   are pushed with uncompressed layers; a warning says so.
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { warnOnStderr } from '../util/diagnostics.js';
import { BlobNotFoundError, MAX_DOCUMENT, verifyBlob, type BlobReader, type BlobRef } from './blobs.js';
import { MediaType, sha256Digest, type Descriptor } from './image-manifest.js';
import { readLayoutIndex, REF_NAME, type ImageIndexSource } from './oci-layout.js';
import { formatReference, parseImageReference } from './reference.js';

interface TarEntry {
  name: string;
  offset: number;
  size: number;
  type: string;
  linkname: string;
}

function parseOctal(buf: Buffer, start: number, len: number): number {
  const field = buf.subarray(start, start + len);
  if (field[0]! & 0x80) {
    // base-256 (GNU) for sizes of 8 GiB and more
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function cString(buf: Buffer, start: number, len: number): string {
  const field = buf.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString('utf8');
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = parseInt(data.subarray(pos, space).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** Read every header of an uncompressed tar, seeking over file data. */
async function indexTar(fh: FileHandle, where: string): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  const header = Buffer.alloc(512);
  let offset = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  const size = (await fh.stat()).size;
  const magic = Buffer.alloc(4);
  await fh.read(magic, 0, 4, 0);
  if (magic[0] === 0x1f && magic[1] === 0x8b)
    throw new Error(`${where}: the archive is gzip-compressed; decompress it first (gunzip)`);
  if (magic.readUInt32LE(0) === 0xfd2fb528)
    throw new Error(`${where}: the archive is zstd-compressed; decompress it first (zstd -d)`);
  for (;;) {
    if (offset + 512 > size) break;
    await fh.read(header, 0, 512, offset);
    if (header.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    if (sum !== parseOctal(header, 148, 8))
      throw new Error(`${where}: not a tar archive (bad header checksum at offset ${offset})`);
    const type = String.fromCharCode(header[156]! || 0x30);
    let entrySize = parseOctal(header, 124, 12);
    const dataOffset = offset + 512;
    const readData = async (): Promise<Buffer> => {
      if (entrySize > 1024 * 1024) throw new Error(`${where}: oversized tar extension header`);
      const b = Buffer.alloc(entrySize);
      await fh.read(b, 0, entrySize, dataOffset);
      return b;
    };
    if (type === 'x') {
      pax = parsePax(await readData());
    } else if (type === 'L') {
      longName = (await readData()).toString('utf8').replace(/\0.*$/s, '');
    } else if (type === 'K') {
      longLink = (await readData()).toString('utf8').replace(/\0.*$/s, '');
    } else if (type !== 'g') {
      const prefix = header.subarray(257, 262).toString('latin1') === 'ustar' ? cString(header, 345, 155) : '';
      let name = longName ?? pax['path'] ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
      const linkname = longLink ?? pax['linkpath'] ?? cString(header, 157, 100);
      if (pax['size'] !== undefined) entrySize = Number(pax['size']);
      name = posix
        .normalize(name)
        .replace(/^(\.\/)+/, '')
        .replace(/\/$/, '');
      entries.set(name, { name, offset: dataOffset, size: entrySize, type, linkname });
      pax = {};
      longName = undefined;
      longLink = undefined;
    }
    offset = dataOffset + Math.ceil(entrySize / 512) * 512;
  }
  return entries;
}

class ArchiveBlobs implements BlobReader {
  /** Synthesised documents (legacy archives), by digest. */
  readonly memory = new Map<string, Buffer>();
  /** Blob digest → archive member, for legacy layer and config files. */
  readonly members = new Map<string, string>();

  constructor(
    readonly file: string,
    readonly description: string,
    private readonly entries: Map<string, TarEntry>,
  ) {}

  /** Follow symbolic and hard links inside the archive. */
  entry(name: string): TarEntry | undefined {
    let e = this.entries.get(name);
    for (let hops = 0; e && hops < 16; hops++) {
      if (e.type === '2') e = this.entries.get(posix.normalize(posix.join(posix.dirname(e.name), e.linkname)));
      else if (e.type === '1') e = this.entries.get(posix.normalize(e.linkname));
      else return e;
    }
    return undefined;
  }

  private member(digest: string): TarEntry {
    const name = this.members.get(digest) ?? `blobs/sha256/${digest.slice('sha256:'.length)}`;
    const e = this.entry(name);
    if (!e) throw new BlobNotFoundError(digest, this.description);
    return e;
  }

  async readMember(e: TarEntry): Promise<Buffer> {
    if (e.size > MAX_DOCUMENT) throw new Error(`${this.description}: ${e.name} is too large for a manifest or config`);
    const fh = await open(this.file, 'r');
    try {
      const b = Buffer.alloc(e.size);
      await fh.read(b, 0, e.size, e.offset);
      return b;
    } finally {
      await fh.close();
    }
  }

  async readBlob(ref: BlobRef): Promise<Buffer> {
    const mem = this.memory.get(ref.digest);
    if (mem) return mem;
    return verifyBlob(await this.readMember(this.member(ref.digest)), ref, this.description);
  }

  async openBlob(ref: BlobRef): Promise<Readable> {
    const e = this.member(ref.digest);
    if (e.size === 0) return Readable.from([]);
    return createReadStream(this.file, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 256 * 1024 });
  }
}

export class DockerArchive implements ImageIndexSource {
  private constructor(
    readonly description: string,
    readonly blobs: ArchiveBlobs,
    readonly entries: Descriptor[],
  ) {}

  static async open(file: string, warn: (m: string) => void = warnOnStderr): Promise<DockerArchive> {
    const where = `docker archive ${file}`;
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw new Error(`${where}: cannot open: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
        cause: err,
      });
    }
    let tarEntries: Map<string, TarEntry>;
    try {
      tarEntries = await indexTar(fh, where);
    } finally {
      await fh.close();
    }
    const blobs = new ArchiveBlobs(file, where, tarEntries);
    const index = blobs.entry('index.json');
    if (index && blobs.entry('oci-layout')) {
      return new DockerArchive(where, blobs, await readLayoutIndex(await blobs.readMember(index), where));
    }
    const manifestEntry = blobs.entry('manifest.json');
    if (!manifestEntry)
      throw new Error(`${where}: not a docker save archive (neither index.json nor manifest.json found)`);
    let items: { Config?: unknown; RepoTags?: unknown; Layers?: unknown }[];
    try {
      items = JSON.parse((await blobs.readMember(manifestEntry)).toString('utf8')) as typeof items;
      if (!Array.isArray(items)) throw new Error('not a list');
    } catch (err) {
      throw new Error(`${where}: manifest.json is invalid: ${(err as Error).message}`, { cause: err });
    }
    const descriptors: Descriptor[] = [];
    for (const item of items) {
      if (typeof item.Config !== 'string' || !Array.isArray(item.Layers))
        throw new Error(`${where}: manifest.json entry without Config or Layers`);
      const configEntry = blobs.entry(posix.normalize(item.Config));
      if (!configEntry) throw new Error(`${where}: config ${item.Config} missing from the archive`);
      const config = await blobs.readMember(configEntry);
      const configDigest = sha256Digest(config);
      blobs.memory.set(configDigest, config);
      const diffIds = ((JSON.parse(config.toString('utf8')) as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids ??
        []) as string[];
      if (!Array.isArray(diffIds) || diffIds.length !== item.Layers.length) {
        throw new Error(
          `${where}: ${item.Config} lists ${Array.isArray(diffIds) ? diffIds.length : 0} diff_ids for ${item.Layers.length} layers`,
        );
      }
      const layers: Descriptor[] = item.Layers.map((l: unknown, i: number) => {
        const e = typeof l === 'string' ? blobs.entry(posix.normalize(l)) : undefined;
        if (!e) throw new Error(`${where}: layer ${String(l)} missing from the archive`);
        blobs.members.set(diffIds[i]!, e.name);
        return { mediaType: MediaType.dockerLayerTar, size: e.size, digest: diffIds[i]! };
      });
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.dockerManifest,
          config: { mediaType: MediaType.dockerConfig, size: config.length, digest: configDigest },
          layers,
        }),
      );
      const digest = sha256Digest(manifest);
      blobs.memory.set(digest, manifest);
      const tags = Array.isArray(item.RepoTags) ? item.RepoTags.filter((t): t is string => typeof t === 'string') : [];
      const base: Descriptor = { mediaType: MediaType.dockerManifest, size: manifest.length, digest };
      if (tags.length === 0) descriptors.push(base);
      for (const t of tags) {
        let name = t;
        try {
          name = formatReference(parseImageReference(t));
        } catch {
          /* keep as written */
        }
        descriptors.push({ ...base, annotations: { [REF_NAME]: name } });
      }
      warn(
        `${where}: ${tags.join(', ') || configDigest} comes from a pre-Docker-25 archive without registry manifests; its digest ${digest} is synthesised and only matches a registry push with uncompressed layers`,
      );
    }
    return new DockerArchive(where, blobs, descriptors);
  }
}

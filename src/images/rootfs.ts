/**
 * Finding the final /etc/passwd and /etc/group of an image by streaming its layers from the
 * top down. Each layer is decompressed and read as a tar stream in memory; the scan of a
 * layer stops as soon as both files are settled and lower layers are never opened.
 *
 * Overlay semantics (OCI image spec, "Representing Changes"):
 * - `etc/.wh.passwd` in a layer deletes the file from the layers below;
 * - `etc/.wh..wh..opq` makes `etc` opaque: lower layers contribute nothing under it, but the
 *   same layer may still provide the file (the marker may come before or after it);
 * - `.wh.etc`, a root `.wh..wh..opq`, or `etc` replaced by a non-directory hide lower `etc`;
 * - a directory in place of the file hides the file.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { TarScanner, type TarHeader, type TarVisitor } from './tar-scan.js';

export type RootfsFile = 'passwd' | 'group';
const ROOTFS_FILES: readonly RootfsFile[] = ['passwd', 'group'];

/** How a layer settles one file: present with content, or gone (deleted, hidden, not a regular file). */
export type FileState = { kind: 'file'; content: string } | { kind: 'absent'; reason: string };

export interface LayerScanResult {
  files: Partial<Record<RootfsFile, FileState>>;
  /** Compressed bytes read from the source. */
  bytesRead: number;
  /** True when the whole blob was read (and its digest checked, when one was given). */
  complete: boolean;
  notes: string[];
}

/** Largest /etc/passwd or /etc/group we accept (a larger one is almost certainly not a passwd file). */
const MAX_FILE = 16 * 1024 * 1024;

/** Reduce a tar entry name to a relative path without `.` parts; undefined for unsafe names. */
export function normaliseEntryPath(name: string): string | undefined {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    parts.push(part);
  }
  return parts.join('/');
}

/** Counts (and optionally hashes) the compressed bytes flowing through. */
class Meter extends Transform {
  bytes = 0;
  ended = false;
  private readonly hash: Hash | undefined;
  constructor(
    hashIt: boolean,
    private readonly onBytes?: (n: number) => void,
  ) {
    super();
    this.hash = hashIt ? createHash('sha256') : undefined;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash?.update(chunk);
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    this.ended = true;
    cb();
  }
  digest(): string | undefined {
    return this.hash ? `sha256:${this.hash.digest('hex')}` : undefined;
  }
}

/** Wait for the first chunk of a stream and put it back; returns its first bytes. */
function peek(src: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      src.off('readable', onReadable);
      src.off('end', onEnd);
      src.off('error', onError);
    };
    const onReadable = (): void => {
      const chunk = src.read() as Buffer | null;
      if (chunk === null) return;
      cleanup();
      src.unshift(chunk);
      resolve(chunk.subarray(0, 4));
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.alloc(0));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    src.on('readable', onReadable);
    src.once('end', onEnd);
    src.once('error', onError);
  });
}

export interface ScanLayerOptions {
  /** The files still to settle. */
  wanted: readonly RootfsFile[];
  /** Expected digest of the compressed blob; checked when the blob is read to its end. */
  digest?: string;
  /** Called with each chunk size of compressed data, for progress. */
  onBytes?: (n: number) => void;
  /** Media type, for messages only; the compression is detected from the data. */
  mediaType?: string;
}

const TYPE_NAMES: Record<string, string> = {
  '2': 'symbolic link',
  '1': 'hard link',
  '5': 'directory',
  '3': 'character device',
  '4': 'block device',
  '6': 'FIFO',
};
const describeType = (h: TarHeader): string => TYPE_NAMES[h.typeflag] ?? `entry of type ${JSON.stringify(h.typeflag)}`;

/** Decide, entry by entry, what a layer says about the wanted files. */
class LayerVisitor implements TarVisitor {
  readonly files: Partial<Record<RootfsFile, FileState>> = {};
  readonly notes: string[] = [];
  readonly pending: Set<RootfsFile>;
  private etcHidden: string | undefined;
  constructor(wanted: readonly RootfsFile[]) {
    this.pending = new Set(wanted);
  }

  entry(h: TarHeader): number | undefined {
    if (this.pending.size === 0) return undefined;
    const path = normaliseEntryPath(h.name);
    if (path === undefined) return undefined;
    if (path === '.wh.etc') this.etcHidden = 'the directory /etc is deleted (whiteout .wh.etc)';
    else if (path === '.wh..wh..opq') this.etcHidden = 'the root directory is opaque';
    else if (path === 'etc/.wh..wh..opq') this.etcHidden = 'the directory /etc is opaque';
    else if (path === 'etc' && h.type !== 'directory') this.etcHidden = `/etc is replaced by a ${describeType(h)}`;
    for (const f of this.pending) {
      if (path === `etc/.wh.${f}`) {
        this.settle(f, { kind: 'absent', reason: `/etc/${f} is deleted (whiteout)` });
      } else if (path === `etc/${f}`) {
        if (h.type === 'file') return MAX_FILE;
        if (h.type === 'hardlink') {
          const target = normaliseEntryPath(h.linkname);
          const other = ROOTFS_FILES.find((o) => `etc/${o}` === target);
          const state = other ? this.files[other] : undefined;
          if (state?.kind === 'file') {
            this.settle(f, state);
            continue;
          }
        }
        const what = `${describeType(h)}${h.linkname ? ` to ${h.linkname}` : ''}`;
        if (h.type !== 'directory') this.notes.push(`/etc/${f} is a ${what}; treated as absent`);
        this.settle(f, { kind: 'absent', reason: `/etc/${f} is a ${what}` });
      }
    }
    return undefined;
  }

  content(h: TarHeader, data: Buffer): void {
    const path = normaliseEntryPath(h.name);
    const f = ROOTFS_FILES.find((x) => path === `etc/${x}`);
    if (f && this.pending.has(f)) this.settle(f, { kind: 'file', content: data.toString('utf8') });
  }

  private settle(f: RootfsFile, state: FileState): void {
    this.pending.delete(f);
    this.files[f] = state;
  }

  /** At the end of the layer: an opaque or deleted /etc hides what lower layers have. */
  finish(): void {
    if (this.etcHidden === undefined) return;
    for (const f of this.pending) this.files[f] = { kind: 'absent', reason: this.etcHidden };
    this.pending.clear();
  }
}

/** Scan one layer blob for the wanted files. The source stream is always consumed or destroyed. */
async function scanLayer(source: Readable, opts: ScanLayerOptions): Promise<LayerScanResult> {
  const meter = new Meter(opts.digest !== undefined, opts.onBytes);
  let decompressor: Transform | undefined;
  const destroyAll = (err?: Error): void => {
    source.destroy(err);
    meter.destroy(err);
    decompressor?.destroy(err);
  };
  source.on('error', (err) => destroyAll(err));
  meter.on('error', (err) => destroyAll(err));
  source.pipe(meter);

  const visitor = new LayerVisitor(opts.wanted);
  const tar = new TarScanner(visitor);
  let stoppedEarly = false;
  try {
    const magic = await peek(meter);
    let data: Readable = meter;
    if (magic.length >= 2 && magic[0] === 0x1f && magic[1] === 0x8b) {
      // Large output chunks: the default 16 KiB costs a third of the throughput.
      decompressor = createGunzip({ chunkSize: 256 * 1024 });
      decompressor.on('error', (err) => destroyAll(err));
      data = meter.pipe(decompressor);
    } else if (magic.length >= 4 && magic.readUInt32LE(0) === 0xfd2fb528) {
      throw new Error('zstd-compressed layers are not supported on Node 20; push the image with gzip layers');
    }
    for await (const chunk of data) {
      if (!tar.finished) tar.push(chunk as Buffer);
      if (visitor.pending.size === 0) {
        stoppedEarly = true;
        break;
      }
    }
    if (!stoppedEarly) {
      tar.end();
      visitor.finish();
    }
  } catch (err) {
    destroyAll();
    throw err;
  }
  const complete = !stoppedEarly && meter.ended;
  if (complete && opts.digest !== undefined) {
    const got = meter.digest();
    if (got !== opts.digest) throw new Error(`layer ${opts.digest} has digest ${got} (corrupt or tampered data)`);
  }
  destroyAll();
  return { files: visitor.files, bytesRead: meter.bytes, complete, notes: visitor.notes };
}

export interface RootfsResult {
  passwd?: string;
  group?: string;
  /** Number of layers opened by this call (scans shared with other images not counted). */
  layersScanned: number;
  bytesRead: number;
  notes: string[];
}

/**
 * Settle /etc/passwd and /etc/group over a stack of layers, opening layers from the top
 * (last) to the bottom (first) and stopping as soon as both are known.
 */
/** Shares the scan of one layer digest (for one set of wanted files) between images. */
export type LayerScanMemo = (key: string, scan: () => Promise<LayerScanResult>) => Promise<LayerScanResult>;

export interface LayerSource {
  /** The layer's digest; also the key for sharing scans between images. */
  digest?: string;
  mediaType?: string;
  open(): Promise<Readable>;
}

export async function findPasswdAndGroup(
  layerCount: number,
  layerAt: (index: number) => Promise<LayerSource> | LayerSource,
  onBytes?: (n: number) => void,
  memo?: LayerScanMemo,
): Promise<RootfsResult> {
  const settled: Partial<Record<RootfsFile, FileState>> = {};
  const notes: string[] = [];
  let bytesRead = 0;
  let layersScanned = 0;
  for (let i = layerCount - 1; i >= 0; i--) {
    const wanted = ROOTFS_FILES.filter((f) => settled[f] === undefined);
    if (wanted.length === 0) break;
    const layer = await layerAt(i);
    let ownScan = false;
    const scan = async (): Promise<LayerScanResult> => {
      ownScan = true;
      const opts: ScanLayerOptions = { wanted };
      if (layer.digest !== undefined) opts.digest = layer.digest;
      if (layer.mediaType !== undefined) opts.mediaType = layer.mediaType;
      if (onBytes !== undefined) opts.onBytes = onBytes;
      try {
        return await scanLayer(await layer.open(), opts);
      } catch (err) {
        throw new Error(
          `layer ${i + 1} of ${layerCount}${layer.digest ? ` (${layer.digest})` : ''}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    };
    const result =
      memo && layer.digest !== undefined ? await memo(`${layer.digest} ${wanted.join(',')}`, scan) : await scan();
    if (ownScan) {
      layersScanned++;
      bytesRead += result.bytesRead;
    }
    notes.push(...result.notes);
    for (const f of wanted) if (result.files[f] !== undefined) settled[f] = result.files[f];
  }
  const out: RootfsResult = { layersScanned, bytesRead, notes };
  if (settled.passwd?.kind === 'file') out.passwd = settled.passwd.content;
  if (settled.group?.kind === 'file') out.group = settled.group.content;
  return out;
}

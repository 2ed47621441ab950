/**
 * The scan of one layer for /etc/passwd and /etc/group, as a push state machine: the bytes of
 * the blob are written in as they arrive (on the main thread, or on the scan thread of
 * scan-thread.ts), decompressed (layer-decode.ts) and read as a tar stream in memory.
 *
 * Overlay semantics (OCI image spec, "Representing Changes"):
 * - `etc/.wh.passwd` in a layer deletes the file from the layers below;
 * - `etc/.wh..wh..opq` makes `etc` opaque: lower layers contribute nothing under it, but the
 *   same layer may still provide the file (the marker may come before or after it);
 * - `.wh.etc`, a root `.wh..wh..opq`, or `etc` replaced by a non-directory hide lower `etc`;
 * - a directory in place of the file hides the file.
 */
import { createHash, type Hash } from 'node:crypto';
import { createLayerDecoder, detectCompression, MAGIC_BYTES, type LayerDecoder } from './layer-decode.js';
import { TarScanner, type TarHeader, type TarVisitor } from './tar-scan.js';

export type RootfsFile = 'passwd' | 'group';
export const ROOTFS_FILES: readonly RootfsFile[] = ['passwd', 'group'];

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
export class LayerVisitor implements TarVisitor {
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

/** What a scan found; `complete` is true when the whole blob was read and its digest (if given) checked. */
export interface LayerScanOutcome {
  files: Partial<Record<RootfsFile, FileState>>;
  complete: boolean;
  notes: string[];
}

export interface LayerScanEvents {
  /** The files are settled: no more input is needed (the rest may still be written, or `abort()` called). */
  stop(): void;
  /** Exactly once: the outcome, or why the layer cannot be used. */
  done(outcome: LayerScanOutcome | Error): void;
}

/**
 * One layer's scan. Every byte written is hashed; bytes are decompressed and scanned until the
 * wanted files are settled (then `stop` is signalled and later bytes are only hashed). `end()`
 * after the last byte checks the digest: a blob read to its end is always verified, even when
 * the files came first. `abort()` gives up the rest: the outcome is then not `complete`.
 */
export class LayerScan {
  private readonly hash: Hash | undefined;
  private readonly visitor: LayerVisitor;
  private readonly tar: TarScanner;
  private head: Buffer[] = [];
  private headLength = 0;
  private decoder: LayerDecoder | undefined;
  /** The decoder gave all its output (or the files were found): later bytes are only hashed. */
  private decodingOver = false;
  /** end() was called: every byte of the blob has been written. */
  private inputEnded = false;
  private finished = false;

  constructor(
    wanted: readonly RootfsFile[],
    private readonly digest: string | undefined,
    private readonly events: LayerScanEvents,
  ) {
    this.hash = digest !== undefined ? createHash('sha256') : undefined;
    this.visitor = new LayerVisitor(wanted);
    this.tar = new TarScanner(this.visitor);
  }

  /** False when the caller should wait for `onDrain` before writing more. */
  write(chunk: Buffer): boolean {
    if (this.finished) return true;
    this.hash?.update(chunk);
    if (this.decodingOver) return true;
    let more: boolean;
    if (this.decoder) {
      more = this.decoder.write(chunk);
    } else {
      this.head.push(chunk);
      this.headLength += chunk.length;
      if (this.headLength < MAGIC_BYTES) return true;
      more = this.startDecoder(this.takeHead());
    }
    return more || this.decodingOver || this.finished;
  }

  onDrain(cb: () => void): void {
    if (this.decoder && !this.decodingOver && !this.finished) this.decoder.onDrain(cb);
    else queueMicrotask(cb);
  }

  /** The blob ended: finish decoding, then check the digest. */
  end(): void {
    if (this.finished) return;
    this.inputEnded = true;
    if (!this.decoder && !this.decodingOver) this.startDecoder(this.takeHead());
    if (this.finished) return;
    if (this.decodingOver) this.finish(true);
    else this.decoder!.end();
  }

  /** Give up the rest of the blob (after `stop`, or when the source failed). */
  abort(): void {
    if (this.finished) return;
    this.decoder?.destroy();
    this.finish(false);
  }

  private takeHead(): Buffer {
    const b = this.head.length === 1 ? this.head[0]! : Buffer.concat(this.head);
    this.head = [];
    return b;
  }

  /** Choose the decoder from the first bytes and write them; false when it wants a pause. */
  private startDecoder(first: Buffer): boolean {
    this.decoder = createLayerDecoder(detectCompression(first), {
      data: (out) => this.onData(out),
      end: () => this.onDecoderEnd(),
      error: (err) => this.fail(err),
    });
    return first.length === 0 || this.decoder.write(first);
  }

  private onData(out: Buffer): void {
    if (this.decodingOver || this.finished) return;
    try {
      if (!this.tar.finished) this.tar.push(out);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (this.visitor.pending.size === 0) {
      this.decodingOver = true;
      this.decoder!.destroy();
      if (this.inputEnded) this.finish(true);
      else this.events.stop();
    }
  }

  private onDecoderEnd(): void {
    if (this.decodingOver || this.finished) return;
    try {
      this.tar.end();
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.visitor.finish();
    this.decodingOver = true;
    // Normally the input has ended too; bytes after the compressed stream are still hashed.
    if (this.inputEnded) this.finish(true);
  }

  private finish(complete: boolean): void {
    if (this.finished) return;
    this.finished = true;
    if (complete && this.hash) {
      const got = `sha256:${this.hash.digest('hex')}`;
      if (got !== this.digest) {
        this.events.done(new Error(`layer ${this.digest} has digest ${got} (corrupt or tampered data)`));
        return;
      }
    }
    this.events.done({ files: this.visitor.files, complete, notes: this.visitor.notes });
  }

  private fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.decoder?.destroy();
    this.events.done(err);
  }
}

/**
 * Decompressing layer blobs as their bytes arrive. The compression is detected from the data,
 * as for gzip before (the media type is only a label, and tools disagree on it):
 * - gzip (RFC 1952, magic 1f 8b): zlib, on libuv's thread pool, so the inflate of one layer
 *   runs on another core than the download, hashing and tar scan of the main thread;
 * - zstd (RFC 8878, magic 28 b5 2f fd): our own decoder (zstd.ts; Node 20's zlib has none);
 * - anything else: an uncompressed tar.
 * A push interface: the caller writes chunks, the decoder hands its output to a sink, and
 * either side can stop at any point (the scan stops once it has the files it wants).
 */
import { createGunzip, type Gunzip } from 'node:zlib';
import { ZstdDecoder, ZSTD_MAGIC } from './zstd.js';

export type Compression = 'gzip' | 'zstd' | 'none';

/** Bytes needed to tell the compressions apart. */
export const MAGIC_BYTES = 4;

export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === ZSTD_MAGIC) return 'zstd';
  return 'none';
}

export interface DecoderSink {
  /** Decompressed bytes, in order. The buffer may be reused after the call returns. */
  data(chunk: Buffer): void;
  /** All output has been delivered (the compressed stream ended). */
  end(): void;
  error(err: Error): void;
}

export interface LayerDecoder {
  /** Decompress a chunk; false when the caller should wait for `onDrain` before writing more. */
  write(chunk: Buffer): boolean;
  onDrain(cb: () => void): void;
  /** No more input: the remaining output, then `sink.end()` (or `sink.error()` for a truncated stream). */
  end(): void;
  /** Stop; no sink call follows. */
  destroy(): void;
}

/**
 * zlib's output chunk. Node's default (16 KiB) costs a third of the throughput; every output
 * chunk is a new buffer, so the size mostly sets how often the main thread is called.
 */
const GZIP_CHUNK = 256 * 1024;

class GzipLayerDecoder implements LayerDecoder {
  private readonly z: Gunzip;
  constructor(sink: DecoderSink) {
    this.z = createGunzip({ chunkSize: GZIP_CHUNK });
    this.z.on('data', (c: Buffer) => sink.data(c));
    this.z.on('end', () => sink.end());
    this.z.on('error', (err) => sink.error(new Error(`gzip: ${err.message}`, { cause: err })));
  }
  write(chunk: Buffer): boolean {
    return this.z.write(chunk);
  }
  onDrain(cb: () => void): void {
    this.z.once('drain', cb);
  }
  end(): void {
    this.z.end();
  }
  destroy(): void {
    this.z.removeAllListeners('data');
    this.z.removeAllListeners('end');
    this.z.on('error', () => undefined);
    this.z.destroy();
  }
}

/** Synchronous: output is handed over during write(); a sink that destroys the decoder stops it. */
class ZstdLayerDecoder implements LayerDecoder {
  private readonly d: ZstdDecoder;
  private stopped = false;
  constructor(private readonly sink: DecoderSink) {
    this.d = new ZstdDecoder((out) => {
      if (!this.stopped) sink.data(out);
      return !this.stopped;
    });
  }
  write(chunk: Buffer): boolean {
    if (this.stopped) return true;
    try {
      this.d.push(chunk);
    } catch (err) {
      this.fail(err as Error);
    }
    return true;
  }
  onDrain(cb: () => void): void {
    queueMicrotask(cb);
  }
  end(): void {
    if (this.stopped) return;
    try {
      this.d.end();
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (!this.stopped) this.sink.end();
  }
  destroy(): void {
    this.stopped = true;
  }
  private fail(err: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.sink.error(new Error(`zstd: ${err.message}`, { cause: err }));
  }
}

class PlainLayerDecoder implements LayerDecoder {
  private stopped = false;
  constructor(private readonly sink: DecoderSink) {}
  write(chunk: Buffer): boolean {
    if (!this.stopped) this.sink.data(chunk);
    return true;
  }
  onDrain(cb: () => void): void {
    queueMicrotask(cb);
  }
  end(): void {
    if (!this.stopped) this.sink.end();
  }
  destroy(): void {
    this.stopped = true;
  }
}

export function createLayerDecoder(compression: Compression, sink: DecoderSink): LayerDecoder {
  switch (compression) {
    case 'gzip':
      return new GzipLayerDecoder(sink);
    case 'zstd':
      return new ZstdLayerDecoder(sink);
    case 'none':
      return new PlainLayerDecoder(sink);
  }
}

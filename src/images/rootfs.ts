/**
 * Finding the final /etc/passwd and /etc/group of an image by streaming its layers from the
 * top down (the overlay rules are in layer-scan.ts). Each layer is decompressed and read as a
 * tar stream in memory, on the scan thread where it can run (scan-thread.ts); the scan of a
 * layer stops as soon as both files are settled and lower layers are never opened.
 */
import type { Readable } from 'node:stream';
import { ROOTFS_FILES, type FileState, type LayerScanOutcome, type RootfsFile } from './layer-scan.js';
import { openLayerScan } from './scan-thread.js';

export { normaliseEntryPath, type FileState, type RootfsFile } from './layer-scan.js';

export interface LayerScanResult extends LayerScanOutcome {
  /** Compressed bytes read from the source. */
  bytesRead: number;
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

/**
 * Scan one layer blob for the wanted files. The source stream is always consumed or destroyed.
 * Each chunk goes straight to the scan (no stream plumbing between the stages); while the scan
 * lags, the source is paused, so memory stays bounded.
 */
function scanLayer(source: Readable, opts: ScanLayerOptions, signal?: AbortSignal): Promise<LayerScanResult> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      source.destroy();
      reject(signal.reason as Error);
      return;
    }
    let bytes = 0;
    let sourceEnded = false;
    let settled = false;
    const scan = openLayerScan(opts.wanted, opts.digest, {
      stop: () => {
        // The files are known: the rest of the download is not needed (unless it has all arrived).
        if (sourceEnded || settled) return;
        source.destroy();
        scan.abort();
      },
      done: (outcome) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (!sourceEnded) source.destroy();
        if (outcome instanceof Error) reject(outcome);
        else resolve({ ...outcome, bytesRead: bytes });
      },
    });
    source.on('data', (chunk: Buffer) => {
      if (settled) return;
      bytes += chunk.length;
      opts.onBytes?.(chunk.length);
      if (scan.write(chunk) || settled) return;
      source.pause();
      scan.onDrain(() => {
        if (!settled) source.resume();
      });
    });
    source.on('end', () => {
      sourceEnded = true;
      if (!settled) scan.end();
    });
    const giveUp = (err: Error): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (!sourceEnded) source.destroy();
      scan.abort();
      reject(err);
    };
    const onAbort = (): void => giveUp(signal!.reason as Error);
    signal?.addEventListener('abort', onAbort, { once: true });
    source.on('error', giveUp);
  });
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
 * Shares the scan of one layer digest (for one set of wanted files) between images. `signal`:
 * the caller's interest; a shared scan is stopped only when every caller has given it up.
 */
export type LayerScanMemo = (
  key: string,
  scan: (signal: AbortSignal) => Promise<LayerScanResult>,
  signal: AbortSignal,
) => Promise<LayerScanResult>;

/** A memo for one resolver: results are kept; failed or abandoned scans are forgotten (a later caller starts again). */
export function sharedLayerScans(): LayerScanMemo {
  interface Entry {
    promise: Promise<LayerScanResult>;
    users: number;
    controller: AbortController;
    settled: boolean;
  }
  const entries = new Map<string, Entry>();
  return (key, scan, signal) => {
    let entry = entries.get(key);
    if (!entry) {
      const controller = new AbortController();
      const e: Entry = { promise: scan(controller.signal), users: 0, controller, settled: false };
      e.promise.then(
        () => (e.settled = true),
        () => {
          e.settled = true;
          if (entries.get(key) === e) entries.delete(key);
        },
      );
      entries.set(key, e);
      entry = e;
    }
    const e = entry;
    if (e.settled) return e.promise;
    e.users++;
    return new Promise<LayerScanResult>((resolve, reject) => {
      const onAbort = (): void => {
        e.users--;
        if (e.users === 0 && !e.settled) {
          if (entries.get(key) === e) entries.delete(key);
          e.controller.abort();
        }
        reject(signal.reason as Error);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      e.promise.then(
        (r) => {
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err as Error);
        },
      );
    });
  };
}

export interface LayerSource {
  /** The layer's digest; also the key for sharing scans between images. */
  digest?: string;
  mediaType?: string;
  /** Compressed size from the manifest, when known: lets the next layer start early. */
  size?: number;
  open(): Promise<Readable>;
}

/**
 * Layers scanned at the same time per image: the next lower layer is started while the current
 * one is read, so that two inflates (and two downloads) overlap on a machine with two cores. The
 * lower scan is abandoned, and what it read wasted, when the upper layer settles both files.
 */
export const LAYER_LOOKAHEAD = 2;

/**
 * One more layer is started when a running one has this little left to read (compressed bytes,
 * from the manifest's size), so that the new request's round trip (5-20 ms to a local registry,
 * more to a remote one) overlaps the end of that download instead of following it.
 */
export const EARLY_START_BYTES = 2 * 1024 * 1024;

export interface FindOptions {
  /** Called with each chunk size of compressed data, for progress. */
  onBytes?: (n: number) => void;
  /** Shares layer scans between images. */
  memo?: LayerScanMemo;
  /** Layers scanned at the same time (LAYER_LOOKAHEAD). */
  lookahead?: number;
  /**
   * Called once when the scan is in its tail: the lowest layer has been started, and each running
   * one has at most EARLY_START_BYTES left (or has finished). The resolver hands its slot to the next
   * image then, so that image's round trips overlap this one's last bytes (as EARLY_START_BYTES
   * does for layers).
   */
  onTail?: () => void;
}

/**
 * Settle /etc/passwd and /etc/group over a stack of layers, scanning layers from the top (last)
 * to the bottom (first), `lookahead` at a time (one more near the end of one: EARLY_START_BYTES),
 * and stopping as soon as both are known.
 */
export async function findPasswdAndGroup(
  layerCount: number,
  layerAt: (index: number) => Promise<LayerSource> | LayerSource,
  { onBytes, memo, lookahead = LAYER_LOOKAHEAD, onTail }: FindOptions = {},
): Promise<RootfsResult> {
  const settled: Partial<Record<RootfsFile, FileState>> = {};
  const notes: string[] = [];
  let bytesRead = 0;
  let layersScanned = 0;
  interface Running {
    wanted: RootfsFile[];
    controller: AbortController;
    /** Compressed bytes still to come (Infinity while the size is unknown or the scan is shared). */
    remaining: number;
    result: Promise<{ result: LayerScanResult; own: boolean }>;
  }
  const running: Running[] = [];
  let next = layerCount - 1;
  let over = false;

  const start = (i: number, wanted: RootfsFile[]): Running => {
    const progress = { wanted, controller: new AbortController(), remaining: Infinity };
    const result = (async () => {
      const layer = await layerAt(i);
      let own = false;
      const scan = async (signal: AbortSignal): Promise<LayerScanResult> => {
        own = true;
        if (layer.size !== undefined) {
          progress.remaining = layer.size;
          // A layer this small is near its end from its first byte.
          if (layer.size <= EARLY_START_BYTES) fill();
        }
        const opts: ScanLayerOptions = {
          wanted,
          onBytes: (n) => {
            onBytes?.(n);
            const before = progress.remaining;
            progress.remaining -= n;
            if (before > EARLY_START_BYTES && progress.remaining <= EARLY_START_BYTES) fill();
          },
        };
        if (layer.digest !== undefined) opts.digest = layer.digest;
        if (layer.mediaType !== undefined) opts.mediaType = layer.mediaType;
        try {
          return await scanLayer(await layer.open(), opts, signal);
        } catch (err) {
          if (signal.aborted) throw err;
          throw new Error(
            `layer ${i + 1} of ${layerCount}${layer.digest ? ` (${layer.digest})` : ''}: ${(err as Error).message}`,
            { cause: err },
          );
        }
      };
      const scanned =
        memo && layer.digest !== undefined
          ? await memo(`${layer.digest} ${wanted.join(',')}`, scan, progress.controller.signal)
          : await scan(progress.controller.signal);
      return { result: scanned, own };
    })();
    // An abandoned scan's rejection is expected and must not be reported as unhandled.
    result.then(
      () => {
        progress.remaining = 0;
        checkTail();
      },
      () => undefined,
    );
    return Object.assign(progress, { result });
  };
  /** The scan the loop below waits for (taken out of `running`). */
  let current: Running | undefined;
  let tailSignalled = false;
  const checkTail = (): void => {
    if (tailSignalled || over || !onTail || next >= 0) return;
    const near = (r: Running): boolean => r.remaining <= EARLY_START_BYTES;
    if ((current && !near(current)) || !running.every(near)) return;
    tailSignalled = true;
    onTail();
  };
  const slots = Math.max(1, lookahead);
  const fill = (): void => {
    while (
      !over &&
      next >= 0 &&
      (running.length < slots || (running.length === slots && running.some((r) => r.remaining <= EARLY_START_BYTES)))
    ) {
      const wanted = ROOTFS_FILES.filter((f) => settled[f] === undefined);
      if (wanted.length === 0) return;
      running.push(start(next--, wanted));
    }
    checkTail();
  };

  try {
    fill();
    while (running.length > 0) {
      current = running.shift()!;
      const { result, own } = await current.result;
      if (own) {
        layersScanned++;
        bytesRead += result.bytesRead;
      }
      notes.push(...result.notes);
      for (const f of current.wanted)
        if (settled[f] === undefined && result.files[f] !== undefined) settled[f] = result.files[f];
      if (ROOTFS_FILES.every((f) => settled[f] !== undefined)) break;
      fill();
    }
  } finally {
    // Lower layers still being read are not needed (both files known) or not wanted (a failure).
    over = true;
    for (const r of running) r.controller.abort();
  }
  const out: RootfsResult = { layersScanned, bytesRead, notes };
  if (settled.passwd?.kind === 'file') out.passwd = settled.passwd.content;
  if (settled.group?.kind === 'file') out.group = settled.group.content;
  return out;
}

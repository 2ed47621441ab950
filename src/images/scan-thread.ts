/**
 * Layer scans on a worker thread. The main thread only downloads (or reads) the blob and posts
 * its chunks; hashing, decompression and the tar scan run on the scan thread, and gzip's
 * inflate on libuv's thread pool below it.
 *
 * Why a thread, when zlib already inflates off the main thread: every decompressed chunk is a
 * new buffer outside V8's heap, and V8 answers that external memory with full garbage
 * collections of the heap that allocated it. In the main isolate (the whole CLI's heap) those
 * collections cost as much CPU as the inflate itself (docs/performance.md); in the scan
 * thread's isolate, which holds little more than the scanner, they are cheap. The chunks
 * posted to the thread are copied into its heap, so the main isolate's own garbage stays the
 * downloaded bytes only.
 *
 * One thread per process, started at the first layer scan, kept only while scans run (it does
 * not keep the process alive). Where it cannot start (src/util/worker.ts) or once it has failed,
 * scans run on the main thread: same code, same results.
 */
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../util/worker.js';
import { LayerScan, type LayerScanEvents, type LayerScanOutcome, type RootfsFile } from './layer-scan.js';

/** Main → scan thread. */
export type ScanRequest =
  | { t: 'start'; id: number; wanted: readonly RootfsFile[]; digest?: string }
  | { t: 'data'; id: number; chunk: Uint8Array }
  | { t: 'end'; id: number }
  | { t: 'abort'; id: number };

/** Scan thread → main. `ack`: one data message taken (and the decoder ready for more). */
export type ScanReply =
  | { t: 'ack'; id: number }
  | { t: 'stop'; id: number }
  | { t: 'done'; id: number; outcome: LayerScanOutcome }
  | { t: 'failed'; id: number; message: string };

/** The interface of a scan, wherever it runs (LayerScan itself, or its proxy on the thread). */
export interface LayerScanHandle {
  write(chunk: Buffer): boolean;
  onDrain(cb: () => void): void;
  end(): void;
  abort(): void;
}

/**
 * What a scan posts at a time. A socket delivers at most 64 KiB per read, and every message
 * costs a structured clone, a zlib call on the thread and an ack back: gathering reads into
 * 256 KiB (the size of a file read) quarters that for downloads (docs/performance.md).
 */
const BATCH = 256 * 1024;

/** Batches posted and not yet taken by the scan thread, per scan. */
const WINDOW = 4;

class RemoteScan implements LayerScanHandle {
  inFlight = 0;
  private drainWaiters: (() => void)[] = [];
  closed = false;
  /** Chunks are gathered here and posted a batch at a time (postMessage copies it). */
  private readonly batch = Buffer.allocUnsafeSlow(BATCH);
  private used = 0;
  constructor(
    private readonly thread: ScanThread,
    readonly id: number,
    readonly events: LayerScanEvents,
  ) {}
  write(chunk: Buffer): boolean {
    if (this.closed) return true;
    for (let from = 0; from < chunk.length;) {
      const n = chunk.copy(this.batch, this.used, from);
      this.used += n;
      from += n;
      if (this.used === BATCH) this.flush();
    }
    return this.inFlight < WINDOW;
  }
  private flush(): void {
    // Only the filled bytes: a view would be posted with its whole buffer.
    const chunk = this.used === BATCH ? this.batch : Uint8Array.prototype.slice.call(this.batch, 0, this.used);
    this.used = 0;
    this.inFlight++;
    this.thread.post({ t: 'data', id: this.id, chunk });
  }
  onDrain(cb: () => void): void {
    if (this.closed || this.inFlight < WINDOW) queueMicrotask(cb);
    else this.drainWaiters.push(cb);
  }
  acked(): void {
    this.inFlight--;
    if (this.inFlight < WINDOW && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const cb of waiters) cb();
    }
  }
  end(): void {
    if (this.closed) return;
    if (this.used > 0) this.flush();
    this.thread.post({ t: 'end', id: this.id });
  }
  abort(): void {
    if (!this.closed) this.thread.post({ t: 'abort', id: this.id });
  }
}

class ScanThread {
  private readonly worker: Worker;
  private readonly scans = new Map<number, RemoteScan>();
  private nextId = 1;
  failed = false;

  constructor(worker: Worker) {
    this.worker = worker;
    this.worker.unref();
    this.worker.on('message', (m: ScanReply) => {
      const scan = this.scans.get(m.id);
      if (!scan) return;
      switch (m.t) {
        case 'ack':
          scan.acked();
          break;
        case 'stop':
          scan.events.stop();
          break;
        case 'done':
          this.close(scan);
          scan.events.done(m.outcome);
          break;
        case 'failed':
          this.close(scan);
          scan.events.done(new Error(m.message));
          break;
      }
    });
    const fail = (err: Error): void => {
      if (this.failed) return;
      this.failed = true;
      for (const scan of [...this.scans.values()]) {
        this.close(scan);
        scan.events.done(new Error(`the layer scan thread stopped: ${err.message}`));
      }
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  }

  open(wanted: readonly RootfsFile[], digest: string | undefined, events: LayerScanEvents): RemoteScan {
    const scan = new RemoteScan(this, this.nextId++, events);
    if (this.scans.size === 0) this.worker.ref();
    this.scans.set(scan.id, scan);
    const start: ScanRequest = { t: 'start', id: scan.id, wanted };
    if (digest !== undefined) start.digest = digest;
    this.post(start);
    return scan;
  }

  post(m: ScanRequest): void {
    this.worker.postMessage(m);
  }

  private close(scan: RemoteScan): void {
    scan.closed = true;
    this.scans.delete(scan.id);
    // Idle: the thread must not keep the process alive.
    if (this.scans.size === 0) this.worker.unref();
  }
}

let thread: ScanThread | undefined;
let unavailable = false;

/** Where layer scans run: 'thread' (default where possible) or 'main' (forced, for tests and A/B). */
let placement: 'thread' | 'main' = process.env['CONTRAST_LAYER_SCAN'] === 'main' ? 'main' : 'thread';
export function setLayerScanPlacement(p: 'thread' | 'main'): void {
  placement = p;
}

/** Start a scan on the scan thread when it is available, else on the main thread. */
export function openLayerScan(
  wanted: readonly RootfsFile[],
  digest: string | undefined,
  events: LayerScanEvents,
): LayerScanHandle {
  if (placement === 'thread' && !unavailable && !thread?.failed) {
    if (!thread) {
      const worker = startWorker(import.meta.url, 'scan-thread-worker');
      if (worker) thread = new ScanThread(worker);
      else unavailable = true;
    }
    if (thread && !thread.failed) return thread.open(wanted, digest, events);
  }
  return new LayerScan(wanted, digest, events);
}

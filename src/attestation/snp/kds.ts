import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { BoundedCache } from '../bounded-cache.js';
import { MAX_CERTIFICATE_BYTES } from '../certificate.js';
import { AttestationError, CollateralUnavailableError } from '../errors.js';
import { isAllZero, toHex } from '../bytes.js';
import { parseCrl, parseDerCertificate, parsePemCertificates } from '../x509.js';
import { crlSignedByArk } from './chain.js';
import type { SnpCollateralSource } from './collateral.js';
import { usesTurinLayout, type SnpProduct } from './product.js';
import type { SnpReport } from './report.js';
import { decodeTcb } from './tcb.js';

/**
 * Certificate sources for SNP: a cache directory (offline) and AMD's Key Distribution Service
 * (network, only when a caller constructs a KdsClient). Nothing returned here is trusted; it
 * all goes through the chain check against the pinned ARK.
 */

export const KDS_BASE_URL = 'https://kdsintf.amd.com';

/** The KDS path of a VCEK: chip id (8 bytes on Turin) and the REPORTED_TCB components. */
export function vcekPath(product: SnpProduct, report: SnpReport): string | undefined {
  if (isAllZero(report.chipId)) return undefined; // masked chip id: the VCEK cannot be looked up
  const tcb = decodeTcb(report.reportedTcb, product);
  const pad = (n: number) => String(n).padStart(2, '0');
  const turin = usesTurinLayout(product);
  const id = toHex(turin ? report.chipId.subarray(0, 8) : report.chipId);
  const query = [
    ...(turin ? [`fmcSPL=${pad(tcb.fmc ?? 0)}`] : []),
    `blSPL=${pad(tcb.bootloader)}`, `teeSPL=${pad(tcb.tee)}`, `snpSPL=${pad(tcb.snp)}`, `ucodeSPL=${pad(tcb.microcode)}`,
  ].join('&');
  return `/vcek/v1/${product}/${id}?${query}`;
}

export const chainPath = (product: SnpProduct, kind: 'vcek' | 'vlek') => `/${kind}/v1/${product}/cert_chain`;
export const crlPath = (product: SnpProduct, kind: 'vcek' | 'vlek') => `/${kind}/v1/${product}/crl`;

function readIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * A directory of AMD certificates: `<product>/vcek/<chip id>-<reported tcb>.der`,
 * `<product>/<vcek|vlek>/cert_chain.pem` and `<product>/<vcek|vlek>/crl.der`. Offline: `crl`
 * returns whatever CRL is stored, current or not, and the CRL policy decides what to do with it.
 */
export class DirectoryCache implements SnpCollateralSource {
  constructor(readonly dir: string) {}

  vcekFile(product: SnpProduct, report: SnpReport): string {
    const id = toHex(usesTurinLayout(product) ? report.chipId.subarray(0, 8) : report.chipId);
    return join(this.dir, product, 'vcek', `${id}-${toHex(report.reportedTcb)}.der`);
  }

  chainFile(product: SnpProduct, kind: 'vcek' | 'vlek'): string {
    return join(this.dir, product, kind, 'cert_chain.pem');
  }

  crlFile(product: SnpProduct, kind: 'vcek' | 'vlek'): string {
    return join(this.dir, product, kind, 'crl.der');
  }

  async vcek(product: SnpProduct, report: SnpReport): Promise<Uint8Array | undefined> {
    return readIfExists(this.vcekFile(product, report));
  }

  async certChain(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined> {
    return readIfExists(this.chainFile(product, kind));
  }

  async crl(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined> {
    return readIfExists(this.crlFile(product, kind));
  }

  store(path: string, data: Uint8Array): void {
    mkdirSync(dirname(path), { recursive: true });
    writeFileAtomic(path, data);
  }
}

/** Time for the KDS client: spacing, timeouts and the negative cache. Injected by tests. */
export interface KdsClock {
  /** Milliseconds; only differences matter. */
  now(): number;
  /** Resolves after `ms` milliseconds; rejects once `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const SYSTEM_CLOCK: KdsClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleepFor(ms, undefined, signal ? { signal } : {}),
};

/** Defaults of KdsClientOptions; see docs/attestation.md ("AMD KDS client"). */
export const KDS_DEFAULTS = {
  minIntervalMs: 2_000,
  timeoutMs: 10_000,
  maxQueued: 8,
  notFoundTtlMs: 10 * 60_000,
  failureBackoffMs: 30_000,
  maxCertBytes: MAX_CERTIFICATE_BYTES,
  maxCrlBytes: 1024 * 1024,
} as const;

/** How many chip/TCB combinations the negative cache remembers (oldest forgotten first). */
const NEGATIVE_CACHE_ENTRIES = 4096;

export interface KdsClientOptions {
  /** Where fetched certificates and CRLs are kept; consulted before the network. Unset: kept in memory only (CRLs) or not at all (certificates). */
  readonly cache?: DirectoryCache;
  /** Unset: https://kdsintf.amd.com. */
  readonly baseUrl?: string;
  /** Minimum time between the starts of two requests of one queue (KDS throttles clients that ask too often). Unset: 2 s. */
  readonly minIntervalMs?: number;
  /** Per request, from sending it to the last byte of the body. Unset: 10 s. */
  readonly timeoutMs?: number;
  /**
   * Distinct requests that may wait in each queue (VCEKs; chains and CRLs) besides the one
   * being served; a further distinct request fails at once with CollateralUnavailableError
   * (`snp.kds.busy`). Identical requests share one fetch and take no extra place. Unset: 8.
   */
  readonly maxQueued?: number;
  /** How long a 404 (or another 4xx) answer is remembered, so the same request is not sent again. Unset: 10 min. */
  readonly notFoundTtlMs?: number;
  /** After a failed request (network, timeout, 5xx, 429, oversized or unusable body), how long the same request fails at once without being sent. Unset: 30 s. */
  readonly failureBackoffMs?: number;
  /** Largest VCEK or certificate chain accepted. Unset: 64 KiB. */
  readonly maxCertBytes?: number;
  /** Largest CRL accepted. Unset: 1 MiB. */
  readonly maxCrlBytes?: number;
  /** Unset: the global fetch. */
  readonly fetch?: typeof fetch;
  /** Unset: the system clock and timers. */
  readonly clock?: KdsClock;
}

type Item = 'vcek' | 'chain' | 'crl';

const ITEM_NAME: Record<Item, string> = { vcek: 'VCEK', chain: 'certificate chain', crl: 'CRL' };

interface Job {
  readonly path: string;
  readonly item: Item;
  readonly product: SnpProduct;
  readonly resolve: (body: Buffer | undefined) => void;
  readonly reject: (err: unknown) => void;
}

/** One request at a time, spaced: VCEKs in one queue, chains and CRLs in the other. */
class Lane {
  readonly waiting: Job[] = [];
  running = false;
  lastStart = -Infinity;
}

/** A remembered answer: "not found", a refusal (4xx) or a failure (backoff). */
interface Remembered {
  readonly until: number;
  readonly error?: AttestationError;
}

/**
 * AMD KDS over HTTPS (AMD publication 57230, "VCEK Certificate and KDS Interface
 * Specification", chapter 4), built to be called for evidence from unauthenticated peers:
 *
 * - two queues, so chains and CRLs (a handful of URLs per product) never wait behind VCEK
 *   requests, whose chip ids a peer can make up; evidence that carries its VCEK never touches
 *   the VCEK queue;
 * - each queue serves one request at a time, `minIntervalMs` apart, and holds at most
 *   `maxQueued` distinct waiting requests; beyond that, requests fail fast;
 * - identical requests share one fetch; a 404 is remembered for `notFoundTtlMs`, a failure
 *   for `failureBackoffMs`;
 * - every request has a timeout and a cap on the body size, and a body is checked for being
 *   the kind of object asked for (a CRL: signed by the pinned ARK) before it is cached.
 */
export class KdsClient implements SnpCollateralSource {
  private readonly inflight = new Map<string, Promise<Buffer | undefined>>();
  private readonly lanes = { vcek: new Lane(), product: new Lane() };
  private readonly remembered = new BoundedCache<string, Remembered>(NEGATIVE_CACHE_ENTRIES);
  private readonly crls = new Map<string, Buffer>();
  private readonly clock: KdsClock;
  private readonly cfg: Required<Omit<KdsClientOptions, 'cache' | 'fetch' | 'clock' | 'baseUrl'>>;

  constructor(private readonly opts: KdsClientOptions = {}) {
    this.clock = opts.clock ?? SYSTEM_CLOCK;
    this.cfg = {
      minIntervalMs: opts.minIntervalMs ?? KDS_DEFAULTS.minIntervalMs,
      timeoutMs: opts.timeoutMs ?? KDS_DEFAULTS.timeoutMs,
      maxQueued: opts.maxQueued ?? KDS_DEFAULTS.maxQueued,
      notFoundTtlMs: opts.notFoundTtlMs ?? KDS_DEFAULTS.notFoundTtlMs,
      failureBackoffMs: opts.failureBackoffMs ?? KDS_DEFAULTS.failureBackoffMs,
      maxCertBytes: opts.maxCertBytes ?? KDS_DEFAULTS.maxCertBytes,
      maxCrlBytes: opts.maxCrlBytes ?? KDS_DEFAULTS.maxCrlBytes,
    };
  }

  async vcek(product: SnpProduct, report: SnpReport): Promise<Uint8Array | undefined> {
    const path = vcekPath(product, report);
    if (!path) return undefined;
    const file = this.opts.cache?.vcekFile(product, report);
    const hit = file ? readIfExists(file) : undefined;
    if (hit) return hit;
    const body = await this.get(path, 'vcek', product);
    if (body && file) this.opts.cache!.store(file, body);
    return body;
  }

  async certChain(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined> {
    const file = this.opts.cache?.chainFile(product, kind);
    const hit = file ? readIfExists(file) : undefined;
    if (hit) return hit;
    const body = await this.get(chainPath(product, kind), 'chain', product);
    if (body && file) this.opts.cache!.store(file, body);
    return body;
  }

  /** The CRL kept from an earlier fetch (cache directory, else memory), current or not. */
  async crl(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined> {
    const file = this.opts.cache?.crlFile(product, kind);
    return (file ? readIfExists(file) : undefined) ?? this.crls.get(`${product}/${kind}`);
  }

  async fetchCrl(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined> {
    const body = await this.get(crlPath(product, kind), 'crl', product);
    if (body) {
      this.crls.set(`${product}/${kind}`, body);
      const file = this.opts.cache?.crlFile(product, kind);
      if (file) this.opts.cache!.store(file, body);
    }
    return body;
  }

  private get(path: string, item: Item, product: SnpProduct): Promise<Buffer | undefined> {
    const now = this.clock.now();
    const known = this.remembered.get(path);
    if (known && now < known.until) {
      if (!known.error) return Promise.resolve(undefined);
      if (!(known.error instanceof CollateralUnavailableError)) return Promise.reject(known.error);
      return Promise.reject(new CollateralUnavailableError('snp.kds.backoff',
        `not asking AMD KDS for the ${ITEM_NAME[item]} ${path} again for ${known.until - now} ms: the last attempt failed (${known.error.detail})`,
        { cause: known.error, retryAfterMs: known.until - now }));
    }
    const shared = this.inflight.get(path);
    if (shared) return shared;
    const lane = item === 'vcek' ? this.lanes.vcek : this.lanes.product;
    if (lane.waiting.length >= this.cfg.maxQueued) {
      return Promise.reject(new CollateralUnavailableError('snp.kds.busy',
        `${lane.waiting.length} distinct AMD KDS requests are already waiting; not queueing the ${ITEM_NAME[item]} ${path}`,
        { retryAfterMs: (lane.waiting.length + 1) * this.cfg.minIntervalMs }));
    }
    const p = new Promise<Buffer | undefined>((resolve, reject) => lane.waiting.push({ path, item, product, resolve, reject }));
    this.inflight.set(path, p);
    const done = () => { this.inflight.delete(path); };
    p.then(done, done);
    void this.pump(lane);
    return p;
  }

  private async pump(lane: Lane): Promise<void> {
    if (lane.running) return;
    lane.running = true;
    try {
      for (let job = lane.waiting.shift(); job; job = lane.waiting.shift()) {
        try {
          const wait = lane.lastStart + this.cfg.minIntervalMs - this.clock.now();
          if (wait > 0) await this.clock.sleep(wait);
          lane.lastStart = this.clock.now();
          job.resolve(await this.request(job));
        } catch (err) {
          job.reject(err);
        }
      }
    } finally {
      lane.running = false;
    }
  }

  private async request(job: Job): Promise<Buffer | undefined> {
    const url = `${this.opts.baseUrl ?? KDS_BASE_URL}${job.path}`;
    const what = `the ${ITEM_NAME[job.item]} ${url}`;
    const abort = new AbortController();
    const timer = new AbortController();
    let timedOut = false;
    this.clock.sleep(this.cfg.timeoutMs, timer.signal).then(() => {
      timedOut = true;
      abort.abort();
    }, () => undefined);
    const unreachable = (err: unknown) => new CollateralUnavailableError('snp.kds', timedOut
      ? `AMD KDS did not deliver ${what} within ${this.cfg.timeoutMs} ms`
      : `cannot fetch ${what} from AMD KDS (${(err as Error).message})`, { cause: err });
    try {
      let res: Response;
      try {
        res = await (this.opts.fetch ?? fetch)(url, { signal: abort.signal });
      } catch (err) {
        throw unreachable(err);
      }
      if (!res.ok) {
        await res.body?.cancel().catch(() => undefined);
        if (res.status === 404) {
          this.remember(job.path, this.cfg.notFoundTtlMs);
          return undefined;
        }
        const retryAfter = Number(res.headers.get('retry-after') ?? NaN) * 1000;
        if (res.status === 408 || res.status === 429 || res.status >= 500) {
          throw new CollateralUnavailableError('snp.kds', `AMD KDS answered ${res.status} for ${what}`,
            Number.isFinite(retryAfter) ? { retryAfterMs: retryAfter } : undefined);
        }
        const refused = new AttestationError('snp.kds', `AMD KDS refused ${what}`, '200', String(res.status));
        this.remember(job.path, this.cfg.notFoundTtlMs, refused);
        throw refused;
      }
      let body: Buffer;
      try {
        body = await readBounded(res, job.item === 'crl' ? this.cfg.maxCrlBytes : this.cfg.maxCertBytes, what);
      } catch (err) {
        throw err instanceof AttestationError ? err : unreachable(err);
      }
      checkBody(job, body, what);
      return body;
    } catch (err) {
      if (err instanceof CollateralUnavailableError) {
        this.remember(job.path, Math.max(this.cfg.failureBackoffMs, err.retryAfterMs ?? 0), err);
      }
      throw err;
    } finally {
      timer.abort();
    }
  }

  private remember(path: string, forMs: number, error?: AttestationError): void {
    this.remembered.set(path, { until: this.clock.now() + forMs, ...(error ? { error } : {}) });
  }
}

/** The body, refusing it as soon as it is known to exceed `max` bytes. */
async function readBounded(res: Response, max: number, what: string): Promise<Buffer> {
  const tooLarge = (size: string) => new CollateralUnavailableError('snp.kds.size', `AMD KDS ${size} for ${what}; at most ${max} bytes are accepted`);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge(`announced ${declared} bytes`);
  }
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(`sent more than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

/** A body must be what was asked for before it is cached: KDS's VCEK (DER), chain (PEM) or CRL (DER, signed by the ARK). */
function checkBody(job: Job, body: Buffer, what: string): void {
  let problem: string | undefined;
  try {
    if (job.item === 'vcek') parseDerCertificate(body, what);
    else if (job.item === 'chain') parsePemCertificates(body, what, { count: { min: 1, max: 2 } });
    else if (!crlSignedByArk(job.product, parseCrl(body))) problem = `it is not signed by the pinned ARK-${job.product}`;
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
    problem = err.detail;
  }
  if (problem !== undefined) {
    throw new CollateralUnavailableError('snp.kds.invalid', `AMD KDS sent something unusable for ${what}: ${problem}`);
  }
}

import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-write.js';
import { AttestationError } from '../errors.js';
import { isAllZero, toHex } from '../bytes.js';
import { parseCrl } from '../x509.js';
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
 * `<product>/<vcek|vlek>/cert_chain.pem` and `<product>/<vcek|vlek>/crl.der`.
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

export interface KdsClientOptions {
  /** Where fetched certificates are kept; consulted before the network. */
  readonly cache?: DirectoryCache;
  readonly baseUrl?: string;
  /** Minimum spacing between requests; KDS throttles clients that ask too often. */
  readonly minIntervalMs?: number;
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  /** Clock for deciding whether a cached CRL is still current. */
  readonly now?: () => Date;
}

/** AMD KDS over HTTPS, with a cache, request de-duplication and spacing between requests. */
export class KdsClient implements SnpCollateralSource {
  private readonly inflight = new Map<string, Promise<Buffer | undefined>>();
  private queue: Promise<unknown> = Promise.resolve();
  private lastRequest = 0;

  constructor(private readonly opts: KdsClientOptions = {}) {}

  async vcek(product: SnpProduct, report: SnpReport): Promise<Uint8Array | undefined> {
    const path = vcekPath(product, report);
    if (!path) return undefined;
    return this.cached(this.opts.cache?.vcekFile(product, report), path);
  }

  async certChain(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined> {
    return this.cached(this.opts.cache?.chainFile(product, kind), chainPath(product, kind));
  }

  async crl(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined> {
    const file = this.opts.cache?.crlFile(product, kind);
    const hit = file ? readIfExists(file) : undefined;
    if (hit && !this.isStale(hit)) return hit;
    return this.cached(undefined, crlPath(product, kind), file);
  }

  private isStale(crlDer: Buffer): boolean {
    try {
      const next = parseCrl(crlDer).nextUpdate;
      return next !== undefined && next < (this.opts.now?.() ?? new Date());
    } catch {
      return true;
    }
  }

  private async cached(file: string | undefined, path: string, storeTo = file): Promise<Buffer | undefined> {
    const hit = file ? readIfExists(file) : undefined;
    if (hit) return hit;
    const body = await this.get(path);
    if (body && storeTo && this.opts.cache) this.opts.cache.store(storeTo, body);
    return body;
  }

  private get(path: string): Promise<Buffer | undefined> {
    let p = this.inflight.get(path);
    if (!p) {
      p = this.throttled(() => this.request(path)).finally(() => this.inflight.delete(path));
      this.inflight.set(path, p);
    }
    return p;
  }

  private throttled<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      const wait = this.lastRequest + (this.opts.minIntervalMs ?? 2000) - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.lastRequest = Date.now();
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async request(path: string): Promise<Buffer | undefined> {
    const url = `${this.opts.baseUrl ?? KDS_BASE_URL}${path}`;
    let res: Response;
    try {
      res = await (this.opts.fetch ?? fetch)(url, { signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000) });
    } catch (err) {
      throw new AttestationError('snp.kds', `cannot reach AMD KDS at ${url} (${(err as Error).message})`, undefined, undefined, { cause: err });
    }
    if (res.status === 404) return undefined;
    if (!res.ok) throw new AttestationError('snp.kds', `AMD KDS answered ${res.status} for ${url}`, '200', String(res.status));
    return Buffer.from(await res.arrayBuffer());
  }
}

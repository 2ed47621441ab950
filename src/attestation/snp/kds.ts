import { join } from 'node:path';
import { readIfExists, storeFile, storeIfPossible } from '../collateral-files.js';
import { CollateralFetcher, fetcherOptions, SYSTEM_CLOCK, type CollateralClock } from '../collateral-fetcher.js';
import { BoundedCache } from '../bounded-cache.js';
import { AttestationError } from '../errors.js';
import { KeptCollateral, REFRESH_DEFAULTS, type KeptItem, type RefreshOptions } from '../kept-collateral.js';
import { MAX_CERTIFICATE_BYTES } from '../certificate.js';
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
    `blSPL=${pad(tcb.bootloader)}`,
    `teeSPL=${pad(tcb.tee)}`,
    `snpSPL=${pad(tcb.snp)}`,
    `ucodeSPL=${pad(tcb.microcode)}`,
  ].join('&');
  return `/vcek/v1/${product}/${id}?${query}`;
}

export const chainPath = (product: SnpProduct, kind: 'vcek' | 'vlek') => `/${kind}/v1/${product}/cert_chain`;
export const crlPath = (product: SnpProduct, kind: 'vcek' | 'vlek') => `/${kind}/v1/${product}/crl`;

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
    storeFile(path, data);
  }
}

/** Time for the KDS client (the collateral fetcher's clock). */
export type KdsClock = CollateralClock;
export { SYSTEM_CLOCK };

/** Defaults of KdsClientOptions; see docs/attestation.md ("AMD KDS client"). */
export const KDS_DEFAULTS = {
  minIntervalMs: 2_000,
  timeoutMs: 10_000,
  maxQueued: 8,
  notFoundTtlMs: 10 * 60_000,
  failureBackoffMs: 30_000,
  maxCertBytes: MAX_CERTIFICATE_BYTES,
  maxCrlBytes: 1024 * 1024,
  ...REFRESH_DEFAULTS,
} as const;

/** refreshBeforeMs / minRefreshIntervalMs: when a kept CRL is replaced (src/attestation/kept-collateral.ts). */
export interface KdsClientOptions extends RefreshOptions {
  /**
   * Where fetched certificates and CRLs are kept; consulted before the network. When it cannot
   * be written they are kept in memory (a fetch after a restart is the cost, not an admission).
   * Unset: CRLs kept in memory, certificates not at all.
   */
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

/**
 * AMD KDS over HTTPS (AMD publication 57230, "VCEK Certificate and KDS Interface
 * Specification", chapter 4), built to be called for evidence from unauthenticated peers
 * (the queueing is the shared CollateralFetcher's):
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
  private readonly fetcher: CollateralFetcher;
  private readonly kept: KeptCollateral;
  // Certificates fetched while the cache directory could not be written; KDS answered for each
  // key, so they are genuine VCEKs and chains, bounded all the same.
  private readonly unstored = new BoundedCache<string, Buffer>(256);
  private readonly maxCertBytes: number;
  private readonly maxCrlBytes: number;

  constructor(private readonly opts: KdsClientOptions = {}) {
    this.fetcher = new CollateralFetcher(
      fetcherOptions(
        'AMD KDS',
        {
          failed: 'snp.kds',
          busy: 'snp.kds.busy',
          backoff: 'snp.kds.backoff',
          size: 'snp.kds.size',
          invalid: 'snp.kds.invalid',
        },
        opts,
        KDS_DEFAULTS,
      ),
    );
    this.maxCertBytes = opts.maxCertBytes ?? KDS_DEFAULTS.maxCertBytes;
    this.maxCrlBytes = opts.maxCrlBytes ?? KDS_DEFAULTS.maxCrlBytes;
    this.kept = new KeptCollateral(this.fetcher, opts);
  }

  async vcek(product: SnpProduct, report: SnpReport): Promise<Uint8Array | undefined> {
    const path = vcekPath(product, report);
    if (!path) return undefined;
    return this.certificate(path, 'vcek', product, this.opts.cache?.vcekFile(product, report));
  }

  async certChain(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined> {
    return this.certificate(chainPath(product, kind), 'chain', product, this.opts.cache?.chainFile(product, kind));
  }

  /** From the cache directory, else from memory (a directory that could not be written), else from KDS. */
  private async certificate(
    path: string,
    item: 'vcek' | 'chain',
    product: SnpProduct,
    file: string | undefined,
  ): Promise<Uint8Array | undefined> {
    const hit = (file ? readIfExists(file) : undefined) ?? this.unstored.get(path);
    if (hit) return hit;
    const body = await this.get(path, item, product);
    if (body && file && !storeIfPossible(file, body)) this.unstored.set(path, body);
    return body;
  }

  /** The CRL kept from an earlier fetch (memory, else the cache directory), current or not; no network. */
  async crl(product: SnpProduct, kind: 'vcek' | 'vlek'): Promise<Uint8Array | undefined> {
    return this.kept.peek(this.crlItem(product, kind));
  }

  /** The CRL to use at `now`: the kept one, refreshed from KDS ahead of its nextUpdate (kept-collateral.ts). */
  async fetchCrl(product: SnpProduct, kind: 'vcek' | 'vlek', now = new Date()): Promise<Uint8Array | undefined> {
    return this.kept.get(this.crlItem(product, kind), now);
  }

  private crlItem(product: SnpProduct, kind: 'vcek' | 'vlek'): KeptItem<Buffer> {
    const path = crlPath(product, kind);
    const url = `${this.opts.baseUrl ?? KDS_BASE_URL}${path}`;
    const file = this.opts.cache?.crlFile(product, kind);
    return {
      key: path,
      url,
      lane: 'product',
      item: ITEM_NAME.crl,
      maxBytes: this.maxCrlBytes,
      stored: () => (file ? readIfExists(file) : undefined),
      nextUpdate: crlNextUpdate,
      accept: ({ body }) => {
        const problem = checkBody('crl', product, body, `the CRL ${url}`);
        if (problem) throw new AttestationError('snp.kds.invalid', problem);
        return body;
      },
      store: (v) => !!file && storeIfPossible(file, v),
    };
  }

  private async get(path: string, item: Item, product: SnpProduct): Promise<Buffer | undefined> {
    const url = `${this.opts.baseUrl ?? KDS_BASE_URL}${path}`;
    const got = await this.fetcher.get({
      key: path,
      url,
      lane: item === 'vcek' ? 'vcek' : 'product',
      item: ITEM_NAME[item],
      maxBytes: item === 'crl' ? this.maxCrlBytes : this.maxCertBytes,
      check: (body) => checkBody(item, product, body, `the ${ITEM_NAME[item]} ${url}`),
    });
    return got?.body;
  }
}

function crlNextUpdate(der: Uint8Array): Date | undefined {
  try {
    return parseCrl(der).nextUpdate;
  } catch {
    return undefined; // the CRL policy reports a kept CRL that does not parse
  }
}

/** A body must be what was asked for before it is cached: KDS's VCEK (DER), chain (PEM) or CRL (DER, signed by the ARK). */
function checkBody(item: Item, product: SnpProduct, body: Buffer, what: string): string | undefined {
  if (item === 'vcek') parseDerCertificate(body, what);
  else if (item === 'chain') parsePemCertificates(body, what, { count: { min: 1, max: 2 } });
  else if (!crlSignedByArk(product, parseCrl(body))) return `it is not signed by the pinned ARK-${product}`;
  return undefined;
}

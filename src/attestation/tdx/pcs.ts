import type { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { readIfExists, storeFile, storeIfPossible } from '../collateral-files.js';
import { readPemBlocks } from '../../util/encoding.js';
import { CollateralFetcher, fetcherOptions, type CollateralClock } from '../collateral-fetcher.js';
import { AttestationError } from '../errors.js';
import { KeptCollateral, REFRESH_DEFAULTS, type KeptItem, type RefreshOptions } from '../kept-collateral.js';
import { INTEL_SGX_ROOT_CA } from '../roots/intel.js';
import { pinnedCertificate } from '../roots/pinned.js';
import { checkCrl, checkIssuedBy, commonName, parseCrl } from '../x509.js';
import { checkSignedCollateral } from './collateral.js';
import { parsePemChain, requirePinnedIntelRoot } from './pck.js';

/**
 * Where TDX collateral comes from when the caller did not pass it: Intel's Provisioning
 * Certification Service (PCS, API v4), a directory that caches its answers, or the same
 * directory filled by hand for clusters without network access. Whatever a source returns is
 * untrusted input to verifyTdx, which checks signatures, chains and dates again.
 *
 * Intel PCS API v4 (https://api.portal.trustedservices.intel.com/content/documentation.html,
 * sections "Get TDX TCB Info", "Get TDX QE Identity", "Get PCK Cert CRL"):
 * - TCB info: GET /tdx/certification/v4/tcb?fmspc=<12 hex digits>; the issuer chain (TCB signing
 *   certificate, then root; URL-encoded PEM) in the header TCB-Info-Issuer-Chain;
 * - QE identity: GET /tdx/certification/v4/qe/identity; chain in SGX-Enclave-Identity-Issuer-Chain;
 * - PCK CRL: GET /sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der; chain (the
 *   PCK CA, then root) in SGX-PCK-CRL-Issuer-Chain;
 * - root CA CRL: the CRL distribution point of the Intel SGX Root CA,
 *   https://certificates.trustedservices.intel.com/IntelSGXRootCA.der.
 */

export type PckCa = 'platform' | 'processor';

/** A signed PCS body with the issuer chain it came with (PEM, signer then root). */
export interface SignedCollateral {
  readonly body: Uint8Array;
  readonly issuerChain: Uint8Array;
}

/**
 * Each method returns undefined when the source does not have the item. `now` is the
 * verification time: a source that can refresh does so when its copy is missing or its
 * nextUpdate is near. Network sources throw a CollateralUnavailableError when they cannot
 * answer now (PCS unreachable, throttled, the request queue full).
 */
export interface TdxCollateralSource {
  tcbInfo(fmspc: string, now: Date): Promise<SignedCollateral | undefined>;
  qeIdentity(now: Date): Promise<SignedCollateral | undefined>;
  pckCrl(ca: PckCa, now: Date): Promise<Uint8Array | undefined>;
  rootCrl(now: Date): Promise<Uint8Array | undefined>;
}

export const PCS_BASE_URL = 'https://api.trustedservices.intel.com';
export const INTEL_ROOT_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';

export const tcbInfoPath = (fmspc: string) => `/tdx/certification/v4/tcb?fmspc=${fmspc}`;
export const QE_IDENTITY_PATH = '/tdx/certification/v4/qe/identity';
export const pckCrlPath = (ca: PckCa) => `/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`;

/** A CRL file as DER, or PEM ("X509 CRL", what PCS sends without `encoding=der`). */
function crlBytes(data: Buffer | undefined): Buffer | undefined {
  if (!data || !data.subarray(0, 64).toString('latin1').includes('-----BEGIN')) return data;
  try {
    const blocks = readPemBlocks(data.toString('latin1'));
    return blocks.length === 1 && blocks[0]!.label === 'X509 CRL' ? blocks[0]!.der : data;
  } catch {
    return data; // not PEM after all: the CRL parser reports it
  }
}

const FMSPC = /^[0-9a-f]{12}$/;

/**
 * A directory of PCS answers, the layout docs/attestation.md ("TDX collateral directory")
 * tells operators to fill:
 *
 *     tcb-info/<fmspc>.json, tcb-info/<fmspc>.issuer-chain.pem
 *     qe-identity.json, qe-identity.issuer-chain.pem
 *     pck-crl-platform.der, pck-crl-processor.der, root-crl.der
 *
 * Offline: it returns what is stored, current or not; verifyTdx judges the dates.
 */
export class TdxCollateralDirectory implements TdxCollateralSource {
  constructor(readonly dir: string) {}

  tcbInfoFiles(fmspc: string): { body: string; chain: string } {
    if (!FMSPC.test(fmspc))
      throw new AttestationError('tdx.pcs', `not an FMSPC: ${JSON.stringify(fmspc)}`, '12 lower-case hex digits');
    return {
      body: join(this.dir, 'tcb-info', `${fmspc}.json`),
      chain: join(this.dir, 'tcb-info', `${fmspc}.issuer-chain.pem`),
    };
  }

  qeIdentityFiles(): { body: string; chain: string } {
    return { body: join(this.dir, 'qe-identity.json'), chain: join(this.dir, 'qe-identity.issuer-chain.pem') };
  }

  pckCrlFile(ca: PckCa): string {
    return join(this.dir, `pck-crl-${ca}.der`);
  }

  rootCrlFile(): string {
    return join(this.dir, 'root-crl.der');
  }

  private pair(files: { body: string; chain: string }): SignedCollateral | undefined {
    const body = readIfExists(files.body);
    if (!body) return undefined;
    const issuerChain = readIfExists(files.chain);
    if (!issuerChain)
      throw new AttestationError('tdx.pcs', `${files.body} has no issuer chain next to it (${files.chain})`);
    return { body, issuerChain };
  }

  async tcbInfo(fmspc: string): Promise<SignedCollateral | undefined> {
    return this.pair(this.tcbInfoFiles(fmspc));
  }

  async qeIdentity(): Promise<SignedCollateral | undefined> {
    return this.pair(this.qeIdentityFiles());
  }

  async pckCrl(ca: PckCa): Promise<Uint8Array | undefined> {
    return crlBytes(readIfExists(this.pckCrlFile(ca)));
  }

  async rootCrl(): Promise<Uint8Array | undefined> {
    return crlBytes(readIfExists(this.rootCrlFile()));
  }

  store(path: string, data: Uint8Array): void {
    storeFile(path, data);
  }
}

/** Defaults of PcsClientOptions; see docs/attestation.md ("Intel PCS client"). */
export const PCS_DEFAULTS = {
  minIntervalMs: 1_000,
  timeoutMs: 10_000,
  maxQueued: 8,
  notFoundTtlMs: 10 * 60_000,
  failureBackoffMs: 30_000,
  maxJsonBytes: 256 * 1024,
  maxCrlBytes: 1024 * 1024,
  ...REFRESH_DEFAULTS,
} as const;

export interface PcsClientOptions extends RefreshOptions {
  /** Where answers are kept (atomically, after their check); consulted before the network. Unset: memory only. */
  readonly cache?: TdxCollateralDirectory;
  /** Unset: https://api.trustedservices.intel.com. */
  readonly baseUrl?: string;
  /** Unset: https://certificates.trustedservices.intel.com/IntelSGXRootCA.der. */
  readonly rootCrlUrl?: string;
  /** Minimum time between the starts of two requests of one queue. Unset: 1 s. */
  readonly minIntervalMs?: number;
  /** Per request, until the last byte of the body. Unset: 10 s. */
  readonly timeoutMs?: number;
  /** Distinct requests that may wait per queue besides the one served; beyond, `tdx.pcs.busy`. Unset: 8. */
  readonly maxQueued?: number;
  /** How long a 404 (or another 4xx) is remembered. Unset: 10 min. */
  readonly notFoundTtlMs?: number;
  /** After a failed request, how long the same request fails at once (`tdx.pcs.backoff`). Unset: 30 s. */
  readonly failureBackoffMs?: number;
  /** Largest TCB info or QE identity accepted. Unset: 256 KiB. */
  readonly maxJsonBytes?: number;
  /** Largest CRL accepted. Unset: 1 MiB. */
  readonly maxCrlBytes?: number;
  readonly fetch?: typeof fetch;
  readonly clock?: CollateralClock;
}

function jsonNextUpdate(body: Uint8Array, key: string): Date | undefined {
  try {
    const v = (JSON.parse(Buffer.from(body).toString('utf8')) as Record<string, Record<string, unknown>>)[key]
      ?.nextUpdate;
    const d = typeof v === 'string' ? new Date(v) : undefined;
    return d && !Number.isNaN(d.getTime()) ? d : undefined;
  } catch {
    return undefined;
  }
}

function crlNextUpdate(der: Uint8Array): Date | undefined {
  try {
    return parseCrl(der).nextUpdate;
  } catch {
    return undefined;
  }
}

/** The PEM chain of a PCS issuer-chain header (URL-encoded PEM). */
function headerChain(headers: Headers, name: string): Buffer {
  const raw = headers.get(name);
  if (!raw) throw new AttestationError('tdx.pcs.invalid', `the answer has no ${name} header`);
  let pem: string;
  try {
    pem = decodeURIComponent(raw);
  } catch {
    throw new AttestationError('tdx.pcs.invalid', `the ${name} header is not URL-encoded PEM`);
  }
  return Buffer.from(pem, 'latin1');
}

/** A PCK CRL must be signed by the PCK CA its issuer-chain header names, and that CA by the pinned root. */
function checkPckCrl(der: Buffer, headers: Headers, ca: PckCa): void {
  const [caCert, candidate] = parsePemChain(
    headerChain(headers, 'SGX-PCK-CRL-Issuer-Chain'),
    2,
    'tdx.pcs.invalid',
    'the PCK CRL issuer chain must hold the PCK CA and the root',
  ) as [X509Certificate, X509Certificate];
  const root = requirePinnedIntelRoot(candidate, 'tdx.pcs.invalid');
  const want = ca === 'platform' ? 'Intel SGX PCK Platform CA' : 'Intel SGX PCK Processor CA';
  const name = commonName(caCert.subject);
  if (name !== want)
    throw new AttestationError('tdx.pcs.invalid', `the PCK CRL issuer is ${name ?? 'unnamed'}, not the ${want}`);
  checkIssuedBy(caCert, root, 'tdx.pcs.invalid', 'the PCK CA must be signed by the Intel SGX Root CA');
  const crl = parseCrl(der);
  checkCrl(crl, caCert, crl.thisUpdate, [], 'tdx.pcs.invalid');
}

/**
 * Intel PCS over HTTPS, built like the AMD KDS client (the shared CollateralFetcher): three
 * queues — TCB info (one URL per FMSPC), the QE identity, the CRLs — each serving one request
 * at a time `minIntervalMs` apart with at most `maxQueued` distinct waiting requests;
 * identical requests share one fetch; a 404 is remembered, a failure backs off. An answer is
 * checked before it is kept (TCB info and QE identity: signed by Intel's TCB signing
 * certificate under the pinned root, and TCB info for the FMSPC asked for; CRLs: signed by the
 * pinned root or the PCK CA), then kept in memory and in the cache directory. A kept item is
 * served until its nextUpdate is `refreshBeforeMs` away; from then on a refresh is tried (at
 * most every `minRefreshIntervalMs` while the kept one is still current, which is served when
 * the refresh fails), so collateral is replaced before it expires.
 *
 * Only verifyTdxWithCollateral calls it, and only for quotes whose PCK chain and signatures
 * already verified: an FMSPC that names a TCB info URL comes from a genuine PCK certificate.
 */
export class PcsClient implements TdxCollateralSource {
  // Keys are FMSPCs of genuine PCK certificates and a few fixed items.
  private readonly kept: KeptCollateral;
  private readonly cfg: Required<Pick<PcsClientOptions, 'maxJsonBytes' | 'maxCrlBytes'>>;

  constructor(private readonly opts: PcsClientOptions = {}) {
    const fetcher = new CollateralFetcher(
      fetcherOptions(
        'Intel PCS',
        {
          failed: 'tdx.pcs',
          busy: 'tdx.pcs.busy',
          backoff: 'tdx.pcs.backoff',
          size: 'tdx.pcs.size',
          invalid: 'tdx.pcs.invalid',
        },
        opts,
        PCS_DEFAULTS,
      ),
    );
    this.cfg = {
      maxJsonBytes: opts.maxJsonBytes ?? PCS_DEFAULTS.maxJsonBytes,
      maxCrlBytes: opts.maxCrlBytes ?? PCS_DEFAULTS.maxCrlBytes,
    };
    this.kept = new KeptCollateral(fetcher, opts);
  }

  private url(path: string): string {
    return `${this.opts.baseUrl ?? PCS_BASE_URL}${path}`;
  }

  private signed(
    key: string,
    path: string,
    lane: string,
    item: string,
    bodyKey: 'tcbInfo' | 'enclaveIdentity',
    header: string,
    files: { body: string; chain: string } | undefined,
    fmspc?: string,
  ): KeptItem<SignedCollateral> {
    const cache = this.opts.cache;
    return {
      key,
      url: this.url(path),
      lane,
      item,
      maxBytes: this.cfg.maxJsonBytes,
      stored: () => {
        const body = files && readIfExists(files.body);
        const issuerChain = files && readIfExists(files.chain);
        return body && issuerChain ? { body, issuerChain } : undefined;
      },
      nextUpdate: (v) => jsonNextUpdate(v.body, bodyKey),
      accept: ({ body, headers }) => {
        const issuerChain = headerChain(headers, header);
        const value = checkSignedCollateral(body, bodyKey, issuerChain) as Record<string, unknown> | null;
        if (fmspc !== undefined && String(value?.fmspc ?? '').toLowerCase() !== fmspc) {
          throw new AttestationError(
            'tdx.pcs.invalid',
            `the TCB info is for FMSPC ${String(value?.fmspc)}, not ${fmspc}`,
          );
        }
        return { body, issuerChain };
      },
      // The chain first: a body on disk always has its chain next to it.
      store: (v) =>
        !!files && !!cache && storeIfPossible(files.chain, v.issuerChain) && storeIfPossible(files.body, v.body),
    };
  }

  async tcbInfo(fmspc: string, now: Date): Promise<SignedCollateral | undefined> {
    const id = fmspc.toLowerCase();
    if (!FMSPC.test(id))
      throw new AttestationError('tdx.pcs', `not an FMSPC: ${JSON.stringify(fmspc)}`, '12 hex digits');
    return this.kept.get(
      this.signed(
        `tcb:${id}`,
        tcbInfoPath(id),
        'tcb-info',
        'TCB info',
        'tcbInfo',
        'TCB-Info-Issuer-Chain',
        this.opts.cache?.tcbInfoFiles(id),
        id,
      ),
      now,
    );
  }

  async qeIdentity(now: Date): Promise<SignedCollateral | undefined> {
    return this.kept.get(
      this.signed(
        'qe',
        QE_IDENTITY_PATH,
        'qe-identity',
        'QE identity',
        'enclaveIdentity',
        'SGX-Enclave-Identity-Issuer-Chain',
        this.opts.cache?.qeIdentityFiles(),
      ),
      now,
    );
  }

  async pckCrl(ca: PckCa, now: Date): Promise<Uint8Array | undefined> {
    const file = this.opts.cache?.pckCrlFile(ca);
    return this.kept.get<Uint8Array>(
      {
        key: `pckcrl:${ca}`,
        url: this.url(pckCrlPath(ca)),
        lane: 'crl',
        item: `PCK ${ca} CA CRL`,
        maxBytes: this.cfg.maxCrlBytes,
        stored: () => crlBytes(file ? readIfExists(file) : undefined),
        nextUpdate: crlNextUpdate,
        accept: ({ body, headers }) => {
          checkPckCrl(body, headers, ca);
          return body;
        },
        store: (v) => !!file && storeIfPossible(file, v),
      },
      now,
    );
  }

  async rootCrl(now: Date): Promise<Uint8Array | undefined> {
    const file = this.opts.cache?.rootCrlFile();
    const url = this.opts.rootCrlUrl ?? INTEL_ROOT_CRL_URL;
    return this.kept.get<Uint8Array>(
      {
        key: 'rootcrl',
        url,
        lane: 'crl',
        item: 'root CA CRL',
        maxBytes: this.cfg.maxCrlBytes,
        stored: () => crlBytes(file ? readIfExists(file) : undefined),
        nextUpdate: crlNextUpdate,
        accept: ({ body }) => {
          const crl = parseCrl(body);
          checkCrl(crl, pinnedCertificate(INTEL_SGX_ROOT_CA), crl.thisUpdate, [], 'tdx.pcs.invalid');
          return body;
        },
        store: (v) => !!file && storeIfPossible(file, v),
      },
      now,
    );
  }
}

import { AttestationError, CollateralUnavailableError } from '../errors.js';
import { parseCrl, parseCrlFor, type Crl } from '../x509.js';
import type { SnpCollateralSource } from './collateral.js';
import type { SnpProduct } from './product.js';
import { CRL_POLICIES, type CrlPolicy } from '../revocation.js';

/**
 * Which AMD CRL an SEV-SNP verification uses, and what happens when there is no usable one.
 *
 * - `'if-available'` (the verifier's default; admission uses `'require'`, see
 *   src/attestation/revocation.ts): verification works offline and through KDS outages. A CRL
 *   that is current is used; a CRL past its nextUpdate that cannot be refreshed is used for up
 *   to the grace period (the result says `stale: true`); beyond that, or with no CRL at all,
 *   verification goes on without a revocation check and says so (`crlChecked: false` and a
 *   reason). Fail-open on unavailability is the usual trade-off for CRLs (go-sev-guest's
 *   CRLUnavailableErr exists for it); AMD revokes only intermediates (ASK/ASVK), rarely.
 * - `'require'`: a CRL current at verification time is required; no grace period. Without one
 *   verification fails with `snp.crl.missing` or `snp.crl.stale`, as a
 *   CollateralUnavailableError when asking KDS again later may help.
 */
export type SnpCrlPolicy = CrlPolicy;

export const SNP_CRL_POLICIES = CRL_POLICIES;

/** How long past its nextUpdate an unrefreshable CRL still counts as checked under 'if-available'. */
export const DEFAULT_CRL_GRACE_MS = 24 * 3600_000;

export type SnpCrlSource = 'supplied' | 'cache' | 'fetched';

const CRL_HINT =
  "pass AMD's CRL (KDS /vcek/v1/<product>/crl) with --crl, a cache directory or --fetch, or --crl-policy if-available to go on without revocation";

/** What the verification result says about the CRL. */
export interface SnpCrlStatus {
  /** A CRL current at verification time, or within the grace period, was checked (= `crlChecked`). */
  readonly checked: boolean;
  /** Where the CRL that was consulted came from; absent when none was. */
  readonly source?: SnpCrlSource;
  readonly thisUpdate?: Date;
  readonly nextUpdate?: Date;
  /** The CRL consulted was past its nextUpdate. */
  readonly stale?: boolean;
  /** Why revocation was not checked, or only with an out-of-date CRL; set whenever `checked` is false or `stale` is true. */
  readonly reason?: string;
}

export interface SnpCrlDecision {
  /** The CRL to check the ASK against, if any. */
  readonly crl?: Crl;
  /** The time it must be current at: now, or its nextUpdate when used past that. */
  readonly at?: Date;
  readonly status: SnpCrlStatus;
}

export interface SnpCrlInput {
  readonly product: SnpProduct;
  readonly kind: 'vcek' | 'vlek';
  readonly now: Date;
  readonly policy: SnpCrlPolicy;
  readonly graceMs: number;
  /** A CRL the caller passed (evidence file, `--crl`). */
  readonly supplied?: Uint8Array;
  readonly source?: SnpCollateralSource;
}

interface Candidate {
  readonly crl: Crl;
  readonly source: SnpCrlSource;
}

const SOURCE_NAME: Record<SnpCrlSource, string> = {
  supplied: 'the supplied CRL',
  cache: 'the cached CRL',
  fetched: 'the CRL from AMD KDS',
};

export function describeCrlSource(source: SnpCrlSource): string {
  return SOURCE_NAME[source];
}

function isCurrent(crl: Crl, now: Date): boolean {
  return crl.thisUpdate <= now && (crl.nextUpdate === undefined || now <= crl.nextUpdate);
}

function dates(c: Candidate): { thisUpdate: Date; nextUpdate?: Date } {
  return { thisUpdate: c.crl.thisUpdate, ...(c.crl.nextUpdate ? { nextUpdate: c.crl.nextUpdate } : {}) };
}

function used(c: Candidate, now: Date): SnpCrlDecision {
  return { crl: c.crl, at: now, status: { checked: true, source: c.source, ...dates(c) } };
}

function hours(ms: number): string {
  return ms % 3600_000 === 0 ? `${ms / 3600_000} h` : `${Math.round(ms / 60_000)} min`;
}

/**
 * Picks the CRL by the policy, in this order: a current supplied CRL; for an offline source a
 * current cached one; for a network source what its fetchCrl returns (its kept copy, refreshed
 * ahead of nextUpdate), or its kept copy while that is current and the refresh failed; the
 * newest out-of-date one (grace period, or revocations only). Signatures are not checked here: the
 * chosen CRL goes through checkSnpCrl like any other.
 */
export async function resolveSnpCrl(input: SnpCrlInput): Promise<SnpCrlDecision> {
  const { product, kind, now, policy, graceMs, source } = input;
  const what = `${product} ${kind.toUpperCase()}`;
  const candidates: Candidate[] = [];
  const notes: string[] = [];
  if (input.supplied) {
    const c: Candidate = { crl: parseCrlFor('snp.crl', input.supplied), source: 'supplied' };
    if (isCurrent(c.crl, now)) return used(c, now);
    candidates.push(c);
  }
  let cachedDer: Uint8Array | undefined;
  if (source) {
    const cached = await source.crl(product, kind);
    if (cached) {
      try {
        const c: Candidate = { crl: parseCrl(cached), source: 'cache' };
        // A network source decides itself whether its copy needs a refresh (fetchCrl).
        if (!source.fetchCrl && isCurrent(c.crl, now)) return used(c, now);
        candidates.push(c);
        cachedDer = cached;
      } catch (err) {
        if (!(err instanceof AttestationError)) throw err;
        notes.push(`the cached CRL cannot be parsed (${err.detail})`);
      }
    }
  }
  let unavailable: CollateralUnavailableError | undefined;
  if (source?.fetchCrl) {
    let der: Uint8Array | undefined;
    let failed = false;
    try {
      der = await source.fetchCrl(product, kind, now);
    } catch (err) {
      // Only the source's own trouble with KDS is "no fresh CRL"; anything else (a failed
      // claim check run before the first lookup, a local I/O error) is not swallowed.
      if (
        !(err instanceof AttestationError) ||
        !(err instanceof CollateralUnavailableError || err.check.startsWith('snp.kds'))
      )
        throw err;
      if (err instanceof CollateralUnavailableError) unavailable = err;
      notes.push(`refreshing it from AMD KDS failed: ${err.message}`);
      failed = true;
    }
    if (der && cachedDer && Buffer.from(der).equals(Buffer.from(cachedDer))) {
      // The source kept its copy: current and not yet due for a refresh, or KDS has nothing newer.
      if (!isCurrent(candidates.at(-1)!.crl, now)) notes.push(`AMD KDS has no newer CRL for ${what}`);
    } else if (der) {
      const c: Candidate = { crl: parseCrlFor('snp.crl', der), source: 'fetched' };
      if (isCurrent(c.crl, now)) return used(c, now);
      candidates.push(c);
      notes.push('the CRL AMD KDS serves is not current either');
    } else if (!failed) {
      notes.push(`AMD KDS has no CRL for ${what}`);
    }
  } else {
    notes.push(source ? 'the collateral source cannot fetch CRLs (offline)' : 'no collateral source to get one from');
  }
  const cur = candidates.find((c) => isCurrent(c.crl, now));
  if (cur) return used(cur, now);
  const fail = (check: string, detail: string): never => {
    throw unavailable
      ? new CollateralUnavailableError(check, detail, {
          cause: unavailable,
          ...(unavailable.retryAfterMs !== undefined ? { retryAfterMs: unavailable.retryAfterMs } : {}),
        })
      : new AttestationError(check, detail);
  };

  if (candidates.length === 0) {
    const reason = `no CRL for ${what}: none supplied, none cached; ${notes.join('; ')}`;
    if (policy === 'require')
      fail('snp.crl.missing', `crlPolicy 'require' needs a current CRL, and there is ${reason}; ${CRL_HINT}`);
    return { status: { checked: false, reason } };
  }
  const started = candidates.filter((c) => c.crl.thisUpdate <= now);
  if (started.length === 0) {
    // Only CRLs issued after `now`: checking one reports it as not yet valid, as before.
    return used(candidates[0]!, now);
  }
  // Every started candidate is past its nextUpdate (a current one was returned above).
  const best = started.reduce((a, b) => (b.crl.nextUpdate! > a.crl.nextUpdate! ? b : a));
  const next = best.crl.nextUpdate!;
  const late = now.getTime() - next.getTime();
  const whyOld = `${describeCrlSource(best.source)} for ${what} expired at ${next.toISOString()} (nextUpdate) and no current one is available: ${notes.join('; ')}`;
  if (policy === 'require') fail('snp.crl.stale', `crlPolicy 'require' needs a current CRL; ${whyOld}; ${CRL_HINT}`);
  const base = { source: best.source, ...dates(best), stale: true };
  if (late <= graceMs) {
    return {
      crl: best.crl,
      at: next,
      status: { checked: true, ...base, reason: `${whyOld}; used within the ${hours(graceMs)} grace period` },
    };
  }
  return {
    crl: best.crl,
    at: next,
    status: {
      checked: false,
      ...base,
      reason: `${whyOld}; that is beyond the ${hours(graceMs)} grace period, so revocation is not checked as of now (the revocations that CRL lists were still honoured)`,
    },
  };
}

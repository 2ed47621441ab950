/**
 * A small client for the OCI distribution API (v2) covering what image resolution needs:
 * manifests by tag or digest, blobs (whole or streamed), bearer-token and basic auth, plain
 * HTTP for registries named as insecure, and retries with backoff on transient failures.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { MAX_DOCUMENT, verifyBlob, type BlobReader, type BlobRef } from './blobs.js';
import type { CredentialSource, Credentials } from './auth.js';
import { httpRequest, type HttpResponse } from './http.js';
import { sleep } from './limit.js';
import { MANIFEST_ACCEPT, sha256Digest } from './image-manifest.js';
import { DOCKER_HUB, type ImageReference } from './reference.js';

export interface RetryPolicy {
  /** Attempts per request, including the first (default 5). */
  attempts: number;
  /** First backoff delay in ms, doubled per attempt with jitter (default 250). */
  baseDelayMs: number;
  /** Upper bound for one delay, also for Retry-After (default 8000). */
  maxDelayMs: number;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8000 };

export interface RegistryClientOptions {
  insecureRegistries?: string[];
  credentials?: CredentialSource;
  retry?: Partial<RetryPolicy>;
  userAgent?: string;
  /** Per-request timeout for headers and whole small bodies, ms (default 60000). */
  timeoutMs?: number;
  /** Fail a layer download that delivers no data for this long, ms (default 60000). */
  stallTimeoutMs?: number;
}

/** A registry failure. `transient` failures were retried and may succeed later. */
export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly transient = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RegistryError';
  }
}

/** The registry could not be reached at all (DNS, connection refused, network down). */
export class RegistryUnreachableError extends RegistryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, undefined, true, options);
    this.name = 'RegistryUnreachableError';
  }
}

export interface ManifestResponse {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse a WWW-Authenticate header value (one challenge is all registries send). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!)) !== null) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
const UNREACHABLE_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNREFUSED',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
]);

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** OpenSSL's answer when the other side does not speak TLS (an HTTP response where a ServerHello belongs). */
function looksLikePlainHttp(err: unknown): boolean {
  const code = errorCode(err);
  let text = '';
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++)
    text += ` ${(e as Error).message ?? ''} ${String((e as { code?: unknown }).code ?? '')}`;
  return (
    code === 'EPROTO' ||
    /wrong version number|WRONG_VERSION_NUMBER|packet length too long|PACKET_LENGTH_TOO_LONG|http request/i.test(text)
  );
}

function describeNetworkError(err: unknown): string {
  const code = errorCode(err);
  let e: unknown = err;
  while ((e as { cause?: unknown })?.cause) e = (e as { cause?: unknown }).cause;
  return code
    ? `${code}${e instanceof Error && e.message && !e.message.includes(code) ? ` (${e.message})` : ''}`
    : e instanceof Error
      ? e.message
      : String(e);
}

function retryAfterMs(res: HttpResponse): number | undefined {
  const v = res.headers.get('retry-after');
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const when = Date.parse(v);
  return Number.isNaN(when) ? undefined : Math.max(0, when - Date.now());
}

async function readLimited(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const len = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(len) && len > limit) {
    res.discard();
    throw new Error(`${what} is too large (${len} bytes)`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of res.body) {
      n += (chunk as Buffer).length;
      if (n > limit) throw new Error(`${what} is too large (more than ${limit} bytes)`);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    res.body.destroy();
    if (err instanceof Error && err.message.includes('too large')) throw err;
    throw new RegistryError(`reading ${what} failed: ${describeNetworkError(err)}`, undefined, true, { cause: err });
  }
  return Buffer.concat(chunks);
}

/** One registry host; repositories are accessed through `repository()`. */
export class RegistryClient {
  private readonly insecure: Set<string>;
  readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  /** Authorization header per repository scope. */
  private readonly authHeaders = new Map<string, Promise<string | undefined>>();
  /** The last challenge seen per registry, to authenticate new repositories up front. */
  private readonly challenges = new Map<string, Challenge>();
  /** Number of HTTP requests sent, for diagnostics and tests. */
  requests = 0;
  /** A layer download that delivers no data for this long is failed (and retried). */
  readonly stallTimeoutMs: number;

  constructor(private readonly options: RegistryClientOptions = {}) {
    this.insecure = new Set(
      (options.insecureRegistries ?? []).map((h) =>
        h
          .toLowerCase()
          .replace(/^[a-z]+:\/\//, '')
          .replace(/\/.*$/, ''),
      ),
    );
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
  }

  baseUrl(registry: string): string {
    const host = registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
    return `${this.insecure.has(registry) ? 'http' : 'https'}://${host}`;
  }

  repository(ref: ImageReference): RegistryRepository {
    return new RegistryRepository(this, ref.registry, ref.repository);
  }

  private async credentials(registry: string): Promise<Credentials | undefined> {
    return this.options.credentials?.get(registry);
  }

  private async obtainAuth(
    registry: string,
    repository: string,
    challenge: Challenge,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const creds = await this.credentials(registry);
    if (challenge.scheme === 'basic') {
      if (creds?.kind !== 'basic')
        throw new RegistryError(
          `registry ${registry} requires a user name and password; add them to the Docker config (docker login ${registry})`,
          401,
        );
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    if (challenge.scheme !== 'bearer')
      throw new RegistryError(
        `registry ${registry} asks for unsupported authentication scheme "${challenge.scheme}"`,
        401,
      );
    const realm = challenge.params['realm'];
    if (!realm) throw new RegistryError(`registry ${registry} sent a bearer challenge without realm`, 401);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError(`registry ${registry} sent an invalid token realm "${realm}"`, 401);
    }
    const scope = `repository:${repository}:pull`;
    const service = challenge.params['service'];
    let res: HttpResponse;
    if (creds?.kind === 'identity-token') {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.token,
        client_id: 'kubectl-contrast',
        scope,
      });
      if (service) form.set('service', service);
      res = await this.send(
        url.toString(),
        { method: 'POST', body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } },
        signal,
      );
    } else {
      if (service) url.searchParams.set('service', service);
      url.searchParams.set('scope', scope);
      const headers: Record<string, string> = {};
      if (creds?.kind === 'basic')
        headers['authorization'] = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
      res = await this.send(url.toString(), { method: 'GET', headers }, signal);
    }
    if (!res.ok) {
      res.discard();
      const hint = creds
        ? 'check the credentials in the Docker config'
        : `no credentials found for ${registry}; run docker login ${registry}`;
      throw new RegistryError(
        `token service ${url.origin} refused access to ${registry}/${repository} (HTTP ${res.status}); ${hint}`,
        res.status,
      );
    }
    let body: { token?: unknown; access_token?: unknown };
    try {
      body = JSON.parse((await readLimited(res, 1024 * 1024, 'token response')).toString('utf8')) as typeof body;
    } catch {
      throw new RegistryError(`token service ${url.origin} sent an invalid response for ${registry}/${repository}`);
    }
    const token =
      typeof body.token === 'string' && body.token
        ? body.token
        : typeof body.access_token === 'string'
          ? body.access_token
          : undefined;
    if (!token) throw new RegistryError(`token service ${url.origin} sent no token for ${registry}/${repository}`);
    return `Bearer ${token}`;
  }

  /** One HTTP request with retries on network errors and transient statuses. */
  private async send(
    url: string,
    init: { method: string; headers?: Record<string, string>; body?: string },
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse;
      try {
        this.requests++;
        const req: Parameters<typeof httpRequest>[1] = {
          method: init.method,
          headers: { 'user-agent': this.options.userAgent ?? 'kubectl-contrast', ...init.headers },
          idleTimeoutMs: this.timeoutMs,
        };
        if (init.body !== undefined) req.body = init.body;
        if (signal) req.signal = signal;
        res = await httpRequest(url, req);
      } catch (err) {
        if (signal?.aborted) throw err;
        const code = errorCode(err);
        const unreachable = code !== undefined && UNREACHABLE_CODES.has(code);
        // TLS spoken to a plain-HTTP server fails the same way every time: no retries.
        const plainHttp = url.startsWith('https:') && looksLikePlainHttp(err);
        const limit = plainHttp ? 1 : unreachable ? Math.min(3, this.retry.attempts) : this.retry.attempts;
        if (attempt >= limit) {
          const host = new URL(url).host;
          const msg = `cannot reach ${host}: ${describeNetworkError(err)}${
            plainHttp
              ? `; the registry seems to speak plain HTTP, not HTTPS: if it is meant to (a local or in-cluster registry you trust), pass --insecure-registry ${host}`
              : ''
          }`;
          throw unreachable
            ? new RegistryUnreachableError(msg, { cause: err })
            : new RegistryError(msg, undefined, true, { cause: err });
        }
        await sleep(this.delay(attempt), signal);
        continue;
      }
      if (RETRY_STATUS.has(res.status) && attempt < this.retry.attempts) {
        const wait = Math.min(this.retry.maxDelayMs, retryAfterMs(res) ?? this.delay(attempt));
        res.discard();
        await sleep(wait, signal);
        continue;
      }
      return res;
    }
  }

  delay(attempt: number): number {
    const base = this.retry.baseDelayMs * 2 ** (attempt - 1);
    return Math.min(this.retry.maxDelayMs, base / 2 + (Math.random() * base) / 2);
  }

  /** An authenticated request to a registry path, retrying once after a 401 challenge. */
  async request(
    registry: string,
    repository: string,
    path: string,
    init: { method: string; accept?: string },
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    const url = `${this.baseUrl(registry)}/v2/${repository}/${path}`;
    const scopeKey = `${registry}/${repository}`;
    const known = this.challenges.get(registry);
    if (!this.authHeaders.has(scopeKey) && known) {
      this.authHeaders.set(scopeKey, this.obtainAuth(registry, repository, known, signal));
    }
    for (let round = 0; ; round++) {
      const headers: Record<string, string> = {};
      if (init.accept) headers['accept'] = init.accept;
      const auth = await this.authHeaders.get(scopeKey)?.catch((err: unknown) => {
        this.authHeaders.delete(scopeKey);
        throw err;
      });
      if (auth) headers['authorization'] = auth;
      const res = await this.send(url, { method: init.method, headers }, signal);
      if (res.status === 401 && round === 0) {
        res.discard();
        const challenge = parseChallenge(res.headers.get('www-authenticate') ?? '');
        if (!challenge)
          throw new RegistryError(`registry ${registry} requires authentication but sent no usable challenge`, 401);
        this.challenges.set(registry, challenge);
        const p = this.obtainAuth(registry, repository, challenge, signal);
        this.authHeaders.set(scopeKey, p);
        continue;
      }
      return res;
    }
  }
}

function statusMessage(res: HttpResponse, registry: string, repository: string, what: string): RegistryError {
  const name = `${registry}/${repository}`;
  switch (res.status) {
    case 401:
      return new RegistryError(
        `registry ${registry} refused the credentials for ${name} (HTTP 401); check docker login ${registry}`,
        401,
      );
    case 403:
      return new RegistryError(`access to ${name} denied by ${registry} (HTTP 403)`, 403);
    case 404:
      return new RegistryError(`${what} not found in ${name} (HTTP 404)`, 404);
    default:
      return new RegistryError(
        `${registry} answered HTTP ${res.status} for ${what} of ${name}`,
        res.status,
        RETRY_STATUS.has(res.status),
      );
  }
}

/** Blob and manifest access to one repository. */
export class RegistryRepository implements BlobReader {
  readonly description: string;
  constructor(
    private readonly client: RegistryClient,
    readonly registry: string,
    readonly repository: string,
  ) {
    this.description = `registry ${registry}`;
  }

  /** The manifest for a tag or digest, with its computed digest. */
  async getManifest(tagOrDigest: string, signal?: AbortSignal): Promise<ManifestResponse> {
    const res = await this.client.request(
      this.registry,
      this.repository,
      `manifests/${tagOrDigest}`,
      { method: 'GET', accept: MANIFEST_ACCEPT },
      signal,
    );
    if (!res.ok) {
      res.discard();
      throw statusMessage(res, this.registry, this.repository, `manifest ${tagOrDigest}`);
    }
    const bytes = await readLimited(res, MAX_DOCUMENT, `manifest ${tagOrDigest}`);
    const digest = sha256Digest(bytes);
    if (tagOrDigest.startsWith('sha256:') && digest !== tagOrDigest) {
      throw new RegistryError(`registry ${this.registry} sent a manifest for ${tagOrDigest} whose digest is ${digest}`);
    }
    const header = res.headers.get('docker-content-digest');
    if (header && header.startsWith('sha256:') && header !== digest) {
      throw new RegistryError(
        `registry ${this.registry} announced digest ${header} for ${this.repository}:${tagOrDigest} but the manifest hashes to ${digest}`,
      );
    }
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    return { bytes, digest, mediaType };
  }

  /** Only the digest a tag points to (HEAD); undefined when the registry does not say. */
  async headManifest(tag: string, signal?: AbortSignal): Promise<{ digest: string; mediaType: string } | undefined> {
    const res = await this.client.request(
      this.registry,
      this.repository,
      `manifests/${tag}`,
      { method: 'HEAD', accept: MANIFEST_ACCEPT },
      signal,
    );
    res.discard();
    if (!res.ok) throw statusMessage(res, this.registry, this.repository, `manifest ${tag}`);
    const digest = res.headers.get('docker-content-digest');
    if (!digest || !/^sha256:[a-f0-9]{64}$/.test(digest)) return undefined;
    return { digest, mediaType: (res.headers.get('content-type') ?? '').split(';')[0]!.trim() };
  }

  async readManifest(ref: BlobRef, signal?: AbortSignal): Promise<Buffer> {
    return (await this.getManifest(ref.digest, signal)).bytes;
  }

  async readBlob(ref: BlobRef, signal?: AbortSignal): Promise<Buffer> {
    const res = await this.client.request(
      this.registry,
      this.repository,
      `blobs/${ref.digest}`,
      { method: 'GET' },
      signal,
    );
    if (!res.ok) {
      res.discard();
      throw statusMessage(res, this.registry, this.repository, `blob ${ref.digest}`);
    }
    return verifyBlob(await readLimited(res, MAX_DOCUMENT, `blob ${ref.digest}`), ref, this.description);
  }

  async openBlob(ref: BlobRef, signal?: AbortSignal): Promise<Readable> {
    const res = await this.client.request(
      this.registry,
      this.repository,
      `blobs/${ref.digest}`,
      { method: 'GET' },
      signal,
    );
    if (!res.ok) {
      res.discard();
      throw statusMessage(res, this.registry, this.repository, `blob ${ref.digest}`);
    }
    const body = res.body;
    const guard = new StallGuard(this.client.stallTimeoutMs, `${this.registry}/${this.repository} blob ${ref.digest}`);
    body.on('error', (err) =>
      guard.destroy(
        new RegistryError(
          `download of blob ${ref.digest} from ${this.registry} failed: ${describeNetworkError(err)}`,
          undefined,
          true,
          { cause: err },
        ),
      ),
    );
    guard.on('close', () => body.destroy());
    return body.pipe(guard);
  }
}

/** Passes data through; fails the download when no data arrives for `ms` (a stalled connection). */
class StallGuard extends Transform {
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly ms: number,
    private readonly what: string,
  ) {
    super({ highWaterMark: 256 * 1024 });
    this.arm();
  }
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.destroy(
        new RegistryError(
          `download of ${this.what} stalled: no data for ${Math.round(this.ms / 1000)} s`,
          undefined,
          true,
        ),
      );
    }, this.ms);
    this.timer.unref();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.arm();
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    clearTimeout(this.timer);
    cb();
  }
  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    clearTimeout(this.timer);
    cb(err);
  }
}

/** True when an error (or one of its causes) is a transient registry failure worth retrying. */
export function isTransient(err: unknown): boolean {
  for (let e: unknown = err, i = 0; e && i < 8; e = (e as { cause?: unknown }).cause, i++) {
    if (e instanceof RegistryError) return e.transient;
  }
  return false;
}

/**
 * Minimal HTTP(S) requests on node:http, used instead of fetch so that layer bodies arrive
 * as plain Node streams (no web-stream conversion on the hot path). Redirects are followed
 * for GET and HEAD; the Authorization header is dropped when a redirect leaves the origin
 * (blob downloads are often redirected to a storage service).
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

export interface HttpRequest {
  method: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Fail when the connection is idle this long (before or during the response), ms. */
  idleTimeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  ok: boolean;
  /** The final URL after redirects. */
  url: string;
  headers: { get(name: string): string | null };
  body: Readable;
  /** Throw the body away (closing the connection if it is still being sent). */
  discard(): void;
}

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 32 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 32 }),
};

/** Sockets still bound to a request; a finished run must leave none (they would keep Node alive). */
export function busySockets(): number {
  const count = (a: http.Agent) => Object.values(a.sockets).reduce((n, list) => n + (list?.length ?? 0), 0);
  return count(agents.http) + count(agents.https);
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class HttpTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(url: string, ms: number) {
    super(`no response from ${new URL(url).host} for ${Math.round(ms / 1000)} s`);
    this.name = 'HttpTimeoutError';
  }
}

function once(url: string, req: HttpRequest): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const secure = u.protocol === 'https:';
    if (!secure && u.protocol !== 'http:') {
      reject(new Error(`unsupported URL scheme in ${url}`));
      return;
    }
    const headers: Record<string, string> = { ...req.headers };
    if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
    const options: http.RequestOptions = { method: req.method, headers, agent: secure ? agents.https : agents.http };
    if (req.signal) options.signal = req.signal;
    const r = (secure ? https : http).request(u, options, (res) => {
      const status = res.statusCode ?? 0;
      resolve({
        status,
        ok: status >= 200 && status < 300,
        url,
        headers: {
          get(name) {
            const v = res.headers[name.toLowerCase()];
            return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
          },
        },
        body: res,
        discard() {
          // A short remaining body is drained to keep the connection; otherwise close it. A
          // complete response (always the case for HEAD) must still be resumed: until it emits
          // 'end' the socket stays bound to the request and its idle timer keeps the process alive.
          if (res.complete) {
            res.resume();
            return;
          }
          const len = Number(res.headers['content-length'] ?? NaN);
          if (Number.isFinite(len) && len <= 64 * 1024) res.resume();
          else res.destroy();
        },
      });
    });
    if (req.idleTimeoutMs !== undefined) {
      const ms = req.idleTimeoutMs;
      r.setTimeout(ms, () => r.destroy(new HttpTimeoutError(url, ms)));
    }
    r.on('error', reject);
    r.end(req.body);
  });
}

export async function httpRequest(url: string, req: HttpRequest, maxRedirects = 5): Promise<HttpResponse> {
  let current = url;
  let request = req;
  for (let hop = 0; ; hop++) {
    const res = await once(current, request);
    const location = res.headers.get('location');
    if (
      !REDIRECTS.has(res.status) ||
      !location ||
      hop >= maxRedirects ||
      (!['GET', 'HEAD'].includes(request.method) && res.status !== 303)
    ) {
      return res;
    }
    res.discard();
    const next = new URL(location, current);
    const headers = { ...request.headers };
    if (next.origin !== new URL(current).origin) delete headers['authorization'];
    request = { ...request, headers, method: res.status === 303 && request.method !== 'HEAD' ? 'GET' : request.method };
    if (res.status === 303) delete request.body;
    current = next.toString();
  }
}

/**
 * Turn failures of API requests into messages that say what went wrong and what to do:
 * unreachable server, TLS trouble, missing credentials, missing permissions, conflicts.
 */
import { ApiException } from '@kubernetes/client-node';
import { UserError } from '../util/errors.js';

interface StatusBody {
  kind?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { causes?: { field?: string; message?: string }[] };
}

/** The HTTP status of a failed request, or undefined when no response arrived. */
export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code as number;
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

function statusBody(err: unknown): StatusBody | undefined {
  if (!(err instanceof ApiException)) return undefined;
  const body: unknown = err.body;
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return { message: body };
    }
  }
  return typeof body === 'object' && body !== null ? (body as StatusBody) : undefined;
}

export function isNotFound(err: unknown): boolean {
  return statusCode(err) === 404;
}

function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const c = (e as { code?: unknown }).code ?? (e as { errno?: unknown }).errno;
    if (typeof c === 'string') return c;
    if ((e as { name?: string }).name === 'AbortError' || (e as { type?: string }).type === 'aborted')
      return 'ETIMEDOUT';
  }
  return undefined;
}

/**
 * A UserError for a failed request. `what` says what was being done ("apply RuntimeClass x"),
 * `target` names the cluster (context and server).
 */
export function explainKubeError(err: unknown, what: string, target: string): UserError {
  if (err instanceof UserError) return err;
  const code = statusCode(err);
  const body = statusBody(err);
  const detail = body?.message ?? (err as Error)?.message ?? String(err);
  const causes = body?.details?.causes?.map((c) => `${c.field ? `${c.field}: ` : ''}${c.message ?? ''}`).join('; ');
  const full = causes && !detail.includes(causes) ? `${detail} (${causes})` : detail;
  switch (code) {
    case 401:
      return new UserError(
        `${what}: the API server of ${target} rejected the credentials (401 Unauthorized). Log in again or refresh the token in the kubeconfig, then check with \`kubectl auth whoami\`.`,
        {},
        { cause: err },
      );
    case 403:
      return new UserError(
        `${what}: not allowed on ${target} (403 Forbidden): ${full}. Ask a cluster admin for the permission, or check with \`kubectl auth can-i\`.`,
        {},
        { cause: err },
      );
    case 404:
      return new UserError(`${what}: not found on ${target}: ${full}`, {}, { cause: err });
    case 409:
      return new UserError(
        `${what}: conflict on ${target}: ${full}. Another field manager owns these fields; resolve the conflict or re-run with --force-conflicts.`,
        {},
        { cause: err },
      );
    case 422:
    case 400:
      return new UserError(`${what}: the API server of ${target} refused the object: ${full}`, {}, { cause: err });
    default:
      break;
  }
  if (code !== undefined)
    return new UserError(`${what}: the API server of ${target} answered ${code}: ${full}`, {}, { cause: err });
  const net = networkCode(err);
  const m = String((err as Error)?.message ?? err);
  if (
    net === 'ECONNREFUSED' ||
    net === 'EHOSTUNREACH' ||
    net === 'ENETUNREACH' ||
    net === 'ENOTFOUND' ||
    net === 'EAI_AGAIN' ||
    net === 'ECONNRESET'
  ) {
    return new UserError(
      `${what}: cannot reach the API server of ${target} (${net}). Is the cluster running and the kubeconfig pointing at it? Check with \`kubectl cluster-info\`, or pick another --context/--kubeconfig.`,
      {},
      { cause: err },
    );
  }
  if (net === 'ETIMEDOUT' || /aborted|timeout/i.test(m)) {
    return new UserError(
      `${what}: no answer from the API server of ${target} in time. Check the network, or raise --request-timeout.`,
      {},
      { cause: err },
    );
  }
  if (/certificate|self.signed|SSL|TLS/i.test(m) || (net !== undefined && /CERT|TLS|SSL/.test(net))) {
    return new UserError(
      `${what}: TLS with the API server of ${target} failed: ${m}. Check certificate-authority-data in the kubeconfig.`,
      {},
      { cause: err },
    );
  }
  return new UserError(`${what}: request to ${target} failed: ${m}`, {}, { cause: err });
}

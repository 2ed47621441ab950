/**
 * Values whose text is only partly known when the policy is generated (a pod IP, the pod's
 * generated name, …). A value is a list of parts: literal text or a placeholder kind. The
 * same value renders to an anchored regex for the policy and to a concrete sample for the
 * synthesized requests of `policy check`.
 */

export type DynKind =
  | 'podName'
  | 'namespace'
  | 'podUid'
  | 'podIP'
  | 'podIPs'
  | 'hostIP'
  | 'hostIPs'
  | 'nodeName'
  | 'resource'
  | 'any'
  | 'hostname';

export type Part = string | { dyn: DynKind };
export type Value = Part[];

export interface DynContext {
  /** Regex body (unanchored) of the pod name. */
  podNameRegex: string;
  /** Concrete pod name used in samples. */
  podNameSample: string;
  namespace: string | undefined;
}

const IP = '[0-9a-fA-F.:]+';
const DNS_SUBDOMAIN = '[a-z0-9]([-a-z0-9.]*[a-z0-9])?';

export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function isLiteral(v: Value): boolean {
  return v.every((p) => typeof p === 'string');
}

export function literalText(v: Value): string {
  return v.map((p) => (typeof p === 'string' ? p : '')).join('');
}

function dynRegex(kind: DynKind, ctx: DynContext): string {
  switch (kind) {
    case 'podName':
      return `(${ctx.podNameRegex})`;
    case 'namespace':
      return ctx.namespace !== undefined ? escapeRegex(ctx.namespace) : '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
    case 'podUid':
      return '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
    case 'podIP':
    case 'hostIP':
      return IP;
    case 'podIPs':
    case 'hostIPs':
      return `${IP}(,${IP})*`;
    case 'nodeName':
    case 'hostname':
      return DNS_SUBDOMAIN;
    case 'resource':
      return '[0-9]+';
    case 'any':
      return '.*';
  }
}

function dynSample(kind: DynKind, ctx: DynContext): string {
  switch (kind) {
    case 'podName':
    case 'hostname':
      return ctx.podNameSample;
    case 'namespace':
      return ctx.namespace ?? 'default';
    case 'podUid':
      return '0d1c2b3a-4f5e-4d6c-8b7a-998877665544';
    case 'podIP':
    case 'podIPs':
      return '10.244.1.23';
    case 'hostIP':
    case 'hostIPs':
      return '192.168.10.4';
    case 'nodeName':
      return 'node-1';
    case 'resource':
      return '1';
    case 'any':
      return 'x';
  }
}

export function toRegexBody(v: Value, ctx: DynContext): string {
  return v.map((p) => (typeof p === 'string' ? escapeRegex(p) : dynRegex(p.dyn, ctx))).join('');
}

/**
 * Typed placeholders the rules check with string functions (no regex): a value may hold at
 * most one of them. `$(sandbox-name)` and `$(sandbox-namespace)` are replaced by the request's
 * (already checked) values and may appear any number of times.
 */
export const TYPED_PLACEHOLDER: Partial<Record<DynKind, string>> = {
  podUid: '$(uuid)',
  podIP: '$(ip)',
  hostIP: '$(ip)',
  podIPs: '$(ips)',
  hostIPs: '$(ips)',
  nodeName: '$(dns)',
  hostname: '$(dns)',
  resource: '$(digits)',
  any: '$(any)',
};

/**
 * A run-time value as the rules compare it: a template (literal text with placeholders, cheap to
 * check) when possible, otherwise an anchored regex (starts with `^`).
 */
export function toPattern(v: Value, ctx: DynContext): string {
  const typed = v.filter((p) => typeof p !== 'string' && TYPED_PLACEHOLDER[p.dyn] !== undefined).length;
  const literalHasMarker = v.some((p) => typeof p === 'string' && (p.includes('$(') || p.startsWith('^')));
  if (typed <= 1 && !literalHasMarker && !(typeof v[0] === 'string' && v[0].startsWith('^'))) {
    return v
      .map((p) => {
        if (typeof p === 'string') return p;
        if (p.dyn === 'podName') return '$(sandbox-name)';
        if (p.dyn === 'namespace') return ctx.namespace ?? '$(sandbox-namespace)';
        return TYPED_PLACEHOLDER[p.dyn] as string;
      })
      .join('');
  }
  return `^${toRegexBody(v, ctx)}$`;
}

export function toSample(v: Value, ctx: DynContext): string {
  return v.map((p) => (typeof p === 'string' ? p : dynSample(p.dyn, ctx))).join('');
}

/** Merge adjacent literal parts. */
export function compact(v: Value): Value {
  const out: Value = [];
  for (const p of v) {
    const last = out[out.length - 1];
    if (typeof p === 'string' && typeof last === 'string') out[out.length - 1] = last + p;
    else if (p !== '') out.push(p);
  }
  return out;
}

/**
 * Kubernetes `$(VAR)` expansion: `$$` is an escaped `$`, `$(NAME)` is replaced by NAME's value
 * when NAME is defined, and kept verbatim otherwise.
 */
export function expand(input: string, lookup: (name: string) => Value | undefined): Value {
  const out: Value = [];
  let lit = '';
  let i = 0;
  while (i < input.length) {
    const c = input[i];
    if (c === '$' && i + 1 < input.length) {
      const n = input[i + 1];
      if (n === '$') {
        lit += '$';
        i += 2;
        continue;
      }
      if (n === '(') {
        const close = input.indexOf(')', i + 2);
        if (close > i + 2) {
          const name = input.slice(i + 2, close);
          const v = lookup(name);
          if (v !== undefined) {
            if (lit) out.push(lit);
            lit = '';
            out.push(...v);
          } else {
            lit += input.slice(i, close + 1);
          }
          i = close + 1;
          continue;
        }
      }
    }
    lit += c;
    i += 1;
  }
  if (lit) out.push(lit);
  return compact(out);
}

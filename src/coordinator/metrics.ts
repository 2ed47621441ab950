/**
 * Prometheus text-format metrics of the Coordinator (a handful of counters and gauges).
 *
 * Label values come from bounded sets (known method names, gRPC codes, limit names); callers
 * never pass what a client sent. As a second line of defence the number of series is capped:
 * past the cap a new series is not created but counted in contrast_metrics_series_dropped_total.
 */

/** More than every legitimate series together (methods × codes × APIs, limits, deadlines). */
const MAX_SERIES = 1000;

export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly help = new Map<string, [string, 'counter' | 'gauge']>();
  private readonly gauges = new Map<string, () => number>();

  constructor() {
    this.describe(
      'contrast_userapi_requests_total',
      'UserAPI calls by method (unknown paths: method="unknown") and gRPC status code',
      'counter',
    );
    this.describe(
      'contrast_meshapi_requests_total',
      'MeshAPI calls by method (unknown paths: method="unknown") and gRPC status code',
      'counter',
    );
    this.describe(
      'contrast_meshapi_attestation_failures_total',
      'MeshAPI clients whose evidence was refused',
      'counter',
    );
    this.describe('contrast_meshapi_certificates_issued_total', 'Mesh certificates issued', 'counter');
    this.describe(
      'contrast_meshapi_peer_recoveries_served_total',
      'MeshAPI Recover calls answered with the state (a peer replica that attested with the Coordinator policy)',
      'counter',
    );
    this.describe(
      'contrast_meshapi_peer_recoveries_refused_total',
      'MeshAPI Recover callers whose evidence was refused (not the Coordinator policy of the current manifest)',
      'counter',
    );
    this.describe('contrast_atls_handshake_failures_total', 'TLS handshakes that failed on the server side', 'counter');
    this.describe(
      'contrast_simulated_evidence_total',
      'Evidence of the INSECURE simulated platform that was checked',
      'counter',
    );
    this.describe(
      'contrast_rpc_invalid_requests_total',
      'Requests answered INVALID_ARGUMENT, by API, method and reason (frame: gRPC framing; protobuf: undecodable message; request: refused by the handler, e.g. bad manifest JSON)',
      'counter',
    );
    this.describe(
      'contrast_rpc_limit_rejections_total',
      'Requests refused by a limit, by API, method and limit (message_size, field_size, field_count, budget)',
      'counter',
    );
    this.describe(
      'contrast_deadline_closes_total',
      'Connections, sessions and streams closed by a deadline, by API and deadline (handshake, headers, idle, attestation, body, response)',
      'counter',
    );
    this.describe(
      'contrast_connections_refused_total',
      'Connections closed on arrival because a connection cap was reached, by API and cap (total, per_address)',
      'counter',
    );
    this.describe(
      'contrast_meshapi_sessions_closed_after_failures_total',
      'MeshAPI sessions closed after repeated failed attestations',
      'counter',
    );
    this.describe(
      'contrast_http2_session_errors_total',
      'HTTP/2 sessions that ended with a protocol or transport error, by API',
      'counter',
    );
    this.describe(
      'contrast_metrics_series_dropped_total',
      'Metric series not created because the series cap was reached',
      'counter',
    );
  }

  describe(name: string, help: string, type: 'counter' | 'gauge'): void {
    this.help.set(name, [help, type]);
  }

  inc(name: string, labels: Record<string, string | number> = {}, by = 1): void {
    const key = `${name}${formatLabels(labels)}`;
    const now = this.counters.get(key);
    if (now === undefined && this.counters.size >= MAX_SERIES) {
      const dropped = 'contrast_metrics_series_dropped_total';
      this.counters.set(dropped, (this.counters.get(dropped) ?? 0) + 1);
      return;
    }
    this.counters.set(key, (now ?? 0) + by);
  }

  gauge(name: string, help: string, read: () => number): void {
    this.describe(name, help, 'gauge');
    this.gauges.set(name, read);
  }

  get(name: string, labels: Record<string, string | number> = {}): number {
    return this.counters.get(`${name}${formatLabels(labels)}`) ?? 0;
  }

  render(): string {
    let out = '';
    for (const [name, [help, type]] of this.help) {
      out += `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
      const g = this.gauges.get(name);
      if (g) out += `${name} ${g()}\n`;
      for (const [key, v] of this.counters) if (key === name || key.startsWith(`${name}{`)) out += `${key} ${v}\n`;
    }
    return out;
  }
}

function formatLabels(labels: Record<string, string | number>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${String(v).replace(/["\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`).join(',')}}`;
}

/** Prometheus text-format metrics of the Coordinator (a handful of counters and gauges). */

export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly help = new Map<string, [string, 'counter' | 'gauge']>();
  private readonly gauges = new Map<string, () => number>();

  constructor() {
    this.describe('contrast_userapi_requests_total', 'UserAPI calls by method and gRPC status code', 'counter');
    this.describe('contrast_meshapi_requests_total', 'MeshAPI calls by method and gRPC status code', 'counter');
    this.describe('contrast_meshapi_attestation_failures_total', 'MeshAPI clients whose evidence was refused', 'counter');
    this.describe('contrast_meshapi_certificates_issued_total', 'Mesh certificates issued', 'counter');
    this.describe('contrast_atls_handshake_failures_total', 'TLS handshakes that failed on the server side', 'counter');
    this.describe('contrast_simulated_evidence_total', 'Evidence of the INSECURE simulated platform that was checked', 'counter');
  }

  describe(name: string, help: string, type: 'counter' | 'gauge'): void {
    this.help.set(name, [help, type]);
  }

  inc(name: string, labels: Record<string, string | number> = {}, by = 1): void {
    const key = `${name}${formatLabels(labels)}`;
    this.counters.set(key, (this.counters.get(key) ?? 0) + by);
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

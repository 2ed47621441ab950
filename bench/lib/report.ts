/** The markdown summary written to docs/benchmarks.md after each `npm run bench`. */
import type { Goal } from './goals.js';
import type { Summary } from './stats.js';

interface Report {
  started: string;
  repeat: number;
  machine: {
    node: string;
    os: string;
    cpus: number;
    cpuModel: string;
    memoryGb: number;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
  };
  goals?: Goal[];
  results: ScenarioResult[];
}

/** One scenario's figures in bench/results/latest.json. */
export interface ScenarioResult {
  name: string;
  runs: number;
  maxRssMb: Summary;
  metrics: Record<string, Summary>;
  errors: string[];
  ranAt?: string;
  labels?: Record<string, string>;
}

/** What each scenario runs, with its size: the heading of its section. */
const SCENARIO_TITLES: Record<string, string> = {
  startup: 'start-up: `--version` through node and through kubectl, 15 runs',
  generate:
    '`kubectl contrast generate` of N synthetic Deployments (+ N ConfigMaps) over 20 images from a local registry, cold and warm image cache',
  policy: 'agent-policy evaluation of one 8.8 KB CreateContainerRequest (9 env sources, 6 volumes, probes), one core',
  attestation: 'evidence verification, one core',
  images: 'cold image resolution from a local registry vs single-threaded gunzip of the same layers',
  coordinator: 'the Coordinator as a process on loopback (simulated platform)',
  replicas:
    'three Coordinator replicas as processes on loopback, state in ConfigMaps of a real API server: peer recovery after a kill, certificates with 1 and 3 replicas',
  render: 'Helm post-renderer on a chart of 200 resources (40 confidential), and single-executable start-up',
  servicemesh: 'service-mesh proxies: throughput, latency, connections',
  stream: 'a stream without confidential workloads through the Helm post-renderer (stdin to stdout)',
};

/** Keys worth a row: rates, times, sizes and failure counts; not configuration echoes or per-run samples. */
const INTERESTING =
  /(PerSecond|perSecond|CpuSecond|Seconds|seconds|Ms|ms|MBps|MbPerSecond|Rss|Mb$|ratio|Ratio|VsGunzip|errors|failed|broken|badChains|succeeded|p50|p95|mean|\.old$|\.new$|Bytes$)/;
const PER_RUN_SAMPLE = /(runsMs|[sS]amplesMs|\]\.ms$|loadAverage|loadavg|target|^goal)/;

/** Unit suffixes of our metric names, longest first, and what the suffix itself says when it is the whole name. */
const UNITS: [RegExp, string, string?][] = [
  [/PerCoordinatorCpuSecond$/, 'per Coordinator CPU-second'],
  [/PerCpuSecond$/i, 'per CPU-second', 'rate'],
  [/PerSecond$/i, 'per second', 'rate'],
  [/MsPerWorkload$/, 'ms per workload'],
  [/MsPerGB$/, 'CPU ms per GB'],
  [/MBps$/, 'MB/s', 'throughput'],
  [/MaxRssMb$/i, 'MB', 'peak RSS'],
  [/RssMb$|Mb$|MB$/i, 'MB'],
  [/CpuSeconds$/i, 's', 'CPU time'],
  [/Seconds$/i, 's', 'wall time'],
  [/Ms$/i, 'ms'],
  [/microsecondsEach$/, 'µs each', 'time'],
  [/Bytes$/, 'bytes'],
  [/Ratio$/i, '×', 'ratio'],
];

const words = (s: string) =>
  s
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase();

/** `results[2].warmSeconds` → `1000 workloads › warm (s)`: every figure named by what it measures and its unit. */
export function describeMetric(key: string, labels: Record<string, string> = {}): string {
  let path = key;
  for (const [prefix, label] of Object.entries(labels))
    if (path.startsWith(`${prefix}.`)) path = `${label}.${path.slice(prefix.length + 1)}`;
  const parts = path.split('.');
  const last = parts.pop()!;
  let unit = '';
  let name = last;
  if (/VsGunzip$/.test(last)) unit = '× of gunzip';
  else {
    for (const [re, u, whole] of UNITS) {
      if (re.test(last)) {
        unit = u;
        name = last.replace(re, '');
        if (whole && !/maxRss/i.test(name)) {
          // `wallSeconds` is the "wall time", not the "wall wall time".
          const first = whole.split(' ')[0]!;
          name = !name
            ? whole
            : words(name).endsWith(first)
              ? `${name}${whole.slice(first.length)}`
              : `${name} ${whole}`;
        }
        break;
      }
    }
  }
  const segs = [...parts.map((p) => (/[ -]/.test(p) ? p : words(p))), ...(name ? [words(name)] : [])];
  return `${segs.join(' › ') || 'value'}${unit ? ` (${unit})` : ''}`;
}

const fmt = (n: number | null) =>
  n === null || Number.isNaN(n)
    ? '–'
    : Number.isInteger(n) || Math.abs(n) >= 100
      ? n.toFixed(0)
      : Math.abs(n) >= 1
        ? n.toFixed(2)
        : n.toPrecision(2);

/** Cost against the number of workloads: one row per size of the generate scenario. */
function growthTable(metrics: Record<string, Summary>): string[] {
  const rows: string[] = [];
  const sizes = Object.entries(metrics)
    .filter(([k]) => /^results\[\d+\]\.workloads$/.test(k))
    .map(([k, v]) => ({ prefix: k.replace(/\.workloads$/, ''), n: v.median }));
  if (!sizes.length) return rows;
  const m = (p: string, k: string) => metrics[`${p}.${k}`]?.median ?? null;
  const genpolicy = sizes.some((s) => m(s.prefix, 'genpolicyWarmSeconds') !== null);
  rows.push(
    'How cost grows with the number of workloads (each Deployment comes with a ConfigMap):',
    '',
    `| workloads | cold: wall (s) | cold: peak RSS (MB) | warm: wall (s) | warm: CPU (s) | warm: peak RSS (MB) | warm: ms per workload |${genpolicy ? ' genpolicy warm: wall (s) | genpolicy warm: CPU (s) | genpolicy: peak RSS (MB) | genpolicy ÷ ours (warm wall) |' : ''}`,
    `|---:|---:|---:|---:|---:|---:|---:|${genpolicy ? '---:|---:|---:|---:|' : ''}`,
  );
  for (const s of sizes) {
    const g = genpolicy
      ? ` ${fmt(m(s.prefix, 'genpolicyWarmSeconds'))} | ${fmt(m(s.prefix, 'genpolicyWarmCpuSeconds'))} | ${fmt(m(s.prefix, 'genpolicyMaxRssMb'))} | ${fmt(m(s.prefix, 'genpolicyRatio'))} |`
      : '';
    rows.push(
      `| ${s.n} | ${fmt(m(s.prefix, 'coldSeconds'))} | ${fmt(m(s.prefix, 'coldMaxRssMb'))} | ${fmt(m(s.prefix, 'warmSeconds'))} | ${fmt(m(s.prefix, 'warmCpuSeconds'))} | ${fmt(m(s.prefix, 'warmMaxRssMb'))} | ${fmt(m(s.prefix, 'warmMsPerWorkload'))} |${g}`,
    );
  }
  rows.push('');
  return rows;
}

export function renderMarkdown(r: Report): string {
  const lines = [
    '# Benchmarks',
    '',
    `Last run ${r.started} with \`npm run bench\` (each scenario repeated ${r.repeat}× unless noted; median, and min–max in brackets).`,
    `Machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memoryGb.toFixed(0)} GiB, ${r.machine.os}, Node ${r.machine.node}; load average ${r.machine.loadAverageAtStart.map((l) => l.toFixed(1)).join('/')} at start, ${r.machine.loadAverageAtEnd.map((l) => l.toFixed(1)).join('/')} at end.`,
    'Shared or loaded machines make wall-clock numbers noisy: compare ratios measured in the same run, and CPU-time figures where a scenario reports them.',
    'Where the time goes, what profiles found and what was removed: [performance.md](performance.md).',
    '',
  ];
  if (r.goals?.length) {
    lines.push(
      '## Goals',
      '',
      'The goals of issue 18, from the scenarios below (`goals` in bench/results/latest.json).',
      '',
      '| name | goal | measured | met |',
      '|---|---|---|---|',
    );
    for (const g of r.goals)
      lines.push(
        `| ${g.name} | ${g.goal} | ${g.measured} | ${g.met === null ? 'not measured' : g.met ? 'yes' : 'no'} |`,
      );
    lines.push('');
  }
  for (const s of r.results) {
    lines.push(`## ${s.name}`, '');
    if (SCENARIO_TITLES[s.name]) lines.push(`${SCENARIO_TITLES[s.name]}.`, '');
    if (s.ranAt !== undefined && s.ranAt !== r.started) lines.push(`From the run of ${s.ranAt}.`, '');
    if (s.errors.length) lines.push(...s.errors.map((e) => `* failed run: ${e}`), '');
    if (s.maxRssMb.median !== null && !Number.isNaN(s.maxRssMb.median))
      lines.push(`Peak RSS of the scenario process ${fmt(s.maxRssMb.median)} MB.`, '');
    if (s.name === 'generate') {
      lines.push(...growthTable(s.metrics));
      continue;
    }
    const rows = Object.entries(s.metrics).filter(([k]) => INTERESTING.test(k) && !PER_RUN_SAMPLE.test(k));
    if (rows.length) {
      lines.push('| figure | median | range |', '|---|---:|---|');
      for (const [k, v] of rows)
        lines.push(
          `| ${describeMetric(k, s.labels)} | ${fmt(v.median)} | ${v.n > 1 ? `${fmt(v.min)}–${fmt(v.max)}` : ''} |`,
        );
      lines.push('');
    }
  }
  return `${lines.join('\n')}\n`;
}

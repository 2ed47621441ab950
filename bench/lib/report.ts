/** The markdown summary written to docs/benchmarks.md after each `npm run bench`. */
import type { Summary } from './stats.js';

interface Report {
  started: string;
  repeat: number;
  machine: { node: string; os: string; cpus: number; cpuModel: string; memoryGb: number; loadAverageAtStart: number[]; loadAverageAtEnd: number[] };
  results: { name: string; runs: number; maxRssMb: Summary; metrics: Record<string, Summary>; errors: string[]; ranAt?: string }[];
}

/** Keys worth a row: rates, times, sizes and failure counts; not configuration echoes or per-run samples. */
const INTERESTING = /(PerSecond|perSecond|Seconds|seconds|Ms|ms|MBps|MbPerSecond|Rss|ratio|Ratio|errors|failed|broken|succeeded|p50|p95|mean|\.old$|\.new$)/;
const PER_RUN_SAMPLE = /(runsMs|samplesMs|\]\.ms$)/;

const fmt = (n: number | null) => (n === null || Number.isNaN(n) ? '–' : Number.isInteger(n) || Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(2));

export function renderMarkdown(r: Report): string {
  const lines = [
    '# Benchmarks',
    '',
    `Last run ${r.started} with \`npm run bench\` (each scenario repeated ${r.repeat}× unless noted; median, and min–max in brackets).`,
    `Machine: ${r.machine.cpus} × ${r.machine.cpuModel}, ${r.machine.memoryGb.toFixed(0)} GiB, ${r.machine.os}, Node ${r.machine.node}; load average ${r.machine.loadAverageAtStart.map((l) => l.toFixed(1)).join('/')} at start, ${r.machine.loadAverageAtEnd.map((l) => l.toFixed(1)).join('/')} at end.`,
    'Shared or loaded machines make wall-clock numbers noisy: compare ratios measured in the same run, and CPU-time figures where a scenario reports them.',
    '',
  ];
  for (const s of r.results) {
    lines.push(`## ${s.name}`, '');
    if (s.ranAt !== undefined && s.ranAt !== r.started) lines.push(`From the run of ${s.ranAt}.`, '');
    if (s.errors.length) lines.push(...s.errors.map((e) => `* failed run: ${e}`), '');
    if (s.maxRssMb.median !== null && !Number.isNaN(s.maxRssMb.median)) lines.push(`Peak RSS ${fmt(s.maxRssMb.median)} MB.`, '');
    const rows = Object.entries(s.metrics).filter(([k]) => INTERESTING.test(k) && !PER_RUN_SAMPLE.test(k));
    if (rows.length) {
      lines.push('| metric | median | range |', '|---|---:|---|');
      for (const [k, v] of rows) lines.push(`| ${k} | ${fmt(v.median)} | ${v.n > 1 ? `${fmt(v.min)}–${fmt(v.max)}` : ''} |`);
      lines.push('');
    }
  }
  return `${lines.join('\n')}\n`;
}

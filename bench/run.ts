/**
 * `npm run bench`: runs every benchmark scenario several times as separate processes and
 * reports, per scenario, the median and spread of every number it printed, its peak RSS,
 * and the machine it ran on. Results go to bench/results/<time>.json (and latest.json) and a
 * short table to docs/benchmarks.md. Numbers, never assertions: compare them run to run.
 *
 *   npm run bench -- [--repeat 3] [--only generate,policy] [--full] [--report-only]
 *
 * With --only, the other scenarios keep their results from the last run (the report says when
 * each ran), so docs/benchmarks.md always shows every scenario.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { CLI, ensureBuilt, REPO_ROOT } from '../test/helpers/cli.js';
import { machineSummary, summarise } from './lib/stats.js';
import { computeGoals } from './lib/goals.js';
import { renderMarkdown, type ScenarioResult } from './lib/report.js';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
// Like the tests (.mocharc.cjs): the stand-ins of our images in samples/images, with their lock.
process.env.CONTRAST_IMAGE_LOCK ??= join(REPO_ROOT, 'samples', 'images', 'image-lock.json');
const REPEAT = Number(flag('repeat') ?? 3);
const ONLY = flag('only')?.split(',');
const FULL = process.argv.includes('--full');

interface Scenario {
  name: string;
  script: string;
  args: string[];
  repeat?: number;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'generate',
    script: 'bench/generate.ts',
    args: ['--sizes', FULL ? '10,100,1000,10000' : '10,100,1000'],
    repeat: 1,
  },
  { name: 'policy', script: 'bench/policy.ts', args: ['--seconds', '3'] },
  { name: 'attestation', script: 'bench/attestation.ts', args: ['--seconds', '3'] },
  { name: 'images', script: 'bench/images.ts', args: ['--repetitions', '1'] },
  {
    name: 'coordinator',
    script: 'bench/coordinator.ts',
    args: ['--concurrency', '500', '--set-rounds', '10', '--kill-rounds', '5'],
    repeat: 1,
  },
  {
    name: 'replicas',
    script: 'bench/replicas.ts',
    args: ['--concurrency', '200', '--restarts', '5'],
    repeat: 1,
  },
  { name: 'render', script: 'bench/render.ts', args: [] },
  { name: 'stream', script: 'bench/stream.ts', args: [], repeat: 1 },
  {
    name: 'servicemesh',
    script: 'bench/servicemesh.ts',
    args: ['--megabytes', '512', '--round-trips', '5000', '--seconds', '3', '--repetitions', '3'],
    repeat: 1,
  },
];

/** Names of array elements (`results[0]` → its `name`, or `N workloads`), so the report can say what a row measures. */
function labelsOf(value: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      const p = `${prefix}[${i}]`;
      const o = v as { name?: unknown; workloads?: unknown };
      if (o && typeof o === 'object' && typeof o.name === 'string') out[p] = o.name;
      else if (o && typeof o === 'object' && typeof o.workloads === 'number') out[p] = `${o.workloads} workloads`;
      labelsOf(v, p, out);
    });
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) labelsOf(v, prefix ? `${prefix}.${k}` : k, out);
  }
  return out;
}

function runScenario(s: Scenario): ScenarioResult {
  const outputs: unknown[] = [];
  const rss: number[] = [];
  const errors: string[] = [];
  const repeat = s.repeat ?? REPEAT;
  for (let i = 0; i < repeat; i++) {
    process.stderr.write(`[bench] ${s.name} run ${i + 1}/${repeat}\n`);
    const r = spawnSync(
      process.execPath,
      ['--import=tsx', '--import', join(REPO_ROOT, 'bench', 'lib', 'rss.mjs'), join(REPO_ROOT, s.script), ...s.args],
      {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        timeout: 30 * 60 * 1000,
      },
    );
    const m = /__BENCH_MAXRSS_KB__ (\d+)/.exec(r.stderr ?? '');
    if (m) rss.push(Number(m[1]) / 1024);
    if (r.status !== 0) {
      errors.push(
        `exit ${r.status ?? r.signal}: ${(r.stderr ?? '')
          .split('\n')
          .filter((l) => !l.startsWith('__BENCH'))
          .slice(-3)
          .join(' | ')}`,
      );
      continue;
    }
    try {
      outputs.push(JSON.parse(r.stdout));
    } catch {
      errors.push('the scenario did not print JSON');
    }
  }
  return {
    name: s.name,
    runs: outputs.length,
    labels: outputs.length ? labelsOf(outputs[0]) : {},
    maxRssMb: summarise(rss.map((v) => ({ v })))['v'] ?? summarise([])['v']!,
    metrics: summarise(outputs),
    errors,
  };
}

/** CLI start-up: `--version` through node and through kubectl, many times. */
function startup(): ScenarioResult {
  ensureBuilt();
  const time = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): number => {
    const t = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const samples: Record<string, number>[] = [];
  const kubectlEnv = { ...process.env, PATH: `${join(REPO_ROOT, 'bin')}:${process.env.PATH}` };
  for (let i = 0; i < 15; i++) {
    samples.push({
      nodeVersionMs: time(process.execPath, [CLI, '--version']),
      kubectlVersionMs: time('kubectl', ['contrast', '--version'], kubectlEnv),
    });
  }
  return {
    name: 'startup',
    runs: samples.length,
    maxRssMb: summarise([])['v']!,
    metrics: summarise(samples),
    errors: [],
  };
}

function main(): void {
  if (process.argv.includes('--report-only')) {
    // Re-render docs/benchmarks.md from the last results without running anything.
    const last = JSON.parse(readFileSync(join(REPO_ROOT, 'bench', 'results', 'latest.json'), 'utf8'));
    last.goals = computeGoals(last.results);
    writeFileSync(join(REPO_ROOT, 'docs', 'benchmarks.md'), renderMarkdown(last));
    return;
  }
  ensureBuilt();
  const started = new Date();
  const load = loadavg();
  const results: ScenarioResult[] = [];
  if (!ONLY || ONLY.includes('startup')) results.push(startup());
  for (const s of SCENARIOS) if (!ONLY || ONLY.includes(s.name)) results.push(runScenario(s));
  const machine = {
    ...machineSummary(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: totalmem() / 2 ** 30,
    loadAverageAtStart: load,
    loadAverageAtEnd: loadavg(),
  };
  for (const r of results) r.ranAt = started.toISOString();
  // --only: the scenarios that did not run keep their last results (each says when it ran).
  let previous: { results: ScenarioResult[]; started: string } | undefined;
  try {
    previous = JSON.parse(readFileSync(join(REPO_ROOT, 'bench', 'results', 'latest.json'), 'utf8'));
  } catch {
    /* first run */
  }
  const kept =
    ONLY && previous
      ? previous.results
          .filter((p) => !results.some((r) => r.name === p.name))
          .map((p) => ({ ...p, ranAt: p.ranAt ?? previous!.started }))
      : [];
  const order = [...(ONLY ? (previous?.results ?? []).map((p) => p.name) : []), ...results.map((r) => r.name)];
  const merged = [...kept, ...results].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  const report = {
    started: started.toISOString(),
    repeat: REPEAT,
    machine,
    goals: computeGoals(merged),
    results: merged,
  };
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const text = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(join(dir, `${started.toISOString().replace(/[:.]/g, '-')}.json`), text);
  writeFileSync(join(dir, 'latest.json'), text);
  writeFileSync(join(REPO_ROOT, 'docs', 'benchmarks.md'), renderMarkdown(report));
  process.stdout.write(renderMarkdown(report));
}

main();

/**
 * Benchmark (not a test): what the post-renderer adds to `helm template`, and how fast the
 * single executable starts.
 *
 * - Writes a chart of 200 resources (by default 40 confidential Deployments over the sample
 *   images, 40 Services, 120 ConfigMaps) and renders it with Helm 3 (--post-renderer
 *   executable) and Helm 4 (the postrenderer/v1 plugin), each with and without the
 *   post-renderer. Images come from samples/images; one warm-up run fills the image cache and
 *   creates the workspace keys, so the timed runs see a warm cache. Reports medians.
 * - Times `kubectl-contrast --version` of the single executable (dist-sea, from
 *   `npm run package`) and, for comparison, of bin/kubectl-contrast on node.
 *
 *   node --import=tsx bench/render.ts [--confidential N] [--resources M] [--repetitions R]
 * JSON on stdout.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const ROOT = new URL('..', import.meta.url).pathname;
const TOOLS = join(ROOT, 'tools', 'bin');
const SAMPLE_IMAGES = join(ROOT, 'samples', 'images');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const CONFIDENTIAL = arg('confidential', 40);
const RESOURCES = arg('resources', 200);
const REPS = arg('repetitions', 5);

const IMAGES = [
  { image: 'web:1.0', user: 101, groups: '' },
  { image: 'api:1.0', user: 1000, groups: '' },
  { image: 'worker:1.0', user: 1001, groups: '\n      securityContext:\n        supplementalGroups: [2000]' },
];

function writeChart(dir: string): void {
  mkdirSync(join(dir, 'templates'), { recursive: true });
  writeFileSync(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: bench\nversion: 0.1.0\n');
  writeFileSync(
    join(dir, 'values.yaml'),
    `confidential: ${CONFIDENTIAL}\nservices: ${CONFIDENTIAL}\nconfigMaps: ${RESOURCES - 2 * CONFIDENTIAL}\n`,
  );
  const deployments = IMAGES.map(
    (img, k) => `{{- range $i := until (int .Values.confidential) }}{{ if eq (mod $i ${IMAGES.length}) ${k} }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{{ $i }}
spec:
  selector:
    matchLabels: {app: app-{{ $i }}}
  template:
    metadata:
      labels: {app: app-{{ $i }}}
    spec:
      runtimeClassName: contrast-cc
      containers:
        - name: main
          image: ghcr.io/kubectl-contrast/samples/${img.image}
          securityContext: {runAsUser: ${img.user}, runAsGroup: ${img.user}}${img.groups}
{{- end }}{{ end }}
`,
  ).join('');
  writeFileSync(join(dir, 'templates', 'deployments.yaml'), deployments);
  writeFileSync(
    join(dir, 'templates', 'services.yaml'),
    `{{- range $i := until (int .Values.services) }}
---
apiVersion: v1
kind: Service
metadata:
  name: app-{{ $i }}
spec:
  selector: {app: app-{{ $i }}}
  ports: [{port: 8080}]
{{- end }}
`,
  );
  writeFileSync(
    join(dir, 'templates', 'configmaps.yaml'),
    `{{- range $i := until (int .Values.configMaps) }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings-{{ $i }}
data:
  mode: "0755"
  greeting: hello {{ $i }}
{{- end }}
`,
  );
}

function time(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): number {
  const t = performance.now();
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function series(reps: number, f: () => number): { medianMs: number; runsMs: number[] } {
  const runs = Array.from({ length: reps }, f).map((x) => Math.round(x));
  return { medianMs: Math.round(median(runs)), runsMs: runs };
}

const work = mkdtempSync(join(tmpdir(), 'kc-bench-render-'));
try {
  const chart = join(work, 'chart');
  writeChart(chart);
  const ws = join(work, 'ws');
  const env = {
    HELM_CONFIG_HOME: join(work, 'helm', 'config'),
    HELM_CACHE_HOME: join(work, 'helm', 'cache'),
    HELM_DATA_HOME: join(work, 'helm', 'data'),
    HELM_PLUGINS: join(work, 'helm', 'data', 'plugins'),
    CONTRAST_CACHE_DIR: join(work, 'cache'),
  };
  const rendererArgs = [
    '--platform=insecure-sim',
    `--workspace-dir=${ws}`,
    `--oci-layout=${SAMPLE_IMAGES}`,
    '--offline',
  ];
  const helm3 = join(TOOLS, 'helm3');
  const helm4 = join(TOOLS, 'helm4');
  const results: Record<string, unknown> = {
    benchmark: 'render',
    resources: RESOURCES,
    confidentialWorkloads: CONFIDENTIAL,
    repetitions: REPS,
    cpus: availableParallelism(),
    loadAverage: loadavg()[0],
    node: process.version,
  };

  const pr3 = [
    '--post-renderer',
    join(ROOT, 'postrenderer', 'kubectl-contrast-postrender'),
    ...rendererArgs.flatMap((a) => ['--post-renderer-args', a]),
  ];
  time(helm3, ['template', 'bench', chart, ...pr3], env); // warm-up: keys, image cache
  const h3plain = series(REPS, () => time(helm3, ['template', 'bench', chart], env));
  const h3post = series(REPS, () => time(helm3, ['template', 'bench', chart, ...pr3], env));
  results.helm3 = {
    template: h3plain,
    templateWithPostRenderer: h3post,
    postRendererAddsMs: h3post.medianMs - h3plain.medianMs,
  };
  const seaBin = join(ROOT, 'dist-sea', 'work', 'archive', 'kubectl-contrast');
  if (existsSync(seaBin)) {
    const prSea = [
      '--post-renderer',
      seaBin,
      '--post-renderer-args',
      'helm-post-render',
      ...rendererArgs.flatMap((a) => ['--post-renderer-args', a]),
    ];
    time(helm3, ['template', 'bench', chart, ...prSea], env);
    const h3sea = series(REPS, () => time(helm3, ['template', 'bench', chart, ...prSea], env));
    results.helm3SingleExecutable = {
      templateWithPostRenderer: h3sea,
      postRendererAddsMs: h3sea.medianMs - h3plain.medianMs,
    };
  }

  if (spawnSync(helm4, ['plugin', 'install', join(ROOT, 'plugin')], { env: { ...process.env, ...env } }).status !== 0)
    throw new Error('helm4 plugin install failed');
  const pr4 = ['--post-renderer', 'contrast', ...rendererArgs.flatMap((a) => ['--post-renderer-args', a])];
  time(helm4, ['template', 'bench', chart, ...pr4], env);
  const h4plain = series(REPS, () => time(helm4, ['template', 'bench', chart], env));
  const h4post = series(REPS, () => time(helm4, ['template', 'bench', chart, ...pr4], env));
  results.helm4 = {
    template: h4plain,
    templateWithPostRenderer: h4post,
    postRendererAddsMs: h4post.medianMs - h4plain.medianMs,
  };
  results.targetPostRendererMs = 1000;

  const sea = seaBin;
  const startup: Record<string, unknown> = { targetMs: 150 };
  if (existsSync(sea)) {
    time(sea, ['--version']);
    startup.singleExecutable = series(Math.max(REPS, 10), () => time(sea, ['--version']));
    // --version answers before the CLI is loaded; --help shows what loading all of it costs.
    startup.singleExecutableHelp = series(REPS, () => time(sea, ['--help']));
  } else {
    startup.singleExecutable = 'not built: run npm run package';
  }
  time(process.execPath, [join(ROOT, 'bin', 'kubectl-contrast'), '--version']);
  startup.nodeBin = series(Math.max(REPS, 10), () =>
    time(process.execPath, [join(ROOT, 'bin', 'kubectl-contrast'), '--version']),
  );
  results.versionStartup = startup;
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

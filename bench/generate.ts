/**
 * Benchmark (not a test): `kubectl contrast generate` end to end as a real process, for
 * synthetic manifests of growing size, with a cold image cache (images pulled from a local
 * registry on loopback) and a warm one (same cache, registry still up: one HEAD per tag).
 * Where ../shared/tools/genpolicy exists (Kata's generator, with its settings and rules beside
 * it), it runs on the same input against the same registry, warm (its layer cache filled by a
 * first run), for --genpolicy-sizes: a side-by-side reference, both sides run --repetitions times
 * in turn and compared by their medians. JSON on stdout.
 *
 *   node --import=tsx bench/generate.ts [--sizes 10,100,1000] [--images 20] [--genpolicy-sizes 10,100] [--repetitions 5] [--oci-layout DIR]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage, buildLayer, buildTar, OciLayoutWriter } from '../src/images/oci-build.js';
import { pushLayout, startRegistry } from '../test/helpers/registry.js';
import { CLI, ensureBuilt, REPO_ROOT } from '../test/helpers/cli.js';
import { removeDir, tempDir } from '../test/helpers/tmp.js';
import { syntheticWorkloads } from './lib/synthetic.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const SIZES = arg('sizes', '10,100,1000').split(',').map(Number);
const IMAGE_COUNT = Number(arg('images', '20'));
/** The Contrast images (pause, Initializer, mesh proxy): samples/images unless --oci-layout names another layout. */
const OCI_LAYOUT = arg('oci-layout', join(REPO_ROOT, 'samples', 'images'));
process.env.CONTRAST_IMAGE_LOCK ??= join(OCI_LAYOUT, 'image-lock.json');
const GENPOLICY_SIZES = arg('genpolicy-sizes', '10,100').split(',').map(Number);
/** Warm runs of each side on the sizes genpolicy runs on (medians compared). */
const REPETITIONS = Number(arg('repetitions', '5'));
const GENPOLICY_DIR = join(REPO_ROOT, '..', 'shared', 'tools', 'genpolicy');
const GENPOLICY = existsSync(join(GENPOLICY_DIR, 'genpolicy')) ? GENPOLICY_DIR : undefined;

/** Images with a passwd layer at the bottom and 2 MiB of incompressible data above it. */
function buildImages(dir: string): string[] {
  const writer = new OciLayoutWriter();
  const refs: string[] = [];
  for (let i = 0; i < IMAGE_COUNT; i++) {
    const base = buildLayer(
      buildTar([
        { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n' },
        { path: 'etc/group', content: 'root:x:0:\napp:x:1000:\njobs:x:2000:app\n' },
      ]),
    );
    const upper = buildLayer(buildTar([{ path: `app/blob-${i}`, content: randomBytes(2 * 1024 * 1024) }]));
    const image = buildImage({
      layers: [base, upper],
      config: { User: 'app', Entrypoint: ['/app/server'], Env: ['PATH=/usr/bin:/bin'], WorkingDir: '/app' },
    });
    const ref = `bench/app-${i}:1.0`;
    writer.add(image.descriptor, image.blobs, ref);
    refs.push(ref);
  }
  writer.write(dir);
  return refs;
}

interface RunResult {
  seconds: number;
  maxRssMb: number;
  cpuSeconds?: number;
}

/** The run of median wall time (its CPU time and peak memory come with it). */
function medianRun(runs: RunResult[]): RunResult {
  return [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor((runs.length - 1) / 2)]!;
}

/** genpolicy's settings with the pause image of our registry (a settings drop-in, as its docs show). */
function genpolicySettings(dir: string, pause: string): string {
  const settings = join(dir, 'genpolicy-settings');
  mkdirSync(join(settings, 'genpolicy-settings.d'), { recursive: true });
  copyFileSync(join(GENPOLICY!, 'genpolicy-settings.json'), join(settings, 'genpolicy-settings.json'));
  writeFileSync(
    join(settings, 'genpolicy-settings.d', '99-local-pause.json'),
    JSON.stringify([{ op: 'replace', path: '/cluster_config/pause_container_image', value: pause }]),
  );
  return settings;
}

/** genpolicy edits its input in place: each run gets a fresh copy. Peak RSS from /usr/bin/time. */
function runGenpolicy(input: string, dir: string, settings: string, registry: string): RunResult {
  const copy = join(dir, 'genpolicy-input.yaml');
  copyFileSync(input, copy);
  const args = [
    join(GENPOLICY!, 'genpolicy'),
    '-y',
    copy,
    '-p',
    join(GENPOLICY!, 'rules.rego'),
    '-j',
    settings,
    '--insecure-registry',
    registry,
    '-u',
    `--layers-cache-file-path=${join(settings, 'layers-cache.json')}`,
  ];
  const start = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '__MAXRSS_KB__ %M __CPU__ %U %S', ...args], {
    cwd: dir,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`genpolicy failed: ${(r.stderr ?? '').split('\n').slice(-5).join(' | ')}`);
  const rss = /__MAXRSS_KB__ (\d+) __CPU__ ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return {
    seconds,
    maxRssMb: rss ? Number(rss[1]) / 1024 : NaN,
    cpuSeconds: rss ? Number(rss[2]) + Number(rss[3]) : NaN,
  };
}

/** The single executable, when `npm run package` built it: measured beside the node build on small runs. */
const SEA = join(REPO_ROOT, 'dist-sea', 'work', 'archive', 'kubectl-contrast');

/** `sea`: run the single executable (no peak memory: it takes no --import) instead of node with dist/. */
function runGenerate(input: string, workspace: string, cacheDir: string, registry: string, sea = false): RunResult {
  const out = join(workspace, 'out.yaml');
  const start = process.hrtime.bigint();
  const command = sea ? [] : ['--import', join(REPO_ROOT, 'bench', 'lib', 'rss.mjs'), CLI];
  const r = spawnSync(
    sea ? SEA : process.execPath,
    [
      ...command,
      'generate',
      '--platform',
      'metal-qemu-snp',
      '--workspace-dir',
      workspace,
      '--cache-dir',
      cacheDir,
      '--insecure-registry',
      registry,
      '--oci-layout',
      OCI_LAYOUT,
      '-o',
      out,
      input,
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`generate failed: ${r.stderr}`);
  const rss = /__BENCH_MAXRSS_KB__ (\d+)/.exec(r.stderr);
  const cpu = /__BENCH_CPU_S__ ([\d.]+)/.exec(r.stderr);
  return { seconds, maxRssMb: rss ? Number(rss[1]) / 1024 : NaN, cpuSeconds: cpu ? Number(cpu[1]) : NaN };
}

async function main(): Promise<void> {
  ensureBuilt();
  const dir = tempDir('kc-bench-gen-');
  const registry = await startRegistry();
  try {
    const layout = join(dir, 'layout');
    const refs = buildImages(layout);
    for (const ref of refs) await pushLayout(layout, ref, `${registry.host}/${ref}`);
    const images = refs.map((r) => `${registry.host}/${r}`);
    let settings: string | undefined;
    if (GENPOLICY && existsSync('/usr/bin/time')) {
      const pauseLayout = join(dir, 'pause-layout');
      const writer = new OciLayoutWriter();
      const pause = buildImage({
        layers: [buildLayer(buildTar([{ path: 'pause', content: 'not a real pause binary\n' }]))],
        config: { Entrypoint: ['/pause'] },
      });
      writer.add(pause.descriptor, pause.blobs, 'bench/pause:3.10');
      writer.write(pauseLayout);
      await pushLayout(pauseLayout, 'bench/pause:3.10', `${registry.host}/bench/pause:3.10`);
      settings = genpolicySettings(dir, `${registry.host}/bench/pause:3.10`);
    }
    const results: Record<string, unknown>[] = [];
    for (const size of SIZES) {
      const input = join(dir, `workloads-${size}.yaml`);
      writeFileSync(input, syntheticWorkloads(size, images));
      const workspace = join(dir, `ws-${size}`);
      const cache = join(dir, `cache-${size}`);
      mkdirSync(workspace, { recursive: true });
      const cold = runGenerate(input, workspace, cache, registry.host);
      // Where genpolicy runs beside us, each side runs warm REPETITIONS times, alternating (so
      // both see the same minutes of the machine), and the medians are compared.
      const compare = settings !== undefined && GENPOLICY_SIZES.includes(size);
      if (compare) runGenpolicy(input, dir, settings!, registry.host); // fills its layer cache
      const ours: RunResult[] = [];
      const theirs: RunResult[] = [];
      const sea: RunResult[] = [];
      for (let i = 0; i < (compare ? REPETITIONS : 1); i++) {
        ours.push(runGenerate(input, workspace, cache, registry.host));
        if (!compare) continue;
        theirs.push(runGenpolicy(input, dir, settings!, registry.host));
        // What krew installs: bundled, with a code cache (same workspace and cache, warm).
        if (existsSync(SEA)) sea.push(runGenerate(input, workspace, cache, registry.host, true));
      }
      const warm = medianRun(ours);
      const row: Record<string, unknown> = {
        workloads: size,
        coldSeconds: cold.seconds,
        coldMaxRssMb: cold.maxRssMb,
        warmRuns: ours.length,
        warmSeconds: warm.seconds,
        warmCpuSeconds: warm.cpuSeconds,
        warmMaxRssMb: warm.maxRssMb,
        warmMsPerWorkload: (warm.seconds * 1000) / size,
      };
      if (compare) {
        const g = medianRun(theirs);
        Object.assign(row, {
          genpolicyWarmSeconds: g.seconds,
          genpolicyWarmCpuSeconds: g.cpuSeconds,
          genpolicyMaxRssMb: g.maxRssMb,
          genpolicyRatio: g.seconds / warm.seconds,
        });
        if (sea.length > 0) {
          const e = medianRun(sea);
          Object.assign(row, {
            singleExecutableWarmSeconds: e.seconds,
            genpolicyRatioSingleExecutable: g.seconds / e.seconds,
          });
        }
        process.stderr.write(
          `genpolicy ${size} workloads: warm ${g.seconds.toFixed(2)} s, ${g.maxRssMb.toFixed(0)} MB\n`,
        );
      }
      results.push(row);
      process.stderr.write(
        `generate ${size} workloads: cold ${cold.seconds.toFixed(2)} s, warm ${warm.seconds.toFixed(2)} s, ${warm.maxRssMb.toFixed(0)} MB\n`,
      );
    }
    process.stdout.write(`${JSON.stringify({ benchmark: 'generate', images: IMAGE_COUNT, results }, null, 2)}\n`);
  } finally {
    await registry.stop();
    removeDir(dir);
  }
}

await main();

/**
 * Benchmark (not a test): `kubectl contrast generate` end to end as a real process, for
 * synthetic manifests of growing size, with a cold image cache (images pulled from a local
 * registry on loopback) and a warm one (same cache, registry still up: one HEAD per tag).
 * JSON on stdout.
 *
 *   node --import=tsx bench/generate.ts [--sizes 10,100,1000] [--images 20]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
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

/** Images with a passwd layer at the bottom and 2 MiB of incompressible data above it. */
function buildImages(dir: string): string[] {
  const writer = new OciLayoutWriter();
  const refs: string[] = [];
  for (let i = 0; i < IMAGE_COUNT; i++) {
    const base = buildLayer(buildTar([
      { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n' },
      { path: 'etc/group', content: 'root:x:0:\napp:x:1000:\njobs:x:2000:app\n' },
    ]));
    const upper = buildLayer(buildTar([{ path: `app/blob-${i}`, content: randomBytes(2 * 1024 * 1024) }]));
    const image = buildImage({ layers: [base, upper], config: { User: 'app', Entrypoint: ['/app/server'], Env: ['PATH=/usr/bin:/bin'], WorkingDir: '/app' } });
    const ref = `bench/app-${i}:1.0`;
    writer.add(image.descriptor, image.blobs, ref);
    refs.push(ref);
  }
  writer.write(dir);
  return refs;
}

interface RunResult { seconds: number; maxRssMb: number }

function runGenerate(input: string, workspace: string, cacheDir: string, registry: string): RunResult {
  const out = join(workspace, 'out.yaml');
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--import', join(REPO_ROOT, 'bench', 'lib', 'rss.mjs'), CLI, 'generate', '--platform', 'metal-qemu-snp',
    '--workspace-dir', workspace, '--cache-dir', cacheDir, '--insecure-registry', registry, '--oci-layout', join(REPO_ROOT, 'samples', 'images'),
    '-o', out, input], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`generate failed: ${r.stderr}`);
  const rss = /__BENCH_MAXRSS_KB__ (\d+)/.exec(r.stderr);
  return { seconds, maxRssMb: rss ? Number(rss[1]) / 1024 : NaN };
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
    const results: Record<string, unknown>[] = [];
    for (const size of SIZES) {
      const input = join(dir, `workloads-${size}.yaml`);
      writeFileSync(input, syntheticWorkloads(size, images));
      const workspace = join(dir, `ws-${size}`);
      const cache = join(dir, `cache-${size}`);
      mkdirSync(workspace, { recursive: true });
      const cold = runGenerate(input, workspace, cache, registry.host);
      const warm = runGenerate(input, workspace, cache, registry.host);
      results.push({ workloads: size, coldSeconds: cold.seconds, coldMaxRssMb: cold.maxRssMb, warmSeconds: warm.seconds, warmMaxRssMb: warm.maxRssMb, warmMsPerWorkload: (warm.seconds * 1000) / size });
      process.stderr.write(`generate ${size} workloads: cold ${cold.seconds.toFixed(2)} s, warm ${warm.seconds.toFixed(2)} s, ${warm.maxRssMb.toFixed(0)} MB\n`);
    }
    process.stdout.write(`${JSON.stringify({ benchmark: 'generate', images: IMAGE_COUNT, results }, null, 2)}\n`);
  } finally {
    await registry.stop();
    removeDir(dir);
  }
}

await main();

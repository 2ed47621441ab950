/**
 * Benchmark (not a test): cold image resolution against a local registry.
 *
 * Builds N images whose /etc/passwd and /etc/group sit in the bottom layer under upper
 * layers of partly compressible data (so every upper layer must be read through), pushes
 * them to Debian's docker-registry on loopback with skopeo, then resolves them with an
 * empty cache. Reports MB/s of the compressed bytes that must be read through (the upper
 * layers), the same bytes for every way of reading them (`readMB`: what the resolver read in
 * all), and the CPU time of the whole process (main thread, scan thread and zlib's thread pool),
 * next to single-threaded gunzip of the same blobs: `coldSequentialVsGunzip` is the goal figure (image-cold-vs-gunzip). The same
 * images with zstd layers (Debian's zstd CLI, level 3) are resolved too, next to `zstd -d`
 * (the CLI, single-threaded) on those blobs and to our decoder alone in memory. JSON on stdout.
 *
 *   node --import=tsx bench/images.ts [--images N] [--layer-mb M] [--upper-layers K] [--repetitions R]
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { MediaType, sha256Digest } from '../src/images/image-manifest.js';
import { ImageResolver } from '../src/images/index.js';
import {
  buildImage,
  buildLayer,
  buildTar,
  OciLayoutWriter,
  type BuiltImage,
  type BuiltLayer,
} from '../src/images/oci-build.js';
import { ZstdDecoder } from '../src/images/zstd.js';
import { pushLayout, startRegistry } from '../test/helpers/registry.js';
import { tempDir } from '../test/images/fixtures.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const IMAGES = arg('images', 4);
const LAYER_MB = arg('layer-mb', 10);
const UPPER_LAYERS = arg('upper-layers', 2);
const REPS = arg('repetitions', 3);

/**
 * Deterministic data that compresses roughly like binaries and text in real images:
 * blocks alternate between pseudo-random bytes and repetitive text.
 */
function layerData(seed: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let counter = 0;
  const words = 'the quick brown fox jumps over a lazy dog while config files and libraries repeat themselves '.repeat(
    50,
  );
  for (let off = 0; off < bytes; off += 4096) {
    const block = Math.min(4096, bytes - off);
    if ((off / 4096) % 2 === 0) {
      let filled = 0;
      while (filled < block) {
        const h = createHash('sha512').update(`${seed}:${counter++}`).digest();
        filled += h.copy(out, off + filled, 0, Math.min(h.length, block - filled));
      }
    } else {
      out.write(words.slice((off / 4096) % 97, ((off / 4096) % 97) + block), off, block, 'latin1');
    }
  }
  return out;
}

/** The uncompressed layer tars of image n, bottom first. */
function benchTars(n: number): Buffer[] {
  const passwd = `root:x:0:0:root:/root:/bin/sh\napp:x:${1000 + n}:1000::/app:/bin/sh\n`;
  const tars = [
    buildTar([
      { path: 'etc/passwd', content: passwd },
      { path: 'etc/group', content: 'root:x:0:\napp:x:1000:\n' },
      { path: 'usr/lib/base.so', content: layerData(`base-${n}`, LAYER_MB * 1024 * 1024) },
    ]),
  ];
  for (let k = 0; k < UPPER_LAYERS; k++)
    tars.push(
      buildTar([{ path: `opt/app${k}/lib.so`, content: layerData(`img-${n}-layer-${k}`, LAYER_MB * 1024 * 1024) }]),
    );
  return tars;
}

function zstdLayer(tar: Buffer): BuiltLayer {
  const blob = execFileSync('zstd', ['-q', '-c', '-3'], { input: tar, maxBuffer: 1 << 30 });
  return {
    blob,
    diffId: sha256Digest(tar),
    descriptor: { mediaType: MediaType.ociLayerZstd, digest: sha256Digest(blob), size: blob.length },
  };
}

function benchImage(tars: Buffer[], compression: 'gzip' | 'zstd'): BuiltImage {
  const layers = tars.map((t) => (compression === 'gzip' ? buildLayer(t, 'gzip', 6) : zstdLayer(t)));
  return buildImage({ layers, config: { User: 'app', Cmd: ['/app'] } });
}

async function main(): Promise<void> {
  const tmp = tempDir('contrast-bench-');
  const reg = await startRegistry();
  try {
    // The tars are dropped once both images are built (they would double the process's memory).
    const built = Array.from({ length: IMAGES }, (_, n) => {
      const t = benchTars(n);
      return { gzip: benchImage(t, 'gzip'), zstd: benchImage(t, 'zstd') };
    });
    const images = built.map((b) => b.gzip);
    const zstdImages = built.map((b) => b.zstd);
    const writer = new OciLayoutWriter();
    images.forEach((img, n) => writer.add(img.descriptor, img.blobs, `img${n}`));
    zstdImages.forEach((img, n) => writer.add(img.descriptor, img.blobs, `zst${n}`));
    writer.write(join(tmp.path, 'layout'));
    await Promise.all([
      ...images.map((_, n) => pushLayout(join(tmp.path, 'layout'), `img${n}`, `${reg.host}/bench/img${n}:1`)),
      ...zstdImages.map((_, n) => pushLayout(join(tmp.path, 'layout'), `zst${n}`, `${reg.host}/bench/zst${n}:1`)),
    ]);
    const refs = images.map((_, n) => `${reg.host}/bench/img${n}:1`);
    const zstdRefs = zstdImages.map((_, n) => `${reg.host}/bench/zst${n}:1`);

    const mb = (bytes: number): number => +(bytes / 1e6).toFixed(1);
    // Baseline: single-threaded gunzip (zlib's gunzipSync, default settings) of the compressed
    // bytes the scan must read through: the upper layers.
    const blobs = images.flatMap((img) =>
      (JSON.parse(img.manifest.toString()) as { layers: { digest: string }[] }).layers
        .slice(1)
        .map((l) => img.blobs.get(l.digest)!),
    );
    const gzipRequired = blobs.reduce((n, b) => n + b.length, 0);
    /**
     * `bytes`: the compressed bytes the run must read (the upper layers), the same for every way
     * of reading them, so that MB/s compare like for like; `readBytes`: what the resolver read,
     * which also counts the start of the bottom layer and what arrived after a scan stopped.
     */
    type Run = { seconds: number; cpuSeconds: number; bytes: number; readBytes?: number };
    const timed = async (bytes: number, f: () => Promise<void> | void): Promise<Run> => {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await f();
      const c = process.cpuUsage(c0);
      return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (c.user + c.system) / 1e6, bytes };
    };
    // Each resolution scenario runs in a process of its own, as the gunzip baseline below does
    // (bench/lib/resolve-runs.ts says why).
    const resolveRuns = (required: number, args: Record<string, unknown>): Run => {
      const out = execFileSync(
        process.execPath,
        [
          '--import=tsx',
          join(import.meta.dirname, 'lib', 'resolve-runs.ts'),
          JSON.stringify({ ...args, repetitions: 1 }),
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const [run] = JSON.parse(out) as { seconds: number; cpuSeconds: number; readBytes: number }[];
      return { ...run!, bytes: required };
    };
    const cold = (concurrency: number, which = refs, required = gzipRequired) =>
      resolveRuns(required, { refs: which, insecureRegistry: reg.host, concurrency });
    // The same scan from the OCI layout on disk: no HTTP, isolates the decompress+scan cost.
    const local = () =>
      resolveRuns(gzipRequired, {
        refs: images.map((_, n) => `example.com/bench:img${n}`),
        ociLayout: join(tmp.path, 'layout'),
        concurrency: 1,
      });
    // In a fresh process of its own: in this one, the garbage of the runs before it (and of the
    // images built here) slows gunzipSync by up to a fifth, which would flatter the ratio.
    const gzipFiles = blobs.map((b, i) => {
      const f = join(tmp.path, `blob${i}.gz`);
      writeFileSync(f, b);
      return f;
    });
    const gunzipScript = [
      "const { readFileSync } = require('node:fs');",
      "const { gunzipSync } = require('node:zlib');",
      'const blobs = JSON.parse(process.argv[1]).map((f) => readFileSync(f));',
      'const c0 = process.cpuUsage();',
      'const t0 = process.hrtime.bigint();',
      'for (const b of blobs) gunzipSync(b);',
      'const c = process.cpuUsage(c0);',
      'process.stdout.write(JSON.stringify({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (c.user + c.system) / 1e6 }));',
    ].join('\n');
    const gunzip = (): Run => {
      const out = execFileSync(process.execPath, ['-e', gunzipScript, JSON.stringify(gzipFiles)], { encoding: 'utf8' });
      return { ...(JSON.parse(out) as { seconds: number; cpuSeconds: number }), bytes: gzipRequired };
    };
    // zstd baselines on the same upper layers: the CLI (`zstd -d`, single-threaded; the time
    // includes starting it, about 1 ms per blob) and our decoder alone, in memory.
    const zstdBlobs = zstdImages.flatMap((img) =>
      (JSON.parse(img.manifest.toString()) as { layers: { digest: string }[] }).layers
        .slice(1)
        .map((l) => img.blobs.get(l.digest)!),
    );
    const zstdFiles = zstdBlobs.map((b, i) => {
      const f = join(tmp.path, `blob${i}.zst`);
      writeFileSync(f, b);
      return f;
    });
    const zstdTotal = zstdBlobs.reduce((n, b) => n + b.length, 0);
    const zstdCli = () =>
      timed(zstdTotal, () => {
        execFileSync('zstd', ['-d', '-q', '-c', '-T1', ...zstdFiles], { stdio: ['ignore', 'ignore', 'inherit'] });
      });
    const zstdDecoder = () =>
      timed(zstdTotal, () => {
        for (const b of zstdBlobs) {
          const d = new ZstdDecoder(() => true);
          d.push(b);
          d.end();
        }
      });

    // Interleaved repetitions; the best of each is reported (the machine may be shared).
    const runs: Record<string, Run[]> = {
      coldSequential: [],
      coldParallel: [],
      localLayoutSequential: [],
      gunzipSingleThread: [],
      zstdColdSequential: [],
      zstdCliSingleThread: [],
      zstdDecoderSingleThread: [],
    };
    for (let rep = 0; rep < REPS; rep++) {
      runs['coldSequential']!.push(cold(1));
      runs['gunzipSingleThread']!.push(gunzip());
      runs['coldParallel']!.push(cold(8));
      runs['localLayoutSequential']!.push(local());
      runs['zstdColdSequential']!.push(cold(1, zstdRefs, zstdTotal));
      runs['zstdCliSingleThread']!.push(await zstdCli());
      runs['zstdDecoderSingleThread']!.push(await zstdDecoder());
    }
    const best = (list: Run[]) => {
      const rates = list.map((r) => r.bytes / 1e6 / r.seconds).sort((x, y) => x - y);
      const top = list.reduce((a, b) => (a.bytes / a.seconds >= b.bytes / b.seconds ? a : b));
      const out = {
        compressedMB: mb(top.bytes),
        ...(top.readBytes !== undefined ? { readMB: mb(top.readBytes) } : {}),
        seconds: +top.seconds.toFixed(3),
        cpuSeconds: +top.cpuSeconds.toFixed(3),
        MBps: +rates.at(-1)!.toFixed(1),
        medianMBps: +rates[Math.floor(rates.length / 2)]!.toFixed(1),
      };
      return out;
    };
    const summary = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, best(v)]));

    // Warm run: everything from the cache (one HEAD per tag).
    const cacheDir = join(tmp.path, 'cache');
    await new ImageResolver({ insecureRegistries: [reg.host], cacheDir, progress: false }).resolveAll(refs);
    const warm = await timed(0, async () => {
      await new ImageResolver({ insecureRegistries: [reg.host], cacheDir, progress: false }).resolveAll(refs);
    });

    const result = {
      benchmark: 'images: cold resolution against a local registry',
      node: process.version,
      cpus: availableParallelism(),
      loadAverage: loadavg().map((l) => +l.toFixed(1)),
      repetitions: REPS,
      images: IMAGES,
      layersPerImage: UPPER_LAYERS + 1,
      layerUncompressedMB: LAYER_MB,
      compressedMBPerImage: +(
        images.reduce((n, img) => n + [...img.blobs.values()].reduce((m, b) => m + b.length, 0), 0) /
        IMAGES /
        1e6
      ).toFixed(1),
      ...summary,
      coldSequentialVsGunzip: +(summary['coldSequential']!.MBps / summary['gunzipSingleThread']!.MBps).toFixed(2),
      zstdColdSequentialToCliRatio: +(
        summary['zstdColdSequential']!.MBps / summary['zstdCliSingleThread']!.MBps
      ).toFixed(2),
      zstdColdSequentialToDecoderRatio: +(
        summary['zstdColdSequential']!.MBps / summary['zstdDecoderSingleThread']!.MBps
      ).toFixed(2),
      warmSeconds: +warm.seconds.toFixed(3),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await reg.stop();
    tmp.remove();
  }
}

await main();

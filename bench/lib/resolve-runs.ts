/**
 * One image resolution scenario in a process of its own, for bench/images.ts: the bench process
 * holds every image it built (hundreds of MB), and the garbage collections that the scans'
 * external memory triggers would mark that heap too, which a real `generate` does not have; the
 * gunzip baseline runs in a fresh process for the same reason. A first resolution warms the
 * code (a real run's first image would); the next `repetitions` are timed, each with a new
 * resolver and no cache. JSON on stdout: `[{ seconds, cpuSeconds, readBytes }]`.
 *
 *   node --import=tsx bench/lib/resolve-runs.ts '{"refs":[…],"insecureRegistry":"127.0.0.1:5000","concurrency":1,"repetitions":1}'
 *   node --import=tsx bench/lib/resolve-runs.ts '{"refs":[…],"ociLayout":"DIR","concurrency":1,"repetitions":1}'
 */
import { ImageResolver } from '../../src/images/index.js';

interface Args {
  refs: string[];
  insecureRegistry?: string;
  ociLayout?: string;
  concurrency: number;
  repetitions: number;
}

const args = JSON.parse(process.argv[2]!) as Args;

async function resolveOnce(): Promise<number> {
  const resolver = new ImageResolver({
    ...(args.insecureRegistry !== undefined ? { insecureRegistries: [args.insecureRegistry] } : {}),
    ...(args.ociLayout !== undefined ? { ociLayouts: [args.ociLayout] } : {}),
    cacheDir: false,
    concurrency: args.concurrency,
    progress: false,
  });
  await resolver.resolveAll(args.refs);
  return resolver.stats.bytesRead;
}

await resolveOnce();
const runs = [];
for (let i = 0; i < args.repetitions; i++) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const readBytes = await resolveOnce();
  const c = process.cpuUsage(c0);
  runs.push({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (c.user + c.system) / 1e6, readBytes });
}
process.stdout.write(JSON.stringify(runs));

/**
 * Benchmark (not a test): a 100 MB stream without confidential workloads through the Helm
 * post-renderer (`helm-post-render`, stdin to stdout) as a real process: many small documents
 * (ConfigMaps of about 1 KB) and few large ones (ConfigMaps of about 1 MB, the Kubernetes
 * limit). Wall time, peak RSS, and whether the output is byte-identical to the input.
 * The workspace exists beforehand (a user's second render). JSON on stdout.
 *
 *   node --import=tsx bench/stream.ts [--megabytes 100]
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CLI, ensureBuilt, REPO_ROOT } from '../test/helpers/cli.js';
import { removeDir, tempDir } from '../test/helpers/tmp.js';

const i = process.argv.indexOf('--megabytes');
const MEGABYTES = i >= 0 ? Number(process.argv[i + 1]) : 100;

function configMaps(count: number, valueBytes: number): string {
  const parts: string[] = [];
  for (let n = 0; n < count; n++) {
    const value = `v${n}-`.padEnd(valueBytes, 'abcdefghij');
    parts.push(
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${n}\n  namespace: bench\n  labels:\n    app: bench\ndata:\n  key: "${value}"\n`,
    );
  }
  return parts.join('---\n');
}

function pass(stream: string, workspace: string): Record<string, unknown> {
  const start = process.hrtime.bigint();
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      join(REPO_ROOT, 'bench', 'lib', 'rss.mjs'),
      CLI,
      'helm-post-render',
      '--platform=insecure-sim',
      `--workspace-dir=${workspace}`,
      '--offline',
    ],
    { input: stream, encoding: 'utf8', maxBuffer: 1024 * 1024 * 1024 },
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`helm-post-render failed: ${(r.stderr ?? '').slice(0, 500)}`);
  const rss = /__BENCH_MAXRSS_KB__ (\d+)/.exec(r.stderr);
  const cpu = /__BENCH_CPU_S__ ([\d.]+)/.exec(r.stderr);
  return {
    megabytes: +(Buffer.byteLength(stream) / 1e6).toFixed(1),
    seconds,
    cpuSeconds: cpu ? Number(cpu[1]) : NaN,
    maxRssMb: rss ? Number(rss[1]) / 1024 : NaN,
    identicalOutput: r.stdout === stream ? 1 : 0,
  };
}

ensureBuilt();
const dir = tempDir('kc-bench-stream-');
/**
 * The workspace of each pass is made by a first render of one ConfigMap, untimed: its keys (an
 * RSA-4096 seed-share key takes 1–2 s) are made once per workspace, not per render.
 */
function prepared(workspace: string): string {
  pass(configMaps(1, 10), workspace);
  return workspace;
}
try {
  const small = configMaps(Math.round((MEGABYTES * 1e6) / 1000), 880);
  const large = configMaps(Math.max(1, Math.round(MEGABYTES / 1)), 1_000_000 - 200);
  const smallDocuments = {
    documents: Math.round((MEGABYTES * 1e6) / 1000),
    ...pass(small, prepared(join(dir, 'ws-small'))),
  };
  process.stderr.write(`stream small: ${JSON.stringify(smallDocuments)}\n`);
  const largeDocuments = {
    documents: Math.max(1, Math.round(MEGABYTES)),
    ...pass(large, prepared(join(dir, 'ws-large'))),
  };
  process.stderr.write(`stream large: ${JSON.stringify(largeDocuments)}\n`);
  process.stdout.write(
    `${JSON.stringify({ benchmark: 'stream', goal: { seconds: 5, maxRssMb: 300 }, smallDocuments, largeDocuments }, null, 2)}\n`,
  );
} finally {
  removeDir(dir);
}

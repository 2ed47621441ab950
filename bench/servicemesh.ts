/**
 * Benchmark (not a test) of the service mesh data path on loopback: a client, the egress side
 * of one pod, the ingress side of another and the application, each its own process, against
 * the same client talking to the same application directly. JSON on stdout.
 *
 *   node --import=tsx bench/servicemesh.ts [--megabytes 512] [--round-trips 5000] [--seconds 3]
 *                                          [--concurrency 8] [--repetitions 3] [--profile DIR]
 *                                          [--proxy-node-flags '--max-semi-space-size=1']
 *
 *   direct:  client ──plain──▶ app
 *   mesh:    client ──plain──▶ egress (127.0.0.2) ══mTLS══▶ ingress ──plain──▶ app
 *
 * The proxies are the sidecar's own listener classes (EgressListener, IngressListener with a
 * client certificate required, the relay, the connection tracker) with credentials made by the
 * Coordinator's CA code; only the iptables REDIRECT in front of the ingress listener is left
 * out (loopback traffic is never redirected), so the egress dials the listener's port.
 *
 * 1. Throughput: one connection carries --megabytes to a sink that answers with the count;
 *    also four connections at once. MB/s direct, through the mesh, and their ratio (goal ≥ 0.7).
 * 2. Latency: --round-trips 64-byte request/response pairs on one connection; p50/p95/p99 of
 *    the round trip, direct and through the mesh, and the p50 the mesh adds (goal ≤ 1 ms).
 * 3. Connections per second: --concurrency loops that connect, send a byte, read it back and
 *    close, for --seconds; through the mesh each is a new TLS session between the proxies.
 * Each measurement alternates direct and mesh --repetitions times and keeps the median. CPU
 * time of each proxy process is reported per measurement: on a shared machine wall-clock
 * numbers move with the neighbours, CPU time per byte less so. --profile DIR writes a V8 CPU
 * profile of each proxy process (DIR/ingress, DIR/egress; one file per thread) for a closer look.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ConnectionTracker } from '../src/servicemesh/connections.js';
import { loadCredentials } from '../src/servicemesh/credentials.js';
import { EgressListener } from '../src/servicemesh/egress.js';
import { IngressListener } from '../src/servicemesh/ingress.js';
import { newMeshPki, workloadCredentials, writeTlsDir } from '../test/servicemesh/pki.js';

const SELF = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const num = (name: string, def: number): number => Number(opt(name) ?? def);

const LIMITS = { handshakeTimeoutMs: 10_000, idleTimeoutMs: 3_600_000, halfCloseTimeoutMs: 60_000 };
const TRACKER = { maxConnections: 4096, maxConnectionsPerSource: 4096 };
const EGRESS_HOST = '127.0.0.2';

// ---- the processes of the data path -------------------------------------------------------

/** Tell the parent our ports, report CPU time on request (a line on stdin), exit when stdin ends. */
function serve(ports: Record<string, number>): void {
  process.stdout.write(`${JSON.stringify({ ports })}\n`);
  let mark = process.cpuUsage();
  const rl = createInterface({ input: process.stdin });
  rl.on('line', () => {
    const d = process.cpuUsage(mark);
    mark = process.cpuUsage();
    process.stdout.write(
      `${JSON.stringify({ cpuMs: (d.user + d.system) / 1000, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
    );
  });
  rl.on('close', () => process.exit(0));
}

async function listen(server: ReturnType<typeof createServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  return (server.address() as { port: number }).port;
}

/** sink: count bytes until the client's FIN, answer with the count. echo: send back what comes. */
async function appRole(): Promise<void> {
  const sink = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    let n = 0;
    s.on('data', (c: Buffer) => {
      n += c.length;
    });
    s.on('end', () => s.end(`${n}\n`));
    s.on('error', () => {});
  });
  const echo = createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  serve({ sink: await listen(sink), echo: await listen(echo) });
}

async function ingressRole(): Promise<void> {
  const creds = loadCredentials(opt('tls')!);
  const tracker = new ConnectionTracker(TRACKER);
  const ports: Record<string, number> = {};
  for (const [name, appPort] of [
    ['sink', num('sink', 0)],
    ['echo', num('echo', 0)],
  ] as const) {
    const l = new IngressListener({
      appPort,
      mode: 'mtls',
      name,
      credentials: creds,
      tracker,
      limits: LIMITS,
      appHost: () => '127.0.0.1',
      log: (m) => process.stderr.write(`ingress: ${m}\n`),
    });
    ports[name] = await l.start();
  }
  serve(ports);
}

async function egressRole(): Promise<void> {
  const creds = loadCredentials(opt('tls')!);
  const tracker = new ConnectionTracker(TRACKER);
  const ports: Record<string, number> = {};
  for (const [name, remotePort, listenPort] of [
    ['sink', num('sink', 0), num('listen-sink', 0)],
    ['echo', num('echo', 0), num('listen-echo', 0)],
  ] as const) {
    const l = new EgressListener({
      entry: { name, listenHost: EGRESS_HOST, listenPort, remoteHost: '127.0.0.1', remotePort },
      credentials: creds,
      tracker,
      limits: LIMITS,
      log: (m) => process.stderr.write(`egress: ${m}\n`),
    });
    await l.start();
    ports[name] = listenPort;
  }
  serve(ports);
}

// ---- the orchestrator and client ----------------------------------------------------------

interface Side {
  proc: ChildProcess;
  ports: Record<string, number>;
  cpu(): Promise<number>;
  maxRssMb: number;
}

function start(role: string, extra: string[]): Promise<Side> {
  const profile = opt('profile');
  const prof = profile && role !== 'app' ? ['--cpu-prof', '--cpu-prof-dir', join(profile, role)] : [];
  const nodeFlags = role !== 'app' ? (opt('proxy-node-flags') ?? '').split(' ').filter(Boolean) : [];
  const proc = spawn(process.execPath, [...prof, ...nodeFlags, '--import=tsx', SELF, '--role', role, ...extra], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: proc.stdout! });
  const waiting: { resolve: (line: string) => void; reject: (err: Error) => void }[] = [];
  lines.on('line', (l) => waiting.shift()?.resolve(l));
  proc.once('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`${role} exited (${code})`));
  });
  const next = () =>
    new Promise<string>((resolve, reject) => {
      waiting.push({ resolve, reject });
    });
  return next().then((l) => {
    const ports = (JSON.parse(l) as { ports: Record<string, number> }).ports;
    const side: Side = {
      proc,
      ports,
      maxRssMb: 0,
      cpu: async () => {
        const p = next();
        proc.stdin!.write('\n');
        const r = JSON.parse(await p) as { cpuMs: number; maxRssMb: number };
        side.maxRssMb = r.maxRssMb;
        return r.cpuMs;
      },
    };
    return side;
  });
}

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, allowHalfOpen: true, noDelay: true });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Send `bytes` and wait for the sink's count; MB/s (10^6 bytes). */
async function pushBytes(host: string, port: number, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const t0 = process.hrtime.bigint();
  const s = await open(host, port);
  let reply = '';
  const answered = new Promise<void>((resolve, reject) => {
    s.on('data', (d: Buffer) => {
      reply += d.toString();
    });
    s.once('end', () => resolve());
    s.once('error', reject);
  });
  let sent = 0;
  while (sent < bytes) {
    const n = Math.min(chunk.length, bytes - sent);
    sent += n;
    if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) await new Promise((r) => s.once('drain', r));
  }
  s.end();
  await answered;
  s.destroy();
  if (Number(reply.trim()) !== bytes) throw new Error(`the sink counted ${reply.trim()} of ${bytes} bytes`);
  return bytes / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function throughput(host: string, port: number, megabytes: number, streams: number): Promise<number> {
  const per = Math.floor((megabytes * 1e6) / streams);
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: streams }, () => pushBytes(host, port, per)));
  return (per * streams) / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** Round trips of 64 bytes on one connection; milliseconds. */
async function latency(
  host: string,
  port: number,
  roundTrips: number,
): Promise<{ p50: number; p95: number; p99: number }> {
  const s = await open(host, port);
  const msg = Buffer.alloc(64, 0x61);
  const samples: number[] = [];
  let got = 0;
  let resolveOne: (() => void) | undefined;
  s.on('data', (d: Buffer) => {
    got += d.length;
    if (got >= msg.length) {
      got -= msg.length;
      resolveOne?.();
    }
  });
  const warmUp = Math.min(200, Math.floor(roundTrips / 10));
  for (let i = 0; i < roundTrips + warmUp; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      resolveOne = resolve;
      s.write(msg);
    });
    if (i >= warmUp) samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  s.destroy();
  samples.sort((a, b) => a - b);
  return { p50: quantile(samples, 0.5), p95: quantile(samples, 0.95), p99: quantile(samples, 0.99) };
}

/** Connect, one byte there and back, close; completed connections per second. */
async function connectionsPerSecond(host: string, port: number, seconds: number, concurrency: number): Promise<number> {
  const until = Date.now() + seconds * 1000;
  let done = 0;
  const loop = async () => {
    while (Date.now() < until) {
      const s = await open(host, port);
      await new Promise<void>((resolve, reject) => {
        s.once('data', () => resolve());
        s.once('error', reject);
        s.write('x');
      });
      s.destroy();
      done++;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  return done / ((Date.now() - t0) / 1000);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(): Promise<void> {
  const MEGABYTES = num('megabytes', 512);
  const ROUND_TRIPS = num('round-trips', 5000);
  const SECONDS = num('seconds', 3);
  const CONCURRENCY = num('concurrency', 8);
  const REPS = num('repetitions', 3);

  const work = mkdtempSync(join(tmpdir(), 'kc-bench-mesh-'));
  const sides: Side[] = [];
  try {
    const pki = await newMeshPki();
    writeTlsDir(join(work, 'server'), await workloadCredentials(pki, { sans: ['server'] }));
    writeTlsDir(join(work, 'client'), await workloadCredentials(pki, { sans: ['client'] }));
    const app = await start('app', []);
    sides.push(app);
    const ingress = await start('ingress', [
      '--tls',
      join(work, 'server'),
      '--sink',
      String(app.ports.sink),
      '--echo',
      String(app.ports.echo),
    ]);
    sides.push(ingress);
    const base = 20000 + Math.floor(Math.random() * 20000);
    const egress = await start('egress', [
      '--tls',
      join(work, 'client'),
      '--sink',
      String(ingress.ports.sink),
      '--echo',
      String(ingress.ports.echo),
      '--listen-sink',
      String(base),
      '--listen-echo',
      String(base + 1),
    ]);
    sides.push(egress);

    const direct = { host: '127.0.0.1', ...app.ports } as { host: string; sink: number; echo: number };
    const mesh = { host: EGRESS_HOST, ...egress.ports } as { host: string; sink: number; echo: number };

    /** CPU milliseconds each process spent since the last call: client (this one), app, proxies. */
    let clientMark = process.cpuUsage();
    const cpuSince = async () => {
      const c = process.cpuUsage(clientMark);
      clientMark = process.cpuUsage();
      const [appMs, ingressMs, egressMs] = await Promise.all([app.cpu(), ingress.cpu(), egress.cpu()]);
      return { clientMs: (c.user + c.system) / 1000, appMs, ingressMs, egressMs };
    };
    type Cpu = Awaited<ReturnType<typeof cpuSince>>;
    const medianCpu = (xs: Cpu[]): Cpu => ({
      clientMs: median(xs.map((x) => x.clientMs)),
      appMs: median(xs.map((x) => x.appMs)),
      ingressMs: median(xs.map((x) => x.ingressMs)),
      egressMs: median(xs.map((x) => x.egressMs)),
    });

    /** Alternate direct and mesh; medians of the results and of every process's CPU time. */
    const compare = async <T>(measure: (p: typeof direct) => Promise<T>, key: (t: T) => number) => {
      const d: number[] = [];
      const m: number[] = [];
      const cpuDirect: Cpu[] = [];
      const cpuMesh: Cpu[] = [];
      const runs: { direct: T; mesh: T }[] = [];
      await measure(mesh); // warm-up: JIT, TLS contexts
      for (let i = 0; i < REPS; i++) {
        await cpuSince();
        const a = await measure(direct);
        cpuDirect.push(await cpuSince());
        const b = await measure(mesh);
        cpuMesh.push(await cpuSince());
        d.push(key(a));
        m.push(key(b));
        runs.push({ direct: a, mesh: b });
      }
      return { direct: median(d), mesh: median(m), cpuDirect: medianCpu(cpuDirect), cpuMesh: medianCpu(cpuMesh), runs };
    };

    const single = await compare(
      (p) => throughput(p.host, p.sink, MEGABYTES, 1),
      (v) => v,
    );
    const four = await compare(
      (p) => throughput(p.host, p.sink, MEGABYTES, 4),
      (v) => v,
    );
    const lat = await compare(
      (p) => latency(p.host, p.echo, ROUND_TRIPS),
      (v) => v.p50,
    );
    const medianOf = (
      runs: { direct: { p95: number; p99: number }; mesh: { p95: number; p99: number } }[],
      side: 'direct' | 'mesh',
      q: 'p95' | 'p99',
    ) => median(runs.map((r) => r[side][q]));
    const cps = await compare(
      (p) => connectionsPerSecond(p.host, p.echo, SECONDS, CONCURRENCY),
      (v) => v,
    );

    // CPU per GB of each process on the one-stream path, and what that allows: with a core per
    // process the slowest one sets the pace; with fewer cores than processes, their sum does.
    const perGb = (ms: number) => (ms / MEGABYTES) * 1000;
    const stages = {
      direct: [perGb(single.cpuDirect.clientMs), perGb(single.cpuDirect.appMs)],
      mesh: [
        perGb(single.cpuMesh.clientMs),
        perGb(single.cpuMesh.egressMs),
        perGb(single.cpuMesh.ingressMs),
        perGb(single.cpuMesh.appMs),
      ],
    };
    const cores = availableParallelism();
    const bound = (costs: number[]) => ({
      coreEachMBps: 1e6 / Math.max(...costs),
      theseCoresMBps: (Math.min(cores, costs.length) * 1e6) / costs.reduce((x, y) => x + y, 0),
    });

    const out = {
      config: {
        megabytes: MEGABYTES,
        roundTrips: ROUND_TRIPS,
        connectionLoopLength: SECONDS,
        concurrency: CONCURRENCY,
        repetitions: REPS,
        cpus: availableParallelism(),
      },
      throughput: {
        oneStreamDirectMBps: single.direct,
        oneStreamMeshMBps: single.mesh,
        oneStreamRatio: single.mesh / single.direct,
        fourStreamsDirectMBps: four.direct,
        fourStreamsMeshMBps: four.mesh,
        fourStreamsRatio: four.mesh / four.direct,
        cpuMsPerGB: {
          directClient: stages.direct[0],
          directApp: stages.direct[1],
          meshClient: stages.mesh[0],
          meshEgress: stages.mesh[1],
          meshIngress: stages.mesh[2],
          meshApp: stages.mesh[3],
        },
        cpuBound: {
          direct: bound(stages.direct),
          mesh: bound(stages.mesh),
          coreEachRatio: bound(stages.mesh).coreEachMBps / bound(stages.direct).coreEachMBps,
        },
      },
      latency: {
        directP50Ms: lat.direct,
        meshP50Ms: lat.mesh,
        addedP50Ms: lat.mesh - lat.direct,
        directP95Ms: medianOf(lat.runs, 'direct', 'p95'),
        meshP95Ms: medianOf(lat.runs, 'mesh', 'p95'),
        directP99Ms: medianOf(lat.runs, 'direct', 'p99'),
        meshP99Ms: medianOf(lat.runs, 'mesh', 'p99'),
      },
      connections: {
        directPerSecond: cps.direct,
        meshPerSecond: cps.mesh,
        meshProxiesCpuMsPerConnection: (cps.cpuMesh.egressMs + cps.cpuMesh.ingressMs) / (cps.mesh * SECONDS),
      },
      // Peak resident memory of each proxy process over the whole run (the sidecar's memory limit).
      memory: { egressMaxRssMb: egress.maxRssMb, ingressMaxRssMb: ingress.maxRssMb },
      goals: {
        throughputRatio: { goal: '>= 0.7', met: single.mesh / single.direct >= 0.7 },
        addedP50Ms: { goal: '<= 1', met: lat.mesh - lat.direct <= 1 },
      },
      loadAverage: loadavg(),
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } finally {
    for (const s of sides) s.proc.stdin!.end();
    rmSync(work, { recursive: true, force: true });
  }
}

const role = opt('role');
if (role === 'app') await appRole();
else if (role === 'ingress') await ingressRole();
else if (role === 'egress') await egressRole();
else await main();

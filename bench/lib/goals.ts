/**
 * The goals of issue 18, each computed from one `npm run bench` run: a name, the goal in
 * words, the measured figure in words, and whether it is met (null: not measured in this run,
 * e.g. genpolicy-ratio without ../shared/tools/genpolicy).
 */
import type { Summary } from './stats.js';

export interface Goal {
  name: string;
  goal: string;
  measured: string;
  met: boolean | null;
}

interface Result {
  name: string;
  maxRssMb: Summary;
  metrics: Record<string, Summary>;
}

const num = (r: Result | undefined, key: string): number | undefined => {
  const v = r?.metrics[key]?.median;
  return v === undefined || v === null || Number.isNaN(v) ? undefined : v;
};

/** The array prefix (`results[2]`) of a generate result of `workloads` workloads. */
function sizePrefix(r: Result | undefined, workloads: number): string | undefined {
  if (!r) return undefined;
  for (const [k, v] of Object.entries(r.metrics)) {
    const m = /^(results\[\d+\])\.workloads$/.exec(k);
    if (m && v.median === workloads) return m[1];
  }
  return undefined;
}

const f = (n: number, digits = 2) => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(digits));

function goal(
  name: string,
  text: string,
  values: (number | undefined)[],
  measured: (v: number[]) => string,
  met: (v: number[]) => boolean,
): Goal {
  if (values.some((v) => v === undefined)) return { name, goal: text, measured: 'not measured', met: null };
  const v = values as number[];
  return { name, goal: text, measured: measured(v), met: met(v) };
}

export function computeGoals(results: Result[]): Goal[] {
  const by = (n: string) => results.find((r) => r.name === n);
  const gen = by('generate');
  const g1000 = sizePrefix(gen, 1000);
  const g10 = sizePrefix(gen, 10);
  const render = by('render');
  const policy = by('policy');
  const images = by('images');
  const coord = by('coordinator');
  const stream = by('stream');
  const replicas = by('replicas');
  return [
    goal(
      'generate-1000-warm',
      '1,000 workloads, warm image cache: ≤ 1.5 s wall and ≤ 150 MB peak RSS',
      [num(gen, `${g1000}.warmSeconds`), num(gen, `${g1000}.warmMaxRssMb`)],
      ([s, mb]) =>
        `${f(s!)} s wall (${num(gen, `${g1000}.warmCpuSeconds`)?.toFixed(2) ?? '–'} s CPU), ${f(mb!, 0)} MB peak`,
      ([s, mb]) => s! <= 1.5 && mb! <= 150,
    ),
    goal(
      'genpolicy-ratio',
      '10 workloads, warm: genpolicy wall time ÷ ours ≥ 1 (we are not slower on small runs)',
      [num(gen, `${g10}.genpolicyWarmSeconds`), num(gen, `${g10}.warmSeconds`)],
      ([g, o]) => {
        const sea = num(gen, `${g10}.singleExecutableWarmSeconds`);
        const beside = sea === undefined ? '' : ` (the single executable ${f(sea)} s: ${f(g! / sea)}×)`;
        return `genpolicy ${f(g!)} s, ours ${f(o!)} s: ${f(g! / o!)}×${beside}`;
      },
      ([g, o]) => g! / o! >= 1,
    ),
    goal(
      'post-render-200',
      'Helm post-renderer adds ≤ 300 ms to `helm template` of 200 resources (Helm 3 and Helm 4)',
      [num(render, 'helm3.postRendererAddsMs'), num(render, 'helm4.postRendererAddsMs')],
      ([a, b]) => `+${f(a!, 0)} ms Helm 3, +${f(b!, 0)} ms Helm 4`,
      ([a, b]) => a! <= 300 && b! <= 300,
    ),
    goal(
      'policy-create-container',
      '≥ 5,000 CreateContainer evaluations per CPU-second (one core)',
      [num(policy, 'allowed.perCpuSecond')],
      ([r]) => `${f(r!, 0)} per CPU-second`,
      ([r]) => r! >= 5000,
    ),
    goal(
      'image-cold-vs-gunzip',
      'cold image resolution ≥ 90% of single-threaded gunzip speed on the same layers',
      [num(images, 'coldSequential.MBps'), num(images, 'gunzipSingleThread.MBps')],
      ([c, g]) => `${f(c!, 0)} vs ${f(g!, 0)} MB/s: ${f((100 * c!) / g!, 0)}%`,
      ([c, g]) => c! / g! >= 0.9,
    ),
    goal(
      'stream-100mb',
      '100 MB without confidential workloads (many small and few large documents): ≤ 5 s and ≤ 300 MB peak each, output byte-identical',
      [
        num(stream, 'smallDocuments.seconds'),
        num(stream, 'smallDocuments.maxRssMb'),
        num(stream, 'largeDocuments.seconds'),
        num(stream, 'largeDocuments.maxRssMb'),
        num(stream, 'smallDocuments.identicalOutput'),
        num(stream, 'largeDocuments.identicalOutput'),
      ],
      ([s1, m1, s2, m2, i1, i2]) =>
        `small: ${f(s1!)} s, ${f(m1!, 0)} MB; large: ${f(s2!)} s, ${f(m2!, 0)} MB; output ${i1 === 1 && i2 === 1 ? 'identical' : 'NOT identical'}`,
      ([s1, m1, s2, m2, i1, i2]) => s1! <= 5 && m1! <= 300 && s2! <= 5 && m2! <= 300 && i1 === 1 && i2 === 1,
    ),
    goal(
      'mesh-certs',
      'the Coordinator issues ≥ 1,000 mesh certificates per second, 0 errors',
      [
        num(coord, 'newMeshCert.certificatesPerSecond'),
        num(coord, 'newMeshCert.failed'),
        num(coord, 'newMeshCert.badChains'),
        // Reported beside the rate (the clients share the machine), not part of the goal.
        num(coord, 'newMeshCert.coordinatorCpuMsPerCertificate') ?? -1,
      ],
      ([r, e, b, ms]) =>
        `${f(r!, 0)}/s, ${e! + b!} errors${ms! > 0 ? `; ${f(ms!, 1)} ms of Coordinator CPU each (${f(1000 / ms!, 0)} per CPU-second)` : ''}`,
      ([r, e, b]) => r! >= 1000 && e! === 0 && b! === 0,
    ),
    goal(
      'replica-peer-recovery',
      'a killed Coordinator replica is ready again through peer recovery within 10 s of its start (process start included), the takeover itself within 1 s',
      [num(replicas, 'peerRecovery.startToReadyMedianMs'), num(replicas, 'peerRecovery.takeoverMedianMs')],
      ([ms, t]) => `${f(ms! / 1000)} s start to ready, ${f(t!, 0)} ms of it the takeover`,
      ([ms, t]) => ms! <= 10_000 && t! <= 1000,
    ),
    goal(
      'replica-certs',
      'mesh certificates with 3 replicas (ConfigMap store) ≥ 50% of the rate of 1, 0 errors',
      [
        num(replicas, 'oneReplica.certificatesPerSecond'),
        num(replicas, 'threeReplicas.certificatesPerSecond'),
        num(replicas, 'oneReplica.failed'),
        num(replicas, 'threeReplicas.failed'),
        num(replicas, 'oneReplica.badChains'),
        num(replicas, 'threeReplicas.badChains'),
      ],
      ([a, b, ...e]) => `${f(a!, 0)}/s with 1, ${f(b!, 0)}/s with 3; ${e.reduce((x, y) => x! + y!, 0)} errors`,
      ([a, b, ...e]) => b! >= 0.5 * a! && e.every((x) => x === 0),
    ),
    goal(
      'sea-version',
      'the single executable answers --version in ≤ 80 ms',
      [num(render, 'versionStartup.singleExecutable.medianMs')],
      ([ms]) => `${f(ms!, 0)} ms`,
      ([ms]) => ms! <= 80,
    ),
  ];
}

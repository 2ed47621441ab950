/**
 * Benchmark (not a test) of Coordinator replicas: real processes on loopback, their state in
 * ConfigMaps of a real API server (test/helpers/apiserver.ts), the simulated platform. JSON on stdout.
 *
 *   node --import=tsx bench/replicas.ts [--concurrency 200] [--restarts 5]
 *
 * 1. Peer recovery: a replica is SIGKILLed and started again `--restarts` times; measured is the
 *    time from its start (spawn) to its readiness probe saying ready, and the part of it from the
 *    process listening to the state taken over (contrast_coordinator_peer_recovery_seconds).
 * 2. Mesh certificates per second with 1 and with 3 replicas: `--concurrency` concurrent
 *    NewMeshCert calls (each its own aTLS connection and evidence, as Initializers), spread round
 *    robin over the replicas. Every certificate must chain to the one mesh CA.
 */
import { X509Certificate } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { apiServer, stopApiServer } from '../test/helpers/apiserver.js';
import { removeDir, tempDir } from '../test/helpers/tmp.js';
import { ReplicaSet } from '../test/coordinator/replicas.js';
import { SimulatedIssuer, loadOrCreateSimRoot } from '../src/issuers/simulated.js';
import { callUserApi } from '../src/coordinator/client.js';
import { decode, encode } from '../src/util/protobuf.js';
import {
  SetManifestRequestSchema,
  SetManifestResponseSchema,
  type SetManifestResponse,
} from '../src/coordinator/api/messages.js';
import { sha256 } from '../src/coordinator/crypto.js';
import { requestMeshCert } from '../src/initializer/initializer.js';
import { COORD, manifest, wo } from '../test/coordinator/state-helpers.js';
import type { Manifest } from '../src/coordinator/manifest.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const CONCURRENCY = arg('concurrency', 200);
const RESTARTS = arg('restarts', 5);
const WEB = Buffer.from('bench web policy');

const dir = tempDir('kc-bench-replicas-');
const simDir = join(dir, 'sim');
process.env.CONTRAST_INSECURE_SIM_DIR = simDir;
loadOrCreateSimRoot(simDir);
const raw = manifest({ policies: [WEB] });
const parsed = JSON.parse(raw.toString()) as Manifest;
const issuer = new SimulatedIssuer(loadOrCreateSimRoot(simDir), sha256(WEB));

async function firstSet(set: ReplicaSet): Promise<Buffer> {
  const res = await callUserApi(
    'SetManifest',
    encode(SetManifestRequestSchema, { Manifest: raw, Policies: [COORD, WEB] }),
    {
      address: { host: '127.0.0.1', port: set.replicas[0]!.ports.userapi },
      manifest: parsed,
      clientKey: wo,
    },
  );
  return decode<SetManifestResponse>(SetManifestResponseSchema, res.response).MeshCA;
}

/** `CONCURRENCY` concurrent certificate requests over the replicas; each retried (another replica) on failure. */
async function certificates(set: ReplicaSet, replicas: number, meshCA: Buffer) {
  const ca = new X509Certificate(meshCA);
  let failed = 0;
  let badChains = 0;
  let retries = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, n) => {
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          const r = await requestMeshCert({
            host: '127.0.0.1',
            port: set.replicas[(n + attempt) % replicas]!.ports.meshapi,
            issuer,
          });
          const leaf = new X509Certificate(r.CertChain.toString().split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
          if (!r.MeshCACert.equals(meshCA) || !leaf.verify(ca.publicKey)) badChains++;
          return;
        } catch {
          retries++;
        }
      }
      failed++;
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    replicas,
    requests: CONCURRENCY,
    seconds,
    certificatesPerSecond: (CONCURRENCY - failed) / seconds,
    failed,
    badChains,
    retries,
  };
}

async function main(): Promise<void> {
  const api = await apiServer();
  const loadAverageAtStart = loadavg();
  const set = await ReplicaSet.create({ api, dir, simDir, policyHash: sha256(COORD).toString('hex'), count: 3 });
  try {
    await set.start(0);
    await set.waitFor(0, 'uninitialised');
    const meshCA = await firstSet(set);
    await set.waitFor(0, 'ready');

    // Certificates with one replica, then with three (the two others take the state over first).
    const one = await certificates(set, 1, meshCA);
    await Promise.all([1, 2].map((i) => set.start(i)));
    await Promise.all([1, 2].map((i) => set.waitFor(i, 'ready')));
    const three = await certificates(set, 3, meshCA);

    // Peer recovery after a kill: spawn to ready.
    const startToReadyMs: number[] = [];
    const takeoverMs: number[] = [];
    for (let k = 0; k < RESTARTS; k++) {
      const victim = 1 + (k % 2);
      await set.kill(victim);
      const t0 = Date.now();
      await set.start(victim);
      await set.waitFor(victim, 'ready');
      startToReadyMs.push(Date.now() - t0);
      const m = /^contrast_coordinator_peer_recovery_seconds ([0-9.]+)$/m.exec(await set.metrics(victim));
      if (m) takeoverMs.push(Number(m[1]) * 1000);
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
    process.stdout.write(
      `${JSON.stringify(
        {
          machine: { cpus: cpus().length, loadAverageAtStart, loadAverageAtEnd: loadavg() },
          peerRecovery: {
            restarts: RESTARTS,
            startToReadyMedianMs: median(startToReadyMs),
            startToReadyMaxMs: Math.max(...startToReadyMs),
            takeoverMedianMs: median(takeoverMs),
            startToReadySamplesMs: startToReadyMs,
          },
          oneReplica: one,
          threeReplicas: three,
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await set.stopAll();
    stopApiServer();
    removeDir(dir);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

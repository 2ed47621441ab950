/**
 * Benchmark (not a test) of the Coordinator as a real process on loopback with the simulated
 * platform. JSON on stdout.
 *
 *   node --import=tsx bench/coordinator.ts [--concurrency 500] [--set-rounds 20] [--kill-rounds 20]
 *
 * 1. SetManifest latency (sequential updates, each a new manifest, mesh CA rotated each time).
 * 2. N concurrent NewMeshCert calls, each on its own aTLS connection with its own evidence, as
 *    N Initializers would do: mesh certificates per second, errors, and a check that every
 *    certificate is distinct, chains to the mesh CA and was counted by the Coordinator.
 * 3. Crash safety: SetManifest, SIGKILL at a random moment, restart, read the history in
 *    recovery mode; it must hold either the old or the new manifest as latest with an intact
 *    chain; then recover and continue.
 */
import { X509Certificate, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { loadavg, cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SimulatedIssuer, loadOrCreateSimRoot } from '../src/issuers/simulated.js';
import { callUserApi } from '../src/coordinator/client.js';
import { decode, encode } from '../src/util/protobuf.js';
import {
  GetManifestsResponseSchema,
  RecoverRequestSchema,
  SetManifestRequestSchema,
  SetManifestResponseSchema,
  type GetManifestsResponse,
  type SetManifestResponse,
} from '../src/coordinator/api/messages.js';
import { decryptSeedShare } from '../src/coordinator/seedshares.js';
import { chainHash } from '../src/coordinator/history.js';
import { sha256 } from '../src/coordinator/crypto.js';
import { spkiDer } from '../src/atls/binding.js';
import { requestMeshCert } from '../src/initializer/initializer.js';
import { startCoordinatorProcess, type CoordinatorProcess } from '../test/coordinator/process.js';
import { removeDir, tempDir } from '../test/helpers/tmp.js';
import { SIMULATED_MEASUREMENT } from '../src/attestation/simulated.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const CONCURRENCY = arg('concurrency', 500);
const SET_ROUNDS = arg('set-rounds', 20);
const KILL_ROUNDS = arg('kill-rounds', 20);

const dir = tempDir('kc-bench-coord-');
const simDir = join(dir, 'sim');
process.env.CONTRAST_INSECURE_SIM_DIR = simDir;
const stateDir = join(dir, 'state');
const coordPolicy = Buffer.from('bench coordinator policy');
const webPolicy = Buffer.from('bench web policy');
const wo = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
const so = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const hex = (b: Buffer) => b.toString('hex');

function manifest(version: number) {
  const m = {
    Policies: {
      [hex(sha256(coordPolicy))]: { SANs: ['coordinator'], Role: 'coordinator' as const },
      [hex(sha256(webPolicy))]: { SANs: ['web', `v${version}.web`], WorkloadSecretID: 'web' },
    },
    ReferenceValues: { insecure: [{ Platform: 'Insecure-Sim', TrustedMeasurement: SIMULATED_MEASUREMENT }] },
    WorkloadOwnerPubKeys: [hex(spkiDer(wo))],
    SeedshareOwnerPubKeys: [createPublicKey(so).export({ type: 'pkcs1', format: 'der' }).toString('hex')],
  };
  return { m, raw: Buffer.from(`${JSON.stringify(m, null, 2)}\n`) };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number | undefined): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
  return {
    n: s.length,
    meanMs: +(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)).toFixed(1),
    p50Ms: +q(0.5).toFixed(1),
    p95Ms: +q(0.95).toFixed(1),
    maxMs: +(s.at(-1) ?? 0).toFixed(1),
  };
};

async function setManifest(c: CoordinatorProcess, version: number): Promise<SetManifestResponse> {
  const { m, raw } = manifest(version);
  const r = await callUserApi(
    'SetManifest',
    encode(SetManifestRequestSchema, { Manifest: raw, Policies: [coordPolicy, webPolicy] }),
    { address: { host: '127.0.0.1', port: c.ports.userapi }, manifest: m, clientKey: wo },
  );
  return decode<SetManifestResponse>(SetManifestResponseSchema, r.response);
}

async function history(c: CoordinatorProcess): Promise<GetManifestsResponse> {
  const { m } = manifest(0);
  const r = await callUserApi('GetManifests', Buffer.alloc(0), {
    address: { host: '127.0.0.1', port: c.ports.userapi },
    manifest: m,
    clientKey: wo,
    retryForMs: 10_000,
    retryIntervalMs: 100,
  });
  return decode<GetManifestsResponse>(GetManifestsResponseSchema, r.response);
}

const quiet = process.stderr.write.bind(process.stderr);
// The simulated platform warns on every verification; keep the benchmark output readable.
process.stderr.write = ((chunk: string | Uint8Array) =>
  String(chunk).includes('SIMULATED') ? true : quiet(chunk)) as typeof process.stderr.write;

let coord = await startCoordinatorProcess({ stateDir, policyHash: hex(sha256(coordPolicy)), simDir, workDir: dir });
try {
  // 1. SetManifest latency.
  const first = await setManifest(coord, 0);
  const seed = decryptSeedShare(first.SeedSharesDoc!.SeedShares[0]!, so);
  const salt = first.SeedSharesDoc!.salt;
  const setTimes: number[] = [];
  let version = 1;
  for (let i = 0; i < SET_ROUNDS; i++, version++) {
    const t = performance.now();
    await setManifest(coord, version);
    setTimes.push(performance.now() - t);
  }

  // 2. Concurrent NewMeshCert.
  const root = loadOrCreateSimRoot(simDir);
  const issuer = new SimulatedIssuer(root, sha256(webPolicy));
  const meshCA = new X509Certificate((await history(coord)).MeshCA);
  const before = Number(
    /contrast_meshapi_certificates_issued_total (\d+)/.exec(
      await (await fetch(`http://127.0.0.1:${coord.ports.metrics}/metrics`)).text(),
    )?.[1] ?? 0,
  );
  const cpu0 = cpuSeconds(coord.proc.pid);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  const results = await Promise.allSettled(
    Array.from({ length: CONCURRENCY }, () =>
      requestMeshCert({ host: '127.0.0.1', port: coord.ports.meshapi, issuer }),
    ),
  );
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = cpuSeconds(coord.proc.pid);
  const clientUsage = process.cpuUsage(client0);
  const clientCpu = (clientUsage.user + clientUsage.system) / 1e6;
  const coordCpu = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
  const ok = results.filter(
    (r): r is PromiseFulfilledResult<Awaited<ReturnType<typeof requestMeshCert>>> => r.status === 'fulfilled',
  );
  const errors = results
    .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    .map((r) => String((r.reason as Error).message));
  const serials = new Set<string>();
  let badChain = 0;
  for (const r of ok) {
    const leaf = new X509Certificate(r.value.CertChain.toString().split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
    serials.add(leaf.serialNumber);
    if (!leaf.verify(meshCA.publicKey) || !leaf.publicKey.equals(createPublicKey(r.value.key))) badChain++;
  }
  const after = Number(
    /contrast_meshapi_certificates_issued_total (\d+)/.exec(
      await (await fetch(`http://127.0.0.1:${coord.ports.metrics}/metrics`)).text(),
    )?.[1] ?? 0,
  );

  // 3. Kill during SetManifest.
  const outcomes = { old: 0, new: 0, broken: 0 };
  const brokenDetails: string[] = [];
  const meanSet = setTimes.reduce((a, b) => a + b, 0) / Math.max(1, setTimes.length);
  let latest = manifest(version - 1).raw;
  for (let i = 0; i < KILL_ROUNDS; i++, version++) {
    const next = manifest(version).raw;
    const pending = setManifest(coord, version).catch(() => undefined);
    await new Promise((r) => setTimeout(r, Math.random() * meanSet * 1.5));
    await coord.kill('SIGKILL');
    await pending;
    coord = await startCoordinatorProcess({
      stateDir,
      policyHash: hex(sha256(coordPolicy)),
      simDir,
      workDir: dir,
      ports: { userapi: coord.ports.userapi, meshapi: coord.ports.meshapi },
    });
    const h = await history(coord);
    const intact = h.LatestTransition !== undefined && chainHash(h.Manifests).equals(h.LatestTransition.TransitionHash);
    const last = h.Manifests.at(-1);
    if (intact && last?.equals(latest)) outcomes.old++;
    else if (intact && last?.equals(next)) {
      outcomes.new++;
      latest = next;
    } else {
      outcomes.broken++;
      brokenDetails.push(`round ${i}: intact=${intact}`);
    }
    const { m } = manifest(0);
    await callUserApi('Recover', encode(RecoverRequestSchema, { Seed: seed, Salt: salt, Force: false }), {
      address: { host: '127.0.0.1', port: coord.ports.userapi },
      manifest: m,
      clientKey: so,
    });
  }

  process.stdout.write(
    `${JSON.stringify(
      {
        benchmark: 'coordinator',
        machine: { cpus: cpus().length, loadavg: loadavg().map((x) => +x.toFixed(2)) },
        setManifest: {
          ...stats(setTimes),
          note: 'sequential updates over aTLS incl. attestation of the Coordinator and a new connection per call',
        },
        newMeshCert: {
          concurrency: CONCURRENCY,
          succeeded: ok.length,
          failed: errors.length,
          firstErrors: [...new Set(errors)].slice(0, 3),
          wallSeconds: +wall.toFixed(2),
          certificatesPerSecond: +(ok.length / wall).toFixed(1),
          coordinatorCpuSeconds: coordCpu,
          coordinatorCpuMsPerCertificate:
            coordCpu && ok.length ? +((coordCpu / ok.length) * 1000).toFixed(2) : undefined,
          certificatesPerCoordinatorCpuSecond: coordCpu ? +(ok.length / coordCpu).toFixed(1) : undefined,
          clientCpuSeconds: +clientCpu.toFixed(2),
          clientCpuMsPerCertificate: ok.length ? +((clientCpu / ok.length) * 1000).toFixed(2) : undefined,
          distinctCertificates: serials.size,
          badChains: badChain,
          countedByCoordinator: after - before,
          note: 'each call: new TLS connection, server evidence + certificate for the client nonce, client evidence bound to the TLS exporter, verification, issuance. The clients run in this one process on the same machine (clientCpu*), so the wall rate is bounded by them and by the neighbours as much as by the Coordinator; its capacity is certificatesPerCoordinatorCpuSecond',
        },
        killDuringSetManifest: { rounds: KILL_ROUNDS, ...outcomes, brokenDetails },
      },
      null,
      2,
    )}\n`,
  );
} finally {
  await coord.kill();
  removeDir(dir);
}

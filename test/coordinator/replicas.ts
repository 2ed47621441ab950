/**
 * Several Coordinator replicas as real processes on loopback, sharing one ConfigMap state store
 * on a real API server (test/helpers/apiserver.ts) with the rights of the rendered Role only, each
 * with the others' MeshAPI as --peers. Every replica keeps its ports across restarts, so the peer
 * lists stay valid. For the replica tests and the replica benchmark.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ApiServer } from '../helpers/apiserver.js';
import { admin, freshNamespace } from '../kube/kube.js';
import { renderCoordinator } from '../../src/kube/coordinator-resources.js';
import { applyObjects } from '../../src/kube/apply.js';
import { connect } from '../../src/kube/client.js';
import { startCoordinatorProcess, type CoordinatorProcess } from './process.js';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A namespace with the rendered ServiceAccount and Role, and a kubeconfig with that account's token. */
export async function coordinatorNamespace(
  api: ApiServer,
  dir: string,
): Promise<{ namespace: string; kubeconfig: string }> {
  const a = admin(api);
  const namespace = await freshNamespace(a, 'kc-ha');
  await applyObjects(connect({ kubeconfig: api.kubeconfig, namespace }), renderCoordinator({ namespace }));
  const token = await a.core.createNamespacedServiceAccountToken({
    name: 'coordinator',
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const kubeconfig = join(dir, `sa-${namespace}.kubeconfig`);
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${api.url}\n    certificate-authority-data: ${Buffer.from(api.caPem).toString('base64')}\nusers:\n- name: sa\n  user:\n    token: ${token.status!.token}\ncontexts:\n- name: sa\n  context:\n    cluster: c\n    user: sa\ncurrent-context: sa\n`,
    { mode: 0o600 },
  );
  return { namespace, kubeconfig };
}

export interface Replica {
  index: number;
  ports: { userapi: number; meshapi: number };
  proc?: CoordinatorProcess;
  /** Current metrics port (changes with every start). */
  metricsPort(): number;
}

export interface ReplicaSetOptions {
  api: ApiServer;
  dir: string;
  simDir: string;
  /** The policy hash the replicas report (the manifest's Role "coordinator" entry). */
  policyHash: string;
  count: number;
  /** --peer-interval in seconds (default 0.2: the tests should not wait for the poll). */
  peerIntervalSeconds?: number;
}

export class ReplicaSet {
  readonly replicas: Replica[] = [];
  private constructor(
    private readonly o: ReplicaSetOptions,
    private readonly store: { namespace: string; kubeconfig: string },
  ) {}

  static async create(o: ReplicaSetOptions): Promise<ReplicaSet> {
    const set = new ReplicaSet(o, await coordinatorNamespace(o.api, o.dir));
    for (let i = 0; i < o.count; i++) {
      const ports = { userapi: await freePort(), meshapi: await freePort() };
      const r: Replica = { index: i, ports, metricsPort: () => r.proc?.ports.metrics ?? 0 };
      set.replicas.push(r);
    }
    return set;
  }

  get namespace(): string {
    return this.store.namespace;
  }

  /**
   * Start (or restart) replica i; resolves when it listens (not when it is ready). `policyHash`
   * overrides the policy it reports (an impostor).
   */
  async start(i: number, opts: { policyHash?: string } = {}): Promise<CoordinatorProcess> {
    const r = this.replicas[i]!;
    const peers = this.replicas.filter((x) => x !== r).map((x) => `127.0.0.1:${x.ports.meshapi}`);
    r.proc = await startCoordinatorProcess({
      stateDir: join(this.o.dir, 'unused-state'),
      policyHash: opts.policyHash ?? this.o.policyHash,
      simDir: this.o.simDir,
      workDir: this.o.dir,
      ports: r.ports,
      args: [
        ...(peers.length > 0 ? ['--peers', peers.join(',')] : ['--peers', 'none']),
        '--peer-interval',
        String(this.o.peerIntervalSeconds ?? 0.2),
      ],
      env: {
        CONTRAST_STATE_STORE: 'configmap',
        CONTRAST_NAMESPACE: this.store.namespace,
        KUBECONFIG: this.store.kubeconfig,
      },
    });
    return r.proc;
  }

  async kill(i: number): Promise<void> {
    await this.replicas[i]!.proc?.kill('SIGKILL');
  }

  /** The replica's readiness probe: its state, or "down". */
  async state(i: number): Promise<string> {
    const r = this.replicas[i]!;
    if (!r.proc || r.proc.proc.exitCode !== null || r.proc.proc.signalCode !== null) return 'down';
    try {
      const res = await fetch(`http://127.0.0.1:${r.metricsPort()}/probe/readiness`, {
        signal: AbortSignal.timeout(5000),
      });
      return (await res.text()).trim();
    } catch {
      return 'down';
    }
  }

  async waitFor(i: number, state: string, timeoutMs = 60_000): Promise<number> {
    const start = Date.now();
    for (;;) {
      const s = await this.state(i);
      if (s === state) return Date.now() - start;
      if (Date.now() - start > timeoutMs)
        throw new Error(`replica ${i} is ${s}, not ${state}, after ${timeoutMs} ms:\n${this.replicas[i]!.proc?.log()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The metrics text of replica i. */
  async metrics(i: number): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.replicas[i]!.metricsPort()}/metrics`)).text();
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.proc?.kill('SIGKILL')));
  }

  logs(): string {
    return this.replicas.map((r) => `--- replica ${r.index} ---\n${r.proc?.log() ?? ''}`).join('\n');
  }
}

/**
 * Finding the Coordinator's UserAPI when `-c` is not given (`set`, `verify`, `recover`).
 *
 *  1. Service "coordinator" in the namespace with a load-balancer address → that address.
 *  2. Otherwise a port-forward. Kata VMs do not support `kubectl port-forward` into the
 *     confidential pod, so a small ordinary pod (the "port-forwarder", not confidential) relays
 *     TCP to Service `coordinator`; the API server's port-forward reaches that pod, and a local
 *     listener on 127.0.0.1 hands each connection through. The relay never sees plaintext: the
 *     UserAPI connection is aTLS end to end, attested against the manifest.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { CoreV1Api, PortForward, type V1Pod, type V1Service } from '@kubernetes/client-node';
import { UserError } from '../util/errors.js';
import { INJECTED_IMAGES } from '../platforms/images.js';
import type { Cluster } from './client.js';
import { applyObjects } from './apply.js';
import { explainKubeError, isNotFound } from './errors.js';
import { COORDINATOR_NAME, USERAPI_PORT } from './coordinator-resources.js';
import { MANAGED_BY } from '../runtime/render.js';

export const PORT_FORWARDER_NAME = 'port-forwarder-coordinator';

export interface CoordinatorEndpoint {
  host: string;
  port: number;
  /** How it was found, for messages. */
  via: 'load-balancer' | 'port-forward';
  /** Stops the port-forward (no-op for a load balancer). */
  close(): Promise<void>;
}

export interface DiscoveryOptions {
  /** Skip the load balancer and always port-forward. */
  forcePortForward?: boolean;
  /** How long to wait for the port-forwarder pod to become ready. Unset: 60 s (kubectl's --pod-running-timeout). */
  readyTimeoutMs?: number;
  /** Image that provides `kubectl-contrast port-forwarder` (default: our port-forwarder image). */
  image?: string;
  /** Lines about the wait for the port-forwarder pod: when it starts and whenever the pod's state changes. Unset: silent. */
  onProgress?: (line: string) => void;
  /** Stops the wait (Ctrl-C); the port-forwarder pod is removed like after a timeout. Unset: never. */
  signal?: AbortSignal;
}

export const DEFAULT_READY_TIMEOUT_MS = 60_000;

function userApiPort(svc: V1Service): number {
  const p = svc.spec?.ports?.find((x) => x.name === 'userapi') ?? svc.spec?.ports?.find((x) => x.port === USERAPI_PORT);
  return p?.port ?? USERAPI_PORT;
}

/** The load-balancer address of the Coordinator Service, if it has one. */
function loadBalancerAddress(svc: V1Service): { host: string; port: number } | undefined {
  const ingress = svc.status?.loadBalancer?.ingress?.find((i) => i.ip || i.hostname);
  if (!ingress || svc.spec?.type !== 'LoadBalancer') return undefined;
  return { host: (ingress.ip ?? ingress.hostname)!, port: userApiPort(svc) };
}

function portForwarderPod(namespace: string, image: string = INJECTED_IMAGES.portForwarder): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: PORT_FORWARDER_NAME,
      namespace,
      labels: { 'app.kubernetes.io/name': PORT_FORWARDER_NAME, ...MANAGED_BY },
    },
    spec: {
      // An ordinary pod on purpose: the API server's port-forward cannot enter a Kata VM.
      containers: [
        {
          name: 'relay',
          image,
          args: [
            'port-forwarder',
            '--listen-port',
            String(USERAPI_PORT),
            '--target',
            `${COORDINATOR_NAME}:${USERAPI_PORT}`,
          ],
          ports: [{ name: 'userapi', containerPort: USERAPI_PORT }],
          readinessProbe: { tcpSocket: { port: USERAPI_PORT }, periodSeconds: 2 },
          resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '64Mi' } },
          securityContext: {
            allowPrivilegeEscalation: false,
            runAsNonRoot: true,
            runAsUser: 65534,
            capabilities: { drop: ['ALL'] },
          },
        },
      ],
    },
  };
}

function podReady(p: V1Pod): boolean {
  return p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** The pod's state in kubectl's words: Running, Pending (ContainerCreating), Pending (Unschedulable: …). */
function podState(p: V1Pod | undefined): string {
  if (!p) return 'not created yet';
  const waiting = p.status?.containerStatuses?.[0]?.state?.waiting;
  const unscheduled = p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  const why = waiting
    ? `${waiting.reason ?? 'waiting'}${waiting.message ? `: ${waiting.message}` : ''}`
    : unscheduled
      ? `${unscheduled.reason ?? 'not scheduled'}${unscheduled.message ? `: ${unscheduled.message}` : ''}`
      : p.status?.phase === 'Pending' && !p.spec?.nodeName
        ? 'not scheduled on a node yet'
        : '';
  return `${p.status?.phase ?? 'unknown phase'}${why ? ` (${why})` : ''}${p.status?.phase === 'Running' ? ', not ready yet' : ''}`;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

async function waitForPod(
  core: CoreV1Api,
  namespace: string,
  timeoutMs: number,
  target: string,
  opts: DiscoveryOptions,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  const name = `${namespace}/${PORT_FORWARDER_NAME}`;
  let last: V1Pod | undefined;
  let reported: string | undefined;
  for (let first = true; ; first = false) {
    if (opts.signal?.aborted) throw new UserError(`interrupted while waiting for the port-forwarder pod ${name}`);
    try {
      last = await core.readNamespacedPod({ name: PORT_FORWARDER_NAME, namespace });
    } catch (err) {
      throw explainKubeError(err, `read pod ${name}`, target);
    }
    if (podReady(last)) return;
    const state = podState(last);
    if (state !== reported) {
      opts.onProgress?.(
        first
          ? `waiting up to ${Math.round(timeoutMs / 1000)} s for the port-forwarder pod ${name}: ${state}`
          : `port-forwarder pod ${name}: ${state}`,
      );
      reported = state;
    }
    if (Date.now() >= end) break;
    await sleep(Math.min(1000, Math.max(0, end - Date.now())), opts.signal);
  }
  throw new UserError(
    `the port-forwarder pod ${name} is not ready after ${Math.round(timeoutMs / 1000)} s (${podState(last)})`,
    {},
    {
      hint: 'check it with `kubectl describe pod`; raise --pod-running-timeout, give the Coordinator Service a load-balancer address, or pass -c HOST:PORT',
    },
  );
}

/** Remove the port-forwarder pod (best effort: the command's own error matters more). */
async function removePod(
  core: CoreV1Api,
  namespace: string,
  onProgress: ((line: string) => void) | undefined,
): Promise<void> {
  try {
    await core.deleteNamespacedPod({ name: PORT_FORWARDER_NAME, namespace, gracePeriodSeconds: 0 });
    onProgress?.(`removed the port-forwarder pod ${namespace}/${PORT_FORWARDER_NAME}`);
  } catch (err) {
    if (!isNotFound(err))
      onProgress?.(
        `could not remove the port-forwarder pod ${namespace}/${PORT_FORWARDER_NAME}: ${(err as Error).message}; delete it with kubectl delete pod`,
      );
  }
}

/** Listen on 127.0.0.1 (ephemeral port) and forward every connection to the pod's port. */
async function forwardLocal(
  cluster: Cluster,
  namespace: string,
  pod: string,
  port: number,
): Promise<{ port: number; server: Server }> {
  const forward = new PortForward(cluster.kc);
  const server = createServer((socket: Socket) => {
    forward.portForward(namespace, pod, [port], socket, null, socket).then(
      (ws) => {
        const close = () => {
          const w = typeof ws === 'function' ? ws() : ws;
          w?.close();
        };
        socket.once('close', close);
      },
      (err: unknown) => {
        socket.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  // Open connections keep the process alive; the idle listener does not.
  server.unref();
  return { port: (server.address() as { port: number }).port, server };
}

export async function findCoordinator(cluster: Cluster, opts: DiscoveryOptions = {}): Promise<CoordinatorEndpoint> {
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const ns = cluster.namespace;
  let svc: V1Service;
  try {
    svc = await core.readNamespacedService({ name: COORDINATOR_NAME, namespace: ns });
  } catch (err) {
    if (isNotFound(err)) {
      throw new UserError(
        `no Coordinator Service "${COORDINATOR_NAME}" in namespace ${ns} of ${cluster.describe}: pass -n with the Coordinator's namespace, deploy it (\`kubectl contrast coordinator apply\`), or give its address with -c HOST:PORT`,
      );
    }
    throw explainKubeError(err, `read Service ${ns}/${COORDINATOR_NAME}`, cluster.describe);
  }
  const lb = opts.forcePortForward ? undefined : loadBalancerAddress(svc);
  if (lb) return { ...lb, via: 'load-balancer', close: async () => undefined };

  let existed: boolean;
  try {
    await core.readNamespacedPod({ name: PORT_FORWARDER_NAME, namespace: ns });
    existed = true;
  } catch (err) {
    if (!isNotFound(err)) throw explainKubeError(err, `read pod ${ns}/${PORT_FORWARDER_NAME}`, cluster.describe);
    existed = false;
  }
  await applyObjects(cluster, [portForwarderPod(ns, opts.image) as never]);
  let local: { port: number; server: Server };
  try {
    await waitForPod(core, ns, opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS, cluster.describe, opts);
    local = await forwardLocal(cluster, ns, PORT_FORWARDER_NAME, USERAPI_PORT);
  } catch (err) {
    // A pod that never got ready (Pending, image pull errors) is of no use to the next run either.
    await removePod(core, ns, opts.onProgress);
    throw err;
  }
  return {
    host: '127.0.0.1',
    port: local.port,
    via: 'port-forward',
    close: async () => {
      await new Promise<void>((resolve) => local.server.close(() => resolve()));
      // A pod another run started (and may still use) stays; the one this run created goes.
      if (!existed) await removePod(core, ns, opts.onProgress);
    },
  };
}

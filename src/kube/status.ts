/**
 * `status`: what the API server can tell about a Contrast deployment, without attesting anything.
 *
 *  * The Coordinator: its StatefulSet and pods (ready = its readiness probe passes; each replica's
 *    state — ready, uninitialised, recovering-from-peer, waiting-for-recover — from the body of
 *    its readiness probe through the API server's pod proxy, where the caller may use it), the
 *    address of its Service, and — read from its ConfigMap state store — whether a manifest is set
 *    and which one. The store is integrity-protected only through the Coordinator's signature, which
 *    this view does not check: `verify` gives the attested answer.
 *  * Every confidential workload (runtime class contrast-cc…, of the kinds in src/workloads/kinds.ts):
 *    its policy hash and whether the active manifest lists it; pods that have not got past the
 *    Initializer, with the reason.
 */
import {
  CoreV1Api,
  type KubernetesObject,
  type V1ObjectMeta,
  type V1Pod,
  type V1PodTemplateSpec,
} from '@kubernetes/client-node';
import { History } from '../coordinator/history.js';
import { ConfigMapStore } from '../coordinator/store/configmap.js';
import { decodeInitDataAnnotation } from '../policy/initdata.js';
import { carriedAnnotation } from '../generate/carried-policies.js';
import { WORKLOAD_KINDS } from '../workloads/kinds.js';
import { isPlainObject } from '../util/values.js';
import { GENERIC_RUNTIME_CLASS } from '../platforms/platforms.js';
import { INITIALIZER_NAME } from '../transforms/initializer.js';
import { ANNOTATIONS, COORDINATOR_ROLE } from '../transforms/annotations.js';
import type { Manifest } from '../coordinator/manifest.js';
import type { Cluster } from './client.js';
import { explainKubeError } from './errors.js';
import { COORDINATOR_NAME, METRICS_PORT } from './coordinator-resources.js';
import { REPLICA_STATES, type ReplicaState } from '../coordinator/authority.js';

export interface PodProblem {
  pod: string;
  /** "initializer" while the Initializer has not succeeded; "pending" when not even started. */
  stage: 'initializer' | 'pending' | 'containers';
  reason: string;
}

/** One Coordinator replica: its pod, and its state as its readiness probe reports it. */
export interface ReplicaStatus {
  pod: string;
  ready: boolean;
  /** From the probe's body; `unknown` when it could not be read (the reason in `stateError`). */
  state: ReplicaState | 'not-running' | 'unknown';
  stateError?: string;
}

export interface CoordinatorStatus {
  namespace: string;
  name: string;
  replicas: number;
  readyPods: number;
  /** Every pod of the StatefulSet, by name. */
  replicaStates: ReplicaStatus[];
  /** LoadBalancer address, else the cluster IP, of Service "coordinator". */
  address?: string;
  manifestSet: boolean;
  /** sha256 of the active manifest, from the state store. */
  activeManifest?: string;
  /**
   * Manifest set and no replica holds the state: every replica whose state could be read waits
   * for `recover` (or, when none could be read, no pod is ready while one runs).
   */
  recoveryNeeded: boolean;
  storeError?: string;
}

export interface WorkloadStatus {
  namespace: string;
  kind: string;
  name: string;
  runtimeClassName: string;
  policyHash?: string;
  policyError?: string;
  /** yes / no / unknown (no active manifest in that namespace). */
  inManifest: 'yes' | 'no' | 'unknown';
  role?: string;
  pods: number;
  problems: PodProblem[];
}

export interface StatusReport {
  coordinators: CoordinatorStatus[];
  workloads: WorkloadStatus[];
}

interface TemplateOwner {
  kind: string;
  object: KubernetesObject;
  metadata: V1ObjectMeta;
  template: V1PodTemplateSpec | undefined;
}

function isConfidential(runtimeClassName: string | undefined): runtimeClassName is string {
  return (
    typeof runtimeClassName === 'string' &&
    (runtimeClassName === GENERIC_RUNTIME_CLASS || runtimeClassName.startsWith(`${GENERIC_RUNTIME_CLASS}-`))
  );
}

/** Why a pod has not got past the Initializer (or its containers), if it has not. */
export function podProblem(pod: V1Pod): PodProblem | undefined {
  const name = pod.metadata?.name ?? '?';
  const status = pod.status;
  if (status?.phase === 'Succeeded') return undefined;
  const init = status?.initContainerStatuses?.find((c) => c.name === INITIALIZER_NAME);
  const hasInit = pod.spec?.initContainers?.some((c) => c.name === INITIALIZER_NAME) ?? false;
  if (hasInit && !(init?.state?.terminated?.exitCode === 0)) {
    const s = init?.state;
    let reason: string;
    if (!init) {
      const cond = status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status !== 'True');
      reason = cond
        ? `not scheduled: ${cond.reason ?? ''}${cond.message ? ` (${cond.message})` : ''}`
        : `phase ${status?.phase ?? 'unknown'}`;
      return { pod: name, stage: 'pending', reason };
    }
    if (s?.waiting) reason = `${s.waiting.reason ?? 'waiting'}${s.waiting.message ? `: ${s.waiting.message}` : ''}`;
    else if (s?.running)
      reason = `running since ${s.running.startedAt ? new Date(s.running.startedAt).toISOString() : '?'} (waiting for the Coordinator?)`;
    else if (s?.terminated)
      reason = `exited ${s.terminated.exitCode}${s.terminated.reason ? ` (${s.terminated.reason})` : ''}${s.terminated.message ? `: ${s.terminated.message.trim()}` : ''}`;
    else reason = 'not started';
    const last = init.lastState?.terminated;
    if (last && last.exitCode !== 0)
      reason += `; last attempt exited ${last.exitCode}${last.message ? `: ${last.message.trim()}` : ''}`;
    if ((init.restartCount ?? 0) > 0) reason += `; ${init.restartCount} restarts`;
    return { pod: name, stage: 'initializer', reason };
  }
  const waiting = status?.containerStatuses?.find((c) => c.state?.waiting);
  if (waiting?.state?.waiting)
    return {
      pod: name,
      stage: 'containers',
      reason: `${waiting.name}: ${waiting.state.waiting.reason ?? 'waiting'}${waiting.state.waiting.message ? `: ${waiting.state.waiting.message}` : ''}`,
    };
  return undefined;
}

async function activeManifest(
  cluster: Cluster,
  namespace: string,
): Promise<{ hash?: string; manifest?: Manifest; error?: string }> {
  const history = new History(new ConfigMapStore({ kc: cluster.kc, namespace }));
  try {
    const latest = await history.getLatest();
    if (!latest) return {};
    const transition = await history.getTransition(latest.transitionHash);
    if (!transition) return { error: 'transitions/latest points at a missing transition' };
    const bytes = await history.getManifest(transition.manifestHash);
    if (!bytes) return { error: 'the active manifest is missing from the store' };
    return { hash: transition.manifestHash.toString('hex'), manifest: JSON.parse(bytes.toString('utf8')) as Manifest };
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (code === 403) return { error: "not allowed to read the Coordinator's state ConfigMaps (configmaps get)" };
    return { error: (err as Error).message };
  }
}

/** The pod template of a listed workload, at its kind's template path. */
function templateOf(object: KubernetesObject, path: readonly string[]): V1PodTemplateSpec | undefined {
  let node: unknown = object;
  for (const key of path) node = isPlainObject(node) ? node[key] : undefined;
  return isPlainObject(node) ? (node as V1PodTemplateSpec) : undefined;
}

function replicasOf(o: KubernetesObject): number {
  const spec = 'spec' in o ? o.spec : undefined;
  return isPlainObject(spec) && typeof spec.replicas === 'number' ? spec.replicas : 1;
}

function hasReference(o: KubernetesObject): boolean {
  return (o.metadata?.ownerReferences?.length ?? 0) > 0;
}

/** The body of a replica's readiness probe (src/coordinator/server.ts) as a state, or undefined. */
export function parseReplicaState(body: string): ReplicaState | undefined {
  const text = body.trim();
  return (REPLICA_STATES as readonly string[]).includes(text) ? (text as ReplicaState) : undefined;
}

/** Ask the replica's readiness probe through the API server (pods/proxy): it answers 503 with its state when not ready. */
async function replicaState(core: CoreV1Api, pod: V1Pod): Promise<ReplicaStatus> {
  const name = pod.metadata?.name ?? '';
  const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  if (pod.status?.phase !== 'Running') return { pod: name, ready, state: 'not-running' };
  let body: string;
  try {
    body = await core.connectGetNamespacedPodProxyWithPath({
      name: `${name}:${METRICS_PORT}`,
      namespace: pod.metadata?.namespace ?? '',
      path: 'probe/readiness',
    });
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    body = typeof e.body === 'string' ? e.body : '';
    if (!parseReplicaState(body))
      return {
        pod: name,
        ready,
        state: 'unknown',
        stateError:
          e.code === 403
            ? 'not allowed to reach the pod through the API server (pods/proxy get)'
            : `its readiness probe could not be read${e.code ? ` (HTTP ${e.code})` : ''}`,
      };
  }
  const state = parseReplicaState(body);
  return state
    ? { pod: name, ready, state }
    : { pod: name, ready, state: 'unknown', stateError: 'unexpected probe answer' };
}

export async function collectStatus(cluster: Cluster): Promise<StatusReport> {
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const ns = cluster.allNamespaces ? undefined : cluster.namespace;
  const where = ns ? `namespace ${ns}` : 'all namespaces';
  const list = async <T>(what: string, call: () => Promise<{ items: T[] }>): Promise<T[]> => {
    try {
      return (await call()).items;
    } catch (err) {
      throw explainKubeError(err, `list ${what} in ${where}`, cluster.describe);
    }
  };
  const [services, ...listed] = await Promise.all([
    list('services', () => (ns ? core.listNamespacedService({ namespace: ns }) : core.listServiceForAllNamespaces())),
    ...WORKLOAD_KINDS.map((k) =>
      list(`${k.kind.toLowerCase()}s`, () => cluster.objects.list(k.apiVersion, k.kind, ns)),
    ),
  ]);
  const byKind = WORKLOAD_KINDS.map((row, i) => ({ row, objects: listed[i]! }));
  const pods = byKind.find((k) => k.row.kind === 'Pod')!.objects as V1Pod[];

  // What users deploy: objects that a controller created (ReplicaSets, Jobs, Pods) count as their owner.
  const owners: TemplateOwner[] = byKind.flatMap(({ row, objects }) =>
    objects
      .filter((o) => !(row.createdByControllers && hasReference(o)))
      .map((o) => ({
        kind: row.kind,
        object: o,
        metadata: o.metadata ?? {},
        template: templateOf(o, row.templatePath),
      })),
  );

  // Pod → top-level owner (ReplicaSet → Deployment, Job → CronJob).
  const parentOf = new Map<string, string>();
  for (const { row, objects } of byKind) {
    if (!row.createdByControllers) continue;
    for (const o of objects) {
      const owner = o.metadata?.ownerReferences?.find((x) => x.controller);
      if (owner)
        parentOf.set(`${o.metadata?.namespace}/${row.kind}/${o.metadata?.name}`, `${owner.kind}/${owner.name}`);
    }
  }
  const podsOf = new Map<string, V1Pod[]>();
  for (const p of pods) {
    const podNs = p.metadata?.namespace ?? '';
    const owner = p.metadata?.ownerReferences?.find((x) => x.controller);
    let ref = owner ? `${owner.kind}/${owner.name}` : `Pod/${p.metadata?.name}`;
    for (let i = 0; owner && i < 3; i++) {
      const up = parentOf.get(`${podNs}/${ref}`);
      if (!up) break;
      ref = up;
    }
    const k = `${podNs}/${ref}`;
    podsOf.set(k, [...(podsOf.get(k) ?? []), p]);
  }

  // Coordinators: StatefulSets whose pods carry the Coordinator role.
  const coordinators: CoordinatorStatus[] = [];
  const manifests = new Map<string, Manifest | undefined>();
  for (const s of owners) {
    const role = s.template?.metadata?.annotations?.[ANNOTATIONS.podRole];
    if (s.kind !== 'StatefulSet' || role !== COORDINATOR_ROLE) continue;
    const namespace = s.metadata.namespace ?? '';
    const mine = podsOf.get(`${namespace}/StatefulSet/${s.metadata.name}`) ?? [];
    const readyPods = mine.filter((p) =>
      p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    ).length;
    const svc = services.find((x) => x.metadata?.namespace === namespace && x.metadata?.name === COORDINATOR_NAME);
    const ingress = svc?.status?.loadBalancer?.ingress?.[0];
    const address =
      ingress?.ip ??
      ingress?.hostname ??
      (svc?.spec?.clusterIP && svc.spec.clusterIP !== 'None' ? svc.spec.clusterIP : undefined);
    const active = await activeManifest(cluster, namespace);
    manifests.set(namespace, active.manifest);
    const replicaStates = (await Promise.all(mine.map((p) => replicaState(core, p)))).sort((x, y) =>
      x.pod.localeCompare(y.pod),
    );
    const known = replicaStates.filter((r) => r.state !== 'unknown' && r.state !== 'not-running');
    coordinators.push({
      namespace,
      name: s.metadata.name ?? '',
      replicas: replicasOf(s.object),
      readyPods,
      replicaStates,
      ...(address ? { address } : {}),
      manifestSet: active.hash !== undefined,
      ...(active.hash ? { activeManifest: active.hash } : {}),
      recoveryNeeded:
        active.hash !== undefined &&
        mine.length > 0 &&
        readyPods === 0 &&
        (known.length > 0
          ? known.every((r) => r.state === 'waiting-for-recover')
          : mine.some((p) => p.status?.phase === 'Running')),
      ...(active.error ? { storeError: active.error } : {}),
    });
  }

  const workloads: WorkloadStatus[] = [];
  for (const o of owners) {
    const rc = o.template?.spec?.runtimeClassName;
    if (!isConfidential(rc)) continue;
    const namespace = o.metadata.namespace ?? '';
    const annotation = carriedAnnotation(o.template?.metadata);
    let policyHash: string | undefined;
    let policyError: string | undefined;
    if (annotation === undefined) policyError = 'no policy annotation: run `kubectl contrast generate` on it';
    else {
      try {
        policyHash = decodeInitDataAnnotation(annotation).hash;
      } catch (err) {
        policyError = `unreadable policy annotation: ${(err as Error).message}`;
      }
    }
    const manifest = manifests.get(namespace);
    const entry = policyHash && manifest ? manifest.Policies?.[policyHash] : undefined;
    const mine = podsOf.get(`${namespace}/${o.kind}/${o.metadata.name}`) ?? [];
    workloads.push({
      namespace,
      kind: o.kind,
      name: o.metadata.name ?? '',
      runtimeClassName: rc,
      ...(policyHash ? { policyHash } : {}),
      ...(policyError ? { policyError } : {}),
      inManifest: manifest ? (entry ? 'yes' : 'no') : 'unknown',
      ...(entry?.Role ? { role: entry.Role } : {}),
      pods: mine.length,
      problems: mine.map(podProblem).filter((p): p is PodProblem => p !== undefined),
    });
  }
  workloads.sort(
    (x, y) => x.namespace.localeCompare(y.namespace) || x.kind.localeCompare(y.kind) || x.name.localeCompare(y.name),
  );
  coordinators.sort((x, y) => x.namespace.localeCompare(y.namespace));
  return { coordinators, workloads };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3)))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

export function formatStatusTable(report: StatusReport, allNamespaces: boolean): string {
  const out: string[] = [];
  const nsCol = (n: string) => (allNamespaces ? [n] : []);
  if (report.coordinators.length === 0)
    out.push('No Coordinator found (deploy one with `kubectl contrast coordinator apply`).');
  else {
    out.push(
      table([
        [
          ...(allNamespaces ? ['NAMESPACE'] : []),
          'COORDINATOR',
          'READY',
          'ADDRESS',
          'MANIFEST',
          'RECOVERY',
          'REPLICAS',
        ],
        ...report.coordinators.map((c) => [
          ...nsCol(c.namespace),
          c.name,
          `${c.readyPods}/${c.replicas}`,
          c.address ?? '<none>',
          c.storeError ? `? (${c.storeError})` : c.activeManifest ? c.activeManifest.slice(0, 16) : 'not set',
          c.recoveryNeeded ? 'needed (`kubectl contrast recover`)' : '-',
          c.replicaStates.length === 0
            ? '-'
            : c.replicaStates
                .map((r) => `${r.pod}: ${r.state === 'unknown' ? (r.ready ? 'ready' : '?') : r.state}`)
                .join(', '),
        ]),
      ]),
    );
  }
  out.push('');
  if (report.workloads.length === 0) out.push('No confidential workloads found.');
  else {
    out.push(
      table([
        [...(allNamespaces ? ['NAMESPACE'] : []), 'WORKLOAD', 'POLICY', 'IN MANIFEST', 'PODS', 'PROBLEMS'],
        ...report.workloads.map((w) => [
          ...nsCol(w.namespace),
          `${w.kind.toLowerCase()}/${w.name}`,
          w.policyHash ? w.policyHash.slice(0, 16) : `! ${w.policyError ?? ''}`,
          w.inManifest === 'yes' && w.role ? `yes (${w.role})` : w.inManifest,
          String(w.pods),
          w.problems.length === 0
            ? '-'
            : w.problems
                .map(
                  (p) =>
                    `${p.pod}: ${p.stage === 'initializer' ? 'stuck in Initializer: ' : p.stage === 'pending' ? 'pending: ' : ''}${p.reason}`,
                )
                .join('; '),
        ]),
      ]),
    );
  }
  return `${out.join('\n')}\n`;
}

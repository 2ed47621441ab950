/**
 * The canonical Coordinator deployment: a StatefulSet of `replicas` Coordinators (marked as the
 * Coordinator with the pod-role annotation, so `generate` gives it no Initializer and records its
 * policy with Role "coordinator"), spread over nodes by a preferred pod anti-affinity, its
 * Services (the headless `coordinator-peers` lists the ready replicas for peer recovery,
 * src/coordinator/peers.ts), and a ServiceAccount with the least privilege that the ConfigMap
 * state store needs. The pod template does not depend on the number of replicas, so neither
 * does the Coordinator's policy.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { GENERIC_RUNTIME_CLASS, type Platform } from '../platforms/platforms.js';
import { INJECTED_IMAGES, replaceImage, type ImageReplacements } from '../platforms/images.js';
import { ANNOTATIONS, COORDINATOR_ROLE } from '../transforms/annotations.js';
import { MANAGED_BY } from '../runtime/render.js';
import { PEERS_SERVICE } from '../coordinator/peers.js';

export const COORDINATOR_NAME = 'coordinator';
const COORDINATOR_READY_SERVICE = 'coordinator-ready';
const COORDINATOR_SELECTOR = { 'app.kubernetes.io/name': COORDINATOR_NAME } as const;
export const USERAPI_PORT = 1313;
export const MESHAPI_PORT = 7777;
export const METRICS_PORT = 9102;

/**
 * The AMD KDS and Intel PCS caches (src/coordinator/collateral.ts) on a memory emptyDir: a
 * tmpfs inside the pod's VM (Kata's ephemeral storage), so collateral survives a restart of
 * the container within the pod, the host can neither read nor change it, and it goes with the
 * pod. Everything read from it is verified again (signatures to the pinned roots, dates).
 */
export const COLLATERAL_CACHE_VOLUME = 'collateral-cache';
export const COLLATERAL_CACHE_PATH = '/var/cache/kubectl-contrast';

/** Verbs the ConfigMap store uses (src/coordinator/store/configmap.ts); nothing else. */
const STORE_CONFIGMAP_VERBS = ['get', 'create', 'update', 'watch'] as const;

export type ServiceType = 'LoadBalancer' | 'ClusterIP' | 'NodePort';

/**
 * Replicas when nothing says otherwise: `render` cannot see the cluster and writes this many;
 * `apply` writes at most this many, one per schedulable node (src/cli/coordinator-deploy.ts).
 */
export const DEFAULT_REPLICAS = 3;

export interface CoordinatorRenderOptions {
  namespace: string;
  /** undefined: the generic `contrast-cc` (generate picks the platform). */
  platform?: Platform;
  serviceType?: ServiceType;
  imageReplacements?: ImageReplacements;
  /** Coordinator replicas (default DEFAULT_REPLICAS). */
  replicas?: number;
}

export function renderCoordinator(opts: CoordinatorRenderOptions): KubernetesObject[] {
  const namespace = opts.namespace;
  const meta = (name: string, extra: Record<string, string> = {}) => ({
    name,
    namespace,
    labels: { ...COORDINATOR_SELECTOR, ...extra, ...MANAGED_BY },
  });
  const runtimeClassName = opts.platform ? `${GENERIC_RUNTIME_CLASS}-${opts.platform.id}` : GENERIC_RUNTIME_CLASS;
  const probe = (path: string, extra: Record<string, number>) => ({ httpGet: { path, port: 'metrics' }, ...extra });
  // The same pod template whether or not a platform is given: the policy must not depend on
  // how the Coordinator was rendered (the issuer is detected inside the VM).
  const env: { name: string; value?: string; valueFrom?: unknown }[] = [
    { name: 'CONTRAST_STATE_STORE', value: 'configmap' },
    { name: 'CONTRAST_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'CONTRAST_SNP_CACHE_DIR', value: `${COLLATERAL_CACHE_PATH}/amd` },
    { name: 'CONTRAST_TDX_CACHE_DIR', value: `${COLLATERAL_CACHE_PATH}/intel` },
  ];

  const serviceAccount = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(COORDINATOR_NAME) };
  const role = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: meta(COORDINATOR_NAME),
    rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: [...STORE_CONFIGMAP_VERBS] }],
  };
  const roleBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: meta(COORDINATOR_NAME),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: COORDINATOR_NAME },
    subjects: [{ kind: 'ServiceAccount', name: COORDINATOR_NAME, namespace }],
  };
  const statefulSet = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: meta(COORDINATOR_NAME),
    spec: {
      serviceName: COORDINATOR_NAME,
      replicas: opts.replicas ?? DEFAULT_REPLICAS,
      selector: { matchLabels: { ...COORDINATOR_SELECTOR } },
      template: {
        metadata: {
          labels: { ...COORDINATOR_SELECTOR },
          annotations: { [ANNOTATIONS.podRole]: COORDINATOR_ROLE },
        },
        spec: {
          runtimeClassName,
          serviceAccountName: COORDINATOR_NAME,
          // Preferred, not required: one node's loss takes at most one replica where there are
          // enough nodes, and a single-node cluster (a playground) still schedules them all.
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 100,
                  podAffinityTerm: {
                    labelSelector: { matchLabels: { ...COORDINATOR_SELECTOR } },
                    topologyKey: 'kubernetes.io/hostname',
                  },
                },
              ],
            },
          },
          containers: [
            {
              name: COORDINATOR_NAME,
              image: replaceImage(INJECTED_IMAGES.coordinator, opts.imageReplacements ?? new Map()),
              env,
              ports: [
                { name: 'userapi', containerPort: USERAPI_PORT },
                { name: 'meshapi', containerPort: MESHAPI_PORT },
                { name: 'metrics', containerPort: METRICS_PORT },
              ],
              startupProbe: probe('/probe/startup', { periodSeconds: 2, failureThreshold: 60 }),
              livenessProbe: probe('/probe/liveness', { periodSeconds: 10 }),
              readinessProbe: probe('/probe/readiness', { periodSeconds: 5 }),
              resources: { requests: { memory: '128Mi' }, limits: { memory: '256Mi' } },
              volumeMounts: [{ name: COLLATERAL_CACHE_VOLUME, mountPath: COLLATERAL_CACHE_PATH }],
            },
          ],
          volumes: [{ name: COLLATERAL_CACHE_VOLUME, emptyDir: { medium: 'Memory' } }],
        },
      },
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(COORDINATOR_NAME),
    spec: {
      type: opts.serviceType ?? 'LoadBalancer',
      // Users reach a Coordinator that is not ready yet: `set` is what makes it ready, and
      // `recover` what makes a restarted one ready (measured: without it `set` never connects).
      publishNotReadyAddresses: true,
      selector: { ...COORDINATOR_SELECTOR },
      ports: [
        { name: 'userapi', port: USERAPI_PORT, targetPort: 'userapi' },
        { name: 'meshapi', port: MESHAPI_PORT, targetPort: 'meshapi' },
      ],
    },
  };
  // What the Initializers dial: only ready Coordinators, i.e. ones that hold a manifest.
  const readyService = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(COORDINATOR_READY_SERVICE),
    spec: {
      type: 'ClusterIP',
      publishNotReadyAddresses: false,
      selector: { ...COORDINATOR_SELECTOR },
      ports: [
        { name: 'meshapi', port: MESHAPI_PORT, targetPort: 'meshapi' },
        { name: 'userapi', port: USERAPI_PORT, targetPort: 'userapi' },
      ],
    },
  };
  // What the replicas find each other through (DNS: one address per ready replica).
  const peersService = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(PEERS_SERVICE),
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: false,
      selector: { ...COORDINATOR_SELECTOR },
      ports: [{ name: 'meshapi', port: MESHAPI_PORT, targetPort: 'meshapi' }],
    },
  };
  return [serviceAccount, role, roleBinding, statefulSet, service, readyService, peersService] as KubernetesObject[];
}

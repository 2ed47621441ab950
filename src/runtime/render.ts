/**
 * The cluster side of a platform: its RuntimeClass (versioned name = runtime handler, with the
 * pod overhead of the Kata VM) and the node-installer DaemonSet that puts that runtime onto every
 * node. Rendered as plain objects; `kubectl contrast runtime render|apply` prints or applies them.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { runtimeHandler, type Platform } from '../platforms/platforms.js';
import { IMAGE_EXECUTABLE, INJECTED_IMAGES, replaceImage, type ImageReplacements } from '../platforms/images.js';
import { DEFAULT_CONTAINERD_CONFIG, DEFAULT_RUNTIME_DIR, runtimePaths, type RuntimePaths } from './paths.js';

export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'kubectl-contrast' } as const;
const RUNTIME_HANDLER_LABEL = 'contrast.edgeless.systems/runtime-handler';

/**
 * What a Kata VM costs on top of its containers: the guest kernel and agent, the VMM, and the
 * memory the hypervisor reserves. Scheduling counts it, so nodes are not overcommitted.
 */
function podOverhead(platform: Platform): { memory: string; cpu: string } {
  // The simulation runs containers with runc, without a VM: only the wrapper's hook costs.
  if (platform.tee === 'insecure-sim') return { memory: '32Mi', cpu: '10m' };
  return platform.gpu ? { memory: '2304Mi', cpu: '500m' } : { memory: '1152Mi', cpu: '250m' };
}

export interface RuntimeRenderOptions {
  namespace?: string;
  imageReplacements?: ImageReplacements;
  /** Node paths: where the runtime is installed, and containerd's configuration file. */
  runtimeDir?: string;
  containerdConfig?: string;
}

function renderRuntimeClass(platform: Platform): KubernetesObject {
  const handler = runtimeHandler(platform);
  return {
    apiVersion: 'node.k8s.io/v1',
    kind: 'RuntimeClass',
    metadata: { name: handler, labels: { ...MANAGED_BY, [RUNTIME_HANDLER_LABEL]: handler } },
    handler,
    overhead: { podFixed: podOverhead(platform) },
  } as KubernetesObject;
}

function nodeInstallerName(platform: Platform): string {
  return `${runtimeHandler(platform)}-nodeinstaller`;
}

/** Keeps the DaemonSet pod (and so the installed runtime's owner) alive after installing. */
function pauseContainer(replacements: ImageReplacements): Record<string, unknown> {
  return {
    name: 'pause',
    image: replaceImage(INJECTED_IMAGES.pause, replacements),
    resources: { requests: { cpu: '1m', memory: '8Mi' }, limits: { memory: '16Mi' } },
  };
}

/**
 * The simulated platform's attestation device (src/runtime/sim-device.ts): it holds the node's
 * simulated root key and signs each pod's reports with that pod's host data. It sees only its
 * own two directories, mounted at the node's paths so the paths it hands the wrapper are the
 * node's. Workload containers get their pod's device directory, never these.
 */
function simDeviceContainer(paths: RuntimePaths, replacements: ImageReplacements): Record<string, unknown> {
  return {
    name: 'sim-device',
    image: replaceImage(INJECTED_IMAGES.nodeInstaller, replacements),
    command: [IMAGE_EXECUTABLE, 'runtime', 'sim-device', '--state-dir', paths.deviceState, '--root-dir', paths.simRoot],
    resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    volumeMounts: [
      { name: 'sim-device-state', mountPath: paths.deviceState },
      { name: 'sim-root', mountPath: paths.simRoot },
    ],
  };
}

function simDeviceVolumes(paths: RuntimePaths): Record<string, unknown>[] {
  return [
    { name: 'sim-device-state', hostPath: { path: paths.deviceState, type: 'DirectoryOrCreate' } },
    { name: 'sim-root', hostPath: { path: paths.simRoot, type: 'DirectoryOrCreate' } },
  ];
}

function renderNodeInstaller(platform: Platform, opts: RuntimeRenderOptions = {}): KubernetesObject {
  const handler = runtimeHandler(platform);
  const name = nodeInstallerName(platform);
  const labels = {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/component': 'node-installer',
    [RUNTIME_HANDLER_LABEL]: handler,
  };
  const replacements = opts.imageReplacements ?? new Map<string, string>();
  const runtimeDir = opts.runtimeDir ?? DEFAULT_RUNTIME_DIR;
  const paths = runtimePaths(runtimeDir, handler);
  const sim = platform.tee === 'insecure-sim';
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name, ...(opts.namespace ? { namespace: opts.namespace } : {}), labels: { ...labels, ...MANAGED_BY } },
    spec: {
      selector: { matchLabels: { 'app.kubernetes.io/name': name } },
      updateStrategy: { type: 'RollingUpdate' },
      template: {
        metadata: { labels },
        spec: {
          // The installer writes the VM image, the Kata shim and the containerd configuration
          // onto the host and restarts containerd; it needs the host's filesystem and PID space.
          hostPID: true,
          tolerations: [{ operator: 'Exists' }],
          initContainers: [
            {
              name: 'installer',
              image: replaceImage(INJECTED_IMAGES.nodeInstaller, replacements),
              args: [platform.id, handler],
              env: [
                { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                { name: 'CONTRAST_RUNTIME_DIR', value: runtimeDir },
                { name: 'CONTRAST_CONTAINERD_CONFIG', value: opts.containerdConfig ?? DEFAULT_CONTAINERD_CONFIG },
              ],
              securityContext: { privileged: true },
              volumeMounts: [{ name: 'host', mountPath: '/host' }],
              resources: { requests: { cpu: '50m', memory: '64Mi' } },
            },
          ],
          containers: [sim ? simDeviceContainer(paths, replacements) : pauseContainer(replacements)],
          volumes: [
            { name: 'host', hostPath: { path: '/', type: 'Directory' } },
            ...(sim ? simDeviceVolumes(paths) : []),
          ],
        },
      },
    },
  } as KubernetesObject;
}

export function renderRuntime(platform: Platform, opts: RuntimeRenderOptions = {}): KubernetesObject[] {
  return [renderRuntimeClass(platform), renderNodeInstaller(platform, opts)];
}

/**
 * The container's place in the sandbox: its annotations (identity, sandbox name and
 * namespace), Linux namespaces, root filesystem and guest-pulled image; and the pod-wide parts
 * of the policy data (guest paths, sandbox storages, request defaults).
 */
import { escapeRegex, toPattern } from '../values.js';
import type { ContainerTemplate, PolicySettings } from '../settings.js';
import type { ContainerPolicy, PolicyData } from '../types.js';
import { INITDATA_ANNOTATION } from '../initdata.js';
import type { ContainerInput, PodContext } from './context.js';

export function annotationsPolicy(
  pod: PodContext,
  ci: ContainerInput,
  template: ContainerTemplate,
  name: string,
): Record<string, string> {
  const annotations: Record<string, string> = {};
  // The pod's own annotations, exactly: the value itself unless it would read as a pattern (then
  // an anchored regex of it). A regex costs the agent's engine and ours a compilation per request.
  for (const [k, v] of Object.entries(pod.input.podMetadata.annotations ?? {})) {
    if (k === INITDATA_ANNOTATION) continue;
    annotations[k] = toPattern([v], pod.dyn);
  }
  annotations[INITDATA_ANNOTATION] = '$(any)';
  for (const [k, v] of Object.entries(template.annotations)) annotations[k] = v;
  annotations['io.kubernetes.cri.sandbox-name'] = `^${pod.dyn.podNameRegex}$`;
  annotations['io.kubernetes.cri.sandbox-namespace'] = pod.ns ?? '$(dns)';
  if (!ci.pause) {
    annotations['io.kubernetes.cri.container-name'] = name;
    annotations['io.kubernetes.container.terminationMessagePath'] = '/$(any)';
    annotations['io.kubernetes.container.terminationMessagePolicy'] = '^(File|FallbackToLogsOnError)$';
  }
  return Object.fromEntries(Object.entries(annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** ipc, uts and mount; the pause container of a hostNetwork pod has no uts namespace of its own. */
export function namespacesPolicy(pod: PodContext, ci: ContainerInput): { Type: string; Path: string }[] {
  return ['ipc', 'uts', 'mount']
    .filter((t) => !(ci.pause && t === 'uts' && pod.spec.hostNetwork === true))
    .map((Type) => ({ Type, Path: '' }));
}

/** The guest-pull storage source: `pause` for the pause container, else the image pinned by digest. */
export function imageSource(pod: PodContext, ci: ContainerInput, imageRef: string): string {
  if (ci.pause) return pod.s.pauseImageSource;
  const digest = ci.image.manifestDigest;
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) pod.fail(`image ${imageRef} has no manifest digest`, `${ci.path}.image`);
  return `$(any)@${digest}`;
}

export function rootPath(pod: PodContext): string {
  return pod.s.rootfsPath;
}

/** `$(sfpath)` inside a regex: any shared-files path. */
function sharedPathsRegex(pod: PodContext): string {
  return `(?:${pod.s.sharedFilesPaths.map(escapeRegex).join('|')})`;
}

export function podWidePolicy(pod: PodContext): Omit<PolicyData, 'containers'> {
  const s = pod.s;
  const rd = s.requestDefaults;
  const svc = pod.spec.enableServiceLinks === false ? 'KUBERNETES' : s.patterns.serviceName;
  const envRegex = rd.allowEnvRegex.map((r) =>
    r
      .split('$(svc_name)')
      .join(svc)
      .split('$(ip_p)')
      .join(s.patterns.port)
      .split('$(ipv4_a)')
      .join(s.patterns.ipv4)
      .split('$(dns_label)')
      .join(s.patterns.dnsLabel),
  );
  const sf = (r: string) => r.split('$(sfpath)').join(sharedPathsRegex(pod));
  return {
    common: {
      sfpaths: [...s.sharedFilesPaths],
      bpath: s.blockStoragePath,
      cgroup_extras: [...s.cgroupMountExtrasAllowed],
    },
    sandbox: { storages: s.sandboxStorages.map((x) => ({ ...x })) },
    devices: {
      vfio: {
        device_path: s.vfio.devicePath,
        device_type: s.vfio.deviceType,
        cdi_prefix: s.vfio.cdiAnnotationPrefix,
        cdi_value_regex: s.vfio.cdiValueRegex,
        pci_option_regex: s.vfio.pciOptionRegex,
      },
    },
    request_defaults: {
      CreateContainerRequest: { allow_env_regex: envRegex, service_links: pod.spec.enableServiceLinks !== false },
      CopyFileRequest: { regex: rd.copyFileRegex.map(sf), symlink_regex: rd.copyFileSymlinkRegex.map(sf) },
      ExecProcessRequest: { allowed_commands: rd.execAllowedCommands, regex: rd.execRegex },
      UpdateInterfaceRequest: {
        allow_raw_flags: rd.updateInterface.allowRawFlags,
        forbidden_names: rd.updateInterface.forbiddenNames,
        forbidden_hw_addrs: rd.updateInterface.forbiddenHwAddrs,
      },
      UpdateRoutesRequest: {
        forbidden_device_names: rd.updateRoutes.forbiddenDeviceNames,
        forbidden_source_regex: rd.updateRoutes.forbiddenSourceRegex,
      },
      AddARPNeighborsRequest: {
        forbidden_device_names: rd.addArpNeighbors.forbiddenDeviceNames,
        forbidden_cidrs_regex: rd.addArpNeighbors.forbiddenCidrsRegex,
        allowed_states: rd.addArpNeighbors.allowedStates,
      },
      CloseStdinRequest: rd.closeStdin,
      ReadStreamRequest: rd.readStream,
      WriteStreamRequest: rd.writeStream,
      UpdateEphemeralMountsRequest: rd.updateEphemeralMounts,
      GetDiagnosticDataRequest: rd.getDiagnosticData,
    },
  };
}

/** The network namespace every container of the sample pod joins (the pause container's). */
export const SAMPLE_NETNS = '/var/run/netns/cni-11111111-2222-3333-4444-555555555555';

/**
 * Annotations as containerd and the Kata shim set them: every policy annotation with a value
 * that fits it, plus the informational `io.kubernetes.cri.*` ones the policy does not pin.
 */
export function annotationsSample(
  policy: ContainerPolicy,
  pause: boolean,
  podName: string,
  namespace: string,
  fill: (p: string) => string,
  sampleValue: (p: string) => string,
): Record<string, string> {
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(policy.OCI.Annotations)) {
    if (k === INITDATA_ANNOTATION || !k.startsWith('io.k')) continue;
    annotations[k] = sampleValue(fill(v));
  }
  annotations['io.kubernetes.cri.sandbox-name'] = podName;
  annotations['io.kubernetes.cri.sandbox-namespace'] = namespace;
  annotations['io.kubernetes.cri.sandbox-uid'] = '0d1c2b3a-4f5e-4d6c-8b7a-998877665544';
  annotations['io.kubernetes.cri.sandbox-cpu-shares'] = '2';
  if (!pause) {
    annotations['io.kubernetes.container.terminationMessagePath'] = '/dev/termination-log';
    annotations['io.kubernetes.container.terminationMessagePolicy'] = 'File';
  }
  return annotations;
}

/** Namespaces as containerd sends them: the policy's, plus the pod's network namespace. */
export function namespacesSample(policy: ContainerPolicy): { Type: string; Path: string }[] {
  return [...policy.OCI.Linux.Namespaces.map((n) => ({ ...n })), { Type: 'network', Path: SAMPLE_NETNS }];
}

export function createSandboxSample(s: PolicySettings, podName: string, sandboxId: string): Record<string, unknown> {
  return {
    hostname: podName,
    dns: [],
    storages: s.sandboxStorages,
    sandbox_pidns: false,
    sandbox_id: sandboxId,
    guest_hook_path: '',
    kernel_modules: [],
  };
}

/**
 * `policy check`: synthesize the requests the Kata runtime sends for a pod (CreateSandbox,
 * CreateContainer for the pause container and every container, ExecProcess for every probe
 * and hook command) and evaluate them against a policy.
 *
 * The requests are built from the pod spec with concrete sample values (a generated pod
 * name, pod IP, ids), independently of the regexes in the policy, so a pattern that would not
 * match what the runtime sends shows up as a denial.
 */
import { createHash } from 'node:crypto';
import { buildPod, type BuiltPod, type PodPolicyInput } from './data.js';
import { PolicyEngine } from './engine.js';
import type { ContainerPolicy } from './types.js';
import { devicesSample } from './pod/devices.js';
import { serviceEnvSample } from './pod/env.js';
import { mountsSample } from './pod/mounts.js';
import { annotationsSample, createSandboxSample, namespacesSample } from './pod/sandbox.js';
import { sampleRegex } from './regex-sample.js';

export interface PolicyCheckEntry {
  request: string;
  /** Container name; "" for the pause container and sandbox requests. */
  container: string;
  description: string;
  allowed: boolean;
  reason: string | null;
  failures: string[];
}

export interface PolicyCheckReport {
  allowed: boolean;
  entries: PolicyCheckEntry[];
}

function id(seed: string): string {
  return createHash('sha256').update(seed).digest('hex');
}

const TYPED_SAMPLES: Record<string, string> = {
  '$(uuid)': '0d1c2b3a-4f5e-4d6c-8b7a-998877665544',
  '$(random16)': '0123456789abcdef',
  '$(dns)': 'node-1',
  '$(ip)': '10.244.1.23',
  '$(ips)': '10.244.1.23',
  '$(digits)': '1',
  '$(any)': 'x',
};

/** One concrete value for a policy pattern (template or `^`-regex) with run-time ids filled in. */
export function sampleValue(pattern: string): string {
  if (pattern.startsWith('^')) return sampleRegex(pattern);
  if (!pattern.includes('$(')) return pattern; // most values are literal: no placeholder to fill
  let out = pattern;
  for (const [ph, v] of Object.entries(TYPED_SAMPLES)) out = out.split(ph).join(v);
  return out;
}

export interface SynthesizedRequest {
  request: string;
  container: string;
  description: string;
  body: unknown;
}

/**
 * The requests the runtime sends to start this pod and run its probes, in order. `pod` is the
 * built policy data of `input`, for callers that have it already. Each part of a request comes
 * from the module of its concern (src/policy/pod/*), next to the policy part it must fit.
 */
export function synthesizeRequests(input: PodPolicyInput, pod: BuiltPod = buildPod(input)): SynthesizedRequest[] {
  const { data, samples } = pod;
  const s = input.settings;
  const sandboxId = id(`sandbox/${samples.podName}`);
  const fillFor = (containerId: string) => (p: string) =>
    !p.includes('$(')
      ? p
      : p
          .split('$(sfpath)')
          .join(s.sharedFilesPaths[0])
          .split('$(bundle-id)')
          .join(containerId)
          .split('$(sandbox-id)')
          .join(sandboxId)
          .split('$(sandbox-name)')
          .join(samples.podName)
          .split('$(sandbox-namespace)')
          .join(samples.namespace);
  const out: SynthesizedRequest[] = [
    {
      request: 'CreateSandboxRequest',
      container: '',
      description: 'create the sandbox',
      body: createSandboxSample(s, samples.podName, sandboxId),
    },
  ];
  data.containers.forEach((c: ContainerPolicy, index) => {
    const pause = index === 0;
    const containerId = pause ? sandboxId : id(`container/${samples.podName}/${c.name}`);
    const fill = fillFor(containerId);
    const sample = samples.containers[index];
    const root = fill(c.OCI.Root.Path);
    const dev = devicesSample(s, c);
    const annotations = {
      ...annotationsSample(c, pause, samples.podName, samples.namespace, fill, sampleValue),
      ...dev.annotations,
    };
    const imageRef = pause ? s.pauseImageSource : pinnedReference(input, c.image);
    const volumes = mountsSample(s, c.OCI.Mounts, c.storages, sample.blockMounts, {
      containerId,
      fill: (p) => sampleValue(fill(p)),
    });
    const body = {
      container_id: containerId,
      exec_id: containerId,
      string_user: null,
      devices: dev.devices,
      storages: [
        {
          driver: 'image_guest_pull',
          driver_options: [`image_guest_pull=${JSON.stringify({ metadata: annotations })}`],
          source: imageRef,
          fstype: 'overlay',
          options: [],
          mount_point: root,
          fs_group: null,
          shared: false,
        },
        ...volumes.storages,
      ],
      OCI: {
        Version: s.ociVersion,
        Process: {
          Terminal: c.OCI.Process.Terminal,
          ConsoleSize: null,
          User: { ...c.OCI.Process.User, Username: '' },
          Args: sample.args,
          Env: pause
            ? sample.env
            : [
                ...sample.env,
                ...serviceEnvSample(sample.containerEnv, data.request_defaults.CreateContainerRequest.service_links),
              ],
          Cwd: c.OCI.Process.Cwd,
          Capabilities: c.OCI.Process.Capabilities,
          Rlimits: [],
          NoNewPrivileges: c.OCI.Process.NoNewPrivileges,
          ApparmorProfile: '',
          OOMScoreAdj: pause ? -998 : 1000,
          SelinuxLabel: '',
        },
        Root: { Path: root, Readonly: c.OCI.Root.Readonly },
        Hostname: samples.podName,
        Mounts: volumes.mounts,
        Hooks: null,
        Annotations: annotations,
        Linux: {
          UIDMappings: [],
          GIDMappings: [],
          Sysctl: c.OCI.Linux.Sysctl,
          Resources: {
            Devices: [],
            Memory: null,
            CPU: null,
            Pids: null,
            BlockIO: null,
            HugepageLimits: [],
            Network: null,
          },
          CgroupsPath: `/kubepods/besteffort/pod0d1c2b3a/${containerId}`,
          Namespaces: namespacesSample(c),
          Devices: dev.linuxDevices,
          Seccomp: null,
          RootfsPropagation: '',
          MaskedPaths: c.OCI.Linux.MaskedPaths,
          ReadonlyPaths: c.OCI.Linux.ReadonlyPaths,
          MountLabel: '',
          IntelRdt: null,
        },
        Solaris: null,
        Windows: null,
      },
      sandbox_pidns: c.sandbox_pidns,
      shared_mounts: [],
      stdin_port: 0,
      stdout_port: 0,
      stderr_port: 0,
    };
    out.push({
      request: 'CreateContainerRequest',
      container: c.name,
      description: pause ? 'create the pause container' : `create container ${c.name}`,
      body,
    });
    c.exec_commands.forEach((cmd, n) => {
      out.push({
        request: 'ExecProcessRequest',
        container: c.name,
        description: `exec ${JSON.stringify(cmd)} in ${c.name} (probe or hook)`,
        body: {
          container_id: containerId,
          exec_id: id(`exec/${containerId}/${n}`),
          string_user: null,
          process: { ...body.OCI.Process, Args: cmd, Terminal: false, Capabilities: null },
        },
      });
    });
  });
  return out;
}

function pinnedReference(input: PodPolicyInput, image: string): string {
  try {
    return input.image(image).pinned;
  } catch {
    return image;
  }
}

/** Evaluate the synthesized requests of the pod against policyText. */
export async function checkPolicy(
  policyText: string,
  input: PodPolicyInput,
  pod?: BuiltPod,
): Promise<PolicyCheckReport> {
  return evaluateRequests(policyText, synthesizeRequests(input, pod));
}

/** Evaluate requests in order on one engine (the agent state carries over) against policyText. */
export function evaluateRequests(policyText: string, requests: readonly SynthesizedRequest[]): PolicyCheckReport {
  const engine = PolicyEngine.forPolicyText(policyText);
  const entries: PolicyCheckEntry[] = [];
  try {
    for (const r of requests) {
      const res = engine.evaluate(r.request, r.body);
      entries.push({
        request: r.request,
        container: r.container,
        description: r.description,
        allowed: res.allowed,
        reason: res.reason,
        failures: res.failures,
      });
    }
  } finally {
    engine.dispose();
  }
  return { allowed: entries.every((e) => e.allowed), entries };
}

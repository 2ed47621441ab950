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

/** One concrete string matching a policy regex of the restricted form our data uses. */
export function sampleRegex(re: string): string {
  let i = 0;
  const seq = (): string => {
    let out = '';
    while (i < re.length && re[i] !== ')' && re[i] !== '|') {
      const c = re[i];
      let atom: string;
      if (c === '^' || c === '$') { i += 1; continue; }
      if (c === '\\') { atom = re[i + 1]; i += 2; }
      else if (c === '[') {
        const end = re.indexOf(']', i + 2);
        const cls = re.slice(i + 1, end);
        atom = cls[0] === '^' ? 'x' : cls[0] === '\\' ? cls[1] : cls[0];
        i = end + 1;
      } else if (c === '(') {
        i += 1;
        if (re.startsWith('?:', i)) i += 2;
        const alts = [seq()];
        while (re[i] === '|') { i += 1; alts.push(seq()); }
        i += 1;
        atom = alts[0];
      } else if (c === '.') { atom = 'x'; i += 1; }
      else { atom = c; i += 1; }
      const q = re[i];
      if (q === '?' || q === '*') { i += 1; atom = q === '*' && atom === 'x' ? '' : q === '?' ? '' : ''; }
      else if (q === '+') i += 1;
      else if (q === '{') {
        const end = re.indexOf('}', i);
        atom = atom.repeat(Number.parseInt(re.slice(i + 1, end), 10));
        i = end + 1;
      }
      out += atom;
    }
    return out;
  };
  return seq();
}

const TYPED_SAMPLES: Record<string, string> = {
  '$(uuid)': '0d1c2b3a-4f5e-4d6c-8b7a-998877665544', '$(random16)': '0123456789abcdef', '$(dns)': 'node-1',
  '$(ip)': '10.244.1.23', '$(ips)': '10.244.1.23', '$(digits)': '1', '$(any)': 'x',
};

/** One concrete value for a policy pattern (template or `^`-regex) with run-time ids filled in. */
export function sampleValue(pattern: string): string {
  if (pattern.startsWith('^')) return sampleRegex(pattern);
  let out = pattern;
  for (const [ph, v] of Object.entries(TYPED_SAMPLES)) out = out.split(ph).join(v);
  return out;
}

const SERVICE_ENV = [
  'KUBERNETES_SERVICE_HOST=10.96.0.1', 'KUBERNETES_SERVICE_PORT=443', 'KUBERNETES_SERVICE_PORT_HTTPS=443',
  'KUBERNETES_PORT=tcp://10.96.0.1:443', 'KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443',
  'KUBERNETES_PORT_443_TCP_PROTO=tcp', 'KUBERNETES_PORT_443_TCP_PORT=443', 'KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1',
];

/** Variables kubelet adds for another service in the namespace (when service links are on). */
const SERVICE_LINK_ENV = [
  'REDIS_SERVICE_HOST=10.96.12.7', 'REDIS_SERVICE_PORT=6379', 'REDIS_SERVICE_PORT_CLIENT=6379', 'REDIS_PORT=tcp://10.96.12.7:6379',
  'REDIS_PORT_6379_TCP=tcp://10.96.12.7:6379', 'REDIS_PORT_6379_TCP_PROTO=tcp', 'REDIS_PORT_6379_TCP_PORT=6379', 'REDIS_PORT_6379_TCP_ADDR=10.96.12.7',
];

export interface SynthesizedRequest { request: string; container: string; description: string; body: unknown }

/**
 * The requests the runtime sends to start this pod and run its probes, in order. `pod` is the
 * built policy data of `input`, for callers that have it already.
 */
export function synthesizeRequests(input: PodPolicyInput, pod: BuiltPod = buildPod(input)): SynthesizedRequest[] {
  const { data, samples } = pod;
  const s = input.settings;
  const sandboxId = id(`sandbox/${samples.podName}`);
  const fill = (p: string, containerId: string) => p
    .split('$(bundle-id)').join(containerId)
    .split('$(sandbox-id)').join(sandboxId)
    .split('$(sandbox-name)').join(samples.podName)
    .split('$(sandbox-namespace)').join(samples.namespace);
  const out: SynthesizedRequest[] = [{
    request: 'CreateSandboxRequest', container: '', description: 'create the sandbox',
    body: {
      hostname: samples.podName, dns: [], storages: s.sandboxStorages, sandbox_pidns: false, sandbox_id: sandboxId,
      guest_hook_path: '', kernel_modules: [],
    },
  }];
  data.containers.forEach((c: ContainerPolicy, index) => {
    const pause = index === 0;
    const containerId = pause ? sandboxId : id(`container/${samples.podName}/${c.name}`);
    const sample = samples.containers[index];
    const root = `${s.containerPath}/${containerId}/rootfs`;
    const annotations: Record<string, string> = {};
    for (const [k, v] of Object.entries(c.OCI.Annotations)) {
      if (k === 'io.katacontainers.config.hypervisor.cc_init_data' || !k.startsWith('io.k')) continue;
      annotations[k] = sampleValue(fill(v, containerId));
    }
    annotations['io.kubernetes.cri.sandbox-name'] = samples.podName;
    annotations['io.kubernetes.cri.sandbox-namespace'] = samples.namespace;
    annotations['io.kubernetes.cri.sandbox-uid'] = '0d1c2b3a-4f5e-4d6c-8b7a-998877665544';
    annotations['io.kubernetes.cri.sandbox-cpu-shares'] = '2';
    if (!pause) {
      annotations['io.kubernetes.container.terminationMessagePath'] = '/dev/termination-log';
      annotations['io.kubernetes.container.terminationMessagePolicy'] = 'File';
    }
    const imageRef = pause ? s.pauseImageSource : pinnedReference(input, c.image);
    const namespaces = c.OCI.Linux.Namespaces.map((n) => ({ ...n }));
    if (pause) namespaces.push({ Type: 'network', Path: '/var/run/netns/cni-11111111-2222-3333-4444-555555555555' });
    const body = {
      container_id: containerId,
      exec_id: containerId,
      string_user: null,
      devices: c.devices.map((d) => ({ id: '', type_: '', vm_path: '', container_path: d.container_path, options: [] })),
      storages: [
        {
          driver: 'image_guest_pull', driver_options: [`image_guest_pull=${JSON.stringify({ metadata: annotations })}`],
          source: imageRef, fstype: 'overlay', options: [], mount_point: root, fs_group: null, shared: false,
        },
        ...c.storages.map((st) => ({ ...st, source: sampleValue(fill(st.source, containerId)), mount_point: sampleValue(fill(st.mount_point, containerId)) })),
      ],
      OCI: {
        Version: s.ociVersion,
        Process: {
          Terminal: c.OCI.Process.Terminal,
          ConsoleSize: null,
          User: { ...c.OCI.Process.User, Username: '' },
          Args: sample.args,
          Env: pause ? sample.env : [...sample.env, ...SERVICE_ENV, ...(input.podSpec.enableServiceLinks === false ? [] : SERVICE_LINK_ENV)],
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
        Mounts: c.OCI.Mounts.map((m) => ({ ...m, source: sampleValue(fill(m.source, containerId)) })),
        Hooks: null,
        Annotations: annotations,
        Linux: {
          UIDMappings: [], GIDMappings: [], Sysctl: c.OCI.Linux.Sysctl,
          Resources: { Devices: [], Memory: null, CPU: null, Pids: null, BlockIO: null, HugepageLimits: [], Network: null },
          CgroupsPath: `/kubepods/besteffort/pod0d1c2b3a/${containerId}`,
          Namespaces: namespaces,
          Devices: c.OCI.Linux.Devices.map((d) => ({ Path: d.Path, Type: 'b', Major: 8, Minor: 0, FileMode: 0o660, UID: 0, GID: 0 })),
          Seccomp: null, RootfsPropagation: '', MaskedPaths: c.OCI.Linux.MaskedPaths, ReadonlyPaths: c.OCI.Linux.ReadonlyPaths,
          MountLabel: '', IntelRdt: null,
        },
        Solaris: null,
        Windows: null,
      },
      sandbox_pidns: c.sandbox_pidns,
      shared_mounts: [],
      stdin_port: 0, stdout_port: 0, stderr_port: 0,
    };
    out.push({ request: 'CreateContainerRequest', container: c.name, description: pause ? 'create the pause container' : `create container ${c.name}`, body });
    c.exec_commands.forEach((cmd, n) => {
      out.push({
        request: 'ExecProcessRequest', container: c.name, description: `exec ${JSON.stringify(cmd)} in ${c.name} (probe or hook)`,
        body: {
          container_id: containerId, exec_id: id(`exec/${containerId}/${n}`), string_user: null,
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
export async function checkPolicy(policyText: string, input: PodPolicyInput, pod?: BuiltPod): Promise<PolicyCheckReport> {
  const engine = PolicyEngine.forPolicyText(policyText);
  const entries: PolicyCheckEntry[] = [];
  try {
    for (const r of synthesizeRequests(input, pod)) {
      const res = engine.evaluate(r.request, r.body);
      entries.push({ request: r.request, container: r.container, description: r.description, allowed: res.allowed, reason: res.reason, failures: res.failures });
    }
  } finally {
    engine.dispose();
  }
  return { allowed: entries.every((e) => e.allowed), entries };
}

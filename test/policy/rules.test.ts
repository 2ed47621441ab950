/**
 * Table-driven allow/deny tests of rules.rego through the compiled WebAssembly: every request
 * the runtime sends for the sample pod is allowed; the same request with one field tampered
 * is denied, for the reason the rules name.
 */
import { strict as assert } from 'node:assert';
import {
  buildPolicyData,
  normaliseRequest,
  PolicyEngine,
  policyTextFor,
  synthesizeRequests,
} from '../../src/policy/index.js';
import type { PolicyData } from '../../src/policy/index.js';
import { crossCheck, type Evaluation } from './engines.js';
import { deploymentInput } from './fixtures.js';

/** Every evaluation of this file, replayed through a second engine at the end. */
interface Recorded {
  data: unknown;
  state: Record<string, unknown>;
  name: string;
  input: unknown;
  allowed: boolean;
  ops: unknown[];
}
const recorded: Recorded[] = [];
const evaluate = PolicyEngine.prototype.evaluate;
PolicyEngine.prototype.evaluate = function (this: PolicyEngine, name: string, request: unknown) {
  const state = structuredClone(this.pstate);
  const result = evaluate.call(this, name, request);
  recorded.push({
    data: (this as unknown as { policyData: unknown }).policyData,
    state,
    name,
    input: normaliseRequest(name, request),
    allowed: result.allowed,
    ops: result.ops,
  });
  return result;
};

type Req = Record<string, any>;

const input = deploymentInput();
const data = buildPolicyData(input);
const requests = synthesizeRequests(input);
const sandbox = requests.find((r) => r.request === 'CreateSandboxRequest')!;
const pauseCreate = requests.find((r) => r.request === 'CreateContainerRequest' && r.container === '')!;
const webCreate = requests.find((r) => r.request === 'CreateContainerRequest' && r.container === 'web')!;
const initCreate = requests.find((r) => r.request === 'CreateContainerRequest' && r.container === 'init')!;
const webExec = requests.filter((r) => r.request === 'ExecProcessRequest' && r.container === 'web');

const clone = <T>(x: T): T => structuredClone(x);

/** An engine that has seen the sandbox and the pause container, like the agent after pod start. */
function started(): PolicyEngine {
  const e = PolicyEngine.forData(data);
  assert.equal(e.evaluate('CreateSandboxRequest', sandbox.body).allowed, true);
  assert.equal(e.evaluate('CreateContainerRequest', pauseCreate.body).allowed, true);
  return e;
}

function withWeb(): PolicyEngine {
  const e = started();
  assert.equal(e.evaluate('CreateContainerRequest', webCreate.body).allowed, true);
  return e;
}

const web = () => clone(webCreate.body) as Req;
const pause = () => clone(pauseCreate.body) as Req;
const env = (r: Req) => r.OCI.Process.Env as string[];
const setEnv = (r: Req, name: string, value: string) => {
  r.OCI.Process.Env = env(r).map((e) => (e.startsWith(`${name}=`) ? `${name}=${value}` : e));
};
const mount = (r: Req, dest: string) => (r.OCI.Mounts as Req[]).find((m) => m.destination === dest)!;

interface Case {
  name: string;
  mutate: (r: Req) => void;
  reason: RegExp;
}

const createContainerCases: Case[] = [
  // Process
  {
    name: 'args: changed argument',
    mutate: (r) => {
      r.OCI.Process.Args[2] = '9090';
    },
    reason: /command line/,
  },
  {
    name: 'args: extra argument',
    mutate: (r) => {
      r.OCI.Process.Args.push('--debug');
    },
    reason: /command line/,
  },
  {
    name: 'args: replaced binary',
    mutate: (r) => {
      r.OCI.Process.Args[0] = '/bin/sh';
    },
    reason: /command line/,
  },
  {
    name: 'args: pod name argument of another pod',
    mutate: (r) => {
      r.OCI.Process.Args[4] = 'evil-5d8f7b9c4-x2k9q';
    },
    reason: /command line/,
  },
  {
    name: 'args: fewer arguments',
    mutate: (r) => {
      r.OCI.Process.Args.pop();
    },
    reason: /command line/,
  },
  { name: 'env: literal value changed', mutate: (r) => setEnv(r, 'MODE', 'debug'), reason: /environment/ },
  { name: 'env: secret value changed', mutate: (r) => setEnv(r, 'TOKEN', 'other'), reason: /environment/ },
  {
    name: 'env: configMap envFrom value changed',
    mutate: (r) => setEnv(r, 'CFG_LEVEL', 'trace'),
    reason: /environment/,
  },
  { name: 'env: image env changed', mutate: (r) => setEnv(r, 'PATH', '/tmp:/usr/bin'), reason: /environment/ },
  {
    name: 'env: injected LD_PRELOAD',
    mutate: (r) => {
      env(r).push('LD_PRELOAD=/tmp/evil.so');
    },
    reason: /environment/,
  },
  {
    name: 'env: variable removed',
    mutate: (r) => {
      r.OCI.Process.Env = env(r).filter((e) => !e.startsWith('MODE='));
    },
    reason: /environment/,
  },
  {
    name: 'env: runtime variable removed',
    mutate: (r) => {
      r.OCI.Process.Env = env(r).filter((e) => !e.startsWith('POD_IP='));
    },
    reason: /environment/,
  },
  { name: 'env: pod IP is not an address', mutate: (r) => setEnv(r, 'POD_IP', '$(curl evil)'), reason: /environment/ },
  {
    name: 'env: pod name of another pod',
    mutate: (r) => setEnv(r, 'POD_NAME', 'other-5d8f7b9c4-x2k9q'),
    reason: /environment/,
  },
  {
    name: 'env: resource value not a number',
    mutate: (r) => setEnv(r, 'CPU_LIMIT', '1; rm -rf /'),
    reason: /environment/,
  },
  {
    name: 'env: service-link pattern used to override a pinned variable',
    mutate: (r) => setEnv(r, 'PORT', '9999'),
    reason: /environment/,
  },
  {
    name: 'env: duplicate of a pinned variable',
    mutate: (r) => {
      env(r).push('MODE=debug');
    },
    reason: /environment/,
  },
  {
    name: 'cwd changed',
    mutate: (r) => {
      r.OCI.Process.Cwd = '/tmp';
    },
    reason: /working directory/,
  },
  {
    name: 'user: uid changed',
    mutate: (r) => {
      r.OCI.Process.User.UID = 1;
    },
    reason: /user, group/,
  },
  {
    name: 'user: gid changed',
    mutate: (r) => {
      r.OCI.Process.User.GID = 5;
    },
    reason: /user, group/,
  },
  {
    name: 'user: extra supplementary group',
    mutate: (r) => {
      r.OCI.Process.User.AdditionalGids.push(6);
    },
    reason: /user, group/,
  },
  {
    name: 'user: username set',
    mutate: (r) => {
      r.OCI.Process.User.Username = 'root';
    },
    reason: /never allows/,
  },
  {
    name: 'capabilities: extra CAP_SYS_ADMIN',
    mutate: (r) => {
      for (const k of ['Bounding', 'Effective', 'Permitted']) r.OCI.Process.Capabilities[k].push('CAP_SYS_ADMIN');
    },
    reason: /capabilities/,
  },
  {
    name: 'capabilities: dropped capability back',
    mutate: (r) => {
      r.OCI.Process.Capabilities.Effective.push('CAP_NET_RAW');
    },
    reason: /capabilities/,
  },
  {
    name: 'capabilities: ambient',
    mutate: (r) => {
      r.OCI.Process.Capabilities.Ambient = ['CAP_NET_ADMIN'];
    },
    reason: /capabilities/,
  },
  {
    name: 'capabilities: missing',
    mutate: (r) => {
      r.OCI.Process.Capabilities = null;
    },
    reason: /capabilities/,
  },
  {
    name: 'privileged: every capability and no masked paths',
    mutate: (r) => {
      const all = data.containers[2].OCI.Process.Capabilities.Bounding.concat([
        'CAP_SYS_ADMIN',
        'CAP_SYS_MODULE',
        'CAP_SYS_PTRACE',
      ]);
      for (const k of ['Bounding', 'Effective', 'Permitted']) r.OCI.Process.Capabilities[k] = all;
      r.OCI.Linux.MaskedPaths = [];
      r.OCI.Linux.ReadonlyPaths = [];
    },
    reason: /capabilities/,
  },
  {
    name: 'no_new_privileges flipped',
    mutate: (r) => {
      r.OCI.Process.NoNewPrivileges = true;
    },
    reason: /no_new_privileges/,
  },
  {
    name: 'terminal enabled',
    mutate: (r) => {
      r.OCI.Process.Terminal = true;
    },
    reason: /terminal/,
  },
  {
    name: 'SELinux label',
    mutate: (r) => {
      r.OCI.Process.SelinuxLabel = 'system_u:system_r:spc_t:s0';
    },
    reason: /never allows/,
  },
  // Image
  {
    name: 'image: other digest',
    mutate: (r) => {
      r.storages[0].source = `registry.example/web:1.0@sha256:${'f'.repeat(64)}`;
    },
    reason: /pinned image/,
  },
  {
    name: 'image: tag instead of digest',
    mutate: (r) => {
      r.storages[0].source = 'registry.example/web:1.0';
    },
    reason: /pinned image/,
  },
  {
    name: 'image: no guest-pull storage',
    mutate: (r) => {
      r.storages.shift();
    },
    reason: /pinned image/,
  },
  {
    name: 'image: two guest-pull storages',
    mutate: (r) => {
      r.storages.push(clone(r.storages[0]));
    },
    reason: /pinned image/,
  },
  {
    name: 'image: guest pull to another root',
    mutate: (r) => {
      r.storages[0].mount_point = '/run/kata-containers/shared/containers/x/rootfs';
    },
    reason: /pinned image/,
  },
  // Mounts
  {
    name: 'mount: extra host directory',
    mutate: (r) => {
      r.OCI.Mounts.push({ destination: '/host', source: '/', type_: 'bind', options: ['rbind', 'rw'] });
    },
    reason: /mount/,
  },
  {
    name: 'mount: secret volume from a host path',
    mutate: (r) => {
      mount(r, '/etc/tls').source = '/var/lib/kubelet/evil';
    },
    reason: /mount/,
  },
  {
    name: 'mount: configMap made writable',
    mutate: (r) => {
      mount(r, '/etc/nginx/conf.d').options = ['rbind', 'rprivate', 'rw'];
    },
    reason: /mount/,
  },
  {
    name: "mount: another container's bundle",
    mutate: (r) => {
      const m = mount(r, '/etc/hosts');
      m.source = m.source.replace(/containers\/[0-9a-f]{64}/, `containers/${'e'.repeat(64)}`);
    },
    reason: /mount/,
  },
  {
    name: 'mount: emptyDir of another sandbox',
    mutate: (r) => {
      const m = mount(r, '/var/cache/nginx');
      m.source = m.source.replace(/containers\/[0-9a-f]{64}/, `containers/${'e'.repeat(64)}`);
    },
    reason: /mount/,
  },
  {
    name: 'mount: type changed',
    mutate: (r) => {
      mount(r, '/data').type_ = 'tmpfs';
    },
    reason: /mount/,
  },
  {
    name: 'mount: sysfs writable',
    mutate: (r) => {
      mount(r, '/sys').options = ['nosuid', 'noexec', 'nodev', 'rw'];
    },
    reason: /mount/,
  },
  {
    // An identical copy counts once (containerd 1.6 mounts /dev/shm twice, test/runtime); a
    // second, different mount on the same destination is refused.
    name: 'mount: duplicate destination',
    mutate: (r) => {
      const copy = clone(mount(r, '/etc/hosts'));
      copy.options = ['rbind', 'rprivate', 'ro'];
      r.OCI.Mounts.push(copy);
    },
    reason: /mount/,
  },
  // The shared files (`$(sfpath)/$(bundle-id)-$(random16)-<name>`) have a branch of their own
  // in value_ok; each part of the name must still be checked there.
  ...(
    [
      [
        'a random part of 15 characters',
        (s) => s.replace(/-([0-9a-f]{16})-hosts$/, (_, x: string) => `-${x.slice(1)}-hosts`),
      ],
      ['a random part of 17 characters', (s) => s.replace(/-([0-9a-f]{16})-hosts$/, (_, x: string) => `-${x}0-hosts`)],
      [
        'an upper-case random part',
        (s) => s.replace(/-([0-9a-f]{16})-hosts$/, (_, x: string) => `-${x.toUpperCase()}-hosts`),
      ],
      [
        'a random part with a slash',
        (s) => s.replace(/-([0-9a-f]{16})-hosts$/, (_, x: string) => `-${x.slice(0, 15)}/-hosts`),
      ],
      ['the file of another name', (s) => s.replace(/-hosts$/, '-hostname')],
      ['a suffix after the name', (s) => `${s}x`],
      ['no separator after the container id', (s) => s.replace(/([0-9a-f]{64})-/, '$1')],
      ['a directory not shared', (s) => s.replace('/shared/containers/', '/shared/other/')],
    ] as [string, (s: string) => string][]
  ).map(([what, edit]) => ({
    name: `mount: shared file with ${what}`,
    mutate: (r: Req) => {
      const m = mount(r, '/etc/hosts');
      const edited = edit(m.source);
      assert.notEqual(edited, m.source, `${what}: the edit changed nothing`);
      m.source = edited;
    },
    reason: /mount/,
  })),
  {
    name: 'mount: path traversal in source',
    mutate: (r) => {
      const m = mount(r, '/etc/hosts');
      m.source = `${m.source}/../../../../etc`;
    },
    reason: /mount/,
  },
  // Storages and devices
  {
    name: 'storage: unknown driver',
    mutate: (r) => {
      r.storages.push({
        driver: 'virtio-fs',
        driver_options: [],
        source: 'kataShared',
        fstype: 'virtiofs',
        options: [],
        mount_point: '/run/x',
        fs_group: null,
        shared: false,
      });
    },
    reason: /storage/,
  },
  {
    name: 'storage: emptyDir mount point moved',
    mutate: (r) => {
      const s = r.storages.find((x: Req) => x.driver === 'local');
      s.mount_point = '/etc';
    },
    reason: /storage/,
  },
  {
    name: 'storage: tmpfs options changed',
    mutate: (r) => {
      const s = r.storages.find((x: Req) => x.driver === 'ephemeral');
      s.options = ['exec'];
    },
    reason: /storage/,
  },
  {
    name: 'device: block device added',
    mutate: (r) => {
      r.devices.push({ id: 'x', type_: 'blk', vm_path: '/dev/vda', container_path: '/dev/vda', options: [] });
    },
    reason: /device/,
  },
  {
    name: 'linux device added',
    mutate: (r) => {
      r.OCI.Linux.Devices.push({ Path: '/dev/mem', Type: 'c', Major: 1, Minor: 1, FileMode: 0, UID: 0, GID: 0 });
    },
    reason: /device/,
  },
  {
    name: 'cgroup device access',
    mutate: (r) => {
      r.OCI.Linux.Resources.Devices = [{ Allow: true, Access: 'rwm' }];
    },
    reason: /never allows/,
  },
  // Annotations and identity
  {
    name: 'annotation: wrong sandbox name',
    mutate: (r) => {
      r.OCI.Annotations['io.kubernetes.cri.sandbox-name'] = 'other-5d8f7b9c4-x2k9q';
    },
    reason: /sandbox name/,
  },
  {
    name: 'annotation: sandbox name without suffix',
    mutate: (r) => {
      r.OCI.Annotations['io.kubernetes.cri.sandbox-name'] = 'web';
    },
    reason: /sandbox name/,
  },
  {
    name: 'annotation: wrong namespace',
    mutate: (r) => {
      r.OCI.Annotations['io.kubernetes.cri.sandbox-namespace'] = 'default';
    },
    reason: /namespace/,
  },
  {
    name: 'annotation: unknown container name',
    mutate: (r) => {
      r.OCI.Annotations['io.kubernetes.cri.container-name'] = 'sidecar';
    },
    reason: /not one of the pod's containers/,
  },
  {
    name: 'annotation: container type missing',
    mutate: (r) => {
      delete r.OCI.Annotations['io.kubernetes.cri.container-type'];
    },
    reason: /not one of the pod's containers/,
  },
  {
    name: 'annotation: unexpected kata annotation',
    mutate: (r) => {
      r.OCI.Annotations['io.katacontainers.config.agent.policy'] = 'x';
    },
    reason: /annotation/,
  },
  {
    name: 'annotation: bundle path of another container',
    mutate: (r) => {
      r.OCI.Annotations['io.katacontainers.pkg.oci.bundle_path'] =
        `/run/containerd/io.containerd.runtime.v2.task/k8s.io/${'e'.repeat(64)}`;
    },
    reason: /annotation/,
  },
  {
    name: 'annotation: pod annotation value changed',
    mutate: (r) => {
      r.OCI.Annotations['example.com/team'] = 'red';
    },
    reason: /annotation/,
  },
  {
    name: 'sandbox id differs from the pause container',
    mutate: (r) => {
      r.OCI.Annotations['io.kubernetes.cri.sandbox-id'] = 'e'.repeat(64);
    },
    reason: /annotation|earlier container/,
  },
  {
    name: 'container id malformed',
    mutate: (r) => {
      r.container_id = '../../etc';
    },
    reason: /malformed/,
  },
  {
    // The state holds the pause container's id, checked when it was stored; any other id is checked again.
    name: 'sandbox id malformed',
    mutate: (r) => {
      r.OCI.Annotations['io.kubernetes.cri.sandbox-id'] = '../../etc';
    },
    reason: /malformed/,
  },
  // Linux
  {
    name: 'root read-only flag flipped',
    mutate: (r) => {
      r.OCI.Root.Readonly = true;
    },
    reason: /root filesystem/,
  },
  {
    name: 'root path of another container',
    mutate: (r) => {
      r.OCI.Root.Path = `/run/kata-containers/${'e'.repeat(64)}/rootfs`;
    },
    reason: /root filesystem/,
  },
  {
    name: 'root path in the shared directory (a host-provided rootfs)',
    mutate: (r) => {
      r.OCI.Root.Path = `/run/kata-containers/shared/containers/${r.container_id}/rootfs`;
    },
    reason: /root filesystem/,
  },
  {
    name: 'OCI version',
    mutate: (r) => {
      r.OCI.Version = '1.0.0';
    },
    reason: /OCI version/,
  },
  {
    name: 'sysctl added',
    mutate: (r) => {
      r.OCI.Linux.Sysctl['kernel.core_pattern'] = '|/tmp/x';
    },
    reason: /sysctl/,
  },
  {
    name: 'sysctl value changed',
    mutate: (r) => {
      r.OCI.Linux.Sysctl['net.ipv4.ip_unprivileged_port_start'] = '1024';
    },
    reason: /sysctl/,
  },
  {
    name: 'masked path removed',
    mutate: (r) => {
      r.OCI.Linux.MaskedPaths = r.OCI.Linux.MaskedPaths.filter((p: string) => p !== '/proc/kcore');
    },
    reason: /masked/,
  },
  {
    name: 'read-only path removed',
    mutate: (r) => {
      r.OCI.Linux.ReadonlyPaths = r.OCI.Linux.ReadonlyPaths.filter((p: string) => p !== '/proc/sys');
    },
    reason: /masked/,
  },
  {
    name: 'namespace: pid namespace of the host',
    mutate: (r) => {
      r.OCI.Linux.Namespaces.push({ Type: 'pid', Path: '/proc/1/ns/pid' });
    },
    reason: /namespaces/,
  },
  {
    name: 'namespace: uts dropped',
    mutate: (r) => {
      r.OCI.Linux.Namespaces = r.OCI.Linux.Namespaces.filter((n: Req) => n.Type !== 'uts');
    },
    reason: /namespaces/,
  },
  {
    name: 'user namespace mappings',
    mutate: (r) => {
      r.OCI.Linux.UIDMappings = [{ ContainerID: 0, HostID: 1000, Size: 1 }];
    },
    reason: /never allows/,
  },
  {
    name: 'seccomp profile from the host',
    mutate: (r) => {
      r.OCI.Linux.Seccomp = { DefaultAction: 'SCMP_ACT_ALLOW' };
    },
    reason: /never allows/,
  },
  {
    name: 'OCI hooks',
    mutate: (r) => {
      r.OCI.Hooks = { Prestart: [{ Path: '/bin/sh' }] };
    },
    reason: /never allows/,
  },
  {
    name: 'shared mounts',
    mutate: (r) => {
      r.shared_mounts = [{ name: 'x', src_ctr: 'a', src_path: '/', dst_ctr: 'b', dst_path: '/x' }];
    },
    reason: /never allows/,
  },
  {
    name: 'string_user',
    mutate: (r) => {
      r.string_user = { uid: '0', gid: '0', additionalGids: [] };
    },
    reason: /never allows/,
  },
  {
    name: 'sandbox pid namespace',
    mutate: (r) => {
      r.sandbox_pidns = true;
    },
    reason: /sandbox_pidns/,
  },
];

describe('policy rules: CreateContainerRequest', () => {
  it('allows the requests the runtime sends for the pod', () => {
    const e = started();
    for (const r of [initCreate, webCreate]) {
      const res = e.evaluate(r.request, r.body);
      assert.equal(res.allowed, true, `${r.description}: ${res.failures.join('; ')}`);
    }
  });

  for (const c of createContainerCases) {
    it(`denies ${c.name}`, () => {
      const r = web();
      c.mutate(r);
      const res = started().evaluate('CreateContainerRequest', r);
      assert.equal(res.allowed, false, `${c.name} was allowed`);
      assert.match(res.reason ?? '', c.reason, `reason was: ${res.failures.join('; ')}`);
      assert.deepEqual(res.ops, []);
    });
  }

  it("allows a shared file under the Rust runtime's passthrough directory (the second shared-files path)", () => {
    const r = web();
    const m = mount(r, '/etc/hosts');
    m.source = m.source.replace('/shared/containers/', '/shared/containers/passthrough/');
    const res = started().evaluate('CreateContainerRequest', r);
    assert.equal(res.allowed, true, res.failures.join('; '));
  });

  it('returns the state operations the agent applies', () => {
    const e = PolicyEngine.forData(data);
    const res = e.evaluate('CreateContainerRequest', pauseCreate.body);
    assert.equal(res.allowed, true);
    const paths = res.ops.map((o) => o.path).sort();
    assert.deepEqual(
      paths,
      [
        '/pstate/namespace',
        '/pstate/network_namespace',
        '/pstate/sandbox_id',
        '/pstate/sandbox_name',
        `/pstate/${(pauseCreate.body as Req).container_id}`,
      ].sort(),
    );
    assert.equal(e.pstate.sandbox_name, (pauseCreate.body as Req).OCI.Annotations['io.kubernetes.cri.sandbox-name']);
    const again = e.evaluate('CreateContainerRequest', webCreate.body);
    assert.equal(again.ops.length, 1, 'only the container id is new');
  });

  it('denies a container before the pause container of its sandbox', () => {
    const e = PolicyEngine.forData(data);
    const res = e.evaluate('CreateContainerRequest', webCreate.body);
    assert.equal(res.allowed, false);
    assert.match(res.reason ?? '', /pause container was not created/);
  });

  it('denies a container whose sandbox name differs from the pause container of the same VM', () => {
    const r = web();
    r.OCI.Annotations['io.kubernetes.cri.sandbox-name'] = 'web-5d8f7b9c4-zzzzz';
    const res = started().evaluate('CreateContainerRequest', r);
    assert.equal(res.allowed, false);
    assert.match(res.reason ?? '', /sandbox name/);
  });

  const pauseCases: Case[] = [
    {
      name: 'pause: other command',
      mutate: (r) => {
        r.OCI.Process.Args = ['/bin/sh'];
      },
      reason: /command line/,
    },
    {
      name: 'pause: image other than the guest pause image',
      mutate: (r) => {
        r.storages[0].source = 'docker.io/evil/pause:latest';
      },
      reason: /pinned image/,
    },
    {
      name: 'pause: network namespace path outside netns',
      mutate: (r) => {
        r.OCI.Annotations['nerdctl/network-namespace'] = '/proc/1/ns/net';
      },
      reason: /annotation/,
    },
    {
      name: 'pause: log directory of another namespace',
      mutate: (r) => {
        r.OCI.Annotations['io.kubernetes.cri.sandbox-log-directory'] = r.OCI.Annotations[
          'io.kubernetes.cri.sandbox-log-directory'
        ].replace('shop_', 'kube-system_');
      },
      reason: /annotation/,
    },
    {
      name: 'pause: sandbox id not its own id',
      mutate: (r) => {
        r.OCI.Annotations['io.kubernetes.cri.sandbox-id'] = 'e'.repeat(64);
      },
      reason: /annotation/,
    },
    {
      name: 'pause: sandbox id malformed (no state holds one yet)',
      mutate: (r) => {
        r.OCI.Annotations['io.kubernetes.cri.sandbox-id'] = 'E'.repeat(64);
      },
      reason: /malformed/,
    },
    {
      name: 'pause: root writable',
      mutate: (r) => {
        r.OCI.Root.Readonly = false;
      },
      reason: /root filesystem/,
    },
    {
      name: 'pause: runs as root',
      mutate: (r) => {
        r.OCI.Process.User.UID = 0;
      },
      reason: /user, group/,
    },
  ];
  for (const c of pauseCases) {
    it(`denies ${c.name}`, () => {
      const r = pause();
      c.mutate(r);
      const e = PolicyEngine.forData(data);
      const res = e.evaluate('CreateContainerRequest', r);
      assert.equal(res.allowed, false);
      assert.match(res.reason ?? '', c.reason, res.failures.join('; '));
    });
  }
});

describe('policy rules: ExecProcessRequest', () => {
  const probe = webExec[0];
  it('allows the liveness probe and the preStop hook', () => {
    const e = withWeb();
    for (const r of webExec) assert.equal(e.evaluate('ExecProcessRequest', r.body).allowed, true, r.description);
  });
  const cases: Case[] = [
    {
      name: 'a shell',
      mutate: (r) => {
        r.process.Args = ['/bin/sh'];
      },
      reason: /probe or hook command/,
    },
    {
      name: 'a probe command with an extra argument',
      mutate: (r) => {
        r.process.Args.push('; cat /etc/tls/key');
      },
      reason: /probe or hook command/,
    },
    {
      name: 'a probe command with a terminal',
      mutate: (r) => {
        r.process.Terminal = true;
      },
      reason: /probe or hook command/,
    },
    {
      name: 'capabilities set',
      mutate: (r) => {
        r.process.Capabilities = { Bounding: [], Effective: [], Inheritable: [], Permitted: [], Ambient: [] };
      },
      reason: /never allows/,
    },
    {
      name: 'as another user',
      mutate: (r) => {
        r.process.User.UID = 1000;
      },
      reason: /user, group/,
    },
    {
      name: 'with a changed environment',
      mutate: (r) => {
        r.process.Env.push('LD_PRELOAD=/x.so');
      },
      reason: /environment/,
    },
    {
      name: 'in another directory',
      mutate: (r) => {
        r.process.Cwd = '/etc';
      },
      reason: /working directory/,
    },
    {
      name: 'in a container the policy never created',
      mutate: (r) => {
        r.container_id = 'e'.repeat(64);
      },
      reason: /not created under this policy/,
    },
    {
      name: 'without a process',
      mutate: (r) => {
        r.process = null;
      },
      reason: /no process/,
    },
    {
      name: 'with string_user',
      mutate: (r) => {
        r.string_user = { uid: '0', gid: '0', additionalGids: [] };
      },
      reason: /never allows/,
    },
  ];
  for (const c of cases) {
    it(`denies exec of ${c.name}`, () => {
      const r = clone(probe.body) as Req;
      c.mutate(r);
      const res = withWeb().evaluate('ExecProcessRequest', r);
      assert.equal(res.allowed, false);
      assert.match(res.reason ?? '', c.reason, res.failures.join('; '));
    });
  }
  it('denies a probe of a container that was removed', () => {
    const e = withWeb();
    const id = (webCreate.body as Req).container_id;
    const rm = e.evaluate('RemoveContainerRequest', { container_id: id });
    assert.deepEqual(rm.ops, [{ op: 'remove', path: `/pstate/${id}` }]);
    assert.equal(e.evaluate('ExecProcessRequest', probe.body).allowed, false);
    assert.equal(
      e.evaluate('RemoveContainerRequest', { container_id: id }).allowed,
      true,
      'removing twice is harmless',
    );
  });
  it('allows commands listed in the settings', () => {
    const s = deploymentInput().settings;
    s.requestDefaults.execAllowedCommands = [['/bin/date']];
    const e = PolicyEngine.forData(buildPolicyData(deploymentInput({}, { settings: s })));
    e.evaluate('CreateContainerRequest', pauseCreate.body);
    assert.equal(e.evaluate('CreateContainerRequest', webCreate.body).allowed, true);
    const r = clone(probe.body) as Req;
    r.process.Args = ['/bin/date'];
    assert.equal(e.evaluate('ExecProcessRequest', r).allowed, true);
  });
});

describe('policy rules: CopyFileRequest', () => {
  const base = `/run/kata-containers/shared/containers/${'a'.repeat(64)}-0123456789abcdef-config`;
  const cases: { name: string; req: Req; allowed: boolean }[] = [
    {
      name: 'a regular file of a shared volume',
      req: { path: `${base}/..2024_01_01/nginx.conf`, file_type: 'Regular', file_size: 10, file_mode: 0o644 },
      allowed: true,
    },
    { name: 'a directory', req: { path: `${base}/..2024_01_01`, file_type: 'Directory' }, allowed: true },
    {
      name: 'a relative symlink',
      req: { path: `${base}/nginx.conf`, file_type: 'Symlink', symlink_target: '..data/nginx.conf' },
      allowed: true,
    },
    {
      name: 'a file below the passthrough directory',
      req: { path: base.replace('/containers/', '/containers/passthrough/') + '/x', file_type: 'Regular' },
      allowed: true,
    },
    {
      name: 'a symlink as the top-level shared entry',
      req: { path: base, file_type: 'Symlink', symlink_target: 'x' },
      allowed: false,
    },
    {
      name: 'the protobuf form of a regular file',
      req: { path: `${base}/x`, file_mode: 0o100644, data: [104, 105] },
      allowed: true,
    },
    { name: 'a file outside the shared directory', req: { path: '/etc/passwd', file_type: 'Regular' }, allowed: false },
    {
      name: 'a file in the agent directory',
      req: { path: '/run/kata-containers/sandbox/x', file_type: 'Regular' },
      allowed: false,
    },
    { name: 'a path with ..', req: { path: `${base}/../../../../etc/shadow`, file_type: 'Regular' }, allowed: false },
    {
      name: 'an absolute symlink',
      req: { path: `${base}/x`, file_type: 'Symlink', symlink_target: '/etc/shadow' },
      allowed: false,
    },
    {
      name: 'a symlink leaving its directory',
      req: { path: `${base}/x`, file_type: 'Symlink', symlink_target: '../../../etc' },
      allowed: false,
    },
    {
      name: 'a symlink given as protobuf with absolute target',
      req: { path: `${base}/x`, file_mode: 0o120777, data: [...Buffer.from('/etc')] },
      allowed: false,
    },
    { name: 'a device node', req: { path: `${base}/x`, file_mode: 0o020644 }, allowed: false },
    { name: 'a file with an unknown type', req: { path: `${base}/x` }, allowed: false },
  ];
  for (const c of cases) {
    it(`${c.allowed ? 'allows' : 'denies'} ${c.name}`, () => {
      const res = PolicyEngine.forData(data).evaluate('CopyFileRequest', c.req);
      assert.equal(res.allowed, c.allowed, res.failures.join('; '));
    });
  }
});

describe('policy rules: CreateSandboxRequest and other requests', () => {
  const cases: { name: string; mutate: (r: Req) => void; allowed: boolean }[] = [
    { name: "the runtime's request", mutate: () => {}, allowed: true },
    {
      name: 'a guest hook path',
      mutate: (r) => {
        r.guest_hook_path = '/usr/share/oci/hooks';
      },
      allowed: false,
    },
    {
      name: 'a kernel module',
      mutate: (r) => {
        r.kernel_modules = [{ name: 'evil', parameters: [] }];
      },
      allowed: false,
    },
    {
      name: 'a sandbox PID namespace',
      mutate: (r) => {
        r.sandbox_pidns = true;
      },
      allowed: false,
    },
    {
      name: 'an executable shm',
      mutate: (r) => {
        r.storages[0].options = ['nosuid', 'nodev', 'mode=1777'];
      },
      allowed: false,
    },
    {
      name: 'an extra storage',
      mutate: (r) => {
        r.storages.push({ ...r.storages[0], mount_point: '/etc' });
      },
      allowed: false,
    },
  ];
  for (const c of cases) {
    it(`CreateSandboxRequest: ${c.allowed ? 'allows' : 'denies'} ${c.name}`, () => {
      const r = clone(sandbox.body) as Req;
      c.mutate(r);
      assert.equal(PolicyEngine.forData(data).evaluate('CreateSandboxRequest', r).allowed, c.allowed);
    });
  }

  const simple: [string, Req, boolean][] = [
    ['SetPolicyRequest', { policy: 'package agent_policy\ndefault CreateContainerRequest := true' }, false],
    ['UpdateContainerRequest', { container_id: 'x' }, false],
    ['PauseContainerRequest', { container_id: 'x' }, false],
    ['ReseedRandomDevRequest', { data: [1, 2] }, false],
    ['SetGuestDateTimeRequest', {}, false],
    ['WriteStreamRequest', { container_id: 'x', exec_id: 'x', data: [1] }, false],
    ['CloseStdinRequest', { container_id: 'x', exec_id: 'x' }, false],
    ['GetDiagnosticDataRequest', {}, false],
    ['NoSuchRequest', {}, false],
    ['ReadStreamRequest', { container_id: 'x', exec_id: 'x', len: 1024 }, true],
    ['SignalProcessRequest', { container_id: 'x', exec_id: 'x', signal: 15 }, true],
    ['WaitProcessRequest', { container_id: 'x', exec_id: 'x' }, true],
    ['StartContainerRequest', { container_id: 'x' }, true],
    ['DestroySandboxRequest', {}, true],
    [
      'UpdateInterfaceRequest',
      {
        interface: {
          name: 'eth0',
          hwAddr: '02:42:ac:11:00:02',
          raw_flags: 0,
          IPAddresses: [{ family: 0, address: '10.244.1.23', mask: '24' }],
        },
      },
      true,
    ],
    ['UpdateInterfaceRequest', { interface: { name: 'lo', hwAddr: '02:42:ac:11:00:02' } }, false],
    ['UpdateInterfaceRequest', { interface: { name: 'eth0', hwAddr: '00:00:00:00:00:00' } }, false],
    ['UpdateInterfaceRequest', { interface: { name: 'eth0', hwAddr: '02:42:ac:11:00:02', raw_flags: 0x100 } }, false],
    [
      'UpdateRoutesRequest',
      {
        routes: {
          Routes: [{ dest: '0.0.0.0/0', gateway: '10.244.1.1', device: 'eth0', source: '', scope: 0, family: 0 }],
        },
      },
      true,
    ],
    [
      'UpdateRoutesRequest',
      { routes: { Routes: [{ dest: '10.0.0.0/8', device: 'eth0', source: '127.0.0.1' }] } },
      false,
    ],
    ['UpdateRoutesRequest', { routes: { Routes: [{ dest: '10.0.0.0/8', device: 'lo' }] } }, false],
    [
      'AddARPNeighborsRequest',
      {
        neighbors: {
          ARPNeighbors: [
            {
              toIPAddress: { family: 0, address: '10.244.1.1', mask: '' },
              device: 'eth0',
              lladdr: 'aa:bb:cc:dd:ee:ff',
              state: 128,
              flags: 0,
            },
          ],
        },
      },
      true,
    ],
    [
      'AddARPNeighborsRequest',
      { neighbors: { ARPNeighbors: [{ toIPAddress: { address: '127.0.0.1' }, device: 'eth0', state: 128 }] } },
      false,
    ],
    [
      'AddARPNeighborsRequest',
      { neighbors: { ARPNeighbors: [{ toIPAddress: { address: '10.0.0.1' }, device: 'eth0', state: 2 }] } },
      true,
    ],
    [
      'AddARPNeighborsRequest',
      { neighbors: { ARPNeighbors: [{ toIPAddress: { address: '10.0.0.1' }, device: 'eth0', state: 4 }] } },
      false,
    ],
  ];
  for (const [name, req, allowed] of simple) {
    it(`${allowed ? 'allows' : 'denies'} ${name} ${JSON.stringify(req).slice(0, 60)}`, () => {
      assert.equal(PolicyEngine.forData(data).evaluate(name, req).allowed, allowed);
    });
  }
});

describe('policy rules: agent request defaults', () => {
  it('fills missing optional fields with the agent defaults', () => {
    const r = web();
    delete r.shared_mounts;
    delete r.string_user;
    delete r.stdin_port;
    delete r.OCI.Hooks;
    delete r.OCI.Solaris;
    delete r.OCI.Linux.IntelRdt;
    delete r.OCI.Linux.Resources;
    delete r.OCI.Process.ConsoleSize;
    delete r.OCI.Process.ApparmorProfile;
    r.unknown_field = 'dropped like the agent drops it';
    const res = started().evaluate('CreateContainerRequest', r);
    assert.equal(res.allowed, true, res.failures.join('; '));
  });
  it('denies a request without an OCI spec instead of failing', () => {
    const res = started().evaluate('CreateContainerRequest', { container_id: 'a'.repeat(64) });
    assert.equal(res.allowed, false);
  });
});

describe('policy rules: the other engines agree', function () {
  this.timeout(300_000);
  it("opa (Go interpreter) and regorus (the agent's engine) decide every request above like the WebAssembly module (both required)", () => {
    assert.ok(recorded.length > 100, `only ${recorded.length} evaluations recorded`);
    const texts = new Map<unknown, string>();
    const evaluations: Evaluation[] = recorded.map((r, i) => {
      let policy = texts.get(r.data);
      if (!policy) {
        policy = policyTextFor(r.data as PolicyData);
        texts.set(r.data, policy);
      }
      return {
        policy,
        state: r.state,
        name: r.name,
        input: r.input,
        allowed: r.allowed,
        ops: r.ops,
        label: `evaluation #${i}`,
      };
    });
    const { disagreements, counts } = crossCheck(evaluations);
    assert.deepEqual(disagreements, []);
    assert.equal(counts.opa, evaluations.length);
    assert.equal(counts.regorus, evaluations.length);
  });
});

/**
 * The agent requests the simulated runtime builds from the OCI specs containerd's CRI plugin
 * really wrote (test/runtime/fixtures/<pod>/, captured on scripts/cluster.sh's node; README
 * there): every pod's requests are allowed by the policy `generate` computed for it, with the
 * agent state carried from request to request, and a spec changed after `generate` (command,
 * environment, image, mounts, privileges) is denied, the reason naming the field. Then the
 * parser's refusals and the rewrites themselves, one by one.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { decodeInitDataAnnotation, INITDATA_ANNOTATION, POLICY_KEY } from '../../src/policy/initdata.js';
import { PolicyEngine } from '../../src/policy/engine.js';
import { explainRequest } from '../../src/policy/diff.js';
import { policyTextFor, splitPolicyText } from '../../src/policy/text.js';
import type { PolicyData } from '../../src/policy/types.js';
import { fsHost, type HostEntry, type HostView } from '../../src/runtime/agent-host.js';
import { MAX_SPEC_BYTES, parseOciSpec, type OciSpec } from '../../src/runtime/agent-spec.js';
import {
  containerRequests,
  sandboxInfo,
  sandboxRequest,
  type AgentRequest,
  type ContainerTarget,
} from '../../src/runtime/agent-requests.js';
import { removeDir, tempDir } from '../helpers/tmp.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');

interface HostRecord {
  containers: { file: string; id: string }[];
  files: Record<string, (HostEntry & { content?: string })[]>;
  volumes: Record<string, { gid: number; tmpfs: boolean }>;
  filesystemSizes: Record<string, number>;
  devices: Record<string, boolean>;
}

interface Pod {
  name: string;
  policy: string;
  data: PolicyData;
  annotation: string;
  specs: { file: string; id: string; spec: OciSpec; text: string }[];
  host: HostView;
  root: string;
}

/**
 * A captured pod, its host files recreated below a temporary directory (@HOST@ in the fixture).
 * Files and directories are real and read through fsHost; three facts the test cannot recreate
 * without privileges come from the capture: which emptyDirs were tmpfs mounts (and their group),
 * the size of the sandbox's shm filesystem, and which /dev paths are devices on the node.
 */
function loadPod(name: string, root: string): Pod {
  const dir = join(FIXTURES, name);
  const rec = JSON.parse(readFileSync(join(dir, 'host.json'), 'utf8')) as HostRecord;
  const put = (p: string) => p.split('@HOST@').join(root);
  for (const [src, entries] of Object.entries(rec.files)) {
    for (const e of entries) {
      const path = put(src) + e.rel;
      const type = e.mode & 0o170000;
      mkdirSync(type === 0o040000 ? path : dirname(path), { recursive: true });
      if (type === 0o100000) writeFileSync(path, Buffer.from(e.content ?? '', 'base64'), { mode: e.mode & 0o7777 });
      else if (type === 0o120000) symlinkSync(e.target ?? '', path);
    }
  }
  for (const src of Object.keys(rec.volumes)) mkdirSync(put(src), { recursive: true });
  const real = fsHost();
  const byPath = <T>(m: Record<string, T>, p: string): T | undefined =>
    Object.entries(m).find(([k]) => put(k) === p)?.[1];
  const host: HostView = {
    ...real,
    volume: (p) => byPath(rec.volumes, p) ?? real.volume(p),
    filesystemSize: (p) => byPath(rec.filesystemSizes, p) ?? real.filesystemSize(p),
    isDeviceOrDir: (p) => rec.devices[p] ?? false,
  };
  const specs = rec.containers.map((c) => {
    const text = put(readFileSync(join(dir, c.file), 'utf8'));
    return { file: c.file, id: c.id, spec: parseOciSpec(text, c.file), text };
  });
  const docs = parseAllDocuments(readFileSync(join(dir, 'pod.yaml'), 'utf8')).map((d) => d.toJS());
  const annotation = docs
    .map((d) => (d?.spec?.template?.metadata ?? d?.metadata)?.annotations?.[INITDATA_ANNOTATION])
    .find((a): a is string => typeof a === 'string');
  assert.ok(annotation, `${name}/pod.yaml has no ${INITDATA_ANNOTATION}`);
  // The captured pod's policy data with the current rules: a change of the rules is checked
  // against what the runtime really sends without capturing the pods again.
  const captured = decodeInitDataAnnotation(annotation).init.data[POLICY_KEY];
  const data = splitPolicyText(captured).data as PolicyData;
  return { name, policy: policyTextFor(data), data, annotation, specs, host, root };
}

const fixturePods = (): string[] =>
  readdirSync(FIXTURES, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();

let counter = 0;
/** Deterministic shared-file names, like the runtime's random ones (16 hex digits). */
const random16 = () => (counter++).toString(16).padStart(16, '0');

/** All requests of the pod in the order the runtime sends them. */
function podRequests(
  pod: Pod,
  change?: { file: string; edit: (s: OciSpec) => void },
): { file: string; requests: AgentRequest[] }[] {
  const [sandbox, ...containers] = pod.specs;
  const info = sandboxInfo(sandbox.spec, pod.host);
  const target = (id: string): ContainerTarget => ({
    sandboxId: info.sandboxId,
    containerId: id,
    shmSize: info.shmSize,
    random16,
  });
  const specOf = (s: Pod['specs'][number]) => {
    const spec = JSON.parse(s.text) as OciSpec;
    if (change?.file === s.file) change.edit(spec);
    return spec;
  };
  return [
    {
      file: sandbox.file,
      requests: [
        sandboxRequest(specOf(sandbox), pod.host),
        ...containerRequests(specOf(sandbox), target(sandbox.id), pod.host),
      ],
    },
    ...containers.map((c) => ({ file: c.file, requests: containerRequests(specOf(c), target(c.id), pod.host) })),
  ];
}

/** Evaluate in order on one engine; returns the first denial (with the state it was evaluated in). */
function run(pod: Pod, groups: { file: string; requests: AgentRequest[] }[]) {
  const engine = PolicyEngine.forPolicyText(pod.policy);
  try {
    const allowed: string[] = [];
    for (const g of groups)
      for (const r of g.requests) {
        const state = engine.pstate;
        const res = engine.evaluate(r.name, r.body);
        if (!res.allowed) return { allowed, denied: { file: g.file, request: r, reason: res.reason ?? '', state } };
        allowed.push(`${g.file} ${r.name}`);
      }
    return { allowed, denied: undefined };
  } finally {
    engine.dispose();
  }
}

describe('agent requests from the OCI specs containerd wrote', () => {
  let root: string;
  before(() => {
    root = tempDir('kc-agentreq-');
  });
  after(() => removeDir(root));

  it('has captured pods to check', () => {
    assert.ok(fixturePods().length >= 4, `fixtures: ${fixturePods().join(', ')}`);
  });

  for (const name of fixturePods()) {
    describe(name, () => {
      let pod: Pod;
      before(() => {
        pod = loadPod(name, join(root, name));
      });

      it('every spec carries the initdata annotation generate wrote (pod_annotations)', () => {
        for (const s of pod.specs) assert.equal(s.spec.annotations?.[INITDATA_ANNOTATION], pod.annotation, s.file);
      });

      it("the pause container's two identical /dev/shm mounts (containerd 1.6, Kata's handleShm) go as sent and are allowed", () => {
        const sent = podRequests(pod)[0]!.requests.find((r) => r.name === 'CreateContainerRequest')!;
        const shm = (sent.body.OCI as { Mounts: { destination: string }[] }).Mounts.filter(
          (m) => m.destination === '/dev/shm',
        );
        assert.equal(shm.length, 2);
        assert.deepEqual(shm[0], shm[1]);
      });

      it('the requests of the whole pod are allowed by its policy, state carried across', () => {
        const groups = podRequests(pod);
        const r = run(pod, groups);
        assert.equal(r.denied, undefined, r.denied && `${r.denied.file} ${r.denied.request.name}: ${r.denied.reason}`);
        const kinds = groups.flatMap((g) => g.requests.map((x) => x.name));
        assert.equal(kinds[0], 'CreateSandboxRequest');
        assert.equal(kinds.filter((k) => k === 'CreateContainerRequest').length, pod.specs.length);
        assert.ok(kinds.includes('CopyFileRequest'), 'the runtime copies hosts, hostname, resolv.conf in');
      });

      const tampered: { what: string; field: RegExp; edit: (s: OciSpec) => void }[] = [
        {
          what: 'the command',
          field: /^OCI\.Process\.Args/,
          edit: (s) => void (s.process.args = ['/bin/sh', '-c', 'id']),
        },
        {
          what: 'an environment variable',
          field: /^OCI\.Process\.Env/,
          edit: (s) => void (s.process.env = [...(s.process.env ?? []), 'LD_PRELOAD=/tmp/x.so']),
        },
        {
          what: 'the image',
          field: /^storages\[0\]\.source$/,
          edit: (s) => {
            const a = s.annotations ?? {};
            a['io.kubernetes.cri.image-name'] = `registry.example/evil@sha256:${'e'.repeat(64)}`;
          },
        },
        {
          what: 'mounts (a host directory added)',
          field: /^OCI\.Mounts/,
          edit: (s) => {
            const dir = join(pod.root, 'host-data');
            mkdirSync(dir, { recursive: true });
            writeFileSync(join(dir, 'id_rsa'), 'key');
            s.mounts?.push({ destination: '/host', type: 'bind', source: dir, options: ['rbind', 'rprivate', 'rw'] });
          },
        },
        {
          what: 'the capabilities',
          field: /^OCI\.Process\.Capabilities/,
          edit: (s) => {
            const c = s.process.capabilities ?? {};
            for (const k of ['bounding', 'effective', 'permitted'] as const) c[k] = [...(c[k] ?? []), 'CAP_SYS_ADMIN'];
          },
        },
        {
          what: 'the user',
          field: /^OCI\.Process\.User/,
          edit: (s) => void (s.process.user.uid = s.process.user.uid === 0 ? 1000 : 0),
        },
      ];
      it('a bind of the host root is refused before any request: the runtime cannot copy it in', () => {
        const target = pod.specs.at(-1)!;
        assert.throws(
          () =>
            podRequests(pod, {
              file: target.file,
              edit: (s) => void s.mounts?.push({ destination: '/host', type: 'bind', source: '/', options: ['rbind'] }),
            }),
          /cannot copy \/ into the guest.*mounts\[\/host\]|mounts\[\/host\].*cannot copy \//,
        );
      });

      for (const t of tampered) {
        it(`a container whose ${t.what} changed after generate is denied, the reason naming the field`, () => {
          const target = pod.specs.at(-1)!;
          const r = run(pod, podRequests(pod, { file: target.file, edit: t.edit }));
          assert.ok(r.denied, 'the tampered spec was allowed');
          assert.equal(r.denied.file, target.file);
          assert.equal(r.denied.request.name, 'CreateContainerRequest');
          const fields = explainRequest(pod.data, 'CreateContainerRequest', r.denied.request.body, r.denied.state);
          assert.ok(
            fields.some((f) => t.field.test(f.field)),
            `explainRequest named ${JSON.stringify(fields.map((f) => f.field))}, reason: ${r.denied.reason}`,
          );
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------

const SID = 'a'.repeat(64);
const CID = 'b'.repeat(64);

function minimalSpec(kind: 'sandbox' | 'container', extra: Partial<OciSpec> = {}): OciSpec {
  return {
    ociVersion: '1.0.2-dev',
    process: { user: { uid: 0, gid: 0 }, args: ['/pause'], cwd: '/' },
    root: { path: 'rootfs', readonly: true },
    hostname: 'pod',
    linux: {
      namespaces: [
        { type: 'pid' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        { type: 'network', path: '/var/run/netns/cni-1' },
        { type: 'cgroup' },
      ],
    },
    annotations: {
      'io.kubernetes.cri.container-type': kind,
      'io.kubernetes.cri.sandbox-id': SID,
      ...(kind === 'container' ? { 'io.kubernetes.cri.image-name': 'r.example/app@sha256:' + 'c'.repeat(64) } : {}),
    },
    ...extra,
  };
}

describe('parseOciSpec', () => {
  const good = JSON.stringify(minimalSpec('sandbox'));
  const refuses = (bytes: string | Uint8Array, field: RegExp) =>
    assert.throws(
      () => parseOciSpec(bytes, 'config.json'),
      (err: Error) => {
        assert.match(err.message, /config\.json/);
        assert.match(err.message, field);
        return true;
      },
    );

  it('accepts a spec of the fields containerd writes', () => {
    assert.equal(parseOciSpec(good).process.args?.[0], '/pause');
  });
  it('refuses what is not one JSON object', () => {
    refuses('', /not one JSON document/);
    refuses(`${good}${good}`, /not one JSON document/);
    refuses('[]', /top level.*JSON object/);
    refuses('null', /top level.*JSON object/);
    refuses('"x"', /top level.*JSON object/);
  });
  it('refuses bytes that are not UTF-8 and specs over the size bound', () => {
    refuses(Buffer.from([0x7b, 0xff, 0x7d]), /not UTF-8/);
    refuses(' '.repeat(MAX_SPEC_BYTES + 1), /more than/);
  });
  it('names the field of the wrong type', () => {
    const s = minimalSpec('container');
    (s.process as unknown as { args: unknown[] }).args = ['/bin/app', 7];
    refuses(JSON.stringify(s), /process\.args\[1\].*must be a string/);
    const u = minimalSpec('container');
    (u.process.user as unknown as { uid: number }).uid = -1;
    refuses(JSON.stringify(u), /process\.user\.uid/);
    const m = minimalSpec('container', { mounts: [{ destination: '/x', options: 'rw' as unknown as string[] }] });
    refuses(JSON.stringify(m), /mounts\[0\]\.options.*list/);
  });
  it('refuses fields the OCI spec does not define (runc would match them case-insensitively)', () => {
    const s = JSON.parse(good);
    s.process.ARGS = ['/bin/sh'];
    refuses(JSON.stringify(s), /process\.ARGS.*not a field/);
    refuses(JSON.stringify({ ...JSON.parse(good), __proto__x: 1 }), /__proto__x/);
    refuses(good.replace('{', '{"__proto__":{"polluted":true},'), /__proto__.*not a field/);
  });
  it('requires the parts every runtime needs', () => {
    const s = JSON.parse(good);
    delete s.process.cwd;
    refuses(JSON.stringify(s), /process\.cwd.*missing/);
    refuses(JSON.stringify({ ociVersion: '1' }), /process.*missing/);
  });
});

describe('the rewrites of the Kata runtime', () => {
  let dir: string;
  before(() => {
    dir = tempDir('kc-agentreq-unit-');
  });
  after(() => removeDir(dir));

  const create = (reqs: AgentRequest[]) =>
    reqs.find((r) => r.name === 'CreateContainerRequest')!.body as Record<string, any>;

  it('CreateSandboxRequest: hostname cut to 64, resolv.conf lines, the shm storage', () => {
    writeFileSync(join(dir, 'resolv.conf'), 'search ns.svc.cluster.local\nnameserver 10.96.0.10\n');
    mkdirSync(join(dir, 'shm'), { recursive: true });
    const spec = minimalSpec('sandbox', {
      hostname: 'h'.repeat(70),
      mounts: [
        { destination: '/dev/shm', type: 'bind', source: join(dir, 'shm'), options: ['rbind', 'ro'] },
        { destination: '/etc/resolv.conf', type: 'bind', source: join(dir, 'resolv.conf'), options: ['rbind', 'ro'] },
      ],
    });
    const host: HostView = { ...fsHost(), filesystemSize: () => 67108864 };
    const body = sandboxRequest(spec, host).body as Record<string, any>;
    assert.equal(body.hostname, 'h'.repeat(64));
    assert.deepEqual(body.dns, ['search ns.svc.cluster.local', 'nameserver 10.96.0.10', '']);
    assert.equal(body.sandbox_id, SID);
    assert.deepEqual(
      body.storages.map((s: any) => [s.driver, s.source, s.mount_point, s.options.at(-1)]),
      [['ephemeral', 'shm', '/run/kata-containers/sandbox/shm', 'size=67108864']],
    );
  });

  it('namespaces: network and cgroup dropped, paths emptied, pid removed (shared when it had a path)', () => {
    const spec = minimalSpec('container');
    spec.linux.namespaces = [
      { type: 'pid', path: '/proc/42/ns/pid' },
      { type: 'ipc', path: '/proc/42/ns/ipc' },
      { type: 'uts', path: '/proc/42/ns/uts' },
      { type: 'mount' },
      { type: 'network', path: '/var/run/netns/cni-1' },
    ];
    const body = create(containerRequests(spec, { sandboxId: SID, containerId: CID }, fsHost()));
    assert.deepEqual(body.OCI.Linux.Namespaces, [
      { Type: 'ipc', Path: '' },
      { Type: 'uts', Path: '' },
      { Type: 'mount', Path: '' },
    ]);
    assert.equal(body.sandbox_pidns, true);
    const own = create(containerRequests(minimalSpec('container'), { sandboxId: SID, containerId: CID }, fsHost()));
    assert.equal(own.sandbox_pidns, false);
  });

  it('guest pull: the image storage, the root below /run/kata-containers, the runtime annotations', () => {
    const body = create(containerRequests(minimalSpec('container'), { sandboxId: SID, containerId: CID }, fsHost()));
    const [pull] = body.storages;
    assert.equal(pull.driver, 'image_guest_pull');
    assert.equal(pull.source, 'r.example/app@sha256:' + 'c'.repeat(64));
    assert.equal(pull.mount_point, `/run/kata-containers/${CID}/rootfs`);
    assert.equal(body.OCI.Root.Path, pull.mount_point);
    const meta = JSON.parse(pull.driver_options[0].slice('image_guest_pull='.length)).metadata;
    assert.equal(meta['io.katacontainers.pkg.oci.container_type'], 'pod_container');
    assert.equal(
      body.OCI.Annotations['io.katacontainers.pkg.oci.bundle_path'],
      `/run/containerd/io.containerd.runtime.v2.task/k8s.io/${CID}`,
    );
    const pause = create(containerRequests(minimalSpec('sandbox'), { sandboxId: SID, containerId: SID }, fsHost()));
    assert.equal(pause.storages[0].source, 'pause');
    assert.equal(pause.OCI.Annotations['io.katacontainers.pkg.oci.container_type'], 'pod_sandbox');
  });

  it('a container without an image name, or of another sandbox, gets no requests', () => {
    const s = minimalSpec('container');
    delete s.annotations!['io.kubernetes.cri.image-name'];
    assert.throws(() => containerRequests(s, { sandboxId: SID, containerId: CID }, fsHost()), /image-name/);
    assert.throws(
      () => containerRequests(minimalSpec('container'), { sandboxId: 'd'.repeat(64), containerId: CID }, fsHost()),
      /sandbox-id/,
    );
    assert.throws(
      () => containerRequests(minimalSpec('sandbox'), { sandboxId: SID, containerId: CID }, fsHost()),
      /sandbox id/,
    );
    const t = minimalSpec('container');
    t.annotations!['io.kubernetes.cri.container-type'] = 'podsandbox';
    assert.throws(() => containerRequests(t, { sandboxId: SID, containerId: CID }, fsHost()), /container-type/);
  });

  it('shared files are copied (CopyFileRequest per entry, WalkDir order) and mounted from the copy', () => {
    const sa = join(dir, 'sa');
    mkdirSync(join(sa, '..2026_12_02'), { recursive: true });
    writeFileSync(join(sa, '..2026_12_02', 'token'), 'x'.repeat(10));
    symlinkSync('..2026_12_02', join(sa, '..data'));
    symlinkSync('..data/token', join(sa, 'token'));
    writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n');
    const spec = minimalSpec('container', {
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc' },
        { destination: '/etc/hosts', type: 'bind', source: join(dir, 'hosts'), options: ['rbind', 'rprivate', 'rw'] },
        {
          destination: '/var/run/secrets/kubernetes.io/serviceaccount',
          type: 'bind',
          source: sa,
          options: ['rbind', 'rprivate', 'ro'],
        },
        { destination: '/sys/fs/cgroup', type: 'bind', source: '/sys/fs/cgroup', options: ['rbind'] },
      ],
    });
    let n = 0;
    const reqs = containerRequests(
      spec,
      { sandboxId: SID, containerId: CID, random16: () => String(++n).repeat(16) },
      fsHost(),
    );
    const copies = reqs.filter((r) => r.name === 'CopyFileRequest').map((r) => r.body as Record<string, any>);
    const shared = '/run/kata-containers/shared/containers';
    assert.deepEqual(
      copies.map((c) => c.path),
      [
        `${shared}/${CID}-${'1'.repeat(16)}-hosts`,
        `${shared}/${CID}-${'2'.repeat(16)}-serviceaccount`,
        `${shared}/${CID}-${'2'.repeat(16)}-serviceaccount/..2026_12_02`,
        `${shared}/${CID}-${'2'.repeat(16)}-serviceaccount/..2026_12_02/token`,
        `${shared}/${CID}-${'2'.repeat(16)}-serviceaccount/..data`,
        `${shared}/${CID}-${'2'.repeat(16)}-serviceaccount/token`,
      ],
    );
    assert.equal(copies[0].file_size, 20);
    assert.deepEqual(Buffer.from(copies[4].data).toString(), '..2026_12_02');
    const body = create(reqs);
    const src = Object.fromEntries(body.OCI.Mounts.map((m: any) => [m.destination, m.source]));
    assert.equal(src['/etc/hosts'], copies[0].path);
    assert.equal(src['/var/run/secrets/kubernetes.io/serviceaccount'], copies[1].path);
    assert.equal(src['/sys/fs/cgroup'], '/sys/fs/cgroup', 'system mounts stay as they are');
    assert.equal(reqs.at(-1)!.name, 'StartContainerRequest');
  });

  it('emptyDirs: a guest directory (local) or a guest tmpfs (medium Memory) with the volume group; /dev/shm is the sandbox shm', () => {
    const pods = join(dir, 'pods', 'u', 'volumes', 'kubernetes.io~empty-dir');
    mkdirSync(join(pods, 'cache'), { recursive: true });
    mkdirSync(join(pods, 'secrets'), { recursive: true });
    const host: HostView = {
      ...fsHost(),
      volume: (p) => ({ gid: p.endsWith('secrets') ? 2000 : 0, tmpfs: p.endsWith('secrets') }),
    };
    const spec = minimalSpec('container', {
      mounts: [
        { destination: '/cache', type: 'bind', source: join(pods, 'cache'), options: ['rbind', 'rprivate', 'rw'] },
        { destination: '/contrast', type: 'bind', source: join(pods, 'secrets'), options: ['rbind', 'rprivate', 'rw'] },
        { destination: '/dev/shm', type: 'bind', source: '/run/containerd/sandboxes/x/shm', options: ['rbind', 'ro'] },
      ],
    });
    const body = create(containerRequests(spec, { sandboxId: SID, containerId: CID }, host));
    assert.deepEqual(
      body.OCI.Mounts.map((m: any) => [m.destination, m.type_, m.source, m.options.join(',')]),
      [
        ['/cache', 'local', `/run/kata-containers/shared/containers/${SID}/rootfs/local/cache`, 'rbind,rprivate,rw'],
        ['/contrast', 'bind', '/run/kata-containers/sandbox/ephemeral/secrets', 'rbind,rprivate,rw'],
        ['/dev/shm', 'bind', '/run/kata-containers/sandbox/shm', 'rbind'],
      ],
    );
    assert.deepEqual(
      body.storages.slice(1).map((s: any) => [s.driver, s.source, s.fstype, s.options.join(','), s.mount_point]),
      [
        ['ephemeral', 'tmpfs', 'tmpfs', 'fsgid=2000', '/run/kata-containers/sandbox/ephemeral/secrets'],
        ['local', 'local', 'local', 'mode=0777', `/run/kata-containers/shared/containers/${SID}/rootfs/local/cache`],
      ],
    );
  });

  it('dropped by the runtime: hooks, seccomp, SELinux labels, device and I/O limits, VFIO character devices', () => {
    const spec = minimalSpec('container', {
      hooks: { prestart: [{ path: '/bin/true' }] },
      linux: {
        ...minimalSpec('container').linux,
        seccomp: { defaultAction: 'SCMP_ACT_ERRNO' },
        mountLabel: 'system_u:object_r:container_file_t:s0',
        resources: { devices: [{ allow: false, access: 'rwm' }], pids: { limit: 10 }, cpu: { shares: 2, cpus: '0-1' } },
        devices: [
          { type: 'c', path: '/dev/vfio/12', major: 240, minor: 1 },
          { type: 'c', path: '/dev/fuse', major: 10, minor: 229 },
        ],
      },
    });
    spec.process.selinuxLabel = 'system_u:system_r:container_t:s0';
    const oci = create(containerRequests(spec, { sandboxId: SID, containerId: CID }, fsHost())).OCI;
    assert.equal(oci.Hooks, null);
    assert.equal(oci.Linux.Seccomp, null);
    assert.equal(oci.Process.SelinuxLabel, '');
    assert.equal(oci.Linux.MountLabel, '');
    assert.deepEqual(oci.Linux.Resources.Devices, []);
    assert.equal(oci.Linux.Resources.Pids, null);
    assert.equal(oci.Linux.Resources.CPU.Cpus, '');
    assert.equal(oci.Linux.Resources.CPU.Shares, 2);
    assert.deepEqual(
      oci.Linux.Devices.map((d: any) => d.Path),
      ['/dev/fuse'],
    );
  });

  it('hostile host trees: a walk past its bound and a resolv.conf that is not a file fail closed', () => {
    const big = join(dir, 'big');
    mkdirSync(big, { recursive: true });
    for (let i = 0; i < 5; i++) writeFileSync(join(big, `f${i}`), '');
    const spec = minimalSpec('container', {
      mounts: [{ destination: '/data', type: 'bind', source: big, options: ['rbind', 'rprivate', 'ro'] }],
    });
    assert.throws(
      () => containerRequests(spec, { sandboxId: SID, containerId: CID }, fsHost({ maxEntries: 3 })),
      /cannot copy .*big into the guest: .*more than 3 entries.*mounts\[\/data\]|mounts\[\/data\].*more than 3 entries/,
    );
    const sandbox = minimalSpec('sandbox', {
      mounts: [{ destination: '/etc/resolv.conf', type: 'bind', source: big, options: ['rbind', 'ro'] }],
    });
    assert.throws(() => sandboxRequest(sandbox, fsHost()), /not a regular file/);
  });

  it('an annotation named __proto__ stays data: no prototype is changed', () => {
    const text = JSON.stringify(minimalSpec('container')).replace(
      '"annotations":{',
      '"annotations":{"__proto__":"{\\"polluted\\":1}",',
    );
    const spec = parseOciSpec(text);
    const body = create(containerRequests(spec, { sandboxId: SID, containerId: CID }, fsHost()));
    assert.ok(Object.hasOwn(body.OCI.Annotations, '__proto__'));
    assert.equal(Object.getPrototypeOf(body.OCI.Annotations), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('the guest-pull metadata is Go JSON: sorted keys, HTML characters escaped', () => {
    const spec = minimalSpec('container');
    spec.annotations!['z.example/b'] = '<a&b>';
    spec.annotations!['a.example/a'] = 'x';
    const pull = create(containerRequests(spec, { sandboxId: SID, containerId: CID }, fsHost())).storages[0];
    const opt: string = pull.driver_options[0];
    assert.ok(opt.includes('\\u003ca\\u0026b\\u003e'), opt);
    assert.ok(opt.indexOf('a.example/a') < opt.indexOf('io.kubernetes.cri.container-type'), opt);
  });
});

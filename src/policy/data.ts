/**
 * Policy data per pod: for the pause container and every (init) container, what the Kata
 * runtime will send in CreateContainerRequest, derived from the pod spec, the image configs
 * and the platform settings.
 */
import type { ResolvedImage } from '../images/types.js';
import { UserError } from '../util/errors.js';
import type { PolicySettings } from './settings.js';
import type { ContainerPolicy, Mount, PolicyData, Storage } from './types.js';
import {
  compact, type DynContext, escapeRegex, expand, isLiteral, literalText, toPattern, toSample, type Value,
} from './values.js';

export interface PodPolicyInput {
  workload: { apiVersion: string; kind: string; name: string; namespace: string };
  podMetadata: { name?: string; generateName?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  podSpec: Record<string, unknown>;
  image: (reference: string) => ResolvedImage;
  pauseImage: ResolvedImage;
  configMaps: Record<string, unknown>[];
  secrets: Record<string, unknown>[];
  settings: PolicySettings;
}

/** Concrete values a real runtime would send, used by `policy check` to synthesize requests. */
export interface PodSamples {
  podName: string;
  namespace: string;
  containers: { name: string; args: string[]; env: string[] }[];
}

type Obj = Record<string, unknown>;
const INITDATA_ANNOTATION = 'io.katacontainers.config.hypervisor.cc_init_data';
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The characters Kubernetes uses for generated name suffixes. */
const SUFFIX = '[bcdfghjklmnpqrstvwxz2456789]+';

function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function int(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

/** Dotted path of the pod spec inside the workload, for error messages. */
export function podSpecPath(kind: string): string {
  if (kind === 'Pod') return 'spec';
  if (kind === 'CronJob') return 'spec.jobTemplate.spec.template.spec';
  return 'spec.template.spec';
}

/** Regex body of the names the pods of this workload get, plus one example. */
export function podNamePattern(input: PodPolicyInput): { regex: string; sample: string } {
  const { kind, name } = input.workload;
  const n = escapeRegex(name);
  switch (kind) {
    case 'Pod': {
      const meta = input.podMetadata;
      if (meta.name) return { regex: escapeRegex(meta.name), sample: meta.name };
      if (meta.generateName) return { regex: `${escapeRegex(meta.generateName)}${SUFFIX}`, sample: `${meta.generateName}x7k2q` };
      return { regex: n, sample: name };
    }
    case 'Deployment': return { regex: `${n}-${SUFFIX}-${SUFFIX}`, sample: `${name}-5d8f7b9c4-x2k9q` };
    case 'DaemonSet': case 'ReplicaSet': case 'ReplicationController':
      return { regex: `${n}-${SUFFIX}`, sample: `${name}-b7x4z` };
    case 'StatefulSet': return { regex: `${n}-[0-9]+`, sample: `${name}-0` };
    case 'Job': return { regex: `${n}(-[0-9]+)?-${SUFFIX}`, sample: `${name}-q8m2d` };
    case 'CronJob': return { regex: `${n}-[0-9]+(-[0-9]+)?-${SUFFIX}`, sample: `${name}-29012345-k4t9w` };
    default:
      throw new UserError(`${kind} is not a workload kind that gets a policy`, { field: 'kind' });
  }
}

interface PasswdEntry { name: string; uid: number; gid: number }
interface GroupEntry { name: string; gid: number; members: string[] }

function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || line.startsWith('#')) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (Number.isInteger(uid) && Number.isInteger(gid) && f[2] !== '' && f[3] !== '') out.push({ name: f[0], uid, gid });
  }
  return out;
}

function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#')) continue;
    const gid = Number(f[2]);
    if (f[2] !== '' && Number.isInteger(gid)) out.push({ name: f[0], gid, members: f[3].split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

class Builder {
  readonly ctx: DynContext;
  readonly ns: string | undefined;
  readonly spec: Obj;
  readonly specPath: string;
  readonly s: PolicySettings;
  readonly privilegedAny: boolean;

  constructor(readonly input: PodPolicyInput) {
    const pattern = podNamePattern(input);
    this.ns = input.workload.namespace || undefined;
    this.ctx = { podNameRegex: pattern.regex, podNameSample: pattern.sample, namespace: this.ns };
    this.spec = input.podSpec;
    this.specPath = podSpecPath(input.workload.kind);
    this.s = input.settings;
    this.privilegedAny = [...arr(this.spec.containers), ...arr(this.spec.initContainers)]
      .some((c) => obj(obj(c)?.securityContext)?.privileged === true);
  }

  fail(message: string, field: string): never {
    throw new UserError(message, { field: `${this.specPath}.${field}` });
  }

  fill(pattern: string): string {
    return pattern.split('$(cpath)').join(this.s.containerPath).split('$(spath)').join(this.s.sandboxPath);
  }

  // --- ConfigMaps and Secrets -----------------------------------------------------------
  findSource(list: Obj[], name: string): Obj | undefined {
    return list.find((o) => {
      const meta = obj(o.metadata);
      if (meta?.name !== name) return false;
      const ns = str(meta.namespace);
      return ns === undefined || this.ns === undefined || ns === this.ns;
    });
  }

  sourceData(kind: 'ConfigMap' | 'Secret', o: Obj, field: string): Map<string, string> {
    const out = new Map<string, string>();
    if (kind === 'ConfigMap') {
      for (const [k, v] of Object.entries(obj(o.data) ?? {})) out.set(k, String(v));
      return out;
    }
    for (const [k, v] of Object.entries(obj(o.data) ?? {})) {
      const bytes = Buffer.from(String(v), 'base64');
      const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
      if (text.includes('\ufffd')) this.fail(`Secret key ${k} is not UTF-8 text and cannot be an environment variable`, field);
      out.set(k, text);
    }
    for (const [k, v] of Object.entries(obj(o.stringData) ?? {})) out.set(k, String(v));
    return out;
  }

  // --- Environment ---------------------------------------------------------------------
  /** Kubernetes env of a container (envFrom, then env), as name → value in definition order. */
  kubeEnv(c: Obj, cpath: string): Map<string, Value> {
    const env = new Map<string, Value>();
    arr(c.envFrom).forEach((raw, i) => {
      const src = obj(raw) ?? {};
      const field = `${cpath}.envFrom[${i}]`;
      const prefix = str(src.prefix) ?? '';
      const cm = obj(src.configMapRef);
      const sec = obj(src.secretRef);
      const ref = cm ?? sec;
      if (!ref) this.fail('envFrom needs configMapRef or secretRef', field);
      const kind = cm ? 'ConfigMap' : 'Secret';
      const name = str(ref.name) ?? '';
      const found = this.findSource(cm ? this.input.configMaps : this.input.secrets, name);
      if (!found) {
        if (ref.optional === true) return;
        this.fail(`${kind} ${name} is not in the input; add it to the input stream so its values can be pinned`, `${field}.${cm ? 'configMapRef' : 'secretRef'}`);
      }
      for (const [k, v] of [...this.sourceData(kind, found, field)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        env.set(prefix + k, [v]);
      }
    });
    arr(c.env).forEach((raw, i) => {
      const e = obj(raw) ?? {};
      const field = `${cpath}.env[${i}]`;
      const name = str(e.name);
      if (!name) this.fail('env entry without a name', field);
      const vf = obj(e.valueFrom);
      if (!vf) {
        env.set(name, expand(str(e.value) ?? '', (n) => env.get(n)));
        return;
      }
      const v = this.valueFrom(vf, `${field}.valueFrom`, c);
      if (v !== undefined) env.set(name, v);
    });
    return env;
  }

  valueFrom(vf: Obj, field: string, c: Obj): Value | undefined {
    const labels = this.input.podMetadata.labels ?? {};
    const annotations = this.input.podMetadata.annotations ?? {};
    const fr = obj(vf.fieldRef);
    if (fr) {
      const path = str(fr.fieldPath) ?? '';
      const keyed = /^metadata\.(labels|annotations)\['([^']*)'\]$/.exec(path) ?? /^metadata\.(labels|annotations)\["([^"]*)"\]$/.exec(path);
      if (keyed) {
        const map = keyed[1] === 'labels' ? labels : annotations;
        // Controllers add labels (pod-template-hash, …) the manifest does not show.
        return keyed[2] in map && keyed[2] !== INITDATA_ANNOTATION ? [map[keyed[2]]] : [{ dyn: 'any' }];
      }
      switch (path) {
        case 'metadata.name': return [{ dyn: 'podName' }];
        case 'metadata.namespace': return this.ns !== undefined ? [this.ns] : [{ dyn: 'namespace' }];
        case 'metadata.uid': return [{ dyn: 'podUid' }];
        case 'metadata.labels': case 'metadata.annotations': return [{ dyn: 'any' }];
        case 'spec.nodeName': return [{ dyn: 'nodeName' }];
        case 'spec.serviceAccountName':
          return [str(this.spec.serviceAccountName) ?? str(this.spec.serviceAccount) ?? 'default'];
        case 'status.hostIP': return [{ dyn: 'hostIP' }];
        case 'status.hostIPs': return [{ dyn: 'hostIPs' }];
        case 'status.podIP': return [{ dyn: 'podIP' }];
        case 'status.podIPs': return [{ dyn: 'podIPs' }];
        default: this.fail(`fieldRef ${JSON.stringify(path)} is not supported`, `${field}.fieldRef.fieldPath`);
      }
    }
    if (obj(vf.resourceFieldRef)) return [{ dyn: 'resource' }];
    void c;
    for (const [key, kind, list] of [
      ['configMapKeyRef', 'ConfigMap', this.input.configMaps],
      ['secretKeyRef', 'Secret', this.input.secrets],
    ] as const) {
      const ref = obj(vf[key]);
      if (!ref) continue;
      const name = str(ref.name) ?? '';
      const k = str(ref.key) ?? '';
      const found = this.findSource(list, name);
      const data = found ? this.sourceData(kind, found, `${field}.${key}`) : undefined;
      if (data?.has(k)) return [data.get(k) as string];
      if (ref.optional === true) return undefined;
      this.fail(found ? `${kind} ${name} has no key ${JSON.stringify(k)}` : `${kind} ${name} is not in the input; add it to the input stream so its value can be pinned`, `${field}.${key}`);
    }
    this.fail('valueFrom has no supported source (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef)', field);
  }

  // --- Users and groups ------------------------------------------------------------------
  user(c: Obj, image: ResolvedImage, pause: boolean, cpath: string): { UID: number; GID: number; AdditionalGids: number[] } {
    const podSc = obj(this.spec.securityContext) ?? {};
    const sc = pause ? {} : obj(c.securityContext) ?? {};
    const passwd = parsePasswd(image.passwd);
    const groups = parseGroup(image.group);
    const imageUser = image.config.User ?? '';
    const [userPart, groupPart] = imageUser.split(':', 2);
    let uid = 0;
    let imageGid: number | undefined;
    if (userPart) {
      if (/^[0-9]+$/.test(userPart)) uid = Number(userPart);
      else uid = passwd.find((p) => p.name === userPart)?.uid ?? 0;
    }
    if (pause && groupPart) {
      imageGid = /^[0-9]+$/.test(groupPart) ? Number(groupPart) : groups.find((g) => g.name === groupPart)?.gid;
    }
    const runAsUser = int(sc.runAsUser) ?? int(podSc.runAsUser);
    const runAsGroup = int(sc.runAsGroup) ?? int(podSc.runAsGroup);
    if (runAsUser !== undefined) uid = runAsUser;
    const entry = passwd.find((p) => p.uid === uid);
    const gid = runAsGroup ?? imageGid ?? entry?.gid ?? 0;
    const extra = new Set<number>([gid]);
    const supplemental = arr(podSc.supplementalGroups).map(int).filter((g): g is number => g !== undefined);
    const fsGroup = int(podSc.fsGroup);
    const podGroups = [...supplemental, ...(fsGroup !== undefined ? [fsGroup] : [])];
    const explicitUser = runAsUser !== undefined || runAsGroup !== undefined;
    if (!pause || (!imageUser && !explicitUser)) podGroups.forEach((g) => extra.add(g));
    const membership = new Set<number>();
    if (!pause && entry) for (const g of groups) if (g.members.includes(entry.name) && g.name !== entry.name) membership.add(g.gid);
    if (!pause) {
      // With guest pull the host never sees /etc/passwd or /etc/group, so it can only send what
      // the pod spec (and a numeric image USER) says. Anything the image files would add makes
      // the runtime's request differ from the image's intent: ask for an explicit setting.
      const hostGid = runAsGroup ?? 0;
      const missing: string[] = [];
      if (userPart && !/^[0-9]+$/.test(userPart) && runAsUser === undefined && uid !== 0) missing.push(`runAsUser: ${uid}`);
      if (gid !== hostGid) missing.push(`runAsGroup: ${gid}`);
      const extraGroups = [...membership].filter((g) => !extra.has(g));
      if (extraGroups.length > 0) missing.push(`supplementalGroups: [${[...new Set([...supplemental, ...extraGroups])].sort((a, b) => a - b).join(', ')}]`);
      if (missing.length > 0) {
        this.fail(`the image's user database gives this container ${missing.join(', ')}, which the runtime cannot know when images are pulled inside the guest; set ${missing.join(', ')} in the securityContext`, `${cpath}.securityContext`);
      }
    }
    return { UID: uid, GID: gid, AdditionalGids: [...extra].sort((a, b) => a - b) };
  }

  // --- Capabilities ------------------------------------------------------------------------
  capabilities(c: Obj, pause: boolean) {
    const sc = pause ? {} : obj(c.securityContext) ?? {};
    const privileged = sc.privileged === true;
    let caps = new Set(privileged ? this.s.privilegedCaps : this.s.defaultCaps);
    const capSpec = obj(sc.capabilities) ?? {};
    const norm = (x: unknown) => { const n = String(x).toUpperCase(); return n.startsWith('CAP_') ? n : `CAP_${n}`; };
    for (const d of arr(capSpec.drop).map(norm)) {
      if (d === 'CAP_ALL') caps = new Set();
      else caps.delete(d);
    }
    for (const a of arr(capSpec.add).map(norm)) {
      if (a === 'CAP_ALL') this.s.privilegedCaps.forEach((x) => caps.add(x));
      else caps.add(a);
    }
    const list = this.s.privilegedCaps.filter((x) => caps.has(x)).concat([...caps].filter((x) => !this.s.privilegedCaps.includes(x)).sort());
    return { Ambient: [] as string[], Bounding: list, Effective: list, Inheritable: [] as string[], Permitted: list };
  }

  // --- Mounts and storages -------------------------------------------------------------------
  volumeMounts(c: Obj, cpath: string, mounts: Mount[], storages: Storage[]): void {
    const volumes = arr(this.spec.volumes).map((v) => obj(v) ?? {});
    const fsGroup = int(obj(this.spec.securityContext)?.fsGroup);
    arr(c.volumeMounts).forEach((raw, i) => {
      const vm = obj(raw) ?? {};
      const field = `${cpath}.volumeMounts[${i}]`;
      const name = str(vm.name) ?? '';
      const dest = str(vm.mountPath) ?? '';
      if (!dest.startsWith('/')) this.fail('mountPath must be an absolute path', `${field}.mountPath`);
      if (vm.subPath || vm.subPathExpr) this.fail('subPath mounts are not supported in confidential pods; mount the whole volume', `${field}.subPath`);
      const vIndex = volumes.findIndex((v) => v.name === name);
      if (vIndex < 0) this.fail(`no volume named ${JSON.stringify(name)} in the pod`, `${field}.name`);
      const vol = volumes[vIndex];
      const vfield = `volumes[${vIndex}]`;
      const propagation = vm.mountPropagation === 'Bidirectional' ? 'rshared' : vm.mountPropagation === 'HostToContainer' ? 'rslave' : 'rprivate';
      const rw = vm.readOnly === true ? 'ro' : 'rw';
      const base = dest.split('/').filter(Boolean).pop() ?? '';
      const shared = `${this.s.containerPath}/$(bundle-id)-$(random16)-${base}`;
      if (obj(vol.emptyDir)) {
        if (obj(vol.emptyDir)?.medium === 'Memory') {
          const path = `${this.s.sandboxPath}/ephemeral/${name}`;
          mounts.push({ destination: dest, source: path, type_: 'bind', options: ['rbind', propagation, rw] });
          pushUnique(storages, {
            driver: 'ephemeral', driver_options: [], source: 'tmpfs', fstype: 'tmpfs',
            options: fsGroup !== undefined ? [`fsgid=${fsGroup}`] : [], mount_point: path, fs_group: null, shared: false,
          });
        } else {
          const path = `${this.s.containerPath}/$(sandbox-id)/local/${name}`;
          mounts.push({ destination: dest, source: path, type_: 'local', options: ['rbind', propagation, rw] });
          pushUnique(storages, {
            driver: 'local', driver_options: [], source: 'local', fstype: 'local', options: ['mode=0777'],
            mount_point: path, fs_group: fsGroup !== undefined && fsGroup > 0 ? { group_id: fsGroup, group_change_policy: 0 } : null, shared: false,
          });
        }
      } else if (obj(vol.configMap) || obj(vol.secret) || obj(vol.projected) || obj(vol.downwardAPI)) {
        mounts.push({ destination: dest, source: shared, type_: 'bind', options: ['rbind', propagation, 'ro'] });
      } else if (obj(vol.persistentVolumeClaim)) {
        const ro = vm.readOnly === true || obj(vol.persistentVolumeClaim)?.readOnly === true ? 'ro' : 'rw';
        mounts.push({ destination: dest, source: shared, type_: 'bind', options: ['rbind', propagation, ro] });
      } else if (obj(vol.hostPath)) {
        const hostPath = str(obj(vol.hostPath)?.path) ?? '';
        if (!this.s.hostPath.allowed) {
          this.fail('hostPath volumes give the host control over files inside the confidential pod; set hostPath.allowed in settings.json to permit them', `${vfield}.hostPath`);
        }
        const bad = this.s.hostPath.forbiddenPrefixes.find((p) => hostPath === p.replace(/\/$/, '') || hostPath.startsWith(p));
        if (bad) this.fail(`hostPath ${hostPath} is under ${bad}, which settings.json forbids`, `${vfield}.hostPath.path`);
        mounts.push({ destination: dest, source: shared, type_: 'bind', options: ['rbind', propagation, rw] });
      } else {
        const type = Object.keys(vol).find((k) => k !== 'name') ?? '(none)';
        this.fail(`volume type ${type} is not supported in confidential pods (supported: emptyDir, configMap, secret, projected, downwardAPI, persistentVolumeClaim, hostPath)`, vfield);
      }
    });
  }

  containerdMounts(pause: boolean, privileged: boolean): Mount[] {
    const sysRw = privileged || (pause && this.privilegedAny) ? 'rw' : 'ro';
    const m: Mount[] = [
      { destination: '/proc', source: 'proc', type_: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', source: 'tmpfs', type_: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', source: 'devpts', type_: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/mqueue', source: 'mqueue', type_: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', source: 'sysfs', type_: 'sysfs', options: ['nosuid', 'noexec', 'nodev', sysRw] },
    ];
    if (!pause) m.push({ destination: '/sys/fs/cgroup', source: 'cgroup', type_: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', privileged ? 'rw' : 'ro'] });
    return m;
  }

  // --- One container -----------------------------------------------------------------------
  container(c: Obj, cpath: string, pause: boolean): { policy: ContainerPolicy; sample: { name: string; args: string[]; env: string[] } } {
    const name = pause ? '' : str(c.name) ?? '';
    const imageRef = pause ? this.input.pauseImage.reference : str(c.image) ?? '';
    if (!pause && !imageRef) this.fail('container has no image', `${cpath}.image`);
    let image: ResolvedImage;
    try {
      image = pause ? this.input.pauseImage : this.input.image(imageRef);
    } catch (err) {
      throw new UserError(`image ${imageRef} could not be resolved: ${(err as Error).message}`, { field: `${this.specPath}.${cpath}.image` });
    }
    const sc = pause ? {} : obj(c.securityContext) ?? {};
    const privileged = sc.privileged === true;
    const template = pause ? this.s.pauseContainer : this.s.otherContainer;

    // Environment: image env, overridden by the Kubernetes env, plus what the runtime adds.
    const kube = pause ? new Map<string, Value>() : this.kubeEnv(c, cpath);
    const env = new Map<string, Value>();
    const imageEnv = image.config.Env && image.config.Env.length > 0 ? image.config.Env : [DEFAULT_PATH];
    for (const e of imageEnv) {
      const eq = e.indexOf('=');
      env.set(eq < 0 ? e : e.slice(0, eq), [eq < 0 ? '' : e.slice(eq + 1)]);
    }
    for (const [k, v] of kube) env.set(k, v);
    if (!pause) {
      const hostname = str(this.spec.hostname);
      env.set('HOSTNAME', hostname ? [hostname] : [{ dyn: 'hostname' }]);
      if (c.tty === true) env.set('TERM', ['xterm']);
    }

    // Command line.
    const lookup = (n: string) => kube.get(n);
    const command = arr(c.command).map(String);
    const args = arr(c.args).map(String);
    const entrypoint = image.config.Entrypoint ?? [];
    const cmd = image.config.Cmd ?? [];
    let argv: Value[];
    if (pause) argv = [...entrypoint, ...cmd].map((a) => [a]);
    else if (command.length > 0) argv = [...command, ...args].map((a) => expand(a, lookup));
    else if (args.length > 0) argv = [...entrypoint.map((a) => [a] as Value), ...args.map((a) => expand(a, lookup))];
    else argv = [...entrypoint, ...cmd].map((a) => [a]);
    if (pause && argv.length === 0) argv = [['/pause']];
    if (argv.length === 0) this.fail('neither the pod spec nor the image defines a command to run', `${cpath}.command`);

    const Args: string[] = [];
    const ArgsDynamic: Record<string, string> = {};
    argv.forEach((a, i) => {
      const v = compact(a);
      Args.push(isLiteral(v) ? literalText(v) : toSample(v, this.ctx));
      if (!isLiteral(v)) ArgsDynamic[String(i)] = toPattern(v, this.ctx);
    });
    const Env: string[] = [];
    const EnvDynamic: Record<string, string> = {};
    for (const [k, v] of env) {
      if (isLiteral(v)) Env.push(`${k}=${literalText(v)}`);
      else EnvDynamic[k] = toPattern(compact([`${k}=`, ...v]), this.ctx);
    }

    // Exec commands of probes and hooks (kubelet expands only statically known variables).
    const staticLookup = (n: string) => { const v = kube.get(n); return v && isLiteral(v) ? v : undefined; };
    const exec: string[][] = [];
    if (!pause) {
      for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
        const cmdList = arr(obj(obj(c[probe])?.exec)?.command);
        if (cmdList.length > 0) exec.push(cmdList.map((a) => literalText(expand(String(a), staticLookup))));
      }
      for (const hook of ['postStart', 'preStop']) {
        const cmdList = arr(obj(obj(obj(c.lifecycle)?.[hook])?.exec)?.command);
        if (cmdList.length > 0) exec.push(cmdList.map((a) => literalText(expand(String(a), staticLookup))));
      }
    }

    // Mounts.
    const mounts = this.containerdMounts(pause, privileged);
    const readOnlyRoot = pause ? true : sc.readOnlyRootFilesystem === true;
    const declared = new Set(arr(c.volumeMounts).map((m) => str(obj(m)?.mountPath)));
    for (const t of template.mounts) {
      const m: Mount = { ...t, source: this.fill(t.source), options: [...t.options] };
      if (!pause) {
        if (m.destination === '/dev/termination-log') m.destination = str(c.terminationMessagePath) ?? m.destination;
        if (m.destination === '/var/run/secrets/kubernetes.io/serviceaccount' && this.spec.automountServiceAccountToken === false) continue;
        if ((m.destination === '/etc/hostname' || m.destination === '/etc/resolv.conf') && readOnlyRoot) {
          m.options = m.options.map((o) => (o === 'rw' ? 'ro' : o));
        }
      }
      if (declared.has(m.destination)) continue;
      mounts.push(m);
    }
    const storages: Storage[] = [];
    if (!pause) this.volumeMounts(c, cpath, mounts, storages);
    if (!pause) {
      const have = new Set(mounts.map((m) => m.destination));
      for (const v of Object.keys(image.config.Volumes ?? {}).sort()) {
        const dest = v.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
        if (have.has(dest)) continue;
        have.add(dest);
        const base = dest.split('/').filter(Boolean).pop() ?? '';
        mounts.push({ destination: dest, source: `${this.s.containerPath}/$(bundle-id)-$(random16)-${base}`, type_: 'bind', options: ['rbind', 'rprivate', 'rw'] });
      }
    }
    const seen = new Set<string>();
    for (const m of mounts) {
      if (seen.has(m.destination)) this.fail(`two mounts at ${m.destination}`, `${cpath}.volumeMounts`);
      seen.add(m.destination);
    }

    // Annotations (values are anchored regexes).
    const annotations: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.input.podMetadata.annotations ?? {})) {
      if (k === INITDATA_ANNOTATION) continue;
      annotations[k] = `^${escapeRegex(v)}$`;
    }
    annotations[INITDATA_ANNOTATION] = '$(any)';
    for (const [k, v] of Object.entries(template.annotations)) annotations[k] = this.fill(v);
    annotations['io.kubernetes.cri.sandbox-name'] = `^${this.ctx.podNameRegex}$`;
    annotations['io.kubernetes.cri.sandbox-namespace'] = this.ns ?? '$(dns)';
    if (!pause) {
      annotations['io.kubernetes.cri.container-name'] = name;
      annotations['io.kubernetes.container.terminationMessagePath'] = '/$(any)';
      annotations['io.kubernetes.container.terminationMessagePolicy'] = '^(File|FallbackToLogsOnError)$';
    }
    const sortedAnnotations = Object.fromEntries(Object.entries(annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

    // Linux.
    const podSc = obj(this.spec.securityContext) ?? {};
    const sysctls: Record<string, string> = { ...template.sysctls };
    for (const s of arr(podSc.sysctls)) {
      const so = obj(s);
      if (so && typeof so.name === 'string') sysctls[so.name] = String(so.value ?? '');
    }
    const namespaces = ['ipc', 'uts', 'mount']
      .filter((t) => !(pause && t === 'uts' && this.spec.hostNetwork === true))
      .map((Type) => ({ Type, Path: '' }));
    const devices = arr(c.volumeDevices).map((d) => str(obj(d)?.devicePath) ?? '');

    const digest = image.manifestDigest;
    const imageSource = pause ? this.s.pauseImageSource : `$(any)@${digest}`;
    if (!pause && !/^sha256:[0-9a-f]{64}$/.test(digest)) this.fail(`image ${imageRef} has no manifest digest`, `${cpath}.image`);

    const policy: ContainerPolicy = {
      name,
      image: pause ? image.pinned || image.reference : imageRef,
      image_source: imageSource,
      OCI: {
        Version: this.s.ociVersion,
        Process: {
          Terminal: !pause && c.tty === true,
          User: this.user(c, image, pause, cpath),
          Args,
          ArgsDynamic,
          Env,
          EnvDynamic,
          Cwd: (!pause && str(c.workingDir)) || image.config.WorkingDir || '/',
          Capabilities: this.capabilities(c, pause),
          NoNewPrivileges: pause ? true : !privileged && sc.allowPrivilegeEscalation === false,
        },
        Root: { Path: `${this.s.containerPath}/$(bundle-id)/rootfs`, Readonly: readOnlyRoot },
        Mounts: mounts,
        Annotations: sortedAnnotations,
        Linux: {
          Namespaces: namespaces,
          MaskedPaths: privileged ? [] : [...template.maskedPaths],
          ReadonlyPaths: privileged ? [] : [...template.readonlyPaths],
          Devices: devices.map((Path) => ({ Type: '', Path })),
          Sysctl: sysctls,
        },
      },
      storages,
      devices: devices.map((container_path) => ({ container_path })),
      sandbox_pidns: !pause && this.spec.shareProcessNamespace === true,
      exec_commands: exec,
    };
    const sample = {
      name,
      args: argv.map((a) => toSample(a, this.ctx)),
      env: [...env].map(([k, v]) => `${k}=${toSample(v, this.ctx)}`),
    };
    return { policy, sample };
  }

  build(): { data: PolicyData; samples: PodSamples } {
    if (this.spec.hostPID === true || this.spec.hostIPC === true) {
      this.fail('hostPID and hostIPC cannot be used in a confidential pod', this.spec.hostPID === true ? 'hostPID' : 'hostIPC');
    }
    const results = [this.container({}, '', true)];
    const names = new Set<string>();
    for (const list of ['initContainers', 'containers'] as const) {
      arr(this.spec[list]).forEach((raw, i) => {
        const c = obj(raw);
        const cpath = `${list}[${i}]`;
        if (!c) this.fail('container must be an object', cpath);
        const name = str(c.name);
        if (!name) this.fail('container has no name', `${cpath}.name`);
        if (names.has(name)) this.fail(`two containers named ${name}`, `${cpath}.name`);
        names.add(name);
        results.push(this.container(c, cpath, false));
      });
    }
    if (names.size === 0) this.fail('pod has no containers', 'containers');
    const s = this.s;
    const rd = s.requestDefaults;
    const svc = this.spec.enableServiceLinks === false ? 'KUBERNETES' : s.patterns.serviceName;
    const envRegex = rd.allowEnvRegex.map((r) => r
      .split('$(svc_name)').join(svc)
      .split('$(ip_p)').join(s.patterns.port)
      .split('$(ipv4_a)').join(s.patterns.ipv4)
      .split('$(dns_label)').join(s.patterns.dnsLabel));
    const data: PolicyData = {
      containers: results.map((r) => r.policy),
      common: { cpath: s.containerPath, spath: s.sandboxPath },
      sandbox: { storages: s.sandboxStorages.map((x) => ({ ...x })) },
      request_defaults: {
        CreateContainerRequest: { allow_env_regex: envRegex, service_links: this.spec.enableServiceLinks !== false },
        CopyFileRequest: rd.copyFileRegex.map((r) => this.fill(r.split('$(cpath)').join(escapeRegex(s.containerPath)))),
        ExecProcessRequest: { allowed_commands: rd.execAllowedCommands, regex: rd.execRegex },
        UpdateInterfaceRequest: {
          allow_raw_flags: rd.updateInterface.allowRawFlags, forbidden_names: rd.updateInterface.forbiddenNames,
          forbidden_hw_addrs: rd.updateInterface.forbiddenHwAddrs,
        },
        UpdateRoutesRequest: {
          forbidden_device_names: rd.updateRoutes.forbiddenDeviceNames, forbidden_source_regex: rd.updateRoutes.forbiddenSourceRegex,
        },
        AddARPNeighborsRequest: {
          forbidden_device_names: rd.addArpNeighbors.forbiddenDeviceNames, forbidden_cidrs_regex: rd.addArpNeighbors.forbiddenCidrsRegex,
          allowed_states: rd.addArpNeighbors.allowedStates,
        },
        CloseStdinRequest: rd.closeStdin,
        ReadStreamRequest: rd.readStream,
        WriteStreamRequest: rd.writeStream,
        UpdateEphemeralMountsRequest: rd.updateEphemeralMounts,
        GetDiagnosticDataRequest: rd.getDiagnosticData,
      },
    };
    return {
      data,
      samples: { podName: this.ctx.podNameSample, namespace: this.ns ?? 'default', containers: results.map((r) => r.sample) },
    };
  }
}

function pushUnique(list: Storage[], s: Storage): void {
  const key = JSON.stringify(s);
  if (!list.some((x) => JSON.stringify(x) === key)) list.push(s);
}

export type BuiltPod = { data: PolicyData; samples: PodSamples };

export function buildPod(input: PodPolicyInput): BuiltPod {
  return new Builder(input).build();
}

export function buildPolicyData(input: PodPolicyInput): PolicyData {
  return buildPod(input).data;
}

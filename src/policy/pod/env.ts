/**
 * Environment of a container: the image `Env` (or containerd's default PATH), overridden by the
 * Kubernetes env (`envFrom`, then `env`), plus what the runtime adds (HOSTNAME, TERM). Values
 * only known at run time (pod IP, pod name, …) become patterns.
 */
import { compact, expand, isLiteral, literalText, toPattern, toSample, type Value } from '../values.js';
import { INITDATA_ANNOTATION } from '../initdata.js';
import { arr, obj, str, type ContainerInput, type Obj, type PodContext } from './context.js';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ContainerEnv {
  /** The Kubernetes env of the container (what `$(VAR)` in command and args may use). */
  kube: Map<string, Value>;
  /** Everything the process gets, in order. */
  all: Map<string, Value>;
}

/**
 * The sources of a list by name, in list order: built once per list (every pod of a run shares
 * the run's ConfigMaps and Secrets), so a lookup does not scan the whole list (1,000 pods over
 * 1,000 ConfigMaps made a million comparisons).
 */
const byName = new WeakMap<readonly Obj[], { length: number; index: Map<unknown, Obj[]> }>();

function sourcesNamed(list: readonly Obj[], name: string): readonly Obj[] {
  let index = byName.get(list)?.index;
  // A list that grew since it was indexed (callers build theirs first) is indexed again.
  if (!index || byName.get(list)!.length !== list.length) {
    index = new Map();
    for (const o of list) {
      const key = obj(o.metadata)?.name;
      const same = index.get(key);
      if (same) same.push(o);
      else index.set(key, [o]);
    }
    byName.set(list, { length: list.length, index });
  }
  return index.get(name) ?? [];
}

/** The first source of `list` with this name in the pod's namespace (or without one). */
function findSource(pod: PodContext, list: readonly Obj[], name: string): Obj | undefined {
  return sourcesNamed(list, name).find((o) => {
    const ns = str(obj(o.metadata)!.namespace);
    return ns === undefined || pod.ns === undefined || ns === pod.ns;
  });
}

function sourceData(pod: PodContext, kind: 'ConfigMap' | 'Secret', o: Obj, field: string): Map<string, string> {
  const out = new Map<string, string>();
  if (kind === 'ConfigMap') {
    for (const [k, v] of Object.entries(obj(o.data) ?? {})) out.set(k, String(v));
    return out;
  }
  for (const [k, v] of Object.entries(obj(o.data) ?? {})) {
    const bytes = Buffer.from(String(v), 'base64');
    const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
    if (text.includes('\ufffd'))
      pod.fail(`Secret key ${k} is not UTF-8 text and cannot be an environment variable`, field);
    out.set(k, text);
  }
  for (const [k, v] of Object.entries(obj(o.stringData) ?? {})) out.set(k, String(v));
  return out;
}

function valueFrom(pod: PodContext, vf: Obj, field: string): Value | undefined {
  const labels = pod.input.podMetadata.labels ?? {};
  const annotations = pod.input.podMetadata.annotations ?? {};
  const fr = obj(vf.fieldRef);
  if (fr) {
    const path = str(fr.fieldPath) ?? '';
    const keyed =
      /^metadata\.(labels|annotations)\['([^']*)'\]$/.exec(path) ??
      /^metadata\.(labels|annotations)\["([^"]*)"\]$/.exec(path);
    if (keyed) {
      const map = keyed[1] === 'labels' ? labels : annotations;
      // Controllers add labels (pod-template-hash, …) the manifest does not show.
      return keyed[2] in map && keyed[2] !== INITDATA_ANNOTATION ? [map[keyed[2]]] : [{ dyn: 'any' }];
    }
    switch (path) {
      case 'metadata.name':
        return [{ dyn: 'podName' }];
      case 'metadata.namespace':
        return pod.ns !== undefined ? [pod.ns] : [{ dyn: 'namespace' }];
      case 'metadata.uid':
        return [{ dyn: 'podUid' }];
      case 'metadata.labels':
      case 'metadata.annotations':
        return [{ dyn: 'any' }];
      case 'spec.nodeName':
        return [{ dyn: 'nodeName' }];
      case 'spec.serviceAccountName':
        return [str(pod.spec.serviceAccountName) ?? str(pod.spec.serviceAccount) ?? 'default'];
      case 'status.hostIP':
        return [{ dyn: 'hostIP' }];
      case 'status.hostIPs':
        return [{ dyn: 'hostIPs' }];
      case 'status.podIP':
        return [{ dyn: 'podIP' }];
      case 'status.podIPs':
        return [{ dyn: 'podIPs' }];
      default:
        pod.fail(`fieldRef ${JSON.stringify(path)} is not supported`, `${field}.fieldRef.fieldPath`);
    }
  }
  if (obj(vf.resourceFieldRef)) return [{ dyn: 'resource' }];
  for (const [key, kind, list] of [
    ['configMapKeyRef', 'ConfigMap', pod.input.configMaps],
    ['secretKeyRef', 'Secret', pod.input.secrets],
  ] as const) {
    const ref = obj(vf[key]);
    if (!ref) continue;
    const name = str(ref.name) ?? '';
    const k = str(ref.key) ?? '';
    const found = findSource(pod, list, name);
    const data = found ? sourceData(pod, kind, found, `${field}.${key}`) : undefined;
    if (data?.has(k)) return [data.get(k) as string];
    if (ref.optional === true) return undefined;
    pod.fail(
      found
        ? `${kind} ${name} has no key ${JSON.stringify(k)}`
        : `${kind} ${name} is not in the input; add it to the input stream so its value can be pinned`,
      `${field}.${key}`,
    );
  }
  pod.fail('valueFrom has no supported source (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef)', field);
}

/** Kubernetes env of a container (envFrom, then env), as name → value in definition order. */
export function kubeEnv(pod: PodContext, c: Obj, cpath: string): Map<string, Value> {
  const env = new Map<string, Value>();
  arr(c.envFrom).forEach((raw, i) => {
    const src = obj(raw) ?? {};
    const field = `${cpath}.envFrom[${i}]`;
    const prefix = str(src.prefix) ?? '';
    const cm = obj(src.configMapRef);
    const sec = obj(src.secretRef);
    const ref = cm ?? sec;
    if (!ref) pod.fail('envFrom needs configMapRef or secretRef', field);
    const kind = cm ? 'ConfigMap' : 'Secret';
    const name = str(ref.name) ?? '';
    const found = findSource(pod, cm ? pod.input.configMaps : pod.input.secrets, name);
    if (!found) {
      if (ref.optional === true) return;
      pod.fail(
        `${kind} ${name} is not in the input; add it to the input stream so its values can be pinned`,
        `${field}.${cm ? 'configMapRef' : 'secretRef'}`,
      );
    }
    for (const [k, v] of [...sourceData(pod, kind, found, field)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      env.set(prefix + k, [v]);
    }
  });
  arr(c.env).forEach((raw, i) => {
    const e = obj(raw) ?? {};
    const field = `${cpath}.env[${i}]`;
    const name = str(e.name);
    if (!name) pod.fail('env entry without a name', field);
    const vf = obj(e.valueFrom);
    if (!vf) {
      env.set(
        name,
        expand(str(e.value) ?? '', (n) => env.get(n)),
      );
      return;
    }
    const v = valueFrom(pod, vf, `${field}.valueFrom`);
    if (v !== undefined) env.set(name, v);
  });
  return env;
}

export function containerEnv(pod: PodContext, ci: ContainerInput): ContainerEnv {
  const kube = ci.pause ? new Map<string, Value>() : kubeEnv(pod, ci.c, ci.path);
  const all = new Map<string, Value>();
  const imageEnv = ci.image.config.Env && ci.image.config.Env.length > 0 ? ci.image.config.Env : [DEFAULT_PATH];
  for (const e of imageEnv) {
    const eq = e.indexOf('=');
    all.set(eq < 0 ? e : e.slice(0, eq), [eq < 0 ? '' : e.slice(eq + 1)]);
  }
  for (const [k, v] of kube) all.set(k, v);
  if (!ci.pause) {
    const hostname = str(pod.spec.hostname);
    all.set('HOSTNAME', hostname ? [hostname] : [{ dyn: 'hostname' }]);
    if (ci.c.tty === true) all.set('TERM', ['xterm']);
  }
  return { kube, all };
}

/** The policy form: exact entries plus patterns for run-time values. */
export function envPolicy(pod: PodContext, env: ContainerEnv): { Env: string[]; EnvDynamic: Record<string, string> } {
  const Env: string[] = [];
  const EnvDynamic: Record<string, string> = {};
  for (const [k, v] of env.all) {
    if (isLiteral(v)) Env.push(`${k}=${literalText(v)}`);
    else EnvDynamic[k] = toPattern(compact([`${k}=`, ...v]), pod.dyn);
  }
  return { Env, EnvDynamic };
}

/** Concrete values as a runtime would send them (run-time parts filled with samples). */
export function envSample(pod: PodContext, env: ContainerEnv): string[] {
  return [...env.all].map(([k, v]) => `${k}=${toSample(v, pod.dyn)}`);
}

/** The variables kubelet adds for the `kubernetes` service, always. */
const KUBERNETES_SERVICE_ENV: [string, string][] = [
  ['KUBERNETES_SERVICE_HOST', '10.96.0.1'],
  ['KUBERNETES_SERVICE_PORT', '443'],
  ['KUBERNETES_SERVICE_PORT_HTTPS', '443'],
  ['KUBERNETES_PORT', 'tcp://10.96.0.1:443'],
  ['KUBERNETES_PORT_443_TCP', 'tcp://10.96.0.1:443'],
  ['KUBERNETES_PORT_443_TCP_PROTO', 'tcp'],
  ['KUBERNETES_PORT_443_TCP_PORT', '443'],
  ['KUBERNETES_PORT_443_TCP_ADDR', '10.96.0.1'],
];

function serviceLinkEnv(name: string): [string, string][] {
  return [
    [`${name}_SERVICE_HOST`, '10.96.12.7'],
    [`${name}_SERVICE_PORT`, '8443'],
    [`${name}_SERVICE_PORT_WEB`, '8443'],
    [`${name}_PORT`, 'tcp://10.96.12.7:8443'],
    [`${name}_PORT_8443_TCP`, 'tcp://10.96.12.7:8443'],
    [`${name}_PORT_8443_TCP_PROTO`, 'tcp'],
    [`${name}_PORT_8443_TCP_PORT`, '8443'],
    [`${name}_PORT_8443_TCP_ADDR`, '10.96.12.7'],
  ];
}

/**
 * The service-link variables kubelet adds (Kubernetes `kubelet_pods.go`: the `kubernetes`
 * service always, every other service of the namespace with enableServiceLinks). Variables the
 * pod spec sets itself win, as in kubelet. The other service is an imagined one whose name
 * collides with no variable of the container, so the check never mistakes an image's own
 * variable (REDIS_PORT of a redis image) for one of a service the pod does not have.
 */
export function serviceEnvSample(env: ContainerEnv, serviceLinks: boolean): string[] {
  const names = [...env.all.keys()];
  let service = 'CHECK_SVC';
  while (names.some((n) => n.startsWith(`${service}_`))) service = `${service}_X`;
  const vars = [...KUBERNETES_SERVICE_ENV, ...(serviceLinks ? serviceLinkEnv(service) : [])];
  return vars.filter(([k]) => !env.kube.has(k) && !env.all.has(k)).map(([k, v]) => `${k}=${v}`);
}

/** `policy diff`: what changed between two policies, described for people. */
import { normaliseRequest } from './requests.js';
import type { ContainerPolicy, PolicyData } from './types.js';

export interface PolicyChange {
  /** Container name, "(pause)" for the pause container, "" for pod-wide settings. */
  container: string;
  change: string;
}

const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v));
const label = (c: ContainerPolicy) => (c.name === '' ? '(pause)' : c.name);

function setDiff(a: string[], b: string[]): { added: string[]; removed: string[] } {
  const sa = new Set(a);
  const sb = new Set(b);
  return { added: b.filter((x) => !sa.has(x)), removed: a.filter((x) => !sb.has(x)) };
}

function byKey<T>(list: T[], key: (t: T) => string): Map<string, T> {
  return new Map(list.map((x) => [key(x), x]));
}

function envMap(c: ContainerPolicy): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of c.OCI.Process.Env) {
    const i = e.indexOf('=');
    m.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
  }
  for (const [k, v] of Object.entries(c.OCI.Process.EnvDynamic ?? {})) m.set(k, `<run-time value: ${v}>`);
  return m;
}

function containerChanges(a: ContainerPolicy, b: ContainerPolicy): string[] {
  const out: string[] = [];
  const pa = a.OCI.Process;
  const pb = b.OCI.Process;
  if (a.image !== b.image) out.push(`image changed from ${a.image} to ${b.image}`);
  else if (a.image_source !== b.image_source)
    out.push(`pinned image digest changed (${a.image_source} → ${b.image_source})`);
  if (
    JSON.stringify(pa.Args) !== JSON.stringify(pb.Args) ||
    JSON.stringify(pa.ArgsDynamic) !== JSON.stringify(pb.ArgsDynamic)
  ) {
    out.push(`command line changed from ${show(pa.Args)} to ${show(pb.Args)}`);
  }
  const ea = envMap(a);
  const eb = envMap(b);
  for (const [k, v] of eb) {
    if (!ea.has(k)) out.push(`environment variable ${k} added (${show(v)})`);
    else if (ea.get(k) !== v) out.push(`environment variable ${k} changed from ${show(ea.get(k))} to ${show(v)}`);
  }
  for (const k of ea.keys()) if (!eb.has(k)) out.push(`environment variable ${k} removed`);
  if (pa.Cwd !== pb.Cwd) out.push(`working directory changed from ${pa.Cwd} to ${pb.Cwd}`);
  if (pa.User.UID !== pb.User.UID) out.push(`runs as user ${pb.User.UID} instead of ${pa.User.UID}`);
  if (pa.User.GID !== pb.User.GID) out.push(`runs with group ${pb.User.GID} instead of ${pa.User.GID}`);
  const g = setDiff(pa.User.AdditionalGids.map(String), pb.User.AdditionalGids.map(String));
  for (const x of g.added) out.push(`supplementary group ${x} added`);
  for (const x of g.removed) out.push(`supplementary group ${x} removed`);
  const caps = setDiff(pa.Capabilities.Effective, pb.Capabilities.Effective);
  for (const x of caps.added) out.push(`capability ${x} added`);
  for (const x of caps.removed) out.push(`capability ${x} removed`);
  if (pa.NoNewPrivileges !== pb.NoNewPrivileges)
    out.push(
      pb.NoNewPrivileges
        ? 'may no longer gain privileges (no_new_privileges on)'
        : 'may gain privileges (no_new_privileges off)',
    );
  if (pa.Terminal !== pb.Terminal) out.push(pb.Terminal ? 'gets a terminal' : 'no longer gets a terminal');
  if (a.OCI.Root.Readonly !== b.OCI.Root.Readonly)
    out.push(b.OCI.Root.Readonly ? 'root filesystem becomes read-only' : 'root filesystem becomes writable');
  const ma = byKey(a.OCI.Mounts, (m) => m.destination);
  const mb = byKey(b.OCI.Mounts, (m) => m.destination);
  for (const [d, m] of mb) {
    const old = ma.get(d);
    if (!old) out.push(`mount at ${d} added (${m.type_}, ${m.options.join(',')})`);
    else if (JSON.stringify(old) !== JSON.stringify(m)) {
      out.push(
        `mount at ${d} changed${old.options.join(',') !== m.options.join(',') ? ` (options ${old.options.join(',')} → ${m.options.join(',')})` : ''}`,
      );
    }
  }
  for (const d of ma.keys()) if (!mb.has(d)) out.push(`mount at ${d} removed`);
  const sa = a.storages.map((s) => JSON.stringify(s));
  const sb = b.storages.map((s) => JSON.stringify(s));
  const sd = setDiff(sa, sb);
  for (const s of sd.added) out.push(`storage added: ${s}`);
  for (const s of sd.removed) out.push(`storage removed: ${s}`);
  const xa = a.exec_commands.map((c) => JSON.stringify(c));
  const xb = b.exec_commands.map((c) => JSON.stringify(c));
  const xd = setDiff(xa, xb);
  for (const s of xd.added) out.push(`exec command allowed: ${s}`);
  for (const s of xd.removed) out.push(`exec command no longer allowed: ${s}`);
  for (const [k, v] of Object.entries(b.OCI.Linux.Sysctl))
    if (a.OCI.Linux.Sysctl[k] !== v) out.push(`sysctl ${k}=${v} allowed`);
  for (const k of Object.keys(a.OCI.Linux.Sysctl))
    if (!(k in b.OCI.Linux.Sysctl)) out.push(`sysctl ${k} no longer allowed`);
  const ad = setDiff(
    Object.entries(a.OCI.Annotations).map(([k, v]) => `${k}: ${v}`),
    Object.entries(b.OCI.Annotations).map(([k, v]) => `${k}: ${v}`),
  );
  for (const s of ad.added) out.push(`annotation allowed: ${s}`);
  for (const s of ad.removed) out.push(`annotation no longer allowed: ${s}`);
  const masked = setDiff(a.OCI.Linux.MaskedPaths, b.OCI.Linux.MaskedPaths);
  for (const s of masked.removed) out.push(`${s} is no longer masked`);
  for (const s of masked.added) out.push(`${s} is now masked`);
  if (JSON.stringify(a.devices) !== JSON.stringify(b.devices))
    out.push(`devices changed from ${show(a.devices)} to ${show(b.devices)}`);
  if ((a.gpus ?? 0) !== (b.gpus ?? 0)) out.push(`GPUs (VFIO) changed from ${a.gpus ?? 0} to ${b.gpus ?? 0}`);
  if (a.sandbox_pidns !== b.sandbox_pidns)
    out.push(
      b.sandbox_pidns ? 'shares the process namespace of the pod' : 'no longer shares the process namespace of the pod',
    );
  const known = new Set([
    'image',
    'image_source',
    'name',
    'storages',
    'devices',
    'gpus',
    'sandbox_pidns',
    'exec_commands',
    'OCI',
  ]);
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (
      !known.has(k) &&
      JSON.stringify((a as unknown as Record<string, unknown>)[k]) !==
        JSON.stringify((b as unknown as Record<string, unknown>)[k])
    )
      out.push(`${k} changed`);
  }
  if (out.length === 0 && JSON.stringify(a) !== JSON.stringify(b))
    out.push('other details of the expected container changed');
  return out;
}

/** Changes from policy A to policy B. `rulesA`/`rulesB` are the Rego rules of each. */
export function diffPolicies(rulesA: string, dataA: PolicyData, rulesB: string, dataB: PolicyData): PolicyChange[] {
  const out: PolicyChange[] = [];
  if (rulesA !== rulesB) {
    const la = new Set(rulesA.split('\n'));
    const lb = new Set(rulesB.split('\n'));
    const added = [...lb].filter((l) => !la.has(l)).length;
    const removed = [...la].filter((l) => !lb.has(l)).length;
    out.push({
      container: '',
      change: `the Rego rules differ (${added} lines added, ${removed} removed): the policies come from different kubectl-contrast versions or custom rules`,
    });
  }
  const ca = byKey(dataA.containers ?? [], label);
  const cb = byKey(dataB.containers ?? [], label);
  for (const [name, c] of cb) {
    const old = ca.get(name);
    if (!old) out.push({ container: name, change: `container added (image ${c.image})` });
    else for (const change of containerChanges(old, c)) out.push({ container: name, change });
  }
  for (const name of ca.keys()) if (!cb.has(name)) out.push({ container: name, change: 'container removed' });
  const pod = (k: keyof PolicyData, what: string) => {
    if (JSON.stringify(dataA[k]) !== JSON.stringify(dataB[k])) out.push({ container: '', change: what });
  };
  const ra = dataA.request_defaults;
  const rb = dataB.request_defaults;
  if (ra && rb) {
    for (const k of [
      'ReadStreamRequest',
      'WriteStreamRequest',
      'CloseStdinRequest',
      'UpdateEphemeralMountsRequest',
      'GetDiagnosticDataRequest',
    ] as const) {
      if (ra[k] !== rb[k]) out.push({ container: '', change: `${k} is now ${rb[k] ? 'allowed' : 'denied'}` });
    }
    const cmds = setDiff(
      ra.ExecProcessRequest.allowed_commands.map((c) => JSON.stringify(c)),
      rb.ExecProcessRequest.allowed_commands.map((c) => JSON.stringify(c)),
    );
    for (const c of cmds.added) out.push({ container: '', change: `exec of ${c} allowed in every container` });
    for (const c of cmds.removed) out.push({ container: '', change: `exec of ${c} no longer allowed` });
    const rest = (r: typeof ra) =>
      JSON.stringify({
        ...r,
        ReadStreamRequest: 0,
        WriteStreamRequest: 0,
        CloseStdinRequest: 0,
        UpdateEphemeralMountsRequest: 0,
        GetDiagnosticDataRequest: 0,
        ExecProcessRequest: { ...r.ExecProcessRequest, allowed_commands: 0 },
      });
    if (rest(ra) !== rest(rb))
      out.push({
        container: '',
        change:
          'request defaults changed (allowed environment patterns, copy paths, exec regexes or networking limits)',
      });
  }
  pod('sandbox', 'sandbox storages changed');
  pod('common', 'guest paths or allowed cgroup options changed');
  pod('devices', 'VFIO device settings changed');
  return out;
}

// ---------------------------------------------------------------------------------------------
// A request against a policy: which fields of the request the policy does not allow.

/** One field of a request that the policy does not allow. `field` is a path into the request. */
export interface RequestDifference {
  field: string;
  /** What the request has and what the policy expects. */
  message: string;
}

type J = Record<string, unknown>;
const isJ = (v: unknown): v is J => typeof v === 'object' && v !== null && !Array.isArray(v);
const asJ = (v: unknown): J => (isJ(v) ? v : {});
const asList = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asStr = (v: unknown): string => (typeof v === 'string' ? v : '');
const jsonOf = (v: unknown) => JSON.stringify(v);
const TYPED: Record<string, (m: string) => boolean> = {
  '$(uuid)': (m) => /^[0-9a-f-]{36}$/.test(m),
  '$(random16)': (m) => /^[0-9a-z]{16}$/.test(m),
  '$(dns)': (m) => /^[a-z0-9.-]{1,253}$/.test(m),
  '$(ip)': (m) => isIp(m),
  '$(ips)': (m) => m.split(',').every(isIp),
  '$(digits)': (m) => /^[0-9]+$/.test(m),
  '$(any)': () => true,
};

function isIp(m: string): boolean {
  const parts = m.split('.');
  if (parts.length === 4) return parts.every((p) => /^[0-9]{1,3}$/.test(p) && Number(p) <= 255);
  return m.includes(':') && m.length <= 45 && /^[0-9a-fA-F:.]+$/.test(m);
}

interface Ids {
  bundle: string;
  sandboxId: string;
  name: string;
  ns: string;
  sfpaths: string[];
}

/** Whether a policy value pattern (template or `^`-regex, docs/policy.md) admits a value. */
export function patternAdmits(pattern: string, value: string, ids: Ids): boolean {
  if (pattern.includes('$(sfpath)'))
    return ids.sfpaths.some((sf) => patternAdmits(pattern.split('$(sfpath)').join(sf), value, ids));
  const fill = (p: string, name: string) =>
    p
      .split('$(bundle-id)')
      .join(ids.bundle)
      .split('$(sandbox-id)')
      .join(ids.sandboxId)
      .split('$(sandbox-name)')
      .join(name)
      .split('$(sandbox-namespace)')
      .join(ids.ns);
  if (pattern.startsWith('^')) {
    try {
      return new RegExp(fill(pattern, ids.name.replace(/\./g, '\\.'))).test(value);
    } catch {
      return false;
    }
  }
  const t = fill(pattern, ids.name);
  const at = t.indexOf('$(');
  if (at < 0) return t === value;
  const end = t.indexOf(')', at);
  const check = TYPED[t.slice(at, end + 1)];
  const prefix = t.slice(0, at);
  const suffix = t.slice(end + 1);
  if (!check || !value.startsWith(prefix) || !value.endsWith(suffix) || value.length < prefix.length + suffix.length)
    return false;
  return check(value.slice(prefix.length, value.length - suffix.length));
}

function envName(e: string): string {
  const i = e.indexOf('=');
  return i < 0 ? e : e.slice(0, i);
}

function processDiffs(
  p: ContainerPolicy,
  proc: J,
  prefix: string,
  ids: Ids,
  exec: boolean,
  serviceLinks: boolean,
): RequestDifference[] {
  const out: RequestDifference[] = [];
  const pp = p.OCI.Process;
  if (!exec) {
    const args = asList(proc.Args).map(asStr);
    if (args.length !== pp.Args.length)
      out.push({
        field: `${prefix}.Args`,
        message: `${args.length} arguments, the policy has ${pp.Args.length}: ${jsonOf(pp.Args)}`,
      });
    else
      args.forEach((a, i) => {
        const dyn = pp.ArgsDynamic[String(i)];
        const ok = dyn ? patternAdmits(dyn, a, ids) : a === pp.Args[i];
        if (!ok)
          out.push({
            field: `${prefix}.Args[${i}]`,
            message: `${jsonOf(a)}, the policy has ${jsonOf(dyn ?? pp.Args[i])}`,
          });
      });
    if (proc.Terminal !== pp.Terminal)
      out.push({ field: `${prefix}.Terminal`, message: `${jsonOf(proc.Terminal)}, the policy has ${pp.Terminal}` });
  }
  const env = asList(proc.Env).map(asStr);
  const literal = new Set(pp.Env);
  const pinned = new Set([...pp.Env.map(envName), ...Object.keys(pp.EnvDynamic)]);
  for (const e of env) {
    const n = envName(e);
    if (literal.has(e)) continue;
    const dyn = pp.EnvDynamic[n];
    if (dyn !== undefined) {
      if (!patternAdmits(dyn, e, ids))
        out.push({ field: `${prefix}.Env[${n}]`, message: `${jsonOf(e)} does not fit the policy's ${jsonOf(dyn)}` });
    } else if (pinned.has(n)) {
      out.push({
        field: `${prefix}.Env[${n}]`,
        message: `${jsonOf(e)}, the policy pins ${jsonOf(pp.Env.find((x) => envName(x) === n))}`,
      });
    } else if (
      !/^[A-Z][A-Z0-9_]*_(SERVICE_HOST|SERVICE_PORT.*|PORT.*)=/.test(e) ||
      (!serviceLinks && !n.startsWith('KUBERNETES_'))
    ) {
      out.push({
        field: `${prefix}.Env[${n}]`,
        message: `${jsonOf(e)} is not in the policy${serviceLinks ? '' : ' (service links are off)'}`,
      });
    }
  }
  const names = new Set(env.map(envName));
  if (names.size !== env.length) out.push({ field: `${prefix}.Env`, message: 'a variable is set twice' });
  for (const e of pp.Env)
    if (!env.includes(e)) out.push({ field: `${prefix}.Env[${envName(e)}]`, message: `missing ${jsonOf(e)}` });
  for (const n of Object.keys(pp.EnvDynamic))
    if (!names.has(n))
      out.push({ field: `${prefix}.Env[${n}]`, message: `missing (the policy expects ${jsonOf(pp.EnvDynamic[n])})` });
  if (proc.Cwd !== pp.Cwd)
    out.push({ field: `${prefix}.Cwd`, message: `${jsonOf(proc.Cwd)}, the policy has ${jsonOf(pp.Cwd)}` });
  const user = asJ(proc.User);
  if (user.UID !== pp.User.UID)
    out.push({ field: `${prefix}.User.UID`, message: `${jsonOf(user.UID)}, the policy has ${pp.User.UID}` });
  if (user.GID !== pp.User.GID)
    out.push({ field: `${prefix}.User.GID`, message: `${jsonOf(user.GID)}, the policy has ${pp.User.GID}` });
  const groups = setDiff(pp.User.AdditionalGids.map(String), asList(user.AdditionalGids).map(String));
  if (groups.added.length + groups.removed.length > 0)
    out.push({
      field: `${prefix}.User.AdditionalGids`,
      message: `extra ${jsonOf(groups.added)}, missing ${jsonOf(groups.removed)}`,
    });
  if (asStr(user.Username) !== '')
    out.push({ field: `${prefix}.User.Username`, message: 'a user name (the policy allows numeric ids only)' });
  if (proc.NoNewPrivileges !== pp.NoNewPrivileges)
    out.push({
      field: `${prefix}.NoNewPrivileges`,
      message: `${jsonOf(proc.NoNewPrivileges)}, the policy has ${pp.NoNewPrivileges}`,
    });
  if (asStr(proc.SelinuxLabel) !== '') out.push({ field: `${prefix}.SelinuxLabel`, message: 'an SELinux label' });
  if (exec) {
    if (proc.Capabilities !== null && proc.Capabilities !== undefined)
      out.push({ field: `${prefix}.Capabilities`, message: 'capabilities in an exec (must be absent)' });
    if (asStr(proc.ApparmorProfile) !== '')
      out.push({ field: `${prefix}.ApparmorProfile`, message: 'an AppArmor profile' });
  } else {
    const caps = asJ(proc.Capabilities);
    if (!isJ(proc.Capabilities)) out.push({ field: `${prefix}.Capabilities`, message: 'no capabilities' });
    else
      for (const k of ['Ambient', 'Bounding', 'Effective', 'Inheritable', 'Permitted'] as const) {
        const d = setDiff(pp.Capabilities[k], asList(caps[k]).map(asStr));
        if (d.added.length + d.removed.length > 0)
          out.push({
            field: `${prefix}.Capabilities.${k}`,
            message: `extra ${jsonOf(d.added)}, missing ${jsonOf(d.removed)}`,
          });
      }
  }
  return out;
}

function containerDiffs(data: PolicyData, req: J, state: J): RequestDifference[] {
  const out: RequestDifference[] = [];
  const oci = asJ(req.OCI);
  const anno = asJ(oci.Annotations);
  const type = anno['io.kubernetes.cri.container-type'];
  const p =
    type === 'sandbox'
      ? data.containers[0]
      : type === 'container'
        ? data.containers.find((c, i) => i > 0 && c.name === anno['io.kubernetes.cri.container-name'])
        : undefined;
  if (!p)
    return [
      {
        field: 'OCI.Annotations[io.kubernetes.cri.container-name]',
        message: `container type ${jsonOf(type)} / name ${jsonOf(anno['io.kubernetes.cri.container-name'])} is not in the policy`,
      },
    ];
  const linux = asJ(oci.Linux);
  const ids: Ids = {
    bundle: asStr(req.container_id),
    sandboxId: asStr(anno['io.kubernetes.cri.sandbox-id']),
    name: asStr(anno['io.kubernetes.cri.sandbox-name']),
    ns: asStr(anno['io.kubernetes.cri.sandbox-namespace']),
    sfpaths: data.common.sfpaths,
  };
  const hex64 = (s: string) => /^[0-9a-f]{64}$/.test(s);
  if (!hex64(ids.bundle))
    out.push({ field: 'container_id', message: `${jsonOf(ids.bundle)} is not a 64-hex container id` });
  for (const [f, v] of [
    ['shared_mounts', asList(req.shared_mounts).length > 0],
    ['string_user', req.string_user !== null && req.string_user !== undefined],
    ['OCI.Hooks', oci.Hooks !== null && oci.Hooks !== undefined],
    ['OCI.Linux.Seccomp', linux.Seccomp !== null && linux.Seccomp !== undefined],
    ['OCI.Linux.UIDMappings', asList(linux.UIDMappings).length > 0],
    ['OCI.Linux.GIDMappings', asList(linux.GIDMappings).length > 0],
    ['OCI.Linux.MountLabel', asStr(linux.MountLabel) !== ''],
    ['OCI.Linux.RootfsPropagation', asStr(linux.RootfsPropagation) !== ''],
    ['OCI.Linux.Resources.Devices', asList(asJ(linux.Resources).Devices).length > 0],
  ] as const) {
    if (v) out.push({ field: f, message: 'set; the policy never allows it' });
  }
  // Identity and state.
  if (type === 'sandbox' && ids.sandboxId !== ids.bundle)
    out.push({
      field: 'OCI.Annotations[io.kubernetes.cri.sandbox-id]',
      message: "the pause container's sandbox id must be its own id",
    });
  if (state.sandbox_name !== undefined && state.sandbox_name !== ids.name)
    out.push({
      field: 'OCI.Annotations[io.kubernetes.cri.sandbox-name]',
      message: `${jsonOf(ids.name)}, the pod's earlier containers have ${jsonOf(state.sandbox_name)}`,
    });
  else if (!new RegExp(p.OCI.Annotations['io.kubernetes.cri.sandbox-name'] ?? '^$').test(ids.name))
    out.push({
      field: 'OCI.Annotations[io.kubernetes.cri.sandbox-name]',
      message: `${jsonOf(ids.name)} does not fit ${p.OCI.Annotations['io.kubernetes.cri.sandbox-name']}`,
    });
  if (!patternAdmits(p.OCI.Annotations['io.kubernetes.cri.sandbox-namespace'] ?? '', ids.ns, ids))
    out.push({
      field: 'OCI.Annotations[io.kubernetes.cri.sandbox-namespace]',
      message: `${jsonOf(ids.ns)}, the policy has ${p.OCI.Annotations['io.kubernetes.cri.sandbox-namespace']}`,
    });
  if (state.sandbox_id !== undefined && state.sandbox_id !== ids.sandboxId)
    out.push({
      field: 'OCI.Annotations[io.kubernetes.cri.sandbox-id]',
      message: `${jsonOf(ids.sandboxId)}, the pause container of this VM was ${jsonOf(state.sandbox_id)}`,
    });
  if (type === 'container' && state.sandbox_id === undefined)
    out.push({
      field: 'OCI.Annotations[io.kubernetes.cri.sandbox-id]',
      message: 'no pause container was created under this policy before',
    });
  const netns = asList(linux.Namespaces)
    .map(asJ)
    .filter((n) => n.Type === 'network')
    .map((n) => asStr(n.Path));
  if (netns.length > 1 || (state.network_namespace !== undefined && state.network_namespace !== (netns[0] ?? ''))) {
    out.push({
      field: 'OCI.Linux.Namespaces[network]',
      message: `${jsonOf(netns)}, the pause container joined ${jsonOf(state.network_namespace)}`,
    });
  }
  for (const [k, v] of Object.entries(anno)) {
    if (k === 'io.kubernetes.cri.sandbox-name' || k === 'io.kubernetes.cri.sandbox-namespace') continue;
    const pv = p.OCI.Annotations[k];
    if (pv !== undefined) {
      if (!patternAdmits(pv, asStr(v), ids))
        out.push({ field: `OCI.Annotations[${k}]`, message: `${jsonOf(v)} does not fit ${jsonOf(pv)}` });
    } else if (k.startsWith(data.devices.vfio.cdi_prefix)) {
      if (p.gpus === 0 || !new RegExp(data.devices.vfio.cdi_value_regex).test(asStr(v)))
        out.push({ field: `OCI.Annotations[${k}]`, message: `a CDI device ${jsonOf(v)} the policy does not have` });
    } else if (!k.startsWith('io.kubernetes.cri.'))
      out.push({ field: `OCI.Annotations[${k}]`, message: `${jsonOf(v)}: an annotation the policy does not allow` });
  }
  // Root and image.
  const root = asJ(oci.Root);
  if (oci.Version !== p.OCI.Version)
    out.push({ field: 'OCI.Version', message: `${jsonOf(oci.Version)}, the policy has ${p.OCI.Version}` });
  const wantRoot = p.OCI.Root.Path.split('$(bundle-id)').join(ids.bundle);
  if (root.Path !== wantRoot)
    out.push({ field: 'OCI.Root.Path', message: `${jsonOf(root.Path)}, the policy has ${jsonOf(wantRoot)}` });
  if (root.Readonly !== p.OCI.Root.Readonly)
    out.push({
      field: 'OCI.Root.Readonly',
      message: `${jsonOf(root.Readonly)}, the policy has ${p.OCI.Root.Readonly}`,
    });
  const storages = asList(req.storages).map(asJ);
  const pulls = storages.map((s, i) => ({ s, i })).filter(({ s }) => s.driver === 'image_guest_pull');
  if (pulls.length !== 1)
    out.push({ field: 'storages', message: `${pulls.length} image_guest_pull storages, the runtime sends one` });
  for (const { s, i } of pulls) {
    if (!patternAdmits(p.image_source, asStr(s.source), ids))
      out.push({
        field: `storages[${i}].source`,
        message: `${jsonOf(s.source)}, the policy pins ${jsonOf(p.image_source)}`,
      });
    if (s.mount_point !== root.Path)
      out.push({
        field: `storages[${i}].mount_point`,
        message: `${jsonOf(s.mount_point)}, the root is ${jsonOf(root.Path)}`,
      });
    if (
      s.fstype !== 'overlay' ||
      s.shared === true ||
      asList(s.options).length > 0 ||
      (s.fs_group !== null && s.fs_group !== undefined)
    )
      out.push({
        field: `storages[${i}]`,
        message: 'the guest-pull storage must be a private overlay without options',
      });
  }
  storages.forEach((s, i) => {
    if (s.driver === 'image_guest_pull') return;
    const ok = p.storages.some((ps) => {
      if (ps.driver === '$(block)') {
        const src = asStr(s.source);
        const sourceOk = s.driver === 'blk' ? /^[0-9a-f]{2}(\/[0-9a-f]{2})?$/.test(src) : /^[0-9]+:[0-9]+$/.test(src);
        return (
          ['blk', 'scsi'].includes(asStr(s.driver)) &&
          sourceOk &&
          jsonOf(ps.driver_options) === jsonOf(s.driver_options) &&
          ps.fstype === s.fstype &&
          jsonOf(ps.options) === jsonOf(s.options) &&
          jsonOf(ps.fs_group) === jsonOf(s.fs_group ?? null) &&
          ps.shared === s.shared &&
          s.mount_point ===
            `${data.common.bpath}/${Buffer.from(asStr(s.source)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_')}`
        );
      }
      return (
        ps.driver === s.driver &&
        jsonOf(ps.driver_options) === jsonOf(s.driver_options) &&
        ps.fstype === s.fstype &&
        jsonOf(ps.options) === jsonOf(s.options) &&
        jsonOf(ps.fs_group) === jsonOf(s.fs_group ?? null) &&
        ps.shared === s.shared &&
        patternAdmits(ps.source, asStr(s.source), ids) &&
        patternAdmits(ps.mount_point, asStr(s.mount_point), ids)
      );
    });
    if (!ok)
      out.push({
        field: `storages[${i}]`,
        message: `${jsonOf({ driver: s.driver, source: s.source, mount_point: s.mount_point, options: s.options, driver_options: s.driver_options })} matches no storage of the policy`,
      });
  });
  // Mounts.
  const pm = new Map(p.OCI.Mounts.map((m) => [m.destination, m]));
  const seen = new Set<string>();
  for (const m of asList(oci.Mounts).map(asJ)) {
    const dest = asStr(m.destination);
    const f = `OCI.Mounts[${dest}]`;
    if (seen.has(dest)) out.push({ field: f, message: 'mounted twice' });
    seen.add(dest);
    const want = pm.get(dest);
    if (!want) {
      out.push({ field: f, message: `${jsonOf(m.source)} at a destination the policy does not have` });
      continue;
    }
    if (want.type_ !== m.type_)
      out.push({ field: `${f}.type_`, message: `${jsonOf(m.type_)}, the policy has ${jsonOf(want.type_)}` });
    const opts = asList(m.options).map(asStr);
    const relaxed =
      (want.type_ === 'sysfs' || want.type_ === 'cgroup') && want.options.includes('rw')
        ? opts.map((o) => (o === 'ro' ? 'rw' : o))
        : opts;
    const extras = relaxed.filter((o) => !want.options.includes(o));
    const missing = want.options.filter((o) => !relaxed.includes(o));
    const extrasOk =
      jsonOf(opts) === jsonOf(want.options) ||
      (['sysfs', 'cgroup'].includes(want.type_) &&
        missing.length === 0 &&
        !(opts.includes('ro') && opts.includes('rw')) &&
        extras.every((o) => want.type_ === 'cgroup' && data.common.cgroup_extras.includes(o)));
    if (!extrasOk)
      out.push({ field: `${f}.options`, message: `${jsonOf(opts)}, the policy has ${jsonOf(want.options)}` });
    const sourceOk =
      want.source === '$(block-storage)'
        ? storages.some((s) => ['blk', 'scsi'].includes(asStr(s.driver)) && s.mount_point === m.source)
        : patternAdmits(want.source, asStr(m.source), ids);
    if (!sourceOk)
      out.push({ field: `${f}.source`, message: `${jsonOf(m.source)} does not fit ${jsonOf(want.source)}` });
  }
  // Devices.
  const vfio = data.devices.vfio;
  const vfioNumbers: string[] = [];
  asList(req.devices)
    .map(asJ)
    .forEach((d, i) => {
      const path = asStr(d.container_path);
      if (!path.startsWith(vfio.device_path)) {
        if (!p.devices.some((pd) => pd.container_path === path))
          out.push({ field: `devices[${i}]`, message: `${jsonOf(path)} is not a device of the policy` });
        return;
      }
      const n = path.slice(vfio.device_path.length);
      vfioNumbers.push(n);
      const optionsOk =
        asList(d.options).length > 0 &&
        asList(d.options).every((o) => new RegExp(vfio.pci_option_regex).test(asStr(o)));
      if (
        p.gpus === 0 ||
        !/^[0-9]+$/.test(n) ||
        d.id !== `vfio${n}` ||
        d.type_ !== vfio.device_type ||
        asStr(d.vm_path) !== '' ||
        !optionsOk
      ) {
        out.push({
          field: `devices[${i}]`,
          message: `${jsonOf(d)} is not a VFIO device of the policy (${p.gpus} GPUs, type ${vfio.device_type})`,
        });
      }
    });
  const cdi = Object.keys(anno)
    .filter((k) => k.startsWith(vfio.cdi_prefix))
    .map((k) => k.slice(vfio.cdi_prefix.length));
  const hot = vfioNumbers.length > 0;
  if (
    (p.gpus === 0 && (hot || cdi.length > 0)) ||
    (p.gpus > 0 &&
      hot &&
      (vfioNumbers.length !== p.gpus || jsonOf([...new Set(vfioNumbers)].sort()) !== jsonOf([...cdi].sort()))) ||
    (p.gpus > 0 && !hot && cdi.length !== p.gpus)
  ) {
    out.push({
      field: 'devices',
      message: `${vfioNumbers.length} VFIO devices and ${cdi.length} CDI annotations; the policy has ${p.gpus} GPUs`,
    });
  }
  asList(linux.Devices)
    .map(asJ)
    .forEach((d, i) => {
      if (!p.OCI.Linux.Devices.some((pd) => pd.Path === d.Path))
        out.push({ field: `OCI.Linux.Devices[${i}]`, message: `${jsonOf(d.Path)} is not a device of the policy` });
    });
  // Linux.
  const got = asList(linux.Namespaces)
    .map(asJ)
    .filter((n) => n.Type !== 'network' && n.Type !== 'cgroup')
    .map((n) => ({ Type: n.Type, Path: n.Path }));
  if (jsonOf(got) !== jsonOf(p.OCI.Linux.Namespaces))
    out.push({
      field: 'OCI.Linux.Namespaces',
      message: `${jsonOf(got)}, the policy has ${jsonOf(p.OCI.Linux.Namespaces)}`,
    });
  const masked = asList(linux.MaskedPaths).map(asStr);
  const ro = asList(linux.ReadonlyPaths).map(asStr);
  for (const m of p.OCI.Linux.MaskedPaths)
    if (!masked.includes(m)) out.push({ field: 'OCI.Linux.MaskedPaths', message: `${m} is not masked` });
  for (const m of p.OCI.Linux.ReadonlyPaths)
    if (!ro.includes(m) && !masked.includes(m))
      out.push({ field: 'OCI.Linux.ReadonlyPaths', message: `${m} is not read-only` });
  for (const [k, v] of Object.entries(asJ(linux.Sysctl))) {
    if (p.OCI.Linux.Sysctl[k] !== v)
      out.push({
        field: `OCI.Linux.Sysctl[${k}]`,
        message: `${jsonOf(v)}, the policy has ${jsonOf(p.OCI.Linux.Sysctl[k] ?? '(not allowed)')}`,
      });
  }
  if (req.sandbox_pidns !== p.sandbox_pidns)
    out.push({ field: 'sandbox_pidns', message: `${jsonOf(req.sandbox_pidns)}, the policy has ${p.sandbox_pidns}` });
  return [
    ...out,
    ...processDiffs(
      p,
      asJ(oci.Process),
      'OCI.Process',
      ids,
      false,
      data.request_defaults.CreateContainerRequest.service_links,
    ),
  ];
}

function execDiffs(data: PolicyData, req: J, state: J): RequestDifference[] {
  const index = state[asStr(req.container_id)];
  const p = typeof index === 'number' ? data.containers[index] : undefined;
  if (!p) return [{ field: 'container_id', message: 'no container of this id was created under this policy' }];
  const proc = asJ(req.process);
  const out: RequestDifference[] = [];
  if (req.string_user !== null && req.string_user !== undefined)
    out.push({ field: 'string_user', message: 'set; the policy never allows it' });
  if (!isJ(req.process)) return [...out, { field: 'process', message: 'no process' }];
  const args = jsonOf(asList(proc.Args));
  const rd = data.request_defaults.ExecProcessRequest;
  const probe = p.exec_commands.some((c) => jsonOf(c) === args) && proc.Terminal === false;
  const allowed =
    rd.allowed_commands.some((c) => jsonOf(c) === args) ||
    rd.regex.some((r) => new RegExp(r).test(asList(proc.Args).join(' ')));
  if (!probe && !allowed)
    out.push({
      field: 'process.Args',
      message: `${args} is not a probe or hook command of ${p.name} (${jsonOf(p.exec_commands)})${proc.Terminal ? ' without a terminal' : ''}`,
    });
  const ids: Ids = {
    bundle: asStr(req.container_id),
    sandboxId: asStr(state.sandbox_id),
    name: asStr(state.sandbox_name),
    ns: asStr(state.namespace),
    sfpaths: data.common.sfpaths,
  };
  return [
    ...out,
    ...processDiffs(p, proc, 'process', ids, true, data.request_defaults.CreateContainerRequest.service_links),
  ];
}

function copyFileDiffs(data: PolicyData, req: J): RequestDifference[] {
  const out: RequestDifference[] = [];
  const path = asStr(req.path);
  const type = asStr(req.file_type);
  if (!['Regular', 'Directory', 'Symlink'].includes(type))
    out.push({ field: 'file_type', message: `${jsonOf(type)}: only regular files, directories and symlinks` });
  const regexes =
    type === 'Symlink'
      ? data.request_defaults.CopyFileRequest.symlink_regex
      : data.request_defaults.CopyFileRequest.regex;
  if (path.split('/').includes('..') || !regexes.some((r) => new RegExp(r).test(path))) {
    out.push({ field: 'path', message: `${jsonOf(path)} is outside ${jsonOf(regexes)}` });
  }
  if (type === 'Symlink') {
    const target = asStr(req.symlink_target);
    if (target === '' || target.startsWith('/') || target.split('/').includes('..'))
      out.push({
        field: 'symlink_target',
        message: `${jsonOf(req.symlink_target)} is absolute, empty or leaves its directory`,
      });
  }
  return out;
}

function sandboxDiffs(data: PolicyData, req: J): RequestDifference[] {
  const out: RequestDifference[] = [];
  if (asStr(req.guest_hook_path) !== '')
    out.push({ field: 'guest_hook_path', message: `${jsonOf(req.guest_hook_path)}: guest hooks are never allowed` });
  if (asList(req.kernel_modules).length > 0)
    out.push({ field: 'kernel_modules', message: 'kernel modules are never allowed' });
  if (req.sandbox_pidns === true)
    out.push({ field: 'sandbox_pidns', message: 'a sandbox PID namespace is never allowed' });
  asList(req.storages).forEach((s, i) => {
    if (!data.sandbox.storages.some((p) => jsonOf(p) === jsonOf(s)))
      out.push({ field: `storages[${i}]`, message: `${jsonOf(s)} is not a sandbox storage of the policy` });
  });
  return out;
}

function networkDiffs(data: PolicyData, name: string, req: J): RequestDifference[] {
  const out: RequestDifference[] = [];
  const rd = data.request_defaults;
  if (name === 'UpdateInterfaceRequest') {
    const i = asJ(req.interface);
    const d = rd.UpdateInterfaceRequest;
    if ((Number(i.raw_flags ?? 0) & ~d.allow_raw_flags) !== 0)
      out.push({
        field: 'interface.raw_flags',
        message: `${jsonOf(i.raw_flags)} has flags outside ${d.allow_raw_flags}`,
      });
    if (d.forbidden_names.includes(asStr(i.name)))
      out.push({ field: 'interface.name', message: `${jsonOf(i.name)} is forbidden` });
    if (d.forbidden_hw_addrs.includes(asStr(i.hwAddr)))
      out.push({ field: 'interface.hwAddr', message: `${jsonOf(i.hwAddr)} is forbidden` });
  } else if (name === 'UpdateRoutesRequest') {
    const d = rd.UpdateRoutesRequest;
    asList(asJ(req.routes).Routes)
      .map(asJ)
      .forEach((r, i) => {
        if (d.forbidden_device_names.includes(asStr(r.device)))
          out.push({ field: `routes.Routes[${i}].device`, message: `${jsonOf(r.device)} is forbidden` });
        if (d.forbidden_source_regex.some((x) => new RegExp(x).test(asStr(r.source))))
          out.push({ field: `routes.Routes[${i}].source`, message: `${jsonOf(r.source)} is a forbidden source` });
      });
  } else if (name === 'AddARPNeighborsRequest') {
    const d = rd.AddARPNeighborsRequest;
    asList(asJ(req.neighbors).ARPNeighbors)
      .map(asJ)
      .forEach((n, i) => {
        const f = `neighbors.ARPNeighbors[${i}]`;
        const ip = asJ(n.toIPAddress);
        if (d.forbidden_device_names.includes(asStr(n.device)))
          out.push({ field: `${f}.device`, message: `${jsonOf(n.device)} is forbidden` });
        if (asStr(ip.mask) !== '') out.push({ field: `${f}.toIPAddress.mask`, message: 'a neighbour has no mask' });
        if (d.forbidden_cidrs_regex.some((x) => new RegExp(x).test(asStr(ip.address))))
          out.push({ field: `${f}.toIPAddress.address`, message: `${jsonOf(ip.address)} is forbidden` });
        if (!d.allowed_states.includes(Number(n.state ?? 0)))
          out.push({ field: `${f}.state`, message: `${jsonOf(n.state)}, allowed: ${jsonOf(d.allowed_states)}` });
        if ((Number(n.flags ?? 0) | 136) !== 136)
          out.push({
            field: `${f}.flags`,
            message: `${jsonOf(n.flags)} has flags other than NTF_PROXY and NTF_ROUTER`,
          });
      });
  }
  return out;
}

/**
 * The fields of a request (in the agent's form, see normaliseRequest) that the policy does not
 * allow, for people: `policy diff --request` and the corpus tests use it to explain a denial.
 * The decision itself is the rules'; this only points at the fields.
 */
export function explainRequest(
  data: PolicyData,
  name: string,
  request: unknown,
  state: Record<string, unknown> = {},
): RequestDifference[] {
  const req = asJ(normaliseRequest(name, request));
  switch (name) {
    case 'CreateContainerRequest':
      return containerDiffs(data, req, state);
    case 'ExecProcessRequest':
      return execDiffs(data, req, state);
    case 'CopyFileRequest':
      return copyFileDiffs(data, req);
    case 'CreateSandboxRequest':
      return sandboxDiffs(data, req);
    default:
      return networkDiffs(data, name, req);
  }
}

/** `policy diff`: what changed between two policies, described for people. */
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
  else if (a.image_source !== b.image_source) out.push(`pinned image digest changed (${a.image_source} → ${b.image_source})`);
  if (JSON.stringify(pa.Args) !== JSON.stringify(pb.Args) || JSON.stringify(pa.ArgsDynamic) !== JSON.stringify(pb.ArgsDynamic)) {
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
  if (pa.NoNewPrivileges !== pb.NoNewPrivileges) out.push(pb.NoNewPrivileges ? 'may no longer gain privileges (no_new_privileges on)' : 'may gain privileges (no_new_privileges off)');
  if (pa.Terminal !== pb.Terminal) out.push(pb.Terminal ? 'gets a terminal' : 'no longer gets a terminal');
  if (a.OCI.Root.Readonly !== b.OCI.Root.Readonly) out.push(b.OCI.Root.Readonly ? 'root filesystem becomes read-only' : 'root filesystem becomes writable');
  const ma = byKey(a.OCI.Mounts, (m) => m.destination);
  const mb = byKey(b.OCI.Mounts, (m) => m.destination);
  for (const [d, m] of mb) {
    const old = ma.get(d);
    if (!old) out.push(`mount at ${d} added (${m.type_}, ${m.options.join(',')})`);
    else if (JSON.stringify(old) !== JSON.stringify(m)) {
      out.push(`mount at ${d} changed${old.options.join(',') !== m.options.join(',') ? ` (options ${old.options.join(',')} → ${m.options.join(',')})` : ''}`);
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
  for (const [k, v] of Object.entries(b.OCI.Linux.Sysctl)) if (a.OCI.Linux.Sysctl[k] !== v) out.push(`sysctl ${k}=${v} allowed`);
  for (const k of Object.keys(a.OCI.Linux.Sysctl)) if (!(k in b.OCI.Linux.Sysctl)) out.push(`sysctl ${k} no longer allowed`);
  const ad = setDiff(Object.entries(a.OCI.Annotations).map(([k, v]) => `${k}: ${v}`), Object.entries(b.OCI.Annotations).map(([k, v]) => `${k}: ${v}`));
  for (const s of ad.added) out.push(`annotation allowed: ${s}`);
  for (const s of ad.removed) out.push(`annotation no longer allowed: ${s}`);
  const masked = setDiff(a.OCI.Linux.MaskedPaths, b.OCI.Linux.MaskedPaths);
  for (const s of masked.removed) out.push(`${s} is no longer masked`);
  for (const s of masked.added) out.push(`${s} is now masked`);
  if (JSON.stringify(a.devices) !== JSON.stringify(b.devices)) out.push(`devices changed from ${show(a.devices)} to ${show(b.devices)}`);
  if (a.sandbox_pidns !== b.sandbox_pidns) out.push(b.sandbox_pidns ? 'shares the process namespace of the pod' : 'no longer shares the process namespace of the pod');
  const known = new Set(['image', 'image_source', 'name', 'storages', 'devices', 'sandbox_pidns', 'exec_commands', 'OCI']);
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!known.has(k) && JSON.stringify((a as unknown as Record<string, unknown>)[k]) !== JSON.stringify((b as unknown as Record<string, unknown>)[k])) out.push(`${k} changed`);
  }
  if (out.length === 0 && JSON.stringify(a) !== JSON.stringify(b)) out.push('other details of the expected container changed');
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
    out.push({ container: '', change: `the Rego rules differ (${added} lines added, ${removed} removed): the policies come from different kubectl-contrast versions or custom rules` });
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
    for (const k of ['ReadStreamRequest', 'WriteStreamRequest', 'CloseStdinRequest', 'UpdateEphemeralMountsRequest', 'GetDiagnosticDataRequest'] as const) {
      if (ra[k] !== rb[k]) out.push({ container: '', change: `${k} is now ${rb[k] ? 'allowed' : 'denied'}` });
    }
    const cmds = setDiff(ra.ExecProcessRequest.allowed_commands.map((c) => JSON.stringify(c)), rb.ExecProcessRequest.allowed_commands.map((c) => JSON.stringify(c)));
    for (const c of cmds.added) out.push({ container: '', change: `exec of ${c} allowed in every container` });
    for (const c of cmds.removed) out.push({ container: '', change: `exec of ${c} no longer allowed` });
    const rest = (r: typeof ra) => JSON.stringify({ ...r, ReadStreamRequest: 0, WriteStreamRequest: 0, CloseStdinRequest: 0, UpdateEphemeralMountsRequest: 0, GetDiagnosticDataRequest: 0, ExecProcessRequest: { ...r.ExecProcessRequest, allowed_commands: 0 } });
    if (rest(ra) !== rest(rb)) out.push({ container: '', change: 'request defaults changed (allowed environment patterns, copy paths, exec regexes or networking limits)' });
  }
  pod('sandbox', 'sandbox storages changed');
  pod('common', 'guest paths changed');
  return out;
}

/**
 * Security context of a container: user, group and supplementary groups, capabilities,
 * no_new_privileges, read-only root, masked and read-only paths, sysctls.
 */
import type { ContainerTemplate } from '../settings.js';
import { arr, int, obj, type ContainerInput, type PodContext } from './context.js';

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || line.startsWith('#')) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (Number.isInteger(uid) && Number.isInteger(gid) && f[2] !== '' && f[3] !== '')
      out.push({ name: f[0], uid, gid });
  }
  return out;
}

function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#')) continue;
    const gid = Number(f[2]);
    if (f[2] !== '' && Number.isInteger(gid))
      out.push({
        name: f[0],
        gid,
        members: f[3]
          .split(',')
          .map((m) => m.trim())
          .filter(Boolean),
      });
  }
  return out;
}

export interface UserPolicy {
  UID: number;
  GID: number;
  AdditionalGids: number[];
}

export function userPolicy(pod: PodContext, ci: ContainerInput): UserPolicy {
  const { pause, image, sc } = ci;
  const podSc = pod.podSecurityContext;
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
  const supplemental = arr(podSc.supplementalGroups)
    .map(int)
    .filter((g): g is number => g !== undefined);
  const fsGroup = int(podSc.fsGroup);
  const podGroups = [...supplemental, ...(fsGroup !== undefined ? [fsGroup] : [])];
  const explicitUser = runAsUser !== undefined || runAsGroup !== undefined;
  if (!pause || (!imageUser && !explicitUser)) podGroups.forEach((g) => extra.add(g));
  const membership = new Set<number>();
  if (!pause && entry)
    for (const g of groups) if (g.members.includes(entry.name) && g.name !== entry.name) membership.add(g.gid);
  if (!pause) {
    // With guest pull the host never sees /etc/passwd or /etc/group, so it can only send what
    // the pod spec (and a numeric image USER) says. Anything the image files would add makes
    // the runtime's request differ from the image's intent: ask for an explicit setting.
    const hostGid = runAsGroup ?? 0;
    const missing: string[] = [];
    if (userPart && !/^[0-9]+$/.test(userPart) && runAsUser === undefined && uid !== 0)
      missing.push(`runAsUser: ${uid}`);
    if (gid !== hostGid) missing.push(`runAsGroup: ${gid}`);
    const extraGroups = [...membership].filter((g) => !extra.has(g));
    if (extraGroups.length > 0)
      missing.push(
        `supplementalGroups: [${[...new Set([...supplemental, ...extraGroups])].sort((a, b) => a - b).join(', ')}]`,
      );
    if (missing.length > 0) {
      pod.report(
        `the image's user database gives this container ${missing.join(', ')}, which the runtime cannot know when images are pulled inside the guest; set ${missing.join(', ')} in the securityContext`,
        `${ci.path}.securityContext`,
      );
    }
  }
  return { UID: uid, GID: gid, AdditionalGids: [...extra].sort((a, b) => a - b) };
}

export function capabilitiesPolicy(pod: PodContext, ci: ContainerInput) {
  const s = pod.s;
  let caps = new Set(ci.privileged ? s.privilegedCaps : s.defaultCaps);
  const capSpec = obj(ci.sc.capabilities) ?? {};
  const norm = (x: unknown) => {
    const n = String(x).toUpperCase();
    return n.startsWith('CAP_') ? n : `CAP_${n}`;
  };
  for (const d of arr(capSpec.drop).map(norm)) {
    if (d === 'CAP_ALL') caps = new Set();
    else caps.delete(d);
  }
  for (const a of arr(capSpec.add).map(norm)) {
    if (a === 'CAP_ALL') s.privilegedCaps.forEach((x) => caps.add(x));
    else caps.add(a);
  }
  const list = s.privilegedCaps
    .filter((x) => caps.has(x))
    .concat([...caps].filter((x) => !s.privilegedCaps.includes(x)).sort());
  return { Ambient: [] as string[], Bounding: list, Effective: list, Inheritable: [] as string[], Permitted: list };
}

export function noNewPrivileges(ci: ContainerInput): boolean {
  return ci.pause ? true : !ci.privileged && ci.sc.allowPrivilegeEscalation === false;
}

export function readOnlyRoot(ci: ContainerInput): boolean {
  return ci.pause ? true : ci.sc.readOnlyRootFilesystem === true;
}

/** Masked and read-only paths: the runtime's defaults, none for privileged containers. */
export function maskedPaths(
  ci: ContainerInput,
  template: ContainerTemplate,
): { MaskedPaths: string[]; ReadonlyPaths: string[] } {
  return {
    MaskedPaths: ci.privileged ? [] : [...template.maskedPaths],
    ReadonlyPaths: ci.privileged ? [] : [...template.readonlyPaths],
  };
}

/** Sysctls: the runtime's defaults plus the pod's `securityContext.sysctls`. */
export function sysctlPolicy(pod: PodContext, template: ContainerTemplate): Record<string, string> {
  const sysctls: Record<string, string> = { ...template.sysctls };
  for (const s of arr(pod.podSecurityContext.sysctls)) {
    const so = obj(s);
    if (so && typeof so.name === 'string') sysctls[so.name] = String(so.value ?? '');
  }
  return sysctls;
}

/**
 * The service-mesh sidecar: a native sidecar (init container with restartPolicy Always) that
 * terminates and originates mTLS with the mesh certificates the Initializer obtained.
 * Configured by pod-template annotations whose syntax is checked here, so a typo fails at
 * generate time instead of as a crash-looping pod.
 */
import { isIPv4 } from 'node:net';
import { UserError } from '../util/errors.js';
import { ANNOTATIONS } from './annotations.js';
import { secretsMount } from './initializer.js';
import { listField, upsertByName, type Obj } from './pod.js';

const SERVICE_MESH_NAME = 'contrast-service-mesh';

export interface MeshConfig {
  ingress?: string;
  egress?: string;
  adminPort?: number;
}

const ENTRY_SEPARATOR = '##';
const NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/** Mesh settings from the pod-template annotations; undefined when the pod has no mesh. */
export function meshConfigFrom(annotations: Record<string, string>, fieldPrefix: string): MeshConfig | undefined {
  const ingress = annotations[ANNOTATIONS.meshIngress];
  const egress = annotations[ANNOTATIONS.meshEgress];
  const admin = annotations[ANNOTATIONS.meshAdminPort];
  if (ingress === undefined && egress === undefined && admin === undefined) return undefined;
  const field = (key: string) => `${fieldPrefix}.annotations["${key}"]`;
  if (ingress !== undefined) parseIngress(ingress, field(ANNOTATIONS.meshIngress));
  if (egress !== undefined) parseEgress(egress, field(ANNOTATIONS.meshEgress));
  const adminPort = admin === undefined ? undefined : parseAdminPort(admin, field(ANNOTATIONS.meshAdminPort));
  return { ingress, egress, adminPort };
}

function entries(value: string): string[] {
  return value.trim() === '' ? [] : value.split(ENTRY_SEPARATOR);
}

/** One ingress entry: `plain` true = not proxied, false = TLS without a client certificate. */
export interface IngressEntry {
  name: string;
  port: number;
  plain: boolean;
}

/** One egress entry: listen on a 127/8 address, dial the remote over mTLS. */
export interface EgressEntry {
  name: string;
  listenHost: string;
  listenPort: number;
  remoteHost: string;
  remotePort: number;
}

/**
 * `name#port#<true|false>` entries: true = plain TCP (not proxied), false = TLS without client
 * auth. Also the sidecar's reading of CONTRAST_INGRESS_PROXY_CONFIG.
 */
export function parseIngress(value: string, field: string): IngressEntry[] {
  const out: IngressEntry[] = [];
  for (const entry of entries(value)) {
    const parts = entry.split('#');
    if (parts.length !== 3) {
      throw new UserError(`ingress entry "${entry}" must be name#port#true|false (entries are joined with ##)`, {
        field,
      });
    }
    const [name, port, plain] = parts as [string, string, string];
    checkName(name, entry, field);
    const portNumber = parsePort(port, field, `port of ingress entry "${entry}"`);
    if (plain !== 'true' && plain !== 'false') {
      throw new UserError(
        `ingress entry "${entry}": the last part must be true (skip the proxy) or false (TLS without client certificate), found "${plain}"`,
        { field },
      );
    }
    if (out.some((e) => e.port === portNumber))
      throw new UserError(`ingress entry "${entry}": port ${portNumber} is listed twice`, { field });
    out.push({ name, port: portNumber, plain: plain === 'true' });
  }
  return out;
}

/**
 * `name#listenIP:port#remoteHost:port` entries; the listen address must be in 127.0.0.0/8.
 * Also the sidecar's reading of CONTRAST_EGRESS_PROXY_CONFIG.
 */
export function parseEgress(value: string, field: string): EgressEntry[] {
  const out: EgressEntry[] = [];
  for (const entry of entries(value)) {
    const parts = entry.split('#');
    if (parts.length !== 3) {
      throw new UserError(
        `egress entry "${entry}" must be name#listenIP:port#remoteHost:port (entries are joined with ##)`,
        { field },
      );
    }
    const [name, listen, remote] = parts as [string, string, string];
    checkName(name, entry, field);
    const [listenIp, listenPort] = splitHostPort(listen, entry, field);
    if (!isIPv4(listenIp) || !listenIp.startsWith('127.')) {
      throw new UserError(
        `egress entry "${entry}": listen address "${listenIp}" must be an IPv4 address in 127.0.0.0/8`,
        { field },
      );
    }
    const listenPortNumber = parsePort(listenPort, field, `listen port of egress entry "${entry}"`);
    const [remoteHost, remotePort] = splitHostPort(remote, entry, field);
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(remoteHost)) {
      throw new UserError(
        `egress entry "${entry}": remote host "${remoteHost}" is not a valid host name or IPv4 address`,
        { field },
      );
    }
    const remotePortNumber = parsePort(remotePort, field, `remote port of egress entry "${entry}"`);
    if (out.some((e) => e.listenHost === listenIp && e.listenPort === listenPortNumber))
      throw new UserError(`egress entry "${entry}": ${listen} is listed twice`, { field });
    out.push({ name, listenHost: listenIp, listenPort: listenPortNumber, remoteHost, remotePort: remotePortNumber });
  }
  return out;
}

function checkName(name: string, entry: string, field: string): void {
  if (!NAME.test(name))
    throw new UserError(`entry "${entry}": name "${name}" must be non-empty letters, digits, '.', '_' or '-'`, {
      field,
    });
}

function splitHostPort(value: string, entry: string, field: string): [string, string] {
  const colon = value.lastIndexOf(':');
  if (colon <= 0) throw new UserError(`entry "${entry}": "${value}" must be host:port`, { field });
  return [value.slice(0, colon), value.slice(colon + 1)];
}

/** The admin interface port (annotation, or CONTRAST_ADMIN_PORT in the sidecar). */
export function parseAdminPort(value: string, field: string): number {
  return parsePort(value, field, 'admin interface port');
}

function parsePort(value: string, field: string, what: string): number {
  if (!/^[0-9]{1,5}$/.test(value.trim())) throw new UserError(`${what} "${value}" is not a port number`, { field });
  const port = Number(value.trim());
  if (port < 1 || port > 65535) throw new UserError(`${what} ${port} is outside 1-65535`, { field });
  return port;
}

function serviceMeshContainer(image: string, config: MeshConfig): Obj {
  const env: Obj[] = [];
  if (config.ingress !== undefined) env.push({ name: 'CONTRAST_INGRESS_PROXY_CONFIG', value: config.ingress });
  if (config.egress !== undefined) env.push({ name: 'CONTRAST_EGRESS_PROXY_CONFIG', value: config.egress });
  if (config.adminPort !== undefined) env.push({ name: 'CONTRAST_ADMIN_PORT', value: String(config.adminPort) });
  const container: Obj = {
    name: SERVICE_MESH_NAME,
    image,
    restartPolicy: 'Always',
    env,
    securityContext: { privileged: true, capabilities: { add: ['NET_ADMIN'] } },
    startupProbe: {
      exec: { command: ['test', '-f', '/ready'] },
      initialDelaySeconds: 1,
      periodSeconds: 5,
      failureThreshold: 5,
    },
    // Upstream's Envoy sidecar gets 100Mi; ours peaks near 115 MB under bulk transfers (docs/service-mesh.md).
    resources: { requests: { memory: '160Mi' }, limits: { memory: '160Mi' } },
    volumeMounts: [secretsMount()],
  };
  if (config.adminPort !== undefined) container.ports = [{ name: 'contrast-admin', containerPort: config.adminPort }];
  return container;
}

/** Add (or refresh) the sidecar after the Initializer; remove a stale one when the mesh is off. */
export function applyServiceMesh(spec: Obj, image: string, config: MeshConfig | undefined, fieldPrefix: string): void {
  if (spec.initContainers === undefined && config === undefined) return;
  const inits = listField(spec, 'initContainers', `${fieldPrefix}.initContainers`);
  if (config === undefined) {
    spec.initContainers = inits.filter((c) => c.name !== SERVICE_MESH_NAME);
    return;
  }
  spec.initContainers = upsertByName(inits, serviceMeshContainer(image, config));
}

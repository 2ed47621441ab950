/**
 * What the sidecar is told: the three settings `generate` copies from the pod-template
 * annotations into its environment, read with the same parser that checked them at generate
 * time (transforms/service-mesh.ts), plus the checks that only make sense together.
 */
import {
  parseAdminPort,
  parseEgress,
  parseIngress,
  type EgressEntry,
  type IngressEntry,
} from '../transforms/service-mesh.js';
import { UserError } from '../util/errors.js';

export interface MeshProxyConfig {
  /** Ports left untouched (`name#port#true`). */
  passthroughPorts: number[];
  /** Ports with TLS but no client certificate (`name#port#false`). */
  serverOnlyTlsPorts: number[];
  /** Every other TCP port of the pod requires a mesh client certificate. */
  egress: EgressEntry[];
  adminPort?: number;
  /** The parsed ingress entries, names included (for logs). */
  ingress: IngressEntry[];
}

export interface RawMeshSettings {
  ingress?: string | undefined;
  egress?: string | undefined;
  adminPort?: string | undefined;
}

export function meshProxyConfig(raw: RawMeshSettings): MeshProxyConfig {
  const ingress = parseIngress(raw.ingress ?? '', 'env CONTRAST_INGRESS_PROXY_CONFIG');
  const egress = parseEgress(raw.egress ?? '', 'env CONTRAST_EGRESS_PROXY_CONFIG');
  const adminPort =
    raw.adminPort === undefined || raw.adminPort === ''
      ? undefined
      : parseAdminPort(raw.adminPort, 'env CONTRAST_ADMIN_PORT');
  if (adminPort !== undefined) {
    const clash = ingress.find((e) => e.port === adminPort);
    if (clash)
      throw new UserError(`the admin interface port ${adminPort} is also the ingress entry "${clash.name}"`, {
        field: 'env CONTRAST_ADMIN_PORT',
      });
    const egressClash = egress.find((e) => e.listenPort === adminPort);
    if (egressClash)
      throw new UserError(
        `the admin interface port ${adminPort} is also the listen port of egress entry "${egressClash.name}"`,
        { field: 'env CONTRAST_ADMIN_PORT' },
      );
  }
  return {
    ingress,
    passthroughPorts: ingress.filter((e) => e.plain).map((e) => e.port),
    serverOnlyTlsPorts: ingress.filter((e) => !e.plain).map((e) => e.port),
    egress,
    ...(adminPort !== undefined ? { adminPort } : {}),
  };
}

/** Placeholder until the proxy lands (same issue). */
import type { MeshProxyConfig } from './config.js';

export interface ConnectionLimits {
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  halfCloseTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerSource: number;
}

export interface ServiceMeshOptions {
  config: MeshProxyConfig;
  tlsDir: string;
  readyFile: string;
  limits: ConnectionLimits;
  discoveryIntervalMs: number;
}

export function runServiceMesh(_opts: ServiceMeshOptions): Promise<void> {
  return Promise.reject(new Error('service-mesh: not implemented yet'));
}

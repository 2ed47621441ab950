/** `kubectl contrast service-mesh`: the entry point of the injected `contrast-service-mesh` sidecar. */
import type { Argv, CommandModule } from 'yargs';
import { meshProxyConfig } from '../servicemesh/config.js';
import { runServiceMesh } from '../servicemesh/run.js';

interface ServiceMeshArgs {
  ingress?: string;
  egress?: string;
  'admin-port'?: string;
  'tls-dir': string;
  'ready-file': string;
  'handshake-timeout': number;
  'idle-timeout': number;
  'half-close-timeout': number;
  'max-connections': number;
  'max-connections-per-source': number;
  'discovery-interval': number;
}

const env = process.env;

export const serviceMeshCommand: CommandModule<object, ServiceMeshArgs> = {
  command: 'service-mesh',
  describe:
    "Sidecar entry point: mTLS for the pod's ports (iptables redirection) and egress listeners on 127.x addresses",
  builder: (y: Argv) =>
    y
      .option('ingress', {
        type: 'string',
        default: env.CONTRAST_INGRESS_PROXY_CONFIG,
        describe: 'name#port#true|false entries joined with ## (env CONTRAST_INGRESS_PROXY_CONFIG)',
      })
      .option('egress', {
        type: 'string',
        default: env.CONTRAST_EGRESS_PROXY_CONFIG,
        describe: 'name#127.x.y.z:port#remoteHost:port entries joined with ## (env CONTRAST_EGRESS_PROXY_CONFIG)',
      })
      .option('admin-port', {
        type: 'string',
        default: env.CONTRAST_ADMIN_PORT,
        describe: 'Port of the admin interface: /ready, /stats, /certificates (env CONTRAST_ADMIN_PORT)',
      })
      .option('tls-dir', {
        type: 'string',
        default: env.CONTRAST_TLS_DIR ?? '/contrast/tls-config',
        describe: "The Initializer's mesh-ca.pem, certChain.pem and key.pem (env CONTRAST_TLS_DIR)",
      })
      .option('ready-file', {
        type: 'string',
        default: '/ready',
        describe: 'Written once listeners and redirection are in place (the startup probe tests it)',
      })
      .option('handshake-timeout', {
        type: 'number',
        default: 10,
        describe: 'Seconds a peer has for the TLS handshake',
      })
      .option('idle-timeout', {
        type: 'number',
        default: 3600,
        describe: 'Close a proxied connection after this many seconds without traffic',
      })
      .option('half-close-timeout', {
        type: 'number',
        default: 60,
        describe: 'Close a connection this many seconds after one side finished sending',
      })
      .option('max-connections', { type: 'number', default: 4096, describe: 'Proxied connections at once, in total' })
      .option('max-connections-per-source', {
        type: 'number',
        default: 256,
        describe: 'Proxied ingress connections at once from one address',
      })
      .option('discovery-interval', {
        type: 'number',
        default: 1,
        describe: 'Seconds between scans for new listening ports of the pod',
      }) as Argv<ServiceMeshArgs>,
  handler: async (argv) => {
    const config = meshProxyConfig({ ingress: argv.ingress, egress: argv.egress, adminPort: argv['admin-port'] });
    await runServiceMesh({
      config,
      tlsDir: argv['tls-dir'],
      readyFile: argv['ready-file'],
      limits: {
        handshakeTimeoutMs: argv['handshake-timeout'] * 1000,
        idleTimeoutMs: argv['idle-timeout'] * 1000,
        halfCloseTimeoutMs: argv['half-close-timeout'] * 1000,
        maxConnections: argv['max-connections'],
        maxConnectionsPerSource: argv['max-connections-per-source'],
      },
      discoveryIntervalMs: argv['discovery-interval'] * 1000,
    });
  },
};

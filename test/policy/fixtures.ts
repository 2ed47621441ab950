/** Hand-made images and pods for the policy tests (no registry access needed). */
import type { ResolvedImage } from '../../src/images/types.js';
import { defaultSettings, type PodPolicyInput } from '../../src/policy/index.js';

const hex = (c: string) => c.repeat(64);

export const pauseImage: ResolvedImage = {
  reference: 'ghcr.io/edgelesssys/kubernetes/pause:3.6',
  pinned: `ghcr.io/edgelesssys/kubernetes/pause:3.6@sha256:${hex('1')}`,
  manifestDigest: `sha256:${hex('1')}`,
  configDigest: `sha256:${hex('2')}`,
  config: {
    Entrypoint: ['/pause'],
    User: '65535:65535',
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
  },
};

export const webImage: ResolvedImage = {
  reference: `registry.example/web:1.0@sha256:${hex('a')}`,
  pinned: `registry.example/web:1.0@sha256:${hex('a')}`,
  manifestDigest: `sha256:${hex('a')}`,
  configDigest: `sha256:${hex('b')}`,
  config: {
    Entrypoint: ['/docker-entrypoint.sh'],
    Cmd: ['nginx', '-g', 'daemon off;'],
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NGINX_VERSION=1.27.0'],
    WorkingDir: '',
    Volumes: { '/var/cache/nginx': {} },
  },
  passwd: 'root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101:nginx:/nonexistent:/bin/false\n',
  group: 'root:x:0:\nnginx:x:101:\n',
};

export const toolImage: ResolvedImage = {
  reference: `registry.example/tool@sha256:${hex('c')}`,
  pinned: `registry.example/tool@sha256:${hex('c')}`,
  manifestDigest: `sha256:${hex('c')}`,
  configDigest: `sha256:${hex('d')}`,
  config: { Cmd: ['/bin/sh'], User: '1000', WorkingDir: '/work' },
  passwd: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n',
  group: 'root:x:0:\napp:x:1000:\n',
};

const images = [webImage, toolImage];

export function lookup(ref: string): ResolvedImage {
  const found = images.find((i) => i.reference === ref || i.pinned === ref);
  if (!found) throw new Error(`unknown image ${ref}`);
  return found;
}

export function deploymentInput(
  podSpecOverrides: Record<string, unknown> = {},
  extra: Partial<PodPolicyInput> = {},
): PodPolicyInput {
  return {
    workload: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'shop' },
    podMetadata: { labels: { app: 'web' }, annotations: { 'example.com/team': 'blue' } },
    podSpec: {
      runtimeClassName: 'contrast-cc',
      volumes: [
        { name: 'cache', emptyDir: {} },
        { name: 'tmp', emptyDir: { medium: 'Memory' } },
        { name: 'config', configMap: { name: 'web-config' } },
        { name: 'tls', secret: { secretName: 'web-tls' } },
        { name: 'podinfo', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
        { name: 'data', persistentVolumeClaim: { claimName: 'web-data' } },
      ],
      initContainers: [
        {
          name: 'init',
          image: toolImage.reference,
          command: ['/bin/sh', '-c', 'echo init > /work/ready'],
          securityContext: { runAsUser: 1000, runAsGroup: 1000 },
        },
      ],
      containers: [
        {
          name: 'web',
          image: webImage.reference,
          args: ['--port', '$(PORT)', '--name', '$(POD_NAME)', '$$(literal)'],
          env: [
            { name: 'PORT', value: '8080' },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'POD_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            { name: 'CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
            { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'web-config', key: 'mode' } } },
            { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'web-secret', key: 'token' } } },
            { name: 'URL', value: 'http://$(POD_IP):$(PORT)/' },
          ],
          envFrom: [{ configMapRef: { name: 'web-env' }, prefix: 'CFG_' }],
          volumeMounts: [
            { name: 'cache', mountPath: '/var/cache/nginx' },
            { name: 'tmp', mountPath: '/tmp' },
            { name: 'config', mountPath: '/etc/nginx/conf.d' },
            { name: 'tls', mountPath: '/etc/tls', readOnly: true },
            { name: 'podinfo', mountPath: '/etc/podinfo' },
            { name: 'data', mountPath: '/data' },
          ],
          livenessProbe: { exec: { command: ['/bin/check', '--port', '$(PORT)'] } },
          readinessProbe: { httpGet: { path: '/', port: 8080 } },
          lifecycle: { preStop: { exec: { command: ['nginx', '-s', 'quit'] } } },
          securityContext: { capabilities: { drop: ['NET_RAW'], add: ['NET_ADMIN'] } },
        },
      ],
      ...podSpecOverrides,
    },
    image: lookup,
    pauseImage,
    configMaps: [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'web-config', namespace: 'shop' },
        data: { mode: 'production' },
      },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web-env' }, data: { LEVEL: 'info', COLOR: 'blue' } },
    ],
    secrets: [
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'web-secret' },
        data: { token: Buffer.from('s3cr3t').toString('base64') },
      },
    ],
    settings: defaultSettings(),
    ...extra,
  };
}

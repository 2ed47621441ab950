/** Synthetic but realistic manifests for benchmarks: N confidential Deployments plus their ConfigMaps. */
import { stringify } from 'yaml';

export function syntheticWorkloads(count: number, images: string[]): string {
  const docs: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `svc-${i}`;
    const image = images[i % images.length]!;
    docs.push(
      stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${name}-config`, namespace: 'bench' },
        data: { 'log-level': 'info', 'app.properties': `name=${name}\nreplicas=3\n` },
      }),
    );
    docs.push(
      stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name, namespace: 'bench', labels: { app: name, tier: i % 3 === 0 ? 'frontend' : 'backend' } },
        spec: {
          replicas: 3,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: {
              labels: { app: name },
              annotations:
                i % 2 === 0
                  ? {
                      'contrast.edgeless.systems/servicemesh-ingress': `http#8080#false`,
                      'contrast.edgeless.systems/servicemesh-egress': `db#127.0.0.2:5432#db-${i % 10}:5432`,
                    }
                  : {},
            },
            spec: {
              runtimeClassName: 'contrast-cc',
              securityContext: { supplementalGroups: [2000] },
              containers: [
                {
                  name: 'app',
                  image,
                  args: ['--listen', ':8080', '--name', '$(POD_NAME)'],
                  securityContext: { runAsUser: 1000, runAsGroup: 1000 },
                  env: [
                    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                    { name: 'LOG_LEVEL', valueFrom: { configMapKeyRef: { name: `${name}-config`, key: 'log-level' } } },
                    { name: 'MEMORY_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } },
                    { name: 'FEATURE_FLAGS', value: 'a,b,c' },
                  ],
                  ports: [{ containerPort: 8080 }],
                  readinessProbe: { exec: { command: ['/bin/check', '--ready'] }, periodSeconds: 5 },
                  livenessProbe: { httpGet: { path: '/healthz', port: 8080 } },
                  resources: { limits: { memory: '256Mi', cpu: '500m' }, requests: { memory: '128Mi' } },
                  volumeMounts: [
                    { name: 'config', mountPath: '/etc/app', readOnly: true },
                    { name: 'scratch', mountPath: '/tmp' },
                  ],
                },
              ],
              volumes: [
                { name: 'config', configMap: { name: `${name}-config` } },
                { name: 'scratch', emptyDir: {} },
              ],
            },
          },
        },
      }),
    );
  }
  return docs.join('---\n');
}

/**
 * Builds the offline sample images into samples/images/ (an OCI image layout committed to
 * git), so the samples and the main job work without network: the sample workloads and
 * stand-ins of our own images, with their lock (image-lock.json). Deterministic: running it
 * twice gives identical bytes. Prints each reference with its digests.
 *
 *   npx tsx scripts/build-sample-images.ts [output-dir]
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage, buildLayer, buildTar, OciLayoutWriter, type LayerEntry } from '../src/images/oci-build.js';
import type { ImageConfig } from '../src/images/types.js';
import { GROUP, OUR_IMAGES, PASSWD, TAG, referenceOf } from './images/spec.js';

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const basePasswd = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
];
const baseGroup = ['root:x:0:', 'daemon:x:1:', 'nogroup:x:65534:'];

const lines = (list: string[]): string => `${list.join('\n')}\n`;

interface Sample {
  ref: string;
  files: LayerEntry[];
  config: ImageConfig & { ExposedPorts?: Record<string, object>; StopSignal?: string; Labels?: Record<string, string> };
}

const samples: Sample[] = [
  {
    ref: 'ghcr.io/kubectl-contrast/samples/web:1.0',
    files: [
      {
        path: 'etc/passwd',
        content: lines([...basePasswd, 'nginx:x:101:101:nginx user:/nonexistent:/usr/sbin/nologin']),
      },
      { path: 'etc/group', content: lines([...baseGroup, 'nginx:x:101:']) },
      {
        path: 'usr/share/nginx/html/index.html',
        content: '<!doctype html><title>kubectl-contrast sample</title><p>Hello from a confidential pod.</p>\n',
      },
    ],
    config: {
      User: '101',
      Env: [PATH, 'NGINX_VERSION=1.27.3'],
      Entrypoint: ['/docker-entrypoint.sh'],
      Cmd: ['nginx', '-g', 'daemon off;'],
      WorkingDir: '/',
      ExposedPorts: { '8080/tcp': {} },
      StopSignal: 'SIGQUIT',
    },
  },
  {
    ref: 'ghcr.io/kubectl-contrast/samples/api:1.0',
    files: [
      { path: 'etc/passwd', content: lines([...basePasswd, 'app:x:1000:1000:api service:/app:/usr/sbin/nologin']) },
      { path: 'etc/group', content: lines([...baseGroup, 'app:x:1000:']) },
      {
        path: 'app/api',
        content: '#!/bin/sh\necho "sample api: listening on :8080"\nexec sleep infinity\n',
        mode: 0o755,
      },
    ],
    config: {
      User: 'app',
      Env: [PATH, 'API_LISTEN=:8080', 'API_LOG_FORMAT=json'],
      Entrypoint: ['/app/api'],
      Cmd: ['--listen=:8080'],
      WorkingDir: '/app',
      ExposedPorts: { '8080/tcp': {} },
    },
  },
  {
    ref: 'ghcr.io/kubectl-contrast/samples/worker:1.0',
    files: [
      {
        path: 'etc/passwd',
        content: lines([...basePasswd, 'worker:x:1001:1001:queue worker:/var/lib/worker:/usr/sbin/nologin']),
      },
      { path: 'etc/group', content: lines([...baseGroup, 'worker:x:1001:', 'jobs:x:2000:worker']) },
      { path: 'usr/local/bin/worker', content: '#!/bin/sh\nexec sleep infinity\n', mode: 0o755 },
    ],
    config: {
      User: 'worker:jobs',
      Env: [PATH, 'WORKER_QUEUE=default'],
      Entrypoint: ['/usr/local/bin/worker'],
      Cmd: ['--queue=default'],
      WorkingDir: '/var/lib/worker',
      Volumes: { '/var/lib/worker': {} },
    },
  },
];

/**
 * Small stand-ins for our own images (scripts/images/spec.ts): the same references and
 * configuration, /etc/passwd and /etc/group as the real ones, a placeholder instead of the
 * executable. Policies computed from them equal those of the real images but for the digests;
 * their lock (samples/images/image-lock.json) is what the tests inject (CONTRAST_IMAGE_LOCK).
 */
function standIns(): { ref: string; key: string; files: LayerEntry[]; config: Sample['config'] }[] {
  return OUR_IMAGES.map((i) => ({
    ref: referenceOf(i),
    key: i.key,
    files: [
      { path: 'etc/passwd', content: lines(PASSWD) },
      { path: 'etc/group', content: lines(GROUP) },
      {
        path: (i.config.Entrypoint ?? ['/bin/placeholder'])[0]!.slice(1),
        content: `#!/bin/sh\n# stand-in for ${referenceOf(i)}: npm run images builds the real one\n`,
        mode: 0o755,
      },
    ],
    config: {
      ...i.config,
      Labels: {
        'org.opencontainers.image.source': 'https://github.com/kubectl-contrast/kubectl-contrast',
        'org.opencontainers.image.title': i.repository,
        'org.opencontainers.image.version': TAG,
      },
    },
  }));
}

export function buildSampleLayout(): OciLayoutWriter {
  return buildSamples().writer;
}

function buildSamples(): { writer: OciLayoutWriter; lock: string } {
  const writer = new OciLayoutWriter();
  for (const s of samples) {
    const layer = buildLayer(buildTar(s.files));
    const config = {
      ...s.config,
      Labels: {
        'org.opencontainers.image.source': 'https://github.com/kubectl-contrast/kubectl-contrast',
        'org.opencontainers.image.title': s.ref,
      },
    };
    const image = buildImage({ layers: [layer], config });
    writer.add(image.descriptor, image.blobs, s.ref);
  }
  const locked: Record<string, string> = {};
  for (const s of standIns()) {
    const image = buildImage({ layers: [buildLayer(buildTar(s.files))], config: s.config });
    writer.add(image.descriptor, image.blobs, s.ref);
    locked[s.key] = `${s.ref}@${image.descriptor.digest}`;
  }
  const lock = `${JSON.stringify({ comment: 'The image lock of the stand-ins in this layout (scripts/build-sample-images.ts); the tests use it.', images: locked }, null, 2)}\n`;
  return { writer, lock };
}

/** The lock of the stand-ins, as the tests read it. */
export function sampleImageLock(): string {
  return buildSamples().lock;
}

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = resolve(process.argv[2] ?? join(here, '..', 'samples', 'images'));
  const { writer, lock } = buildSamples();
  writer.write(out, true);
  writeFileSync(join(out, 'image-lock.json'), lock);
  const index = JSON.parse(writer.index().toString('utf8')) as {
    manifests: { digest: string; annotations: Record<string, string> }[];
  };
  for (const m of index.manifests)
    process.stdout.write(`${m.annotations['org.opencontainers.image.ref.name']}@${m.digest}\n`);
  process.stderr.write(`wrote ${index.manifests.length} images to ${out}\n`);
}
